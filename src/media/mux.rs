//! The container: the screen video's packets copied, the audio track's MP3 frames added, written
//! as MP4 with `moov` first.
//!
//! Two writers, one timing:
//! - An ISO BMFF screen (MP4, MOV: what GIR's screen recorder writes) goes through our own
//!   writer ([`mp4`]). Its video sample entry is the input's `stsd`, copied verbatim (FFmpeg's
//!   mov demuxer hands the packets out as the file's own samples, so any codec an MP4 holds,
//!   `avc1`, `hvc1`, …, is copied as it is). Pass 1 reads the video packets through FFmpeg's
//!   demuxer for their sizes and times only; the sample tables and the `moov` are built from
//!   those and from the audio track's frame lengths; pass 2 reads the packets again and streams
//!   them, with the audio frames, into the `mdat`, about half a second of each track per chunk.
//!   What stays in memory is 4 bytes per video sample and 2 per audio frame (the encoder's
//!   lengths), plus run-length tables: flat, where FFmpeg's muxer keeps ~50 bytes per sample of
//!   either track until its trailer (15 MB and more for a 3-hour call).
//! - Anything else (WebM, Matroska, …) goes through FFmpeg's mov muxer with `+faststart`
//!   ([`write_ffmpeg`]): same timing, but memory that grows with the call's length.
//!
//! The output boxes are those FFmpeg's muxer writes for the same packets (same timestamps,
//! durations, flags, edit lists, `tkhd`/`mdhd`/`mvhd` durations, `mp4a`/`esds`); only the chunk
//! layout differs, and the video `stsd`, which is the input's own rather than one FFmpeg rebuilt.
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
//! The held frames are presented from time zero until the video's first presentation time, and
//! are decoded with the first packet's own composition offset (its decode time before its
//! presentation): for a B-frame video they come before it in decode order at decode times below
//! its own, even where the video's offset is shorter than its reorder delay (the first decode
//! time then falls before zero, which the edit list's `media_time` absorbs as it does for a
//! B-frame video without a lead-in). So the video track's presentation always starts at zero
//! with a real sample, never with an empty edit (which players that ignore empty edits would
//! play early). Chromium 156 plays such a B-frame video in sync either way
//! (tests/muxer_browser.rs checks it 0.1 s either side of each colour change); the rule is for
//! the other players, and for one shape of file whatever the video.
//!
//! The audio track's first frame has a negative timestamp (minus the encoder + decoder delay);
//! the edit list's `media_time` skips the priming samples, and its duration ends at the last
//! real sample. Chromium and FFmpeg both honour that `media_time` (it is how AAC priming works
//! everywhere).

use std::io::Write;
use std::path::Path;
use std::sync::Once;

use ff::{codec, encoder, format, media, Packet, Rational};
use ffmpeg_next as ff;

use super::encode::AudioTrack;
use super::mp4;
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
    /// The stream's id: the MP4 track id, for an ISO BMFF file.
    id: i32,
    width: u32,
    height: u32,
    /// The demuxer reads ISO BMFF (MP4, MOV).
    iso: bool,
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
        let (index, tb, expected_frames, id) = (st.index(), st.time_base(), st.frames(), st.id());
        let par = st.parameters();
        // SAFETY: `par` points at the stream's codec parameters, alive while `ictx` is.
        let (width, height) = unsafe { ((*par.as_ptr()).width, (*par.as_ptr()).height) };
        let (width, height) = (width.max(0) as u32, height.max(0) as u32);
        let iso = ictx.format().name().split(',').any(|n| n == "mp4" || n == "mov");
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
        Ok(Screen { path: path.to_path_buf(), ictx, index, tb, expected_frames, duration_us, id, width, height, iso })
    }
}

/// Write `tmp`: the screen's video shifted by `video_offset_us`, padded to `total_us`, plus
/// `audio` starting at time zero. An ISO BMFF screen (MP4, MOV: what GIR's screen recorder
/// writes) goes through our own writer ([`mp4`]), whose memory is 4 bytes per video sample
/// plus 2 per audio frame; anything else through FFmpeg's mov muxer (see [`write_ffmpeg`]).
pub fn write(
    screen: Screen,
    video_offset_us: i64,
    total_us: i64,
    audio: &AudioTrack,
    tmp: &Path,
    final_path: &Path,
    opts: &MuxOptions,
) -> Result<(), MediaError> {
    match sample_description(&screen)? {
        Some(stsd) => write_mp4(screen, stsd, video_offset_us, total_us, audio, tmp, final_path, opts),
        None => write_ffmpeg(screen, video_offset_us, total_us, audio, tmp, final_path, opts),
    }
}

