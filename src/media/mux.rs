//! The container: the screen video's packets copied, the audio track's MP3 frames added, written
//! as MP4 with `moov` first.
//!
//! Padding where the video starts after the audio: the video's first key frame is repeated as a
//! sync sample every `video_padding_slice_length_ms` from time zero until the video begins, so
//! the lead-in shows the first screen image ("held frame"). Where the video ends before the
//! audio, its last sample's duration is extended to the end, so the last image stays. Why held
//! frames and not the alternatives:
//! - a timestamp offset alone becomes an empty edit in `elst`; Chromium's MP4 parser ignores
//!   empty edits, so it would play the video early by the offset, out of sync with the voice;
//! - black frames would have to be encoded with exactly the stream's SPS/PPS (one `avcC` per
//!   track), which a copied stream of unknown encoder settings cannot promise;
//! - held frames are the stream's own packets, so every decoder (Chromium, ffplay, Safari)
//!   decodes them; the video track really spans the whole output and its timestamps start at 0,
//!   and the repeated sync samples keep seeking into the lead-in instant.
//!
//! The audio track's first frame has a negative timestamp (minus the encoder + decoder delay);
//! the MP4 muxer turns that into an edit list whose `media_time` skips the priming samples.
//! Chromium and FFmpeg both honour that `media_time` (it is how AAC priming works everywhere).

use std::path::Path;
use std::sync::Once;

use ff::{codec, encoder, format, media, Packet, Rational};
use ffmpeg_next as ff;

use super::encode::AudioTrack;
use super::{MediaError, MuxOptions};

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        let _ = ff::init();
        // Failures come back as return codes and become MediaErrors; FFmpeg's own stderr chatter
        // would interleave across worker threads.
        ff::log::set_level(ff::log::Level::Fatal);
    });
}

/// An opened screen video.
pub struct Screen {
    path: std::path::PathBuf,
    ictx: format::context::Input,
    index: usize,
    tb: Rational,
    /// Frames the index promises (0 when unknown).
    expected_frames: i64,
    /// Presentation span of the stream in microseconds.
    pub duration_us: i64,
}

fn to_us(ts: i64, tb: Rational) -> i64 {
    (i128::from(ts) * i128::from(tb.numerator()) * 1_000_000 / i128::from(tb.denominator()).max(1)) as i64
}

fn from_us(us: i64, tb: Rational) -> i64 {
    let num = i128::from(tb.numerator()).max(1);
    let v = i128::from(us) * i128::from(tb.denominator());
    ((v + num * 500_000 * v.signum()) / (num * 1_000_000)) as i64
}

impl Screen {
    pub fn open(path: &Path) -> Result<Screen, MediaError> {
        init();
        let bad = |reason: String| MediaError::Video { path: path.to_path_buf(), reason };
        if let Err(source) = std::fs::metadata(path) {
            return Err(MediaError::Io { path: path.to_path_buf(), op: "open", source });
        }
        let ictx = format::input(path).map_err(|e| bad(format!("cannot open as a media file ({e})")))?;
        let st = ictx.streams().best(media::Type::Video).ok_or_else(|| bad("no video stream".into()))?;
        let (index, tb, expected_frames) = (st.index(), st.time_base(), st.frames());
        if tb.numerator() <= 0 || tb.denominator() <= 0 {
            return Err(bad("invalid time base".into()));
        }
        let duration_us = if st.duration() > 0 {
            to_us(st.duration(), tb)
        } else if ictx.duration() > 0 {
            ictx.duration() * 1_000_000 / i64::from(ff::ffi::AV_TIME_BASE)
        } else {
            return Err(bad("unknown duration".into()));
        };
        Ok(Screen { path: path.to_path_buf(), ictx, index, tb, expected_frames, duration_us })
    }
}

/// A packet waiting to be written, with its time in microseconds for interleaving.
struct Pending {
    packet: Packet,
    stream: usize,
    us: i64,
}

