//! MPEG audio Layer III framing: split an MP3 byte stream into frames and read the Xing/Info +
//! LAME tag (frame count, encoder delay, padding).
//!
//! The encoder's output and the fast path's copied frames both become MP4 samples one frame per
//! sample; the tag frame is metadata, not audio, so it is never copied.

/// MP3 decoders (the standard synthesis filterbank) start their output this many samples late.
pub const DECODER_DELAY: u32 = 529;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub sample_rate: u32,
    pub channels: u8,
    /// PCM samples per channel carried by one frame (1152 MPEG-1, 576 MPEG-2/2.5).
    pub samples: u32,
    pub len: usize,
    /// MPEG-1 or MPEG-2: the rates an MP4 file may carry (MPEG-2.5 is not allowed there).
    pub mp4_legal: bool,
    side_info: usize,
}

pub fn parse_header(b: &[u8]) -> Option<FrameHeader> {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b[1] >> 3) & 3; // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
    let layer = (b[1] >> 1) & 3; // 1: Layer III
    if version == 1 || layer != 1 {
        return None;
    }
    let br_idx = usize::from(b[2] >> 4);
    let sr_idx = usize::from((b[2] >> 2) & 3);
    if br_idx == 0 || br_idx == 15 || sr_idx == 3 {
        return None;
    }
    let pad = usize::from((b[2] >> 1) & 1);
    let mono = b[3] >> 6 == 3;
    const BR_V1: [u32; 15] = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320];
    const BR_V2: [u32; 15] = [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160];
    let (bitrate, sample_rate, samples, coef, side_info) = match version {
        3 => (BR_V1[br_idx], [44100, 48000, 32000][sr_idx], 1152, 144, if mono { 17 } else { 32 }),
        2 => (BR_V2[br_idx], [22050, 24000, 16000][sr_idx], 576, 72, if mono { 9 } else { 17 }),
        _ => (BR_V2[br_idx], [11025, 12000, 8000][sr_idx], 576, 72, if mono { 9 } else { 17 }),
    };
    let len = (coef * bitrate * 1000 / sample_rate) as usize + pad;
    Some(FrameHeader {
        sample_rate,
        channels: if mono { 1 } else { 2 },
        samples,
        len,
        mp4_legal: version != 0,
        side_info,
    })
}

/// Gapless information from a Xing/Info frame with a LAME extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LameTag {
    /// Audio frames after the tag frame, if the tag counts them.
    pub frames: Option<u32>,
    /// Bytes of the whole stream (tag frame included), if the tag counts them.
    pub bytes: Option<u32>,
    /// Encoder delay in samples (without [`DECODER_DELAY`]).
    pub enc_delay: u32,
    /// Samples of padding at the end (as LAME writes it: decoder delay included).
    pub enc_padding: u32,
}