/// The screen's video sample description, to copy verbatim: `None` when the screen is not ISO
/// BMFF or its video track is one our writer does not take (several sample entries).
fn sample_description(screen: &Screen) -> Result<Option<Vec<u8>>, MediaError> {
    let Ok(id) = u32::try_from(screen.id) else { return Ok(None) };
    if !screen.iso || id == 0 {
        return Ok(None);
    }
    let mut f = std::fs::File::open(&screen.path).map_err(|source| MediaError::Io {
        path: screen.path.clone(),
        op: "open",
        source,
    })?;
    let len = f.metadata().map_err(|source| MediaError::Io { path: screen.path.clone(), op: "stat", source })?.len();
    mp4::video_sample_description(&mut f, len, id)
        .map_err(|reason| MediaError::Video { path: screen.path.clone(), reason: format!("MP4 boxes: {reason}") })
}

/// The audio frames that go into the output: frames that decode to nothing but end padding
/// (they start after the last real sample) are left out. MP3's bit reservoir only ever points
/// backwards, so the rest decode the same.
fn kept_frames(audio: &AudioTrack) -> usize {
    (0..audio.frame_count())
        .take_while(|&i| {
            i == 0 || (i as i64 * i64::from(audio.frame_samples) - i64::from(audio.priming)) < audio.samples as i64
        })
        .count()
}

/// Timestamp and duration of audio frame `i` of `keep`, in samples: the first frame starts at
/// minus the priming (the edit list hides it); the last one ends where the real samples end,
/// so the edit list cuts the encoder's end padding too.
fn audio_frame_timing(audio: &AudioTrack, i: usize, keep: usize) -> (i64, i64) {
    let fs = i64::from(audio.frame_samples);
    let ts = i as i64 * fs - i64::from(audio.priming);
    let left = audio.samples as i64 - ts;
    let dur = if i + 1 == keep && left > 0 { left.min(fs) } else { fs };
    (ts, dur)
}

/// The output video track's timescale for an input time base, as FFmpeg's mov muxer picks it:
/// the denominator, doubled until it is at least 10,000.
fn video_timescale(tb: Rational) -> i32 {
    let mut ts = tb.denominator().max(1);
    while ts < 10_000 {
        ts *= 2;
    }
    ts
}

/// One sample of the output video track, timestamps in the output timescale.
struct VideoSample {
    dts: i64,
    pts: i64,
    duration: i64,
    key: bool,
    size: usize,
    /// The packet; `None` for a held copy of the first packet ([`VideoSamples::held_data`]).
    packet: Option<Packet>,
}

/// The output video track's samples, in decode order: the screen's packets shifted by the
/// video offset, preceded by the held first frame where the video starts late and with the
/// last one stretched to the end. Both passes of [`write_mp4`] run this same sequence.
struct VideoSamples<'a> {
    screen: &'a mut Screen,
    out_tb: Rational,
    shift: i64,
    end_ts: i64,
    slice: i64,
    seen: i64,
    /// Held copies of the first packet still to come: presented from `held.start` to `held.end`.
    held: std::ops::Range<i64>,
    /// Their decode times are this much before their presentation times (the first packet's
    /// composition offset).
    held_offset: i64,
    /// The packet read last, not yet given out (the first packet while held copies remain).
    last: Option<Packet>,
    ready: Option<Packet>,
    max_end: i64,
    done: bool,
}

