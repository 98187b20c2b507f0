//! One mux, start to finish: probe the video, choose the fast path or decode → resample →
//! timeline → encode, write the container to a temporary file, publish it atomically.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::decode::decode_voice;
use super::encode::{self, AudioTrack};
use super::mux::{self, Screen};
use super::resample::Resampler;
use super::timeline;
use super::{MediaError, MuxOptions, MuxReport, ScreenVideo, VoiceSegment};

/// Longest output accepted; a longer span means a wrong timestamp, not a real call. It also
/// bounds memory: the timeline is rendered whole (4 h of 16 kHz mono is 920 MB of f32).
const MAX_SPAN_US: i64 = 4 * 3600 * 1_000_000;

fn us_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_microseconds().unwrap_or(i64::MAX)
}

/// Saturating: a bogus duration in a file must not overflow the clock (the span check rejects it).
fn plus_us(t: DateTime<Utc>, us: i64) -> DateTime<Utc> {
    t.checked_add_signed(chrono::Duration::microseconds(us)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The MP4-legal MP3 rate a voice at `rate` Hz is encoded at. 8 kHz (MPEG-2.5, which MP4
/// forbids) doubles to 16 kHz; rates above 24 kHz halve where they can: voice has nothing above
/// 8 kHz, and 24 kHz already carries 12.
pub fn output_rate(rate: u32) -> u32 {
    match rate {
        0..=8000 => 16000,
        8001..=11025 => 22050,
        11026..=12000 => 24000,
        12001..=16000 => 16000,
        16001..=22050 => 22050,
        22051..=24000 => 24000,
        32000 => 16000,
        44100 => 22050,
        _ => 24000,
    }
}

pub fn run(
    screen: &ScreenVideo,
    voices: &[VoiceSegment],
    out: &Path,
    opts: &MuxOptions,
) -> Result<MuxReport, MediaError> {
    if voices.is_empty() {
        return Err(MediaError::Timeline { reason: format!("no voice segment for {}", screen.path.display()) });
    }
    let video = Screen::open(&screen.path)?;
    let video_end = plus_us(screen.start, video.duration_us);
    check_span(screen, video_end, voices, opts)?;

    let (audio, output_start, output_end, reencoded) = match fast_path(screen.start, voices)? {
        Some(track) => {
            let voice_end = plus_us(voices[0].start, (track.samples as i64) * 1_000_000 / i64::from(track.sample_rate));
            (track, voices[0].start, voice_end.max(video_end), false)
        }
        None => {
            let (track, start, end) = reencode(screen.start, video_end, voices, out, opts)?;
            (track, start, end, true)
        }
    };
    let total_us = us_between(output_start, output_end);
    let video_offset_us = us_between(output_start, screen.start);

    let dir = match &opts.temp_dir {
        Some(d) => d.clone(),
        None => out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
    };
    let io = |path: &Path, op: &'static str| {
        let path = path.to_path_buf();
        move |source| MediaError::Io { path, op, source }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".reclife-mux-")
        .suffix(".mp4")
        .tempfile_in(&dir)
        .map_err(io(&dir, "create temporary file"))?;
    mux::write(video, video_offset_us, total_us, &audio, tmp.path(), out, opts)?;
    File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(io(tmp.path(), "fsync"))?;
    publish(tmp, out)?;
    let bytes = std::fs::metadata(out).map_err(io(out, "stat"))?.len();
    Ok(MuxReport { output_start, duration_ms: (total_us.max(0) / 1000) as u64, audio_reencoded: reencoded, bytes })
}

/// Rename into place (copying first when the temporary directory is on another file system),
/// then fsync the directory so the rename survives a crash.
fn publish(tmp: tempfile::NamedTempFile, out: &Path) -> Result<(), MediaError> {
    let io = |path: &Path, op: &'static str| {
        let path = path.to_path_buf();
        move |source| MediaError::Io { path, op, source }
    };
    let parent: PathBuf = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
    match tmp.persist(out) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => {
            let tmp = e.file;
            let local = tempfile::Builder::new()
                .prefix(".reclife-mux-")
                .tempfile_in(&parent)
                .map_err(io(&parent, "create temporary file"))?;
            std::fs::copy(tmp.path(), local.path()).map_err(io(local.path(), "copy"))?;
            File::open(local.path()).and_then(|f| f.sync_all()).map_err(io(local.path(), "fsync"))?;
            local.persist(out).map_err(|e| MediaError::Io {
                path: out.to_path_buf(),
                op: "rename",
                source: e.error,
            })?;
        }
        Err(e) => return Err(MediaError::Io { path: out.to_path_buf(), op: "rename", source: e.error }),
    }
    File::open(&parent).and_then(|d| d.sync_all()).map_err(io(&parent, "fsync directory"))?;
    Ok(())
}

/// Largest voice file read whole by the fast path (larger ones are far beyond any 4-hour call).
const MAX_VOICE_BYTES: u64 = 512 << 20;

