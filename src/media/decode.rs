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
    let bad = |reason: String| MediaError::Audio { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(|source| MediaError::Io { path: path.to_path_buf(), op: "open", source })?;
    let mss = MediaSourceStream::new(Box::new(file), Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let mut format = symphonia::default::get_probe()
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
    let expected_frames = track.num_frames;
    let max_per_packet = params.max_frames_per_packet.unwrap_or(1152);
    let sample_rate = params.sample_rate.filter(|r| *r > 0).ok_or_else(|| bad("unknown sample rate".into()))?;
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default().gapless(true))
        .map_err(|e| bad(format!("no decoder ({e})")))?;

    let mut planes: Vec<Vec<f32>> = Vec::new();
    let mut scratch: Vec<Vec<f32>> = Vec::new();
    let mut bad_packets = 0usize;
    let mut good_packets = 0usize;
    loop {
        let packet = match format.next_packet() {
            Ok(Some(p)) => p,
            Ok(None) => break,
            // A frame cut off by the end of the file.
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(bad("truncated: the file ends inside an audio frame".into()));
            }
            Err(e) => return Err(bad(format!("reading packets: {e}"))),
        };
        if packet.track_id != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buf) => {
                good_packets += 1;
                buf.copy_to_vecs_planar::<f32>(&mut scratch);
                if planes.is_empty() {
                    planes = vec![Vec::new(); scratch.len()];
                }
                if scratch.len() != planes.len() {
                    return Err(bad("the channel count changes mid-stream".into()));
                }
                for (dst, src) in planes.iter_mut().zip(&scratch) {
                    dst.extend_from_slice(src);
                }
            }
            // A corrupt frame: tolerated once in a while (real recordings have the odd glitch),
            // not when most of the file is garbage.
            Err(SymError::DecodeError(_)) => bad_packets += 1,
            Err(e) => return Err(bad(format!("decoding: {e}"))),
        }
    }
    if good_packets == 0 {
        return Err(bad("no decodable audio frames".into()));
    }
    if bad_packets * 10 > good_packets + bad_packets {
        return Err(bad(format!("{bad_packets} of {} frames are corrupt", good_packets + bad_packets)));
    }
    let decoded = planes.first().map_or(0, Vec::len) as u64;
    if let Some(expected) = expected_frames {
        if decoded + SLACK_FRAMES * max_per_packet < expected {
            return Err(bad(format!("truncated: {decoded} of {expected} samples present")));
        }
    }
    let planes = match planes.len() {
        1 | 2 => planes,
        0 => return Err(bad("no audio channels".into())),
        n => vec![mix_down(&planes, n)],
    };
    Ok(DecodedVoice { path: path.to_path_buf(), sample_rate, planes })
}

fn mix_down(planes: &[Vec<f32>], n: usize) -> Vec<f32> {
    let len = planes[0].len();
    let scale = 1.0 / n as f32;
    (0..len).map(|i| planes.iter().map(|p| p[i]).sum::<f32>() * scale).collect()
}