impl<'a> VideoSamples<'a> {
    fn new(screen: &'a mut Screen, video_offset_us: i64, total_us: i64, opts: &MuxOptions) -> VideoSamples<'a> {
        let in_tb = screen.tb;
        VideoSamples {
            out_tb: Rational::new(1, video_timescale(in_tb)),
            shift: from_us(video_offset_us, in_tb),
            end_ts: from_us(total_us, in_tb),
            slice: from_us(opts.video_padding_slice_length_ms.max(1) as i64 * 1000, in_tb).max(1),
            screen,
            seen: 0,
            held: 0..0,
            held_offset: 0,
            last: None,
            ready: None,
            max_end: i64::MIN,
            done: false,
        }
    }

    fn bad(&self, reason: String) -> MediaError {
        MediaError::Video { path: self.screen.path.clone(), reason }
    }

    /// The bytes of a held sample: the first packet's.
    fn held_data(&self) -> &[u8] {
        self.last.as_ref().and_then(Packet::data).unwrap_or_default()
    }

    fn sample(&self, mut p: Packet) -> VideoSample {
        p.rescale_ts(self.screen.tb, self.out_tb);
        VideoSample {
            dts: p.dts().unwrap_or(0),
            pts: p.pts().unwrap_or(0),
            duration: p.duration(),
            key: p.is_key(),
            size: p.size(),
            packet: Some(p),
        }
    }

    fn next(&mut self) -> Result<Option<VideoSample>, MediaError> {
        use ff::Rescale;
        loop {
            if self.held.start < self.held.end {
                // Lead-in: the first key frame held from time zero until the video's first packet.
                let t = self.held.start;
                let next = (t + self.slice).min(self.held.end);
                self.held.start = next;
                let (tb, out) = (self.screen.tb, self.out_tb);
                let ts = t.rescale(tb, out);
                let size = self.last.as_ref().map_or(0, Packet::size);
                return Ok(Some(VideoSample {
                    dts: (t - self.held_offset).rescale(tb, out),
                    pts: ts,
                    duration: (next - t).rescale(tb, out),
                    key: true,
                    size,
                    packet: None,
                }));
            }
            if let Some(p) = self.ready.take() {
                return Ok(Some(self.sample(p)));
            }
            if self.done {
                return Ok(None);
            }
            let mut p = Packet::empty();
            match p.read(&mut self.screen.ictx) {
                Ok(()) => {}
                Err(ff::Error::Eof) => {
                    self.done = true;
                    let expected = self.screen.expected_frames;
                    if expected > 0 && self.seen < expected {
                        return Err(self.bad(format!("truncated: {} of {expected} frames present", self.seen)));
                    }
                    let Some(mut tail) = self.last.take() else {
                        return Err(self.bad("no video frames".into()));
                    };
                    // Trailer: the last image stays until the audio ends. The presentation
                    // (the edit list) ends at the latest pts + duration, so the last packet in
                    // decode order is stretched until its pts + duration reaches the end. (With
                    // B-frames that packet is not the last image shown; the last image shown
                    // stays on screen until the presentation ends.)
                    let tail_pts = tail.pts().unwrap_or(0);
                    if self.end_ts > self.max_end {
                        tail.set_duration(self.end_ts - tail_pts);
                    }
                    return Ok(Some(self.sample(tail)));
                }
                Err(e) => {
                    return Err(self.bad(format!("reading packet {}: {e} (truncated or damaged)", self.seen)));
                }
            }
            if p.stream() != self.screen.index {
                continue;
            }
            self.seen += 1;
            if p.is_corrupt() {
                return Err(self.bad(format!("packet {} is corrupt (truncated or damaged)", self.seen)));
            }
            let pts = p.pts().or(p.dts()).ok_or_else(|| self.bad("packet without timestamps".into()))?;
            let dts = p.dts().unwrap_or(pts);
            p.set_pts(Some(pts + self.shift));
            p.set_dts(Some(dts + self.shift));
            p.set_position(-1);
            self.max_end = self.max_end.max(pts + self.shift + p.duration().max(0));
            if self.seen == 1 && self.shift > 0 && p.is_key() {
                // Presented from zero to the first presentation, decoded with the first packet's
                // composition offset (see the module doc).
                self.held = 0..(pts + self.shift).max(0);
                self.held_offset = (pts - dts).max(0);
            }
            self.ready = self.last.replace(p);
        }
    }
}

/// A chunk of the output: this many samples of one track, back to back in the `mdat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Video(u32),
    Audio(u32),
}