/// The span the metadata times promise (video, and every voice from its start to its stop)
/// must fit `max_span_ms`, before either path does any work.
fn check_span(
    screen: &ScreenVideo,
    video_end: DateTime<Utc>,
    voices: &[VoiceSegment],
    opts: &MuxOptions,
) -> Result<(), MediaError> {
    let start = voices.iter().map(|v| v.start).fold(screen.start, DateTime::min);
    let end = voices.iter().map(|v| v.stop.unwrap_or(v.start)).fold(video_end, DateTime::max);
    let span_us = us_between(start, end);
    let max_us = i64::try_from(opts.max_span_ms.saturating_mul(1000)).unwrap_or(i64::MAX).min(MAX_SPAN_US);
    if span_us > max_us {
        return Err(MediaError::Timeline {
            reason: format!(
                "span {start} .. {end} is longer than {} minutes (max_span): a voice or screen start time is wrong",
                max_us / 60_000_000
            ),
        });
    }
    Ok(())
}

/// The fast path: one MP3 segment, MP4-legal rate, exact gapless timing, starting no later than
/// the video (so the audio track starts the output and nothing has to be filled before it; a
/// track that ends before the video simply ends, which players treat as silence).
fn fast_path(video_start: DateTime<Utc>, voices: &[VoiceSegment]) -> Result<Option<AudioTrack>, MediaError> {
    let [voice] = voices else { return Ok(None) };
    if voice.start > video_start {
        return Ok(None);
    }
    let size = std::fs::metadata(&voice.path)
        .map_err(|source| MediaError::Io { path: voice.path.clone(), op: "read", source })?
        .len();
    if size > MAX_VOICE_BYTES {
        return Err(MediaError::Timeline {
            reason: format!("{}: {size} bytes of voice is more than any call holds", voice.path.display()),
        });
    }
    let data =
        std::fs::read(&voice.path).map_err(|source| MediaError::Io { path: voice.path.clone(), op: "read", source })?;
    if data.starts_with(b"RIFF") {
        return Ok(None);
    }
    Ok(encode::copy_frames(data))
}

/// Decode every segment, resample to one rate, lay them on the timeline and encode.
fn reencode(
    video_start: DateTime<Utc>,
    video_end: DateTime<Utc>,
    voices: &[VoiceSegment],
    out: &Path,
    opts: &MuxOptions,
) -> Result<(AudioTrack, DateTime<Utc>, DateTime<Utc>), MediaError> {
    let decoded = voices.iter().map(|v| decode_voice(&v.path)).collect::<Result<Vec<_>, _>>()?;
    let rate = decoded.iter().map(|d| output_rate(d.sample_rate)).max().unwrap_or(16000);
    let channels = decoded.iter().map(|d| d.channels()).max().unwrap_or(1).clamp(1, 2);

    let mut start = video_start;
    let mut end = video_end;
    for (v, d) in voices.iter().zip(&decoded) {
        start = start.min(v.start);
        let len_us = d.frames() as i64 * 1_000_000 / i64::from(d.sample_rate);
        if let Some(stop) = v.stop {
            let meta_us = us_between(v.start, stop);
            if (meta_us - len_us).abs() > 2_000_000 {
                tracing::warn!(
                    file = %v.path.display(),
                    metadata_ms = meta_us / 1000,
                    decoded_ms = len_us / 1000,
                    "voice length differs from its metadata; placed by start time, decoded length kept"
                );
            }
        }
        end = end.max(plus_us(v.start, len_us));
    }
    let span = us_between(start, end);
    if span > MAX_SPAN_US {
        return Err(MediaError::Timeline {
            reason: format!("span {start} .. {end} is longer than 4 hours: a voice or screen start time is wrong"),
        });
    }
    let to_samples = |us: i64| (i128::from(us) * i128::from(rate) + 500_000).div_euclid(1_000_000) as u64;
    let total = to_samples(span);

    let mut planes = Vec::with_capacity(decoded.len());
    let mut segments = Vec::with_capacity(decoded.len());
    for (v, d) in voices.iter().zip(decoded) {
        let r = Resampler::new(d.sample_rate, rate);
        let p: Vec<Vec<f32>> = d.planes.iter().map(|c| r.process(c)).collect();
        segments.push((to_samples(us_between(start, v.start)), p.first().map_or(0, Vec::len) as u64));
        planes.push(p);
    }
    let plan = timeline::plan(&segments);
    let pcm = timeline::render(&plan, &planes, channels, total);
    drop(planes);
    let track = encode::encode(&pcm, rate, opts.audio_bitrate_kbps, out)?;
    Ok((track, start, end))
}

#[cfg(test)]
mod tests {
    #[test]
    fn output_rates_are_mp4_legal_mp3_rates() {
        use super::output_rate;
        assert_eq!(
            [8000, 11025, 12000, 16000, 22050, 24000].map(output_rate),
            [16000, 22050, 24000, 16000, 22050, 24000]
        );
        assert_eq!([32000, 44100, 48000, 96000].map(output_rate), [16000, 22050, 24000, 24000]);
    }
}
