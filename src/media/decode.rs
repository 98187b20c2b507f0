//! Voice decoding: MP3 or WAV file in, planar `f32` PCM out, sample-accurate.
//!
//! Symphonia's MP3 reader reads the LAME/Xing tag and its decoder (gapless on) trims the encoder
//! delay, the decoder's 529-sample delay and the end padding, so sample 0 of the result is the
//! first sample the recorder captured. A file whose tag or header promises more audio than the
//! file holds is reported as truncated rather than silently shortened: a shortened segment would
//! still be placed correctly, but the user would lose speech without being told.

use std::fs::File;
use std::path::{Path, PathBuf};

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use super::MediaError;

/// Decoded voice: one `Vec` per channel (1 or 2), all the same length.
#[derive(Clone, Debug)]
pub struct DecodedVoice {
    pub path: PathBuf,
    pub sample_rate: u32,
    pub planes: Vec<Vec<f32>>,
}

impl DecodedVoice {
    pub fn frames(&self) -> usize {
        self.planes.first().map_or(0, Vec::len)
    }

    pub fn channels(&self) -> usize {
        self.planes.len()
    }
}

/// Decoded MP3 frames that may be missing at the end before we call the file truncated: the
/// Xing frame count of some encoders includes the tag frame or not.
const SLACK_FRAMES: u64 = 1;

/// Decode a whole MP3 or WAV voice file. More than two channels are mixed down to mono.
pub fn decode_voice(path: &Path) -> Result<DecodedVoice, MediaError> {
    let mut s = VoiceStream::open(path)?;
    let mut planes: Vec<Vec<f32>> = vec![Vec::new(); s.channels];
    while let Some(chunk) = s.next_chunk()? {
        for (dst, src) in planes.iter_mut().zip(chunk) {
            dst.extend(src);
        }
    }
    Ok(DecodedVoice { path: path.to_path_buf(), sample_rate: s.sample_rate, planes })
}

/// A voice file decoded a packet at a time (flat memory for any length), with the same checks
/// as [`decode_voice`]: truncation against the tag's or header's length, and a bound on corrupt
/// frames, reported when the stream ends. More than two channels are mixed down to mono.
pub struct VoiceStream {
    path: PathBuf,
    format: Box<dyn symphonia::core::formats::FormatReader>,
    decoder: Box<dyn symphonia::core::codecs::audio::AudioDecoder>,
    track_id: u32,
    pub sample_rate: u32,
    /// Output channels (1 or 2), known after the first packet; [`VoiceStream::open`] decodes it.
    pub channels: usize,
    expected: Option<u64>,
    max_per_packet: u64,
    decoded: u64,
    good: usize,
    bad: usize,
    scratch: Vec<Vec<f32>>,
    first: Option<Vec<Vec<f32>>>,
    done: bool,
}

impl VoiceStream {
    pub fn open(path: &Path) -> Result<VoiceStream, MediaError> {
        let bad = |reason: String| MediaError::Audio { path: path.to_path_buf(), reason };
        let file =
            File::open(path).map_err(|source| MediaError::Io { path: path.to_path_buf(), op: "open", source })?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| bad(format!("unrecognised format ({e})")))?;
        let track = format.default_track(TrackType::Audio).ok_or_else(|| bad("no audio track".into()))?;
        let params = track
            .codec_params
            .as_ref()
            .and_then(|p| p.audio())
            .ok_or_else(|| bad("audio track without codec parameters".into()))?
            .clone();
        let track_id = track.id;
        let expected = track.num_frames;
        let max_per_packet = params.max_frames_per_packet.unwrap_or(1152);
        let sample_rate = params.sample_rate.filter(|r| *r > 0).ok_or_else(|| bad("unknown sample rate".into()))?;
        let decoder = symphonia::default::get_codecs()
            .make_audio_decoder(&params, &AudioDecoderOptions::default().gapless(true))
            .map_err(|e| bad(format!("no decoder ({e})")))?;
        let mut s = VoiceStream {
            path: path.to_path_buf(),
            format,
            decoder,
            track_id,
            sample_rate,
            channels: 0,
            expected,
            max_per_packet,
            decoded: 0,
            good: 0,
            bad: 0,
            scratch: Vec::new(),
            first: None,
            done: false,
        };
        // The first chunk tells the channel count.
        s.first = s.next_chunk()?;
        if s.first.is_none() {
            return Err(bad("no decodable audio frames".into()));
        }
        Ok(s)
    }

    /// The next decoded chunk (planes of equal length), or `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<Vec<f32>>>, MediaError> {
        if let Some(f) = self.first.take() {
            return Ok(Some(f));
        }
        let path = self.path.clone();
        let bad = |reason: String| MediaError::Audio { path: path.clone(), reason };
        while !self.done {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(bad("truncated: the file ends inside an audio frame".into()));
                }
                Err(e) => return Err(bad(format!("reading packets: {e}"))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    self.good += 1;
                    buf.copy_to_vecs_planar::<f32>(&mut self.scratch);
                    let n = self.scratch.len();
                    if n == 0 {
                        continue;
                    }
                    let out = match n {
                        1 | 2 => self.scratch.clone(),
                        _ => vec![mix_down(&self.scratch, n)],
                    };
                    if self.channels == 0 {
                        self.channels = out.len();
                    } else if self.channels != out.len() {
                        return Err(bad("the channel count changes mid-stream".into()));
                    }
                    let len = out[0].len();
                    if len == 0 {
                        continue;
                    }
                    self.decoded += len as u64;
                    return Ok(Some(out));
                }
                Err(SymError::DecodeError(_)) => self.bad += 1,
                Err(e) => return Err(bad(format!("decoding: {e}"))),
            }
        }
        // The end: the checks that need the whole file.
        if self.good == 0 {
            return Err(bad("no decodable audio frames".into()));
        }
        if self.bad * 10 > self.good + self.bad {
            return Err(bad(format!("{} of {} frames are corrupt", self.bad, self.good + self.bad)));
        }
        if let Some(expected) = self.expected {
            if self.decoded + SLACK_FRAMES * self.max_per_packet < expected {
                return Err(bad(format!("truncated: {} of {expected} samples present", self.decoded)));
            }
        }
        Ok(None)
    }
}

fn mix_down(planes: &[Vec<f32>], n: usize) -> Vec<f32> {
    let len = planes[0].len();
    let scale = 1.0 / n as f32;
    (0..len).map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale).collect()
}