/// The order of the chunks in the `mdat`: time is cut into windows of `window` audio samples
/// (about half a second); each window holds the video samples that are decoded in it, then its
/// audio frames (a sample before time zero counts in the first window). Both tracks are then
/// never more than a window apart in the file, so a player streaming it needs no large buffer.
struct Interleave<'a> {
    /// (window, video samples decoded in it), windows increasing.
    video: &'a [(u64, u32)],
    v: usize,
    audio: &'a AudioTrack,
    a: usize,
    keep: usize,
    window: u64,
}

impl Interleave<'_> {
    fn audio_window(&self, i: usize) -> u64 {
        let (ts, _) = audio_frame_timing(self.audio, i, self.keep);
        ts.max(0) as u64 / self.window
    }
}

impl Iterator for Interleave<'_> {
    type Item = Chunk;

    fn next(&mut self) -> Option<Chunk> {
        let aw = (self.a < self.keep).then(|| self.audio_window(self.a));
        match (self.video.get(self.v), aw) {
            (Some(&(vw, n)), aw) if aw.is_none_or(|aw| vw <= aw) => {
                self.v += 1;
                Some(Chunk::Video(n))
            }
            (_, Some(aw)) => {
                let start = self.a;
                while self.a < self.keep && self.audio_window(self.a) == aw {
                    self.a += 1;
                }
                Some(Chunk::Audio((self.a - start) as u32))
            }
            _ => None,
        }
    }
}

