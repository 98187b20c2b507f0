//! Helpers shared by the lifecycle tests: a data directory with synthetic recordings.
#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use reclife::config::{Clock, Config, Context};
use reclife::model::Recording;
use reclife::storage::{Key, MediaStoreExt};
use std::path::Path;

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-25T03:00:00Z").unwrap().with_timezone(&Utc)
}

pub fn config(backups: &Path) -> Config {
    let mut c = Config::parse("contact_center_id = \"cc1\"\n").unwrap();
    c.default_backup_location = Some(format!("file://{}", backups.display()));
    c
}

pub fn context(data: &Path, backups: &Path) -> Context {
    Context::open(data, config(backups), Clock::fixed(now())).unwrap()
}

/// Deterministic media bytes for a recording.
pub fn media_bytes(id: &str, n: usize) -> Vec<u8> {
    let seed = id.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    (0..n).map(|i| (seed.wrapping_add(i as u32).wrapping_mul(2654435761) >> 24) as u8).collect()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// A voice call `id`, `age_days` old, with one MP3, and optionally a screen recording
/// `<id>_scr` that carries `callRecordingId`.
pub async fn add_call(ctx: &Context, id: &str, age_days: i64, non_delete: bool, screen: bool, size: usize) {
    let start = now() - Duration::days(age_days) - Duration::hours(1);
    let mid = format!("{id}_0001.mp3");
    let body = media_bytes(id, size);
    let doc = format!(
        r#"{{"id":"{id}","callerPhoneNumber":"100","dialedPhoneNumber":"200","startTime":"{}","stopTime":"{}","callType":"Inbound","region":"us","screenRecording":{screen},"nonDelete":{non_delete},"undocumented":{{"kept":"yes"}},"mediaFiles":[{{"mediaId":"{mid}","type":"audio/mp3","startTime":"{}","stopTime":"{}","duration":"0:00:10","size":"{}","tenant":"Environment","mediaDescriptor":{{"storage":"webdav","path":"/recordings/{mid}"}}}}]}}"#,
        ts(start),
        ts(start + Duration::seconds(10)),
        ts(start),
        ts(start + Duration::seconds(10)),
        body.len()
    );
    ctx.media.put_bytes(&Key::media(id, &mid).unwrap(), body.into()).await.unwrap();
    ctx.catalog.upsert(&Recording::parse(&doc).unwrap()).unwrap();
    if screen {
        let sid = format!("{id}_scr");
        let smid = format!("{sid}.mp4");
        let sbody = media_bytes(&sid, size / 2 + 1);
        let sdoc = format!(
            r#"{{"id":"{sid}","callRecordingId":"{id}","startTime":"{}","stopTime":"{}","region":"us","mediaFiles":[{{"mediaId":"{smid}","type":"video/mp4","size":"{}"}}]}}"#,
            ts(start),
            ts(start + Duration::seconds(10)),
            sbody.len()
        );
        ctx.media.put_bytes(&Key::media(&sid, &smid).unwrap(), sbody.into()).await.unwrap();
        ctx.catalog.upsert(&Recording::parse(&sdoc).unwrap()).unwrap();
    }
}

/// Every media file of `id` is in the store, with the bytes `add_call` wrote.
pub async fn media_present(ctx: &Context, id: &str) -> Vec<bool> {
    let Some(e) = ctx.catalog.get(id).unwrap() else { return vec![] };
    let mut out = Vec::new();
    for m in &e.recording.media {
        out.push(ctx.media.head(&Key::media(id, &m.media_id).unwrap()).await.is_ok());
    }
    out
}

/// The store holds objects under `id/`.
pub async fn any_media_left(ctx: &Context, id: &str) -> bool {
    !ctx.media.list(Some(&Key::parse(id).unwrap())).await.unwrap().is_empty()
}

/// Audit lines for recording `id`.
pub fn audit_lines(data: &Path, id: &str) -> Vec<serde_json::Value> {
    let Ok(text) = std::fs::read_to_string(data.join("audit/deletions.jsonl")) else { return vec![] };
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["recording"] == id)
        .collect()
}

/// A node under `root`: `data/`, `backups/`, `rules/bp.toml` holding BACKUP_AND_PURGE, and a
/// config file `node.toml` pointing at them (plus `extra` lines). Returns (data, backups, config).
pub fn backup_and_purge_node(root: &Path, extra: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let data = root.join("data");
    let backups = root.join("backups");
    let rules = root.join("rules");
    write_rule(&rules, "bp.toml", BACKUP_AND_PURGE);
    let cfg = root.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "contact_center_id = \"cc1\"\nrules_dir = \"{}\"\ndefault_backup_location = \"file://{}\"\n{extra}",
            rules.display(),
            backups.display()
        ),
    )
    .unwrap();
    (data, backups, cfg)
}

pub fn write_rule(dir: &Path, file: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(file), text).unwrap();
}

pub const BACKUP_AND_PURGE: &str = r#"name = "Backup and purge"
enabled = true
schedule = "0 0 2 * * *"
[[tasks]]
type = "backup"
filter = { recording_type = "voice", min_age = 365 }
include_screen = true
zip = true
[[tasks]]
type = "purge"
filter = { recording_type = "voice", min_age = 365 }
include_screen = true
"#;

/// Waits (up to 2 minutes) for a process paused at a failpoint (`<point>:<n>:pause=<flag>`) to
/// reach it.
pub fn wait_reached(flag: &Path) {
    let reached = std::path::PathBuf::from(format!("{}.reached", flag.display()));
    let t = std::time::Instant::now();
    while !reached.exists() {
        assert!(t.elapsed() < std::time::Duration::from_secs(120), "the failpoint was never reached");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
