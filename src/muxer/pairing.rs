//! Which screen recordings go with which call, and whether a pair still needs muxing.
//!
//! A screen recording belongs to a call by `callRecordingId`, or by `callUuid` when it has
//! none. GIR muxes it only when the screen's agent user name is one of the call's, unless
//! `check_matching_username = 0` or the call's user name is unknown (`UNKNOWN`, absent or
//! empty), in which case it always muxes.

use crate::model::{MediaFile, Recording};

/// Why a linked screen recording is not muxed with its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// A muxed file (with `muxed_mediaIds`) made from the call's current voice segments is
    /// already among its media files.
    AlreadyMuxed,
    /// The agent user names differ.
    UserMismatch { call: Vec<String>, screen: Vec<String> },
    /// The screen recording has no video media to mux.
    NoVideo,
    /// The call has no voice media to mux.
    NoVoice,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::AlreadyMuxed => f.write_str("already muxed"),
            Skip::UserMismatch { call, screen } => write!(
                f,
                "agent user name differs (call: {}; screen: {})",
                call.join(", "),
                if screen.is_empty() { "none".to_string() } else { screen.join(", ") }
            ),
            Skip::NoVideo => f.write_str("the screen recording has no video media"),
            Skip::NoVoice => f.write_str("the call has no voice media"),
        }
    }
}

/// True when `screen` belongs to `call`.
pub fn linked(call: &Recording, screen: &Recording) -> bool {
    match &screen.call_recording_id {
        Some(c) => *c == call.id,
        None => matches!((&call.call_uuid, &screen.call_uuid), (Some(a), Some(b)) if !a.is_empty() && a == b),
    }
}

/// The call's known agent user names (`UNKNOWN` and empty ones left out).
pub fn known_users(call: &Recording) -> Vec<String> {
    call.agent_users
        .iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty() && !u.eq_ignore_ascii_case("unknown"))
        .map(str::to_string)
        .collect()
}

/// GIR's `check_matching_username` rule.
pub fn users_match(call: &Recording, screen: &Recording, check: bool) -> Result<(), Skip> {
    let call_users = known_users(call);
    if !check || call_users.is_empty() {
        return Ok(());
    }
    if screen.agent_users.iter().any(|s| call_users.iter().any(|c| c == s.trim())) {
        return Ok(());
    }
    Err(Skip::UserMismatch { call: call_users, screen: screen.agent_users.clone() })
}

/// A muxed output is a media file that lists its sources.
pub fn is_muxed_file(m: &MediaFile) -> bool {
    !m.muxed_media_ids.is_empty()
}

/// The screen recording already carries a muxed file.
pub fn is_muxed(screen: &Recording) -> bool {
    screen.media.iter().any(is_muxed_file)
}

/// True when the screen recording carries a muxed file made from its video and every voice
/// segment the call has now. A segment that arrived after the mux makes it stale: the pair is
/// muxed again, and the new file replaces the old one.
pub fn is_current(call: &Recording, screen: &Recording) -> bool {
    let Some(video) = screen_video(screen) else { return is_muxed(screen) };
    screen.media.iter().filter(|m| is_muxed_file(m)).any(|m| {
        let has = |id: &str| m.muxed_media_ids.iter().any(|s| s == id);
        has(&video.media_id) && voice_media(call).iter().all(|v| has(&v.media_id))
    })
}

/// The screen video to mux: the first video file that is not itself a muxed output.
pub fn screen_video(screen: &Recording) -> Option<&MediaFile> {
    screen.media.iter().find(|m| m.is_video() && !is_muxed_file(m))
}

/// The call's voice segments, in start order.
pub fn voice_media(call: &Recording) -> Vec<&MediaFile> {
    let mut v: Vec<&MediaFile> = call.media.iter().filter(|m| m.mime.starts_with("audio/")).collect();
    v.sort_by_key(|m| m.start.unwrap_or(call.start));
    v
}