/// Our own MP4 writer (see [`mp4`]): pass 1 reads the video packets for their sizes and times
/// (the bytes are dropped at once), the tables and the `moov` are built, and pass 2 reads the
/// packets again and streams them, with the audio frames, into the `mdat`.
#[allow(clippy::too_many_arguments)]
fn write_mp4(
    mut screen: Screen,
    stsd: Vec<u8>,
    video_offset_us: i64,
    total_us: i64,
    audio: &AudioTrack,
    tmp: &Path,
    final_path: &Path,
    opts: &MuxOptions,
) -> Result<(), MediaError> {
    let mux_err = |reason: String| MediaError::Mux { path: final_path.to_path_buf(), reason };
    let path = screen.path.clone();
    let video_err = |reason: String| MediaError::Video { path: path.clone(), reason };
    let rate = audio.sample_rate;
    let frame = i64::from(audio.frame_samples).max(1);
    // About half a second of audio frames per window.
    let window = ((i64::from(rate) / 2 + frame / 2) / frame).max(1) * frame;

    // Pass 1: the video's sample table, sizes, and how many samples fall in each window.
    let out_tb = Rational::new(1, video_timescale(screen.tb));
    let vts = i128::from(out_tb.denominator());
    let mut video = mp4::SampleTable::new();
    let mut sizes: Vec<u32> = Vec::new();
    let mut windows: Vec<(u64, u32)> = Vec::new();
    {
        let mut samples = VideoSamples::new(&mut screen, video_offset_us, total_us, opts);
        while let Some(s) = samples.next()? {
            video.push(s.dts, s.pts, s.duration, s.key).map_err(|e| video_err(format!("timestamps: {e}")))?;
            sizes.push(u32::try_from(s.size).map_err(|_| video_err(format!("a packet of {} bytes", s.size)))?);
            let w = (i128::from(s.dts) * i128::from(rate)).div_euclid(vts * i128::from(window)).max(0) as u64;
            match windows.last_mut() {
                Some((last, n)) if *last == w => *n += 1,
                _ => windows.push((w, 1)),
            }
        }
    }
    video.finish();
    let (width, height) = (screen.width, screen.height);
    drop(screen);

    // The audio track's table.
    let keep = kept_frames(audio);
    let mut sound = mp4::SampleTable::new();
    let mut audio_bytes = 0u64;
    for i in 0..keep {
        let (ts, dur) = audio_frame_timing(audio, i, keep);
        sound.push(ts, ts, dur, true).map_err(|e| mux_err(format!("audio timestamps: {e}")))?;
        audio_bytes += u64::from(audio.frame_len(i));
    }
    sound.finish();
    let avg = (u128::from(audio_bytes) * 8 * u128::from(rate))
        .checked_div(u128::from(sound.media_duration()))
        .unwrap_or(0)
        .min(u128::from(u32::MAX)) as u32;
    let max = avg.max(audio.bitrate_kbps.saturating_mul(1000));
    let audio_stsd = mp4::mp3_sample_description(2, rate, max, avg);

    // The chunks, in file order.
    let interleave = || Interleave { video: &windows, v: 0, audio, a: 0, keep, window: window as u64 };
    let (mut vchunks, mut achunks) = (mp4::Chunks::default(), mp4::Chunks::default());
    let (mut pos, mut vi, mut ai) = (0u64, 0usize, 0usize);
    for c in interleave() {
        match c {
            Chunk::Video(n) => {
                vchunks.push(pos, n);
                pos += sizes[vi..vi + n as usize].iter().map(|&s| u64::from(s)).sum::<u64>();
                vi += n as usize;
            }
            Chunk::Audio(n) => {
                achunks.push(pos, n);
                pos += (ai..ai + n as usize).map(|i| u64::from(audio.frame_len(i))).sum::<u64>();
                ai += n as usize;
            }
        }
    }
    let mdat = pos;

    let video_sizes = |i: usize| sizes[i];
    let audio_sizes = |i: usize| audio.frame_len(i);
    let tracks = [
        mp4::Track {
            id: 1,
            handler: mp4::Handler::Video { width, height },
            timescale: out_tb.denominator() as u32,
            stsd: &stsd,
            samples: &video,
            sizes: &video_sizes,
            chunks: &vchunks,
        },
        mp4::Track {
            id: 2,
            handler: mp4::Handler::Audio,
            timescale: rate,
            stsd: &audio_stsd,
            samples: &sound,
            sizes: &audio_sizes,
            chunks: &achunks,
        },
    ];
    let brand = match mp4::sample_entry_type(&stsd) {
        Some(k) if &k == b"avc1" || &k == b"avc3" => Some(*b"avc1"),
        _ => None,
    };
    let ftyp = mp4::ftyp(brand);
    let moov = mp4::placed_moov(&tracks, ftyp.len() as u64, mdat).map_err(|e| mux_err(format!("moov: {e}")))?;
    drop((video, sound, vchunks, achunks));

    // Pass 2: write.
    let write_err = |source: std::io::Error| MediaError::Io { path: tmp.to_path_buf(), op: "write", source };
    let file = std::fs::File::create(tmp).map_err(|source| MediaError::Io {
        path: tmp.to_path_buf(),
        op: "create",
        source,
    })?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    out.write_all(&ftyp).map_err(write_err)?;
    out.write_all(&moov.bytes).map_err(write_err)?;
    let header = mp4::mdat_header(mdat);
    out.write_all(&header).map_err(write_err)?;
    let expected_len = ftyp.len() as u64 + moov.bytes.len() as u64 + header.len() as u64 + mdat;
    drop(moov);

    let mut screen = Screen::open(&path)?;
    let mut samples = VideoSamples::new(&mut screen, video_offset_us, total_us, opts);
    let mut frames = audio.reader().map_err(|e| mux_err(format!("audio frames: {e}")))?;
    let changed = |what: &str| video_err(format!("{what} between the two reads (the file changed?)"));
    let mut vi = 0usize;
    for c in interleave() {
        match c {
            Chunk::Video(n) => {
                for _ in 0..n {
                    let s = samples.next()?.ok_or_else(|| changed("fewer packets"))?;
                    if s.size != sizes[vi] as usize {
                        return Err(changed(&format!("packet {vi} changed size")));
                    }
                    let data = match &s.packet {
                        Some(p) => p.data().unwrap_or_default(),
                        None => samples.held_data(),
                    };
                    out.write_all(data).map_err(write_err)?;
                    vi += 1;
                }
            }
            Chunk::Audio(n) => {
                for _ in 0..n {
                    let f = frames
                        .next_frame()
                        .map_err(|e| mux_err(format!("audio frames: {e}")))?
                        .ok_or_else(|| mux_err("audio frames missing".into()))?;
                    out.write_all(f).map_err(write_err)?;
                }
            }
        }
    }
    if samples.next()?.is_some() {
        return Err(changed("more packets"));
    }
    let file = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    let len = file.metadata().map_err(write_err)?.len();
    if len != expected_len {
        return Err(mux_err(format!("wrote {len} bytes, planned {expected_len}")));
    }
    Ok(())
}

/// A packet waiting to be written, with its time in microseconds for interleaving.
struct Pending {
    packet: Packet,
    stream: usize,
    us: i64,
}

