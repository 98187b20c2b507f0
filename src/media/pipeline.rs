//! One mux, start to finish: probe the video, choose the fast path or decode → resample →
//! timeline → encode, write the container to a temporary file, publish it atomically.

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::decode::VoiceStream;
use super::encode::{self, AudioTrack};
use super::mux::{self, Screen};
use super::resample::Streaming;
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
    if opts.durable {
        File::open(tmp.path()).and_then(|f| f.sync_all()).map_err(io(tmp.path(), "fsync"))?;
    }
    publish(tmp, out, opts.durable)?;
    let bytes = std::fs::metadata(out).map_err(io(out, "stat"))?.len();
    Ok(MuxReport { output_start, duration_ms: (total_us.max(0) / 1000) as u64, audio_reencoded: reencoded, bytes })
}

/// Rename into place (copying first when the temporary directory is on another file system),
/// then (when `durable`) fsync the directory so the rename survives a crash.
fn publish(tmp: tempfile::NamedTempFile, out: &Path, durable: bool) -> Result<(), MediaError> {
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
            if durable {
                File::open(local.path()).and_then(|f| f.sync_all()).map_err(io(local.path(), "fsync"))?;
            }
            local.persist(out).map_err(|e| MediaError::Io {
                path: out.to_path_buf(),
                op: "rename",
                source: e.error,
            })?;
        }
        Err(e) => return Err(MediaError::Io { path: out.to_path_buf(), op: "rename", source: e.error }),
    }
    if durable {
        File::open(&parent).and_then(|d| d.sync_all()).map_err(io(&parent, "fsync directory"))?;
    }
    Ok(())
}

/// Largest voice file accepted (larger ones are far beyond any 4-hour call).
const MAX_VOICE_BYTES: u64 = 512 << 20;

/// Largest voice file the fast path reads whole: about 70 minutes of 32 kbps voice.
const FAST_PATH_MAX_BYTES: u64 = 16 << 20;

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
    // The fast path reads the file whole; a longer call streams through the re-encode instead,
    // so memory stays flat for any call length.
    if size > FAST_PATH_MAX_BYTES {
        return Ok(None);
    }
    let data =
        std::fs::read(&voice.path).map_err(|source| MediaError::Io { path: voice.path.clone(), op: "read", source })?;
    if data.starts_with(b"RIFF") {
        return Ok(None);
    }
    Ok(encode::copy_frames(data))
}

/// Output samples rendered and encoded at a time.
const BLOCK: usize = 16_384;

/// Longest stretch of overlapping segments held back to find its peak (seconds): a longer one is
/// split there, each part with its own gain.
const MAX_STRETCH_S: u64 = 10;

/// One voice segment being streamed onto the timeline.
struct Seg {
    stream: VoiceStream,
    rs: Streaming,
    /// Output sample where the segment starts.
    start: u64,
    /// Resampled samples not yet placed; `pending[c][0]` is output sample `next`.
    pending: Vec<Vec<f32>>,
    next: u64,
    ended: bool,
    path: std::path::PathBuf,
    /// Decoded input samples, for the length check.
    decoded: u64,
    in_rate: u32,
}

impl Seg {
    /// Resampled output is available up to at least `until` (or the segment has ended).
    fn fill(&mut self, until: u64) -> Result<(), MediaError> {
        while !self.ended && self.next + self.pending[0].len() as u64 <= until {
            let more = match self.stream.next_chunk()? {
                Some(chunk) => {
                    self.decoded += chunk.first().map_or(0, Vec::len) as u64;
                    self.rs.push(&chunk)
                }
                None => {
                    self.ended = true;
                    self.rs.finish()
                }
            };
            for (p, m) in self.pending.iter_mut().zip(more) {
                p.extend(m);
            }
        }
        Ok(())
    }

    fn end(&self) -> u64 {
        self.next + self.pending[0].len() as u64
    }
}

