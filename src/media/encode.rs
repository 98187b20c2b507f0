//! The audio track: PCM encoded with LAME into MP3 frames, or (fast path) MP3 frames copied from
//! a source file as they are. Either way the result is an [`AudioTrack`]: frames plus the number
//! of leading samples the decoder must drop (signalled to players by an MP4 edit list).

use std::ops::Range;
use std::path::{Path, PathBuf};

use mp3lame_encoder::{Bitrate, Builder, FlushGap, Mode, MonoPcm, Quality};

use super::mp3::{self, DECODER_DELAY};
use super::MediaError;

/// LAME 3.100's fixed encoder delay (`ENCDELAY`), for every rate and mode.
const LAME_ENCODER_DELAY: u32 = 576;

/// Where an [`AudioTrack`]'s frames are.
#[derive(Debug)]
pub enum FrameStore {
    /// In memory (the fast path's copied frames: a bounded file read whole).
    Memory { data: Vec<u8>, frames: Vec<Range<usize>> },
    /// In a file, the frames back to back, frame `i` of `lens[i]` bytes (the encoder's output,
    /// written as it is produced). Two bytes a frame is all that stays in memory: a frame's
    /// offset is the sum of the lengths before it, and the frames are only ever read in order.
    /// The file is removed when the track is dropped.
    File { path: tempfile::TempPath, lens: Vec<u16> },
}

/// MP3 frames ready to become MP4 samples.
#[derive(Debug)]
pub struct AudioTrack {
    pub store: FrameStore,
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

impl AudioTrack {
    pub fn frame_count(&self) -> usize {
        match &self.store {
            FrameStore::Memory { frames, .. } => frames.len(),
            FrameStore::File { lens, .. } => lens.len(),
        }
    }

    /// Bytes of frame `i` (`i < frame_count()`).
    pub fn frame_len(&self, i: usize) -> u32 {
        match &self.store {
            FrameStore::Memory { frames, .. } => frames[i].len() as u32,
            FrameStore::File { lens, .. } => u32::from(lens[i]),
        }
    }

    /// Bytes of MP3 frames.
    pub fn bytes(&self) -> u64 {
        match &self.store {
            FrameStore::Memory { frames, .. } => frames.iter().map(|r| r.len() as u64).sum(),
            FrameStore::File { lens, .. } => lens.iter().map(|&l| u64::from(l)).sum(),
        }
    }

    /// A reader of the frames, in order.
    pub fn reader(&self) -> std::io::Result<FrameReader<'_>> {
        let file = match &self.store {
            FrameStore::File { path, .. } => {
                Some(std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?))
            }
            FrameStore::Memory { .. } => None,
        };
        Ok(FrameReader { track: self, file, next: 0, buf: Vec::new() })
    }
}

/// Reads an [`AudioTrack`]'s frames one after the other, from the first.
pub struct FrameReader<'a> {
    track: &'a AudioTrack,
    file: Option<std::io::BufReader<std::fs::File>>,
    /// Index of the frame the next call returns.
    next: usize,
    buf: Vec<u8>,
}

impl FrameReader<'_> {
    /// The bytes of the next frame; `None` after the last one.
    pub fn next_frame(&mut self) -> std::io::Result<Option<&[u8]>> {
        let i = self.next;
        if i >= self.track.frame_count() {
            return Ok(None);
        }
        self.next += 1;
        match (&self.track.store, &mut self.file) {
            (FrameStore::Memory { data, frames }, _) => Ok(Some(&data[frames[i].clone()])),
            (FrameStore::File { lens, .. }, Some(f)) => {
                use std::io::Read;
                self.buf.resize(usize::from(lens[i]), 0);
                f.read_exact(&mut self.buf)?;
                Ok(Some(&self.buf))
            }
            (FrameStore::File { .. }, None) => Err(std::io::Error::other("frame file not open")),
        }
    }
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

fn fail(out: &Path, what: &str, e: &dyn std::fmt::Debug) -> MediaError {
    MediaError::Encode { path: out.to_path_buf(), reason: format!("{what}: {e:?}") }
}

/// A LAME encoder with the pipeline's settings.
fn lame(channels: u8, rate: u32, kbps: u32, out: &Path) -> Result<mp3lame_encoder::Encoder, MediaError> {
    let fail = |what: &str, e: &dyn std::fmt::Debug| fail(out, what, e);
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
    b.build().map_err(|e| fail("init", &e))
}

