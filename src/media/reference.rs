//! The cost yardstick of the benchmark's CPU target: one stream-copy remux of a screen video and
//! one LAME encode of a call's audio, done in-process with the same settings as [`mux`](super::mux).
//! Not part of the pipeline; public (hidden) only so `benches/` can time it.

use std::path::Path;

use super::encode;
use super::mux::{self, Screen};
use super::{MediaError, MuxOptions};

/// Remux `screen` into `out` as MP4 (moov first), copying the video stream, with a one-frame
/// silent MP3 track (the container work of a mux without its audio).
pub fn remux_copy(screen: &Path, out: &Path) -> Result<(), MediaError> {
    let video = Screen::open(screen)?;
    let silence = encode::encode(&[vec![0f32; 576]], 16000, 32, out)?;
    let total = video.duration_us;
    mux::write(video, 0, total, &silence, out, out, &MuxOptions::default())
}

/// LAME-encode mono `pcm` at `rate` Hz with the pipeline's settings; returns the MP3 size.
pub fn lame_encode(pcm: Vec<f32>, rate: u32, kbps: u32) -> Result<usize, MediaError> {
    Ok(encode::encode(&[pcm], rate, kbps, Path::new("<reference>"))?.bytes() as usize)
}