/// Decode, resample, lay on the timeline and encode, a block at a time: memory stays flat for
/// any call length (the frames go to a file beside the output). Overlapping segments are mixed
/// (see [`timeline`]); each stretch where two or more sound together gets one gain, 1 or
/// 1/peak, found by holding the stretch back (at most [`MAX_STRETCH_S`] seconds).
fn reencode(
    video_start: DateTime<Utc>,
    video_end: DateTime<Utc>,
    voices: &[VoiceSegment],
    out: &Path,
    opts: &MuxOptions,
) -> Result<(AudioTrack, DateTime<Utc>, DateTime<Utc>), MediaError> {
    let streams = voices.iter().map(|v| VoiceStream::open(&v.path)).collect::<Result<Vec<_>, _>>()?;
    let rate = streams.iter().map(|d| output_rate(d.sample_rate)).max().unwrap_or(16000);
    let channels = streams.iter().map(|d| d.channels).max().unwrap_or(1).clamp(1, 2);
    let start = voices.iter().map(|v| v.start).fold(video_start, DateTime::min);
    let to_samples = |us: i64| (i128::from(us) * i128::from(rate) + 500_000).div_euclid(1_000_000) as u64;
    let video_len = to_samples(us_between(start, video_end));
    let max_len = to_samples(MAX_SPAN_US);
    let mut segs: Vec<Seg> = voices
        .iter()
        .zip(streams)
        .map(|(v, stream)| {
            let start = to_samples(us_between(start, v.start));
            Seg {
                rs: Streaming::new(stream.sample_rate, rate, stream.channels),
                in_rate: stream.sample_rate,
                pending: vec![Vec::new(); stream.channels],
                stream,
                start,
                next: start,
                ended: false,
                path: v.path.clone(),
                decoded: 0,
            }
        })
        .collect();
    segs.sort_by_key(|s| s.start);

    let dir = opts
        .temp_dir
        .clone()
        .or_else(|| out.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf))
        .unwrap_or_else(|| Path::new(".").to_path_buf());
    let mut enc = encode::Streaming::new(channels as u8, rate, opts.audio_bitrate_kbps, &dir, out)?;

    let stretch_cap = MAX_STRETCH_S * u64::from(rate);
    // Rendered samples not yet encoded, from output sample `held_from` on.
    let mut held: Vec<Vec<f32>> = vec![Vec::new(); channels];
    let mut held_from = 0u64;
    // Closed overlap stretches within `held`, and the start of one still open at its end.
    let mut stretches: Vec<(u64, u64)> = Vec::new();
    let mut open: Option<u64> = None;
    let mut t = 0u64;
    let end = loop {
        let t1 = t + BLOCK as u64;
        let mut block = vec![vec![0f32; BLOCK]; channels];
        let mut cover: Vec<timeline::Placement> = Vec::new();
        for s in segs.iter_mut().filter(|s| s.start < t1) {
            s.fill(t1)?;
            let (a, b) = (s.next.max(t), s.end().min(t1));
            if a >= b {
                continue;
            }
            let (skip, n) = ((a - s.next) as usize, (b - a) as usize);
            let at = (a - t) as usize;
            for (c, dst) in block.iter_mut().enumerate() {
                let src = &s.pending[c.min(s.pending.len() - 1)][skip..skip + n];
                for (d, x) in dst[at..at + n].iter_mut().zip(src) {
                    *d += x;
                }
            }
            cover.push(timeline::Placement { index: cover.len(), start: a, len: b - a });
            let used = (b - s.next) as usize;
            for p in &mut s.pending {
                p.drain(..used.min(p.len()));
            }
            s.next = b;
        }
        // Overlap stretches: this block's, joined to one left open at the previous block's end.
        let mut edges = timeline::overlaps(&cover);
        if let Some(from) = open.take() {
            match edges.first_mut() {
                Some(e) if e.0 == t => e.0 = from,
                _ => stretches.push((from, t)),
            }
        }
        if let Some(&(a, b)) = edges.last() {
            if b == t1 {
                edges.pop();
                // A long stretch is cut here; each part gets its own gain.
                if t1 - a >= stretch_cap {
                    stretches.push((a, t1));
                    open = Some(t1);
                } else {
                    open = Some(a);
                }
            }
        }
        stretches.extend(edges);
        for (h, b) in held.iter_mut().zip(&block) {
            h.extend_from_slice(b);
        }
        t = t1;
        let ended = segs.iter().all(|s| s.ended && s.pending[0].is_empty());
        // The timeline ends at the last voice sample or the video's end, whichever is later.
        let end = ended.then(|| segs.iter().map(|s| s.next).max().unwrap_or(0).max(video_len));
        if end.is_some_and(|e| e <= t) {
            if let Some(from) = open.take() {
                stretches.push((from, t));
            }
        }
        // Everything before an open stretch is final: its stretches get their gains and it is
        // encoded (never past the end).
        let upto = open.unwrap_or(t).min(end.unwrap_or(u64::MAX));
        if upto > held_from {
            flush(&mut held, &mut held_from, &mut stretches, upto, &mut enc)?;
        }
        if let Some(e) = end.filter(|e| *e <= t) {
            break e;
        }
        if t > max_len {
            return Err(MediaError::Timeline {
                reason: format!(
                    "the audio runs past {} hours: a voice start time is wrong",
                    MAX_SPAN_US / 3_600_000_000
                ),
            });
        }
    };
    for s in &segs {
        let len_us = s.decoded as i64 * 1_000_000 / i64::from(s.in_rate.max(1));
        if let Some(v) = voices.iter().find(|v| v.path == s.path) {
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
        }
    }
    let track = enc.finish()?;
    let stop = plus_us(start, (i128::from(end) * 1_000_000 / i128::from(rate)) as i64);
    Ok((track, start, stop.max(video_end)))
}

/// Gives the closed stretches in `held` their gains (1, or 1/peak where the sum leaves ±1),
/// clamps, and encodes `held` up to output sample `upto`.
fn flush(
    held: &mut [Vec<f32>],
    held_from: &mut u64,
    stretches: &mut Vec<(u64, u64)>,
    upto: u64,
    enc: &mut encode::Streaming,
) -> Result<(), MediaError> {
    for &(a, b) in stretches.iter().filter(|(a, b)| a < b) {
        let (a, b) = ((a - *held_from) as usize, (b - *held_from) as usize);
        let peak = held.iter().flat_map(|p| p[a..b].iter()).fold(0f32, |m, x| m.max(x.abs()));
        if peak > 1.0 {
            let g = 1.0 / peak;
            for p in held.iter_mut() {
                p[a..b].iter_mut().for_each(|x| *x *= g);
            }
        }
    }
    stretches.retain(|&(_, b)| b > upto);
    let n = (upto - *held_from) as usize;
    let ready: Vec<Vec<f32>> =
        held.iter_mut().map(|p| p.drain(..n.min(p.len())).map(|x| x.clamp(-1.0, 1.0)).collect()).collect();
    *held_from = upto;
    enc.push(&ready)
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