/// Encode planar PCM (one or two planes at `rate`, an MP4-legal MP3 rate) to MP3 at about
/// `kbps`, in memory. `out` names the file being produced, for errors.
pub fn encode(planes: &[Vec<f32>], rate: u32, kbps: u32, out: &Path) -> Result<AudioTrack, MediaError> {
    let fail = |what: &str, e: &dyn std::fmt::Debug| fail(out, what, e);
    let channels = planes.len().clamp(1, 2) as u8;
    let mut enc = lame(channels, rate, kbps, out)?;

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
        store: FrameStore::Memory { data, frames },
    })
}

/// LAME encoding as PCM arrives, its frames written to a file as they come out: memory stays
/// flat for any call length.
pub struct Streaming {
    enc: mp3lame_encoder::Encoder,
    out: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    path: tempfile::TempPath,
    /// Encoder output not yet split into frames.
    carry: Vec<u8>,
    lens: Vec<u16>,
    header: Option<mp3::FrameHeader>,
    samples: u64,
    channels: u8,
    kbps: u32,
}

impl Streaming {
    /// Encodes `channels` channels at `rate` into a temporary file (0600) in `dir`; `out` names
    /// the output being produced, for errors.
    pub fn new(channels: u8, rate: u32, kbps: u32, dir: &Path, out: &Path) -> Result<Streaming, MediaError> {
        let channels = channels.clamp(1, 2);
        let enc = lame(channels, rate, kbps, out)?;
        let (file, path) = tempfile::Builder::new()
            .prefix(".reclife-audio-")
            .suffix(".mp3")
            .tempfile_in(dir)
            .map_err(|source| MediaError::Io { path: dir.to_path_buf(), op: "create temporary file", source })?
            .into_parts();
        Ok(Streaming {
            enc,
            out: out.to_path_buf(),
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            path,
            carry: Vec::new(),
            lens: Vec::new(),
            header: None,
            samples: 0,
            channels,
            kbps,
        })
    }

    /// Encodes a block (one plane per channel).
    pub fn push(&mut self, planes: &[Vec<f32>]) -> Result<(), MediaError> {
        let n = planes.first().map_or(0, Vec::len);
        if n == 0 {
            return Ok(());
        }
        self.carry.reserve(mp3lame_encoder::max_required_buffer_size(n));
        let r = if self.channels == 1 {
            self.enc.encode_to_vec(MonoPcm(&planes[0]), &mut self.carry)
        } else {
            let right = planes.get(1).unwrap_or(&planes[0]);
            self.enc.encode_to_vec(mp3lame_encoder::DualPcm { left: &planes[0], right }, &mut self.carry)
        };
        r.map_err(|e| fail(&self.out, "encode", &e))?;
        self.samples += n as u64;
        self.frames()
    }

    /// Moves the whole frames of `carry` to the file.
    fn frames(&mut self) -> Result<(), MediaError> {
        use std::io::Write;
        let mut at = 0;
        while let Some(h) = mp3::parse_header(&self.carry[at..]) {
            if at + h.len > self.carry.len() {
                break;
            }
            self.header.get_or_insert(h);
            self.lens.push(h.len as u16);
            at += h.len;
        }
        if at > 0 {
            self.file.write_all(&self.carry[..at]).map_err(|source| MediaError::Io {
                path: self.path.to_path_buf(),
                op: "write",
                source,
            })?;
            self.carry.drain(..at);
        }
        Ok(())
    }

    /// Flushes the encoder; the track reads its frames from the file.
    pub fn finish(mut self) -> Result<AudioTrack, MediaError> {
        self.carry.reserve(7200);
        self.enc.flush_to_vec::<FlushGap>(&mut self.carry).map_err(|e| fail(&self.out, "flush", &e))?;
        self.frames()?;
        if !self.carry.is_empty() {
            return Err(fail(
                &self.out,
                "encode",
                &format!("{} bytes of output are not a whole frame", self.carry.len()),
            ));
        }
        let header = self.header.ok_or_else(|| fail(&self.out, "encode", &"no frames produced"))?;
        let path = self.path;
        // The lengths grew by doubling; what stays for the mux is the lengths themselves.
        self.lens.shrink_to_fit();
        self.file.into_inner().map_err(|e| MediaError::Io {
            path: path.to_path_buf(),
            op: "write",
            source: e.into_error(),
        })?;
        Ok(AudioTrack {
            sample_rate: header.sample_rate,
            channels: header.channels,
            frame_samples: header.samples,
            priming: LAME_ENCODER_DELAY + DECODER_DELAY,
            samples: self.samples,
            bitrate_kbps: self.kbps,
            store: FrameStore::File { path, lens: self.lens },
        })
    }
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
        store: FrameStore::Memory { data, frames },
    })
}
