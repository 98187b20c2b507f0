//! The audio track: PCM encoded with LAME into MP3 frames, or (fast path) MP3 frames copied from
//! a source file as they are. Either way the result is an [`AudioTrack`]: frames plus the number
//! of leading samples the decoder must drop (signalled to players by an MP4 edit list).

use std::ops::Range;
use std::path::Path;

use mp3lame_encoder::{Bitrate, Builder, FlushGap, Mode, MonoPcm, Quality};

use super::mp3::{self, DECODER_DELAY};
use super::MediaError;

/// LAME 3.100's fixed encoder delay (`ENCDELAY`), for every rate and mode.
const LAME_ENCODER_DELAY: u32 = 576;

/// MP3 frames ready to become MP4 samples.
#[derive(Debug)]
pub struct AudioTrack {
    pub data: Vec<u8>,
    pub frames: Vec<Range<usize>>,
    pub sample_rate: u32,
    pub channels: u8,
    /// PCM samples per channel per frame.
    pub frame_samples: u32,
    /// Decoded samples before the first real one (encoder + decoder delay): the first frame's
    /// timestamp is minus this, so that the edit list hides them.
    pub priming: u32,
    /// Real samples (what the track must play before its padding).
    pub samples: u64,
    pub bitrate_kbps: u32,
}

fn lame_bitrate(kbps: u32, rate: u32) -> Bitrate {
    // MPEG-2 rates (16-24 kHz) allow 8..160 kbps, MPEG-1 32..320.
    let (lo, hi) = if rate < 32000 { (8, 160) } else { (32, 320) };
    match kbps.clamp(lo, hi) {
        0..=11 => Bitrate::Kbps8,
        12..=19 => Bitrate::Kbps16,
        20..=27 => Bitrate::Kbps24,
        28..=35 => Bitrate::Kbps32,
        36..=43 => Bitrate::Kbps40,
        44..=55 => Bitrate::Kbps48,
        56..=71 => Bitrate::Kbps64,
        72..=87 => Bitrate::Kbps80,
        88..=103 => Bitrate::Kbps96,
        104..=119 => Bitrate::Kbps112,
        120..=143 => Bitrate::Kbps128,
        144..=175 => Bitrate::Kbps160,
        176..=207 => Bitrate::Kbps192,
        208..=239 => Bitrate::Kbps224,
        240..=287 => Bitrate::Kbps256,
        _ => Bitrate::Kbps320,
    }
}

/// Encode planar PCM (one or two planes at `rate`, an MP4-legal MP3 rate) to MP3 at about
/// `kbps`. `out` names the file being produced, for errors.
pub fn encode(planes: &[Vec<f32>], rate: u32, kbps: u32, out: &Path) -> Result<AudioTrack, MediaError> {
    let fail = |what: &str, e: &dyn std::fmt::Debug| MediaError::Encode {
        path: out.to_path_buf(),
        reason: format!("{what}: {e:?}"),
    };
    let channels = planes.len().clamp(1, 2) as u8;
    let mut b = Builder::new().ok_or_else(|| fail("LAME", &"cannot allocate an encoder"))?;
    b.set_num_channels(channels).map_err(|e| fail("channels", &e))?;
    b.set_sample_rate(rate).map_err(|e| fail("sample rate", &e))?;
    b.set_output_sample_rate(std::num::NonZeroU32::new(rate)).map_err(|e| fail("output rate", &e))?;
    b.set_brate(lame_bitrate(kbps, rate)).map_err(|e| fail("bitrate", &e))?;
    b.set_mode(if channels == 1 { Mode::Mono } else { Mode::JointStereo }).map_err(|e| fail("mode", &e))?;
    // q=7: LAME's fast mode. Voice at 32 kbps gains nothing audible from the slower
    // psychoacoustic search, and the encode is the bulk of a long call's CPU.
    b.set_quality(Quality::Ok).map_err(|e| fail("quality", &e))?;
    // The Xing/LAME tag would be a silent frame inside MP4; the edit list carries the delay.
    b.set_to_write_vbr_tag(false).map_err(|e| fail("tag", &e))?;
    let mut enc = b.build().map_err(|e| fail("init", &e))?;

    let total = planes.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(total / 4 + 8192);
    const CHUNK: usize = 1 << 16;
    let mut at = 0;
    while at < total {
        let end = (at + CHUNK).min(total);
        data.reserve(mp3lame_encoder::max_required_buffer_size(end - at));
        let r = if channels == 1 {
            enc.encode_to_vec(MonoPcm(&planes[0][at..end]), &mut data)
        } else {
            enc.encode_to_vec(
                mp3lame_encoder::DualPcm { left: &planes[0][at..end], right: &planes[1][at..end] },
                &mut data,
            )
        };
        r.map_err(|e| fail("encode", &e))?;
        at = end;
    }
    data.reserve(7200);
    enc.flush_to_vec::<FlushGap>(&mut data).map_err(|e| fail("flush", &e))?;
    let split = mp3::split(&data);
    let header = split.header.ok_or_else(|| fail("encode", &"no frames produced"))?;
    let frames = ranges(&data, &split.frames);
    Ok(AudioTrack {
        sample_rate: header.sample_rate,
        channels: header.channels,
        frame_samples: header.samples,
        priming: LAME_ENCODER_DELAY + DECODER_DELAY,
        samples: total as u64,
        bitrate_kbps: kbps,
        frames,
        data,
    })
}

fn ranges(data: &[u8], frames: &[&[u8]]) -> Vec<Range<usize>> {
    let base = data.as_ptr() as usize;
    frames.iter().map(|f| (f.as_ptr() as usize - base)..(f.as_ptr() as usize - base + f.len())).collect()
}

/// The fast path: an MP3 file whose frames can go into MP4 as they are. `None` when the file
/// does not qualify (MPEG-2.5 rate, no gapless tag to time it exactly, mixed or damaged frames);
/// the caller then decodes and re-encodes.
pub fn copy_frames(data: Vec<u8>) -> Option<AudioTrack> {
    let split = mp3::split(&data);
    let header = split.header?;
    let tag = split.tag?;
    if !header.mp4_legal || split.mixed || split.truncated || split.skipped > 0 {
        return None;
    }
    if let Some(n) = tag.frames {
        if n as usize != split.frames.len() {
            return None;
        }
    }
    let coded = split.frames.len() as u64 * u64::from(header.samples);
    let samples = coded.checked_sub(u64::from(tag.enc_delay) + u64::from(tag.enc_padding))?;
    let bytes: usize = split.frames.iter().map(|f| f.len()).sum();
    let seconds = coded as f64 / f64::from(header.sample_rate);
    let kbps = (bytes as f64 * 8.0 / seconds / 1000.0).round() as u32;
    let frames = ranges(&data, &split.frames);
    Some(AudioTrack {
        sample_rate: header.sample_rate,
        channels: header.channels,
        frame_samples: header.samples,
        priming: tag.enc_delay + DECODER_DELAY,
        samples,
        bitrate_kbps: kbps,
        frames,
        data,
    })
}