/// Write `tmp`: the screen's video shifted by `video_offset_us`, padded to `total_us`, plus
/// `audio` starting at time zero.
pub fn write(
    mut screen: Screen,
    video_offset_us: i64,
    total_us: i64,
    audio: &AudioTrack,
    tmp: &Path,
    final_path: &Path,
    opts: &MuxOptions,
) -> Result<(), MediaError> {
    let mux_err = |reason: String| MediaError::Mux { path: final_path.to_path_buf(), reason };
    let video_err = |path: &Path, reason: String| MediaError::Video { path: path.to_path_buf(), reason };
    let mut octx = format::output_as(tmp, "mp4").map_err(|e| mux_err(format!("create {}: {e}", tmp.display())))?;
    {
        let ist = screen.ictx.stream(screen.index).ok_or_else(|| video_err(&screen.path, "stream vanished".into()))?;
        let mut ost =
            octx.add_stream(encoder::find(codec::Id::None)).map_err(|e| mux_err(format!("video stream: {e}")))?;
        ost.set_parameters(ist.parameters());
        ost.set_time_base(screen.tb);
        // SAFETY: the stream was just created with a codecpar that `set_parameters` filled.
        unsafe { (*(*ost.as_mut_ptr()).codecpar).codec_tag = 0 };
    }
    {
        let mut ost =
            octx.add_stream(encoder::find(codec::Id::None)).map_err(|e| mux_err(format!("audio stream: {e}")))?;
        ost.set_time_base(Rational::new(1, audio.sample_rate as i32));
        // SAFETY: codecpar belongs to the new stream; av_channel_layout_default only writes it.
        unsafe {
            let par = (*ost.as_mut_ptr()).codecpar;
            (*par).codec_type = ff::ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
            (*par).codec_id = ff::ffi::AVCodecID::AV_CODEC_ID_MP3;
            (*par).codec_tag = 0;
            (*par).sample_rate = audio.sample_rate as i32;
            ff::ffi::av_channel_layout_default(&mut (*par).ch_layout, i32::from(audio.channels));
            (*par).bit_rate = i64::from(audio.bitrate_kbps) * 1000;
            (*par).frame_size = audio.frame_samples as i32;
        }
    }
    let mut flags = ff::Dictionary::new();
    flags.set("movflags", "+faststart");
    octx.write_header_with(flags).map_err(|e| mux_err(format!("header: {e}")))?;
    let vtb = octx.stream(0).map(|s| s.time_base()).ok_or_else(|| mux_err("no video stream".into()))?;
    let atb = octx.stream(1).map(|s| s.time_base()).ok_or_else(|| mux_err("no audio stream".into()))?;

    // Audio packets, made one at a time as the interleaving reaches them (the frames may be
    // in a file: memory stays flat for any call length).
    // Frames that decode to nothing but end padding (they start after the last real sample) are
    // left out; MP3's bit reservoir only ever points backwards, so the rest decode the same.
    let keep = (0..audio.frame_count())
        .take_while(|&i| {
            i == 0 || (i as i64 * i64::from(audio.frame_samples) - i64::from(audio.priming)) < audio.samples as i64
        })
        .count();
    let mut frames = audio.reader().map_err(|e| mux_err(format!("audio frames: {e}")))?;
    let mut next_audio = 0usize;
    let mut audio_packet = |i: usize| -> Result<Pending, MediaError> {
        let ts = i as i64 * i64::from(audio.frame_samples) - i64::from(audio.priming);
        let mut p = Packet::copy(frames.frame(i).map_err(|e| mux_err(format!("audio frame {i}: {e}")))?);
        p.set_pts(Some(ts));
        p.set_dts(Some(ts));
        // The last frame ends where the real samples end: the muxer's edit list then cuts
        // the encoder's end padding too.
        let left = audio.samples as i64 - ts;
        let dur = if i + 1 == keep && left > 0 {
            left.min(i64::from(audio.frame_samples))
        } else {
            i64::from(audio.frame_samples)
        };
        p.set_duration(dur);
        p.set_flags(ff::packet::Flags::KEY);
        p.set_stream(1);
        p.rescale_ts(Rational::new(1, audio.sample_rate as i32), atb);
        Ok(Pending { us: ts * 1_000_000 / i64::from(audio.sample_rate), packet: p, stream: 1 })
    };
    let audio_us = |i: usize| {
        (i as i64 * i64::from(audio.frame_samples) - i64::from(audio.priming)) * 1_000_000
            / i64::from(audio.sample_rate)
    };

    let mut write = |pending: Pending, octx: &mut format::context::Output| -> Result<(), MediaError> {
        while next_audio < keep && audio_us(next_audio) <= pending.us {
            let a = audio_packet(next_audio)?;
            next_audio += 1;
            a.packet.write_interleaved(octx).map_err(|e| mux_err(format!("audio packet: {e}")))?;
        }
        let what = if pending.stream == 0 { "video packet" } else { "audio packet" };
        pending.packet.write_interleaved(octx).map_err(|e| mux_err(format!("{what}: {e}")))
    };

    let in_tb = screen.tb;
    let shift = from_us(video_offset_us, in_tb);
    let end_ts = from_us(total_us, in_tb);
    let slice = from_us(opts.video_padding_slice_length_ms.max(1) as i64 * 1000, in_tb).max(1);
    let mut seen = 0i64;
    let mut first = true;
    let mut last: Option<Packet> = None;
    let mut max_end = i64::MIN;
    let mut packet = Packet::empty();
    loop {
        match packet.read(&mut screen.ictx) {
            Ok(()) => {}
            Err(ff::Error::Eof) => break,
            Err(e) => {
                return Err(video_err(&screen.path, format!("reading packet {seen}: {e} (truncated or damaged)")))
            }
        }
        if packet.stream() != screen.index {
            continue;
        }
        seen += 1;
        if packet.is_corrupt() {
            return Err(video_err(&screen.path, format!("packet {seen} is corrupt (truncated or damaged)")));
        }
        let mut p = std::mem::replace(&mut packet, Packet::empty());
        let pts = p.pts().or(p.dts()).ok_or_else(|| video_err(&screen.path, "packet without timestamps".into()))?;
        let dts = p.dts().unwrap_or(pts);
        p.set_pts(Some(pts + shift));
        p.set_dts(Some(dts + shift));
        p.set_position(-1);
        p.set_stream(0);
        max_end = max_end.max(pts + shift + p.duration().max(0));
        if first {
            first = false;
            // Lead-in: the first key frame held from time zero until the video's first packet.
            if shift > 0 && p.is_key() {
                let d0 = dts + shift;
                let mut t = 0;
                while t < d0 {
                    let next = (t + slice).min(d0);
                    let mut held = p.clone();
                    held.set_pts(Some(t));
                    held.set_dts(Some(t));
                    held.set_duration(next - t);
                    held.rescale_ts(in_tb, vtb);
                    write(Pending { us: to_us(t, in_tb), packet: held, stream: 0 }, &mut octx)?;
                    t = next;
                }
            }
        }
        if let Some(prev) = last.replace(p) {
            let us = to_us(prev.dts().unwrap_or(0), in_tb);
            let mut prev = prev;
            prev.rescale_ts(in_tb, vtb);
            write(Pending { us, packet: prev, stream: 0 }, &mut octx)?;
        }
    }
    if screen.expected_frames > 0 && seen < screen.expected_frames {
        return Err(video_err(&screen.path, format!("truncated: {seen} of {} frames present", screen.expected_frames)));
    }
    let Some(mut tail) = last else {
        return Err(video_err(&screen.path, "no video frames".into()));
    };
    // Trailer: the last image stays until the audio ends. The MP4 muxer ends the presentation
    // (the edit list) at the latest pts + duration, so the last packet in decode order is
    // stretched until its pts + duration reaches the end. (With B-frames that packet is not the
    // last image shown; the last image shown stays on screen until the presentation ends.)
    let tail_pts = tail.pts().unwrap_or(0);
    if end_ts > max_end {
        tail.set_duration(end_ts - tail_pts);
    }
    let us = to_us(tail.dts().unwrap_or(0), in_tb);
    tail.rescale_ts(in_tb, vtb);
    write(Pending { us, packet: tail, stream: 0 }, &mut octx)?;
    while next_audio < keep {
        let a = audio_packet(next_audio)?;
        next_audio += 1;
        a.packet.write_interleaved(&mut octx).map_err(|e| mux_err(format!("audio packet: {e}")))?;
    }
    octx.write_trailer().map_err(|e| mux_err(format!("trailer: {e}")))?;
    Ok(())
}
