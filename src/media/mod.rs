//! The media pipeline: one screen video plus the voice segments of its call in, one playable MP4
//! out.
//!
//! In: a [`ScreenVideo`] (H.264/any-codec MP4, plaintext) and the call's [`VoiceSegment`]s
//! (plaintext MP3 or WAV, mono or stereo, any sample rate), each with its metadata start time.
//! Out: an MP4 written atomically at `out`, `moov` before `mdat` (faststart), holding the screen
//! video stream copied packet for packet (never re-encoded) and one MP3 audio track.
//!
//! Guarantees:
//! - The output spans `min(first voice start, video start)` to `max(last voice end, video end)`;
//!   [`MuxReport::output_start`] is that first instant.
//! - Every voice segment starts at its metadata offset from the output start, to the sample
//!   (gapless MP3 decoding; the MP3 encoder delay is signalled with an edit list). Gaps are
//!   silence. Overlapping segments are mixed, with headroom (see [`timeline`]).
//! - Where the video starts later or ends earlier than the audio, the video track is padded with
//!   held frames (see [`mux`](crate::media::mux())), so every player shows a picture
//!   for the whole span.
//! - Bad input (truncated or garbage MP3/WAV/MP4) gives a [`MediaError`] naming the file; nothing
//!   panics on input.
//!
//! Timing sources: a segment's position comes from its metadata `start`; its length from the
//! decoded media itself (metadata `stop` is advisory: GIR writes it rounded, and the media is what
//! will be heard). The same holds for the screen video.

mod decode;
mod encode;
mod mp3;
mod mp4;
mod mux;
mod pipeline;
#[doc(hidden)]
pub mod reference;
mod resample;
pub mod timeline;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

pub use decode::{decode_voice, DecodedVoice};

/// The byte parsers of the pipeline that read untrusted files directly (the screen's MP4 boxes
/// up to its sample description; MP3 frame headers and the Xing/LAME tag of the fast path), run
/// over `data` as one would run them over a file. For the fuzz target `media_bytes` and
/// tests/hostile_corpus.rs: any answer but a panic, a hang or a huge allocation is fine.
#[doc(hidden)]
pub fn parse_untrusted(data: &[u8]) {
    for track in [1, 2] {
        let _ = mp4::video_sample_description(&mut std::io::Cursor::new(data), data.len() as u64, track);
    }
    let _ = mp4::sample_entry_type(data);
    let _ = encode::copy_frames(data.to_vec());
}

/// Why a mux failed. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Reading or writing a file failed at the OS level.
    #[error("{path}: {op}: {source}")]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A voice file is not decodable MP3/WAV audio (garbage, truncated header, unsupported codec).
    #[error("{path}: not decodable voice audio: {reason}")]
    Audio { path: PathBuf, reason: String },
    /// The screen file is not a usable video (not MP4, no video stream, truncated).
    #[error("{path}: not a usable screen video: {reason}")]
    Video { path: PathBuf, reason: String },
    /// Encoding the audio track failed (`path` is the output being written).
    #[error("{path}: encoding the audio track failed: {reason}")]
    Encode { path: PathBuf, reason: String },
    /// Writing the output container failed (`path` is the output being written).
    #[error("{path}: writing the muxed file failed: {reason}")]
    Mux { path: PathBuf, reason: String },
    /// The inputs cannot form a timeline (no voice segment, a span too long to hold).
    #[error("invalid timeline: {reason}")]
    Timeline { reason: String },
}

impl MediaError {
    /// The file this error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        match self {
            MediaError::Io { path, .. }
            | MediaError::Audio { path, .. }
            | MediaError::Video { path, .. }
            | MediaError::Encode { path, .. }
            | MediaError::Mux { path, .. } => Some(path),
            MediaError::Timeline { .. } => None,
        }
    }

    /// True when the inputs themselves are bad (retrying the same files cannot help), as opposed
    /// to an I/O or encoder failure that may be temporary.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, MediaError::Audio { .. } | MediaError::Video { .. } | MediaError::Timeline { .. })
    }
}

/// One decrypted voice file of the call, with its metadata times.
#[derive(Clone, Debug)]
pub struct VoiceSegment {
    pub path: PathBuf,
    pub start: DateTime<Utc>,
    /// Advisory: the decoded length decides where the segment ends.
    pub stop: Option<DateTime<Utc>>,
}

/// The (decrypted) screen recording, with its metadata times.
#[derive(Clone, Debug)]
pub struct ScreenVideo {
    pub path: PathBuf,
    pub start: DateTime<Utc>,
    /// Advisory: the video's own duration decides where it ends.
    pub stop: Option<DateTime<Utc>>,
}

/// Tuning, named after GIR's `[advanced]` muxer options where one exists.
#[derive(Clone, Debug)]
pub struct MuxOptions {
    /// GIR `max_overlap_allowed` (milliseconds). In GIR it decides when the fill of an earlier
    /// mux is truncated for a newly arrived recording; reclife re-muxes from every recording, so
    /// fill never covers one and overlapping recordings are always mixed (see [`timeline`]).
    pub max_overlap_allowed_ms: u64,
    /// GIR `video_padding_slice_length_ms`: where the video starts after the audio, the held first
    /// frame is repeated as a sync sample every this many milliseconds of the lead-in.
    pub video_padding_slice_length_ms: u64,
    /// MP3 bitrate of a re-encoded audio track (per file, not per channel).
    pub audio_bitrate_kbps: u32,
    /// Where the temporary output is written before the atomic rename; default: beside `out`.
    pub temp_dir: Option<PathBuf>,
    /// Longest output span accepted, checked on the metadata times before any path is chosen
    /// (a start time off by a year would otherwise fill the disk with held frames).
    pub max_span_ms: u64,
    /// Sync the output to disk before and after its rename (the default). The muxer turns it off:
    /// its output is a scratch file that it seals or stores durably afterwards.
    pub durable: bool,
}

impl Default for MuxOptions {
    fn default() -> Self {
        MuxOptions {
            max_overlap_allowed_ms: 0,
            video_padding_slice_length_ms: 5000,
            audio_bitrate_kbps: 32,
            temp_dir: None,
            max_span_ms: 4 * 3600 * 1000,
            durable: true,
        }
    }
}

/// What a successful mux produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MuxReport {
    /// The instant the output's time zero stands for.
    pub output_start: DateTime<Utc>,
    pub duration_ms: u64,
    /// False when the single MP3 segment's frames were copied as they are (the fast path).
    pub audio_reencoded: bool,
    /// Size of the written file.
    pub bytes: u64,
}

/// Mux `screen` with `voices` into an MP4 at `out`.
///
/// CPU-bound and blocking: call it from a rayon pool or `spawn_blocking`. Writes `out`
/// atomically (temporary file, fsync, rename): a failed or interrupted mux leaves no partial
/// file at `out`.
pub fn mux(
    screen: &ScreenVideo,
    voices: &[VoiceSegment],
    out: &Path,
    opts: &MuxOptions,
) -> Result<MuxReport, MediaError> {
    pipeline::run(screen, voices, out, opts)
}