/// The fallback for screens that are not ISO BMFF (WebM, Matroska, …): FFmpeg's mov muxer,
/// fed packet by packet, `+faststart`. Same timing as [`write`]; its memory grows with the call
/// (the muxer's per-sample index), which is why MP4 screens go through [`mp4`] instead.
fn write_ffmpeg(
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
    let keep = kept_frames(audio);
    let mut frames = audio.reader().map_err(|e| mux_err(format!("audio frames: {e}")))?;
    let mut next_audio = 0usize;
    // Called for i = 0, 1, 2, … in order: the reader reads the frames sequentially.
    let mut audio_packet = |i: usize| -> Result<Pending, MediaError> {
        // The last frame ends where the real samples end: the muxer's edit list then cuts
        // the encoder's end padding too.
        let (ts, dur) = audio_frame_timing(audio, i, keep);
        let frame = frames
            .next_frame()
            .map_err(|e| mux_err(format!("audio frame {i}: {e}")))?
            .ok_or_else(|| mux_err(format!("audio frame {i} missing")))?;
        let mut p = Packet::copy(frame);
        p.set_pts(Some(ts));
        p.set_dts(Some(ts));
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

    // The video samples, the same sequence as our writer's (held lead-in, shifted packets,
    // stretched tail), in the track's timescale, which FFmpeg's muxer also picks.
    let out_tb = Rational::new(1, video_timescale(screen.tb));
    let mut samples = VideoSamples::new(&mut screen, video_offset_us, total_us, opts);
    while let Some(sample) = samples.next()? {
        let mut p = match sample.packet {
            Some(p) => p,
            None => {
                let mut held = Packet::copy(samples.held_data());
                held.set_pts(Some(sample.pts));
                held.set_dts(Some(sample.dts));
                held.set_duration(sample.duration);
                held.set_flags(ff::packet::Flags::KEY);
                held
            }
        };
        p.set_stream(0);
        p.rescale_ts(out_tb, vtb);
        write(Pending { us: to_us(sample.dts, out_tb), packet: p, stream: 0 }, &mut octx)?;
    }
    while next_audio < keep {
        let a = audio_packet(next_audio)?;
        next_audio += 1;
        a.packet.write_interleaved(&mut octx).map_err(|e| mux_err(format!("audio packet: {e}")))?;
    }
    octx.write_trailer().map_err(|e| mux_err(format!("trailer: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::encode;

    fn screen_path() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/media/screen.mp4")
    }

    /// (stream, dts, pts, duration, key, hash of the bytes).
    type PacketSummary = (usize, Option<i64>, Option<i64>, i64, bool, u64);

    /// Every packet as FFmpeg's demuxer reads it (edit lists applied), in decode order per stream.
    fn packets(path: &Path) -> Vec<PacketSummary> {
        use std::hash::{Hash, Hasher};
        let mut ictx = format::input(path).unwrap();
        let mut out = Vec::new();
        let mut p = Packet::empty();
        while p.read(&mut ictx).is_ok() {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.data().unwrap_or_default().hash(&mut h);
            out.push((p.stream(), p.dts(), p.pts(), p.duration(), p.is_key(), h.finish()));
        }
        out.sort_by_key(|&(s, dts, ..)| (s, dts));
        out
    }

    /// An audio track of `secs` seconds of a tone at 16 kHz: in memory, or in a file as the
    /// re-encode path makes it.
    fn audio(secs: f64, streamed: bool, dir: &Path) -> AudioTrack {
        let pcm: Vec<f32> = (0..(secs * 16000.0) as usize).map(|i| (i as f32 * 0.2).sin() * 0.3).collect();
        if streamed {
            let mut enc = encode::Streaming::new(1, 16000, 32, dir, &dir.join("out.mp4")).unwrap();
            for block in pcm.chunks(10_000) {
                enc.push(&[block.to_vec()]).unwrap();
            }
            enc.finish().unwrap()
        } else {
            encode::encode(&[pcm], 16000, 32, &dir.join("out.mp4")).unwrap()
        }
    }

    /// Our writer and FFmpeg's muxer, given the same packets, write the same boxes (but for the
    /// chunk layout and the copied video sample description) and the same samples: lead-in held
    /// frames, a B-frame video from zero, one whose offset is shorter than its reorder delay (held
    /// frames decoded before zero), the tail held to the end, audio from a file and from memory.
    /// No edit list starts with an empty edit (Chromium ignores those).
    #[test]
    fn our_writer_matches_ffmpegs_muxer() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let opts = MuxOptions::default();
        for (offset_us, total_us, streamed) in [
            (0, 10_000_000, true),
            (0, 12_000_000, false),
            (2_000_000, 12_500_000, true),
            (200_000, 11_000_000, false),
            (7_300_000, 17_300_000, true),
        ] {
            let case = format!("offset {offset_us} µs, total {total_us} µs");
            let track = audio(total_us as f64 / 1e6, streamed, d);
            let (ours, theirs) = (d.join("ours.mp4"), d.join("theirs.mp4"));
            let screen = Screen::open(&screen_path()).unwrap();
            let stsd = sample_description(&screen).unwrap().expect("an MP4 screen takes our writer");
            write_mp4(screen, stsd, offset_us, total_us, &track, &ours, &ours, &opts).unwrap();
            let screen = Screen::open(&screen_path()).unwrap();
            write_ffmpeg(screen, offset_us, total_us, &track, &theirs, &theirs, &opts).unwrap();
            assert_eq!(packets(&ours), packets(&theirs), "{case}");
            let layout = |p: &str| {
                p.ends_with("/stsc") || p.ends_with("/stco") || p.ends_with("/co64") || p == "free" || p == "mdat"
            };
            let boxes = |path: &Path| -> Vec<(String, Vec<u8>)> {
                let data = std::fs::read(path).unwrap();
                let mut b = mp4::leaf_boxes(&data).unwrap();
                b.retain(|(p, _)| !layout(p) && !p.starts_with("moov/udta"));
                b
            };
            let (a, b) = (boxes(&ours), boxes(&theirs));
            assert_eq!(
                a.len(),
                b.len(),
                "{case}: {:?} vs {:?}",
                a.iter().map(|x| &x.0).collect::<Vec<_>>(),
                b.iter().map(|x| &x.0).collect::<Vec<_>>()
            );
            let mut stsd = 0;
            for ((pa, da), (pb, db)) in a.iter().zip(&b) {
                assert_eq!(pa, pb, "{case}");
                if pa.ends_with("/stsd") && stsd == 0 {
                    // The video's: the input's own (FFmpeg rebuilds it, without the encoder name).
                    stsd += 1;
                    continue;
                }
                assert_eq!(da, db, "{case}: {pa}");
            }
            for (path, elst) in a.iter().filter(|(p, _)| p.ends_with("/elst")) {
                // version/flags, entry count, then (duration, media_time, rate) per entry.
                let wide = elst[0] == 1;
                let first_time = if wide {
                    i64::from_be_bytes(elst[16..24].try_into().unwrap())
                } else {
                    i64::from(i32::from_be_bytes(elst[12..16].try_into().unwrap()))
                };
                assert_ne!(first_time, -1, "{case}: {path} starts with an empty edit");
            }
            let data = std::fs::read(&ours).unwrap();
            assert_eq!(&data[4..8], b"ftyp");
            let moov = u32::from_be_bytes(data[32..36].try_into().unwrap()) as usize;
            assert_eq!(&data[36..40], b"moov");
            assert_eq!(&data[32 + moov + 4..32 + moov + 8], b"mdat", "{case}: moov, then mdat");
        }
    }

    #[test]
    fn damaged_mp4_boxes_are_a_video_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A screen FFmpeg's demuxer opens but whose video sample entry does not fit its stsd
        // (copied verbatim, it would make a broken output): a bad input, not a crash.
        let mut data = std::fs::read(screen_path()).unwrap();
        let at = data.windows(4).position(|w| w == b"stsd").unwrap();
        data[at + 15] = data[at + 15].wrapping_add(1);
        let bad = dir.path().join("bad-stsd.mp4");
        std::fs::write(&bad, &data).unwrap();
        let screen = Screen::open(&bad).expect("FFmpeg's demuxer opens it");
        match sample_description(&screen) {
            Err(e @ MediaError::Video { .. }) => assert!(e.to_string().contains("bad-stsd.mp4"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