/// Whether `screen` (already known to be linked) should be muxed with `call` now.
pub fn check(call: &Recording, screen: &Recording, check_username: bool) -> Result<(), Skip> {
    if is_current(call, screen) {
        return Err(Skip::AlreadyMuxed);
    }
    if screen_video(screen).is_none() {
        return Err(Skip::NoVideo);
    }
    if voice_media(call).is_empty() {
        return Err(Skip::NoVoice);
    }
    users_match(call, screen, check_username)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(users: &[&str], uuid: &str) -> Recording {
        let params: Vec<String> = users.iter().map(|u| format!(r#"{{"username":"{u}"}}"#)).collect();
        let media: Vec<String> = params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    r#"{{"mediaId":"v{i}.mp3","type":"audio/mp3","startTime":"2025-01-01T00:00:0{i}Z","parameters":{p},"callUUID":"{uuid}"}}"#
                )
            })
            .collect();
        let media = if media.is_empty() {
            format!(r#"[{{"mediaId":"v.mp3","type":"audio/mp3","callUUID":"{uuid}"}}]"#)
        } else {
            format!("[{}]", media.join(","))
        };
        Recording::parse(&format!(r#"{{"id":"C1","startTime":"2025-01-01T00:00:00Z","mediaFiles":{media}}}"#)).unwrap()
    }

    fn screen(call_id: Option<&str>, user: &str, uuid: &str, muxed: bool) -> Recording {
        let link = call_id.map(|c| format!(r#""callRecordingId":"{c}","#)).unwrap_or_default();
        let extra = if muxed {
            r#",{"mediaId":"s-muxed.mp4","type":"video/mp4","parameters":{"muxed_mediaIds":["s.mp4","v0.mp3"]}}"#
        } else {
            ""
        };
        Recording::parse(&format!(
            r#"{{"id":"S1",{link}"startTime":"2025-01-01T00:00:00Z","mediaFiles":[{{"mediaId":"s.mp4","type":"video/mp4",
               "parameters":{{"contact":{{"userName":"{user}"}},"callUuid":"{uuid}"}}}}{extra}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn linked_by_call_recording_id_or_uuid() {
        let c = call(&["agent1"], "U1");
        assert!(linked(&c, &screen(Some("C1"), "agent1", "", false)));
        assert!(!linked(&c, &screen(Some("C2"), "agent1", "U1", false)), "callRecordingId wins");
        assert!(linked(&c, &screen(None, "agent1", "U1", false)));
        assert!(!linked(&c, &screen(None, "agent1", "U2", false)));
        assert!(!linked(&c, &screen(None, "agent1", "", false)));
    }

    #[test]
    fn username_rules() {
        let c = call(&["agent1", "agent2"], "U1");
        assert_eq!(check(&c, &screen(Some("C1"), "agent2", "", false), true), Ok(()));
        let e = check(&c, &screen(Some("C1"), "agent9", "", false), true).unwrap_err();
        assert!(matches!(e, Skip::UserMismatch { .. }));
        assert!(e.to_string().contains("agent9"), "{e}");
        assert_eq!(check(&c, &screen(Some("C1"), "agent9", "", false), false), Ok(()), "check off");
        for unknown in [&["UNKNOWN"][..], &[""][..], &[][..]] {
            let c = call(unknown, "U1");
            assert_eq!(check(&c, &screen(Some("C1"), "agent9", "", false), true), Ok(()), "{unknown:?}");
        }
    }

    #[test]
    fn muxed_screens_are_skipped() {
        let c = call(&["agent1"], "U1");
        let s = screen(Some("C1"), "agent1", "", true);
        assert_eq!(check(&c, &s, true), Err(Skip::AlreadyMuxed));
        // A voice segment that arrived after the mux: the muxed file is stale.
        let late = call(&["agent1", "agent1"], "U1");
        assert!(!is_current(&late, &s));
        assert_eq!(check(&late, &s, true), Ok(()));
        assert_eq!(screen_video(&s).map(|m| m.media_id.as_str()), Some("s.mp4"));
        assert_eq!(
            voice_media(&call(&["a", "b"], "U")).iter().map(|m| m.media_id.as_str()).collect::<Vec<_>>(),
            ["v0.mp3", "v1.mp3"]
        );
    }
}