/// True if this frame is a Xing/Info/VBRI tag frame rather than audio.
fn tag_offset(frame: &[u8], h: &FrameHeader) -> Option<usize> {
    let xing = 4 + h.side_info;
    match frame.get(xing..xing + 4) {
        Some(b"Xing") | Some(b"Info") => Some(xing),
        _ if frame.get(36..40) == Some(b"VBRI") => Some(36),
        _ => None,
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn parse_lame(frame: &[u8], at: usize) -> Option<LameTag> {
    if frame.get(at..at + 4) == Some(b"VBRI") {
        return None;
    }
    let flags = be32(frame, at + 4)?;
    let mut p = at + 8;
    let mut field = |bit: u32, size: usize| {
        if flags & bit != 0 {
            let v = be32(frame, p);
            p += size;
            v
        } else {
            None
        }
    };
    let frames = field(1, 4);
    let bytes = field(2, 4);
    let _toc = field(4, 100);
    let _quality = field(8, 4);
    // LAME extension: 9-byte encoder string, then delay/padding 21 bytes in.
    let ext = frame.get(p..p + 24)?;
    if !(ext.starts_with(b"LAME") || ext.starts_with(b"Lavc") || ext.starts_with(b"Lavf")) {
        return None;
    }
    let trim = u32::from(ext[21]) << 16 | u32::from(ext[22]) << 8 | u32::from(ext[23]);
    Some(LameTag { frames, bytes, enc_delay: trim >> 12, enc_padding: trim & 0xFFF })
}

/// An MP3 stream split into audio frames.
#[derive(Debug)]
pub struct Frames<'a> {
    pub frames: Vec<&'a [u8]>,
    pub header: Option<FrameHeader>,
    pub tag: Option<LameTag>,
    /// Bytes skipped while hunting for frame sync (garbage, or a truncated last frame).
    pub skipped: usize,
    /// True when the last frame runs past the end of the data.
    pub truncated: bool,
    /// True when frames differ in sample rate or channel count.
    pub mixed: bool,
}

/// Length of a leading ID3v2 tag, if any.
fn id3v2_len(b: &[u8]) -> usize {
    if b.len() >= 10 && &b[..3] == b"ID3" {
        let size = b[6..10].iter().fold(0usize, |acc, x| acc << 7 | usize::from(x & 0x7F));
        let footer = if b[5] & 0x10 != 0 { 10 } else { 0 };
        10 + size + footer
    } else {
        0
    }
}

/// Split `data` (a whole MP3 file, or an encoder's output) into frames. Resyncs over garbage; a
/// frame only counts if the next one (or the end of data) follows it exactly, so random bytes
/// that happen to look like a header are not taken for audio.
pub fn split(data: &[u8]) -> Frames<'_> {
    let mut out = Frames { frames: Vec::new(), header: None, tag: None, skipped: 0, truncated: false, mixed: false };
    let mut i = id3v2_len(data).min(data.len());
    let end = if data.len() >= 128 && &data[data.len() - 128..data.len() - 125] == b"TAG" {
        data.len() - 128
    } else {
        data.len()
    };
    let mut first = true;
    while i + 4 <= end {
        let Some(h) = parse_header(&data[i..end]) else {
            i += 1;
            out.skipped += 1;
            continue;
        };
        if i + h.len > end {
            out.truncated = true;
            out.skipped += end - i;
            break;
        }
        let next = i + h.len;
        let chained = next == end || next + 4 > end || parse_header(&data[next..end]).is_some();
        if !chained && out.frames.is_empty() {
            i += 1;
            out.skipped += 1;
            continue;
        }
        let frame = &data[i..next];
        if first {
            first = false;
            if let Some(at) = tag_offset(frame, &h) {
                out.tag = parse_lame(frame, at);
                i = next;
                continue;
            }
        }
        match out.header {
            None => out.header = Some(h),
            Some(h0) if h0.sample_rate != h.sample_rate || h0.channels != h.channels => out.mixed = true,
            _ => {}
        }
        out.frames.push(frame);
        i = next;
    }
    if i < end && !out.truncated {
        out.skipped += end - i;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes() {
        // MPEG-2 Layer III, 32 kbps, 16 kHz, no padding, mono: 72 * 32000 / 16000 = 144 bytes.
        let h = parse_header(&[0xFF, 0xF3, 0x48, 0xC4]).unwrap();
        assert_eq!((h.sample_rate, h.channels, h.samples, h.len, h.mp4_legal), (16000, 1, 576, 144, true));
        // MPEG-2.5, 8 kHz: not legal in MP4.
        let h = parse_header(&[0xFF, 0xE3, 0x48, 0xC4]).unwrap();
        assert_eq!((h.sample_rate, h.mp4_legal), (8000, false));
        // MPEG-1 128 kbps 44.1 kHz stereo, padded: 417 + 1.
        let h = parse_header(&[0xFF, 0xFB, 0x92, 0x00]).unwrap();
        assert_eq!((h.sample_rate, h.channels, h.samples, h.len), (44100, 2, 1152, 418));
        assert!(parse_header(&[0xFF, 0xFB, 0xF0, 0x00]).is_none(), "bad bitrate index");
        assert!(parse_header(&[0xFF, 0xFD, 0x90, 0x00]).is_none(), "layer II");
    }

    #[test]
    fn split_skips_garbage_and_flags_truncation() {
        let frame = |pad: u8| {
            let mut f = vec![0u8; 144];
            f[..4].copy_from_slice(&[0xFF, 0xF3, 0x48, 0xC4 | pad]);
            f
        };
        let mut data = b"junk".to_vec();
        for _ in 0..3 {
            data.extend(frame(0));
        }
        let s = split(&data);
        assert_eq!((s.frames.len(), s.skipped, s.truncated), (3, 4, false));
        data.truncate(data.len() - 10);
        let s = split(&data);
        assert_eq!((s.frames.len(), s.truncated), (2, true));
        assert!(split(b"not an mp3 at all, just text").frames.is_empty());
    }
}
