//! A small MP4 (ISO BMFF) writer for the muxed output, and the one box reader it needs: the
//! screen video's sample description.
//!
//! Why our own: FFmpeg's mov muxer keeps an index entry of about 50 bytes in memory for every
//! sample it writes (position, size, timestamps, flags, …) until the trailer. A 3-hour call has
//! some 300,000 MP3 frames, so that index alone grows by 15 MB and more with the call's length.
//! This writer holds only what the sample tables themselves need: 4 bytes per video sample size
//! (the audio frame sizes are the encoder's own 2-byte lengths, kept by the audio track), 8 bytes
//! per chunk offset (a chunk is about half a second of one track), and run-length `stts`,
//! `ctts` and `stsc` tables (a few entries for a steady stream).
//!
//! Layout: `ftyp`, `moov`, then one `mdat`. The caller first feeds every sample's timing to a
//! [`SampleTable`] and every chunk (its offset in the `mdat` payload and sample count) to a
//! [`Chunks`], so that all sizes and offsets are known; [`placed_moov`] then builds the `moov` in
//! memory (its size is exact, so the chunk offsets are rebased in place onto
//! `ftyp + moov + mdat header`, in `co64` boxes only if some offset needs 64 bits); the caller
//! writes `ftyp`, `moov` and the [`mdat_header`] and streams the samples in the planned order.
//!
//! The boxes match what FFmpeg 5.1's mov muxer writes for the same streams (checked against its
//! output box by box): movie timescale 1000; `tkhd` flags enabled | in movie, zero times, the
//! audio track in alternate group 1 at full volume, its duration the edit list's; `mdhd` in the
//! track's timescale, language `und`, its duration the presentation span; `hdlr` named
//! `VideoHandler`/`SoundHandler`; `dinf` with a self-contained `url `; `stss` only when some
//! sample is not a sync sample; `ctts` only when some composition offset is not zero; `stsz` in
//! its constant form when all sizes are equal; `co64` only when an offset needs it; and the edit
//! list rule of [`SampleTable::edits`]. The MP3 sample entry is `mp4a` with an `esds` whose
//! objectTypeIndication is 0x69 (ISO/IEC 13818-3, MPEG-2 audio) at up to 24 kHz and 0x6B
//! (ISO/IEC 11172-3, MPEG-1 audio) above, as FFmpeg writes it.
//!
//! Reading: [`video_sample_description`] walks `moov → trak → mdia → minf → stbl → stsd` of an
//! input file with a parser that checks every box against its parent's bounds and the file's
//! length, reading only box headers and the `stsd` itself. Damaged boxes give an error message
//! (the caller names the file), never a panic.

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

/// Movie timescale (`mvhd`, `tkhd`, `elst` durations): milliseconds, as FFmpeg writes.
pub const MOVIE_TIMESCALE: u32 = 1000;

/// Largest `stsd` read from an input (a real one is a few hundred bytes).
const MAX_STSD: u64 = 1 << 20;

// ---- reading -------------------------------------------------------------------------------

/// A box inside an input file: its type, where its payload starts and where it ends.
#[derive(Clone, Copy, Debug)]
struct Extent {
    kind: [u8; 4],
    at: u64,
    body: u64,
    end: u64,
}

fn kind_str(kind: &[u8; 4]) -> String {
    kind.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { char::from(b) } else { '?' }).collect()
}

fn io_err(e: std::io::Error) -> String {
    format!("read: {e}")
}

/// The box starting at `at`, which must end by `end` (its parent's end, or the file's).
fn read_box<R: Read + Seek>(r: &mut R, at: u64, end: u64) -> Result<Extent, String> {
    let room = end.saturating_sub(at);
    if room < 8 {
        return Err(format!("truncated box header at byte {at}"));
    }
    let mut h = [0u8; 8];
    r.seek(SeekFrom::Start(at)).map_err(io_err)?;
    r.read_exact(&mut h).map_err(io_err)?;
    let size32 = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let kind = [h[4], h[5], h[6], h[7]];
    let (size, header) = match size32 {
        // To the end of the enclosing space (ISO 14496-12 allows it for the last top-level box).
        0 => (room, 8),
        1 => {
            if room < 16 {
                return Err(format!("truncated header of box '{}' at byte {at}", kind_str(&kind)));
            }
            let mut l = [0u8; 8];
            r.read_exact(&mut l).map_err(io_err)?;
            (u64::from_be_bytes(l), 16)
        }
        n => (u64::from(n), 8),
    };
    if size < header {
        return Err(format!("box '{}' at byte {at} has an impossible size {size}", kind_str(&kind)));
    }
    if size > room {
        return Err(format!(
            "box '{}' at byte {at} ({size} bytes) runs past the end of its container (truncated or damaged)",
            kind_str(&kind)
        ));
    }
    Ok(Extent { kind, at, body: at + header, end: at + size })
}

/// The first child of `parent` of type `kind`.
fn child<R: Read + Seek>(r: &mut R, parent: &Extent, kind: &[u8; 4]) -> Result<Option<Extent>, String> {
    let mut at = parent.body;
    while at < parent.end {
        let b = read_box(r, at, parent.end)?;
        if &b.kind == kind {
            return Ok(Some(b));
        }
        at = b.end;
    }
    Ok(None)
}

/// Like [`child`], but the box must be there.
fn need<R: Read + Seek>(r: &mut R, parent: &Extent, kind: &[u8; 4]) -> Result<Extent, String> {
    child(r, parent, kind)?
        .ok_or_else(|| format!("'{}' at byte {} has no '{}' box", kind_str(&parent.kind), parent.at, kind_str(kind)))
}

/// The payload of `b`, at most `max` bytes long.
fn payload<R: Read + Seek>(r: &mut R, b: &Extent, max: u64) -> Result<Vec<u8>, String> {
    let len = b.end - b.body;
    if len > max {
        return Err(format!("box '{}' at byte {} is implausibly large ({len} bytes)", kind_str(&b.kind), b.at));
    }
    let mut v = vec![0u8; len as usize];
    r.seek(SeekFrom::Start(b.body)).map_err(io_err)?;
    r.read_exact(&mut v).map_err(io_err)?;
    Ok(v)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The sample description of track `track_id` of the ISO BMFF file `r` (`len` bytes): the
/// payload of its `stsd` box (version and flags, entry count, the entries), to be written
/// verbatim into the output. `Ok(None)` when that track is not a video track with exactly one
/// sample entry (the caller then uses FFmpeg's muxer); `Err` when a box on the way is damaged.
pub fn video_sample_description<R: Read + Seek>(r: &mut R, len: u64, track_id: u32) -> Result<Option<Vec<u8>>, String> {
    let mut at = 0;
    let moov = loop {
        if at >= len {
            return Err("no 'moov' box".into());
        }
        let b = read_box(r, at, len)?;
        if &b.kind == b"moov" {
            break b;
        }
        at = b.end;
    };
    let mut at = moov.body;
    while at < moov.end {
        let trak = read_box(r, at, moov.end)?;
        at = trak.end;
        if &trak.kind != b"trak" {
            continue;
        }
        let tkhd = need(r, &trak, b"tkhd")?;
        let tkhd = payload(r, &tkhd, 4096)?;
        let id = match tkhd.first() {
            Some(0) => be32(&tkhd, 12),
            Some(1) => be32(&tkhd, 20),
            _ => None,
        }
        .ok_or_else(|| format!("'tkhd' at byte {} is damaged", trak.body))?;
        if id != track_id {
            continue;
        }
        let mdia = need(r, &trak, b"mdia")?;
        let hdlr = need(r, &mdia, b"hdlr")?;
        let hdlr = payload(r, &hdlr, 4096)?;
        if hdlr.get(8..12) != Some(b"vide".as_slice()) {
            return Ok(None);
        }
        let minf = need(r, &mdia, b"minf")?;
        let stbl = need(r, &minf, b"stbl")?;
        let stsd_box = need(r, &stbl, b"stsd")?;
        let stsd = payload(r, &stsd_box, MAX_STSD)?;
        let count = be32(&stsd, 4).ok_or_else(|| format!("'stsd' at byte {} is truncated", stsd_box.at))?;
        if count != 1 {
            return Ok(None);
        }
        let entry = be32(&stsd, 8).ok_or_else(|| format!("'stsd' at byte {} is truncated", stsd_box.at))?;
        // A sample entry: box header, 6 reserved bytes, the data reference index.
        if entry < 16 || entry as usize != stsd.len() - 8 {
            return Err(format!(
                "'stsd' at byte {}: a sample entry of {entry} bytes in a box of {}",
                stsd_box.at,
                stsd.len()
            ));
        }
        return Ok(Some(stsd));
    }
    Ok(None)
}

/// The sample entry type (`avc1`, `hvc1`, `mp4a`, …) of a sample description.
pub fn sample_entry_type(stsd: &[u8]) -> Option<[u8; 4]> {
    stsd.get(12..16).map(|k| [k[0], k[1], k[2], k[3]])
}

// ---- tables --------------------------------------------------------------------------------

fn run<T: PartialEq + Copy>(runs: &mut Vec<(u32, T)>, value: T) {
    match runs.last_mut() {
        Some((n, v)) if *v == value && *n < u32::MAX => *n += 1,
        _ => runs.push((1, value)),
    }
}

/// One track's sample timing, fed a sample at a time in decode order: run-length `stts` and
/// `ctts`, the sync samples, and what the edit list needs. Timestamps are in the track's
/// timescale.
#[derive(Debug, Default)]
pub struct SampleTable {
    count: u32,
    /// (count, duration); the last sample's is added by [`SampleTable::finish`].
    stts: Vec<(u32, u32)>,
    /// (count, composition offset).
    ctts: Vec<(u32, i32)>,
    /// Sync sample numbers (1-based), kept only once a sample is not a sync sample.
    sync: Vec<u32>,
    all_sync: bool,
    first: Option<(i64, i64)>,
    last_dts: i64,
    last_duration: u32,
    end_pts: i64,
    finished: bool,
}

impl SampleTable {
    pub fn new() -> SampleTable {
        SampleTable { all_sync: true, end_pts: i64::MIN, ..Default::default() }
    }

    /// Adds the next sample in decode order: decode and presentation time, its duration (used
    /// for the last sample and for where the presentation ends) and whether it is a sync sample.
    pub fn push(&mut self, dts: i64, pts: i64, duration: i64, sync: bool) -> Result<(), String> {
        let n = self.count.checked_add(1).ok_or("too many samples")?;
        match self.first {
            None => self.first = Some((dts, pts)),
            Some(_) => {
                let delta = dts
                    .checked_sub(self.last_dts)
                    .filter(|d| *d > 0)
                    .ok_or_else(|| format!("sample {n}: decode time {dts} does not follow {}", self.last_dts))?;
                let delta = u32::try_from(delta).map_err(|_| format!("sample {n}: a gap of {delta} ticks"))?;
                run(&mut self.stts, delta);
            }
        }
        if pts < dts {
            return Err(format!("sample {n}: presented ({pts}) before it is decoded ({dts})"));
        }
        let offset = i32::try_from(pts - dts).map_err(|_| format!("sample {n}: composition offset {}", pts - dts))?;
        run(&mut self.ctts, offset);
        if !sync && self.all_sync {
            self.all_sync = false;
            self.sync = (1..n).collect();
        } else if sync && !self.all_sync {
            self.sync.push(n);
        }
        let duration = duration.clamp(0, i64::from(u32::MAX));
        self.end_pts = self.end_pts.max(pts.saturating_add(duration));
        self.last_dts = dts;
        self.last_duration = duration as u32;
        self.count = n;
        Ok(())
    }

    /// Ends the table: the last sample lasts its own duration.
    pub fn finish(&mut self) {
        if self.count > 0 && !self.finished {
            run(&mut self.stts, self.last_duration);
            self.finished = true;
        }
    }

    /// Sum of the sample durations.
    pub fn media_duration(&self) -> u64 {
        self.stts.iter().map(|&(n, d)| u64::from(n) * u64::from(d)).sum()
    }

    /// The `mdhd` duration as FFmpeg writes it: from the first sample's presentation time to the
    /// latest presentation end (for the audio track, the sum of the sample durations; for a
    /// B-frame video, that sum plus the last sample's composition offset).
    pub fn presentation_span(&self) -> u64 {
        self.first.map_or(0, |(_, pts0)| (i128::from(self.end_pts) - i128::from(pts0)).max(0) as u64)
    }

    /// The edit list: (segment duration in [`MOVIE_TIMESCALE`], media time) pairs, by FFmpeg's
    /// rule. The presentation runs from the first sample's presentation time to the latest
    /// presentation end. A first sample presented after time zero gets an empty edit of that
    /// delay (media time -1) before its own, which starts at its composition offset. Otherwise
    /// (negative or zero), the media time is where time zero falls in the media (minus the
    /// first decode time, when that is negative: the priming of the MP3 track, or a B-frame
    /// stream's reorder delay) and the segment is shortened by the part before zero.
    pub fn edits(&self, timescale: u32) -> Vec<(u64, i64)> {
        let Some((dts0, pts0)) = self.first else { return Vec::new() };
        let ts = i128::from(timescale.max(1));
        let m = i128::from(MOVIE_TIMESCALE);
        let span = i128::from(self.end_pts) - i128::from(pts0);
        let duration = (span.max(0) * m + ts - 1).div_euclid(ts);
        let delay = (i128::from(pts0) * m).div_euclid(ts);
        if delay > 0 {
            vec![(delay as u64, -1), (duration as u64, pts0 - dts0)]
        } else {
            vec![((duration + delay).max(0) as u64, -dts0.min(0))]
        }
    }
}

/// One track's chunks in the order they are written: offsets relative to the start of the
/// `mdat` payload (rebased when the `moov` is built) and the run-length `stsc`.
#[derive(Debug, Default)]
pub struct Chunks {
    offsets: Vec<u64>,
    /// (first chunk, samples per chunk).
    stsc: Vec<(u32, u32)>,
}

impl Chunks {
    pub fn push(&mut self, offset: u64, samples: u32) {
        self.offsets.push(offset);
        if self.stsc.last().map(|&(_, n)| n) != Some(samples) {
            self.stsc.push((self.offsets.len() as u32, samples));
        }
    }

    fn last_offset(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0)
    }
}

// ---- writing -------------------------------------------------------------------------------

/// What kind of track, with what the track header needs.
#[derive(Clone, Copy, Debug)]
pub enum Handler {
    /// Width and height in pixels.
    Video {
        width: u32,
        height: u32,
    },
    Audio,
}

/// One track of the output.
pub struct Track<'a> {
    pub id: u32,
    pub handler: Handler,
    pub timescale: u32,
    /// The `stsd` payload (version and flags, entry count, entries).
    pub stsd: &'a [u8],
    pub samples: &'a SampleTable,
    /// Size of sample `i`.
    pub sizes: &'a dyn Fn(usize) -> u32,
    pub chunks: &'a Chunks,
}

/// A `moov` box in memory, its chunk offsets relative to the `mdat` payload until rebased.
pub struct Moov {
    pub bytes: Vec<u8>,
    /// Byte ranges of the chunk offset entries, and whether they are 64-bit.
    offsets: Vec<(Range<usize>, bool)>,
}

impl Moov {
    /// Adds `base` (where the `mdat` payload starts in the file) to every chunk offset.
    pub fn rebase(&mut self, base: u64) -> Result<(), String> {
        for (range, wide) in &self.offsets {
            let width = if *wide { 8 } else { 4 };
            for e in self.bytes[range.clone()].chunks_exact_mut(width) {
                if *wide {
                    let v = u64::from_be_bytes(e.try_into().map_err(|_| "offset entry")?) + base;
                    e.copy_from_slice(&v.to_be_bytes());
                } else {
                    let v = u64::from(u32::from_be_bytes(e.try_into().map_err(|_| "offset entry")?)) + base;
                    let v = u32::try_from(v).map_err(|_| "a chunk offset past 4 GiB in 'stco'")?;
                    e.copy_from_slice(&v.to_be_bytes());
                }
            }
        }
        Ok(())
    }
}

/// A box writer over a byte vector: boxes are opened, filled and closed (the size patched).
struct Buf(Vec<u8>);

impl Buf {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.0.resize(self.0.len() + n, 0);
    }
    fn open(&mut self, kind: &[u8; 4]) -> usize {
        let at = self.0.len();
        self.u32(0);
        self.bytes(kind);
        at
    }
    fn full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> usize {
        let at = self.open(kind);
        self.u32(u32::from(version) << 24 | (flags & 0xff_ffff));
        at
    }
    fn close(&mut self, at: usize) -> Result<(), String> {
        let size = u32::try_from(self.0.len() - at).map_err(|_| "a box over 4 GiB")?;
        self.0[at..at + 4].copy_from_slice(&size.to_be_bytes());
        Ok(())
    }
}

/// The unity matrix of `mvhd` and `tkhd`.
fn matrix(b: &mut Buf) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        b.u32(v);
    }
}

/// `ftyp`: isom (minor version 512), compatible with isom, iso2, `extra` (`avc1` for an H.264
/// video, as FFmpeg adds) and mp41.
pub fn ftyp(extra: Option<[u8; 4]>) -> Vec<u8> {
    let mut b = Buf(Vec::new());
    let at = b.open(b"ftyp");
    b.bytes(b"isom");
    b.u32(512);
    b.bytes(b"isomiso2");
    if let Some(k) = extra {
        b.bytes(&k);
    }
    b.bytes(b"mp41");
    let _ = b.close(at);
    b.0
}

/// The `mdat` header for `payload` bytes: 8 bytes, or 16 with a 64-bit size when needed.
pub fn mdat_header(payload: u64) -> Vec<u8> {
    match u32::try_from(payload + 8) {
        Ok(size) => [size.to_be_bytes().as_slice(), b"mdat"].concat(),
        Err(_) => [1u32.to_be_bytes().as_slice(), b"mdat", &(payload + 16).to_be_bytes()].concat(),
    }
}

/// The `stsd` payload of an MP3 track: `mp4a` (as an ISO file writes it: channel count 2 and
/// sample size 16 whatever the stream, the decoder reads the real ones from the frames) with
/// an `esds` and a `btrt`.
pub fn mp3_sample_description(es_id: u16, sample_rate: u32, max_bitrate: u32, avg_bitrate: u32) -> Vec<u8> {
    let mut b = Buf(Vec::new());
    b.u32(0);
    b.u32(1);
    let entry = b.open(b"mp4a");
    b.zeros(6);
    b.u16(1); // data reference index
    b.zeros(8); // version, revision, vendor
    b.u16(2);
    b.u16(16);
    b.u32(0); // compression id, packet size
    b.u32(if sample_rate < 0x1_0000 { sample_rate << 16 } else { 0 });
    let esds = b.full(b"esds", 0, 0);
    // Descriptor lengths in the 4-byte form, as FFmpeg writes them.
    let descriptor = |b: &mut Buf, tag: u8, len: u32| {
        b.u8(tag);
        b.bytes(&[0x80 | (len >> 21 & 0x7f) as u8, 0x80 | (len >> 14 & 0x7f) as u8, 0x80 | (len >> 7 & 0x7f) as u8]);
        b.u8((len & 0x7f) as u8);
    };
    descriptor(&mut b, 0x03, 3 + (5 + 13) + (5 + 1)); // ES_Descriptor
    b.u16(es_id);
    b.u8(0);
    descriptor(&mut b, 0x04, 13); // DecoderConfigDescriptor
    b.u8(if sample_rate > 24000 { 0x6B } else { 0x69 });
    b.u8(0x15); // audio stream, not upstream, reserved bit
    b.bytes(&[0, 0, 0]); // bufferSizeDB
    b.u32(max_bitrate);
    b.u32(avg_bitrate);
    descriptor(&mut b, 0x06, 1); // SLConfigDescriptor: predefined MP4
    b.u8(2);
    let _ = b.close(esds);
    let btrt = b.open(b"btrt");
    b.u32(0);
    b.u32(max_bitrate);
    b.u32(avg_bitrate);
    let _ = b.close(btrt);
    let _ = b.close(entry);
    b.0
}

fn wide(v: u64) -> bool {
    v >= i32::MAX as u64
}

/// The `moov` for `tracks`, its chunk offsets relative to the `mdat` payload, in `co64` boxes
/// when `co64` (else `stco`). The tracks' sample tables must be finished.
pub fn moov(tracks: &[Track<'_>], co64: bool) -> Result<Moov, String> {
    let mut b = Buf(Vec::new());
    let mut offsets = Vec::new();
    let moov = b.open(b"moov");
    let durations: Vec<u64> = tracks.iter().map(|t| t.samples.edits(t.timescale).iter().map(|e| e.0).sum()).collect();
    let movie = durations.iter().copied().max().unwrap_or(0);
    let v = u8::from(wide(movie));
    let mvhd = b.full(b"mvhd", v, 0);
    if v == 1 {
        b.zeros(16);
        b.u32(MOVIE_TIMESCALE);
        b.u64(movie);
    } else {
        b.zeros(8);
        b.u32(MOVIE_TIMESCALE);
        b.u32(movie as u32);
    }
    b.u32(0x0001_0000); // rate 1.0
    b.u16(0x0100); // volume 1.0
    b.zeros(10);
    matrix(&mut b);
    b.zeros(24);
    b.u32(tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1);
    b.close(mvhd)?;
    for (t, &duration) in tracks.iter().zip(&durations) {
        track(&mut b, t, duration, co64, &mut offsets)?;
    }
    b.close(moov)?;
    Ok(Moov { bytes: b.0, offsets })
}

fn track(
    b: &mut Buf,
    t: &Track<'_>,
    duration: u64,
    co64: bool,
    offsets: &mut Vec<(Range<usize>, bool)>,
) -> Result<(), String> {
    let s = t.samples;
    let trak = b.open(b"trak");
    let v = u8::from(wide(duration));
    let tkhd = b.full(b"tkhd", v, 0x3);
    if v == 1 {
        b.zeros(16);
        b.u32(t.id);
        b.u32(0);
        b.u64(duration);
    } else {
        b.zeros(8);
        b.u32(t.id);
        b.u32(0);
        b.u32(duration as u32);
    }
    b.zeros(8);
    b.u16(0); // layer
    match t.handler {
        Handler::Video { .. } => {
            b.u16(0);
            b.u16(0);
        }
        Handler::Audio => {
            b.u16(1); // alternate group
            b.u16(0x0100); // volume
        }
    }
    b.u16(0);
    matrix(b);
    let (w, h) = match t.handler {
        Handler::Video { width, height } => (width, height),
        Handler::Audio => (0, 0),
    };
    let fixed = |v: u32| u32::try_from(u64::from(v) << 16).unwrap_or(0);
    b.u32(fixed(w));
    b.u32(fixed(h));
    b.close(tkhd)?;

    let edts = b.open(b"edts");
    let edits = s.edits(t.timescale);
    let v = u8::from(edits.iter().any(|&(d, m)| wide(d) || wide(m.unsigned_abs())));
    let elst = b.full(b"elst", v, 0);
    b.u32(edits.len() as u32);
    for (d, m) in edits {
        if v == 1 {
            b.u64(d);
            b.u64(m as u64);
        } else {
            b.u32(d as u32);
            b.u32(m as i32 as u32);
        }
        b.u32(0x0001_0000); // media rate 1.0
    }
    b.close(elst)?;
    b.close(edts)?;

    let mdia = b.open(b"mdia");
    let media = s.presentation_span();
    let v = u8::from(wide(media));
    let mdhd = b.full(b"mdhd", v, 0);
    if v == 1 {
        b.zeros(16);
        b.u32(t.timescale);
        b.u64(media);
    } else {
        b.zeros(8);
        b.u32(t.timescale);
        b.u32(media as u32);
    }
    b.u16(0x55c4); // "und"
    b.u16(0);
    b.close(mdhd)?;
    let (kind, name): (&[u8; 4], &[u8]) = match t.handler {
        Handler::Video { .. } => (b"vide", b"VideoHandler\0"),
        Handler::Audio => (b"soun", b"SoundHandler\0"),
    };
    let hdlr = b.full(b"hdlr", 0, 0);
    b.u32(0);
    b.bytes(kind);
    b.zeros(12);
    b.bytes(name);
    b.close(hdlr)?;

    let minf = b.open(b"minf");
    match t.handler {
        Handler::Video { .. } => {
            let vmhd = b.full(b"vmhd", 0, 1);
            b.zeros(8);
            b.close(vmhd)?;
        }
        Handler::Audio => {
            let smhd = b.full(b"smhd", 0, 0);
            b.zeros(4);
            b.close(smhd)?;
        }
    }
    let dinf = b.open(b"dinf");
    let dref = b.full(b"dref", 0, 0);
    b.u32(1);
    let url = b.full(b"url ", 0, 1); // the media is in this file
    b.close(url)?;
    b.close(dref)?;
    b.close(dinf)?;

    let stbl = b.open(b"stbl");
    let stsd = b.open(b"stsd");
    b.bytes(t.stsd);
    b.close(stsd)?;

    let stts = b.full(b"stts", 0, 0);
    b.u32(s.stts.len() as u32);
    for &(n, d) in &s.stts {
        b.u32(n);
        b.u32(d);
    }
    b.close(stts)?;

    if !s.all_sync && !s.sync.is_empty() {
        let stss = b.full(b"stss", 0, 0);
        b.u32(s.sync.len() as u32);
        for &n in &s.sync {
            b.u32(n);
        }
        b.close(stss)?;
    }

    if s.ctts.iter().any(|&(_, o)| o != 0) {
        let negative = s.ctts.iter().any(|&(_, o)| o < 0);
        let ctts = b.full(b"ctts", u8::from(negative), 0);
        b.u32(s.ctts.len() as u32);
        for &(n, o) in &s.ctts {
            b.u32(n);
            b.u32(o as u32);
        }
        b.close(ctts)?;
    }

    let stsc = b.full(b"stsc", 0, 0);
    b.u32(t.chunks.stsc.len() as u32);
    for &(first, n) in &t.chunks.stsc {
        b.u32(first);
        b.u32(n);
        b.u32(1); // sample description index
    }
    b.close(stsc)?;

    let stsz = b.full(b"stsz", 0, 0);
    let count = s.count as usize;
    let first = if count > 0 { (t.sizes)(0) } else { 0 };
    let constant = (1..count).all(|i| (t.sizes)(i) == first);
    if constant && count > 0 {
        b.u32(first);
        b.u32(s.count);
    } else {
        b.u32(0);
        b.u32(s.count);
        b.0.reserve(count * 4);
        for i in 0..count {
            b.u32((t.sizes)(i));
        }
    }
    b.close(stsz)?;

    let co = b.full(if co64 { b"co64" } else { b"stco" }, 0, 0);
    b.u32(t.chunks.offsets.len() as u32);
    let start = b.0.len();
    for &o in &t.chunks.offsets {
        if co64 {
            b.u64(o);
        } else {
            b.u32(u32::try_from(o).map_err(|_| "a chunk offset past 4 GiB in 'stco'")?);
        }
    }
    offsets.push((start..b.0.len(), co64));
    b.close(co)?;

    b.close(stbl)?;
    b.close(minf)?;
    b.close(mdia)?;
    b.close(trak)?;
    Ok(())
}

/// The `moov` for `tracks` with its chunk offsets pointing into an `mdat` of `mdat_payload`
/// bytes that follows `ftyp_len` bytes of `ftyp` and the `moov` itself: `co64` only when some
/// offset needs it.
pub fn placed_moov(tracks: &[Track<'_>], ftyp_len: u64, mdat_payload: u64) -> Result<Moov, String> {
    let header = mdat_header(mdat_payload).len() as u64;
    let last = tracks.iter().map(|t| t.chunks.last_offset()).max().unwrap_or(0);
    let fits = |moov_len: usize| ftyp_len + moov_len as u64 + header + last <= u64::from(u32::MAX);
    let co64 = last > u64::from(u32::MAX);
    let mut m = moov(tracks, co64)?;
    if !co64 && !fits(m.bytes.len()) {
        m = moov(tracks, true)?;
    }
    let base = ftyp_len + m.bytes.len() as u64 + header;
    m.rebase(base)?;
    Ok(m)
}

/// The leaf boxes of an MP4 file in memory, each with its path (`moov/trak/mdia/…`) and payload
/// (for comparing outputs in tests).
#[cfg(test)]
pub(super) fn leaf_boxes(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    fn walk(
        r: &mut std::io::Cursor<&[u8]>,
        at: u64,
        end: u64,
        path: &str,
        out: &mut Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        let mut at = at;
        while at < end {
            let b = read_box(r, at, end)?;
            let p = if path.is_empty() { kind_str(&b.kind) } else { format!("{path}/{}", kind_str(&b.kind)) };
            if [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts"].contains(&&b.kind) {
                walk(r, b.body, b.end, &p, out)?;
            } else {
                out.push((p, payload(r, &b, u64::MAX)?));
            }
            at = b.end;
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(&mut std::io::Cursor::new(data), 0, data.len() as u64, "", &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        [((body.len() + 8) as u32).to_be_bytes().as_slice(), kind, body].concat()
    }

    fn full(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        boxed(kind, &[&[0u8, 0, 0, 0], body].concat())
    }

    fn tkhd(id: u32) -> Vec<u8> {
        let mut b = vec![0u8; 80];
        b[8..12].copy_from_slice(&id.to_be_bytes());
        full(b"tkhd", &b)
    }

    fn hdlr(kind: &[u8; 4]) -> Vec<u8> {
        full(b"hdlr", &[&[0u8; 4], kind.as_slice(), &[0u8; 12], b"X\0"].concat())
    }

    fn stsd(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = (entries.len() as u32).to_be_bytes().to_vec();
        for e in entries {
            body.extend_from_slice(e);
        }
        full(b"stsd", &body)
    }

    fn avc1() -> Vec<u8> {
        boxed(b"avc1", &[0, 0, 0, 0, 0, 0, 0, 1, 9, 9, 9, 9])
    }

    fn trak(id: u32, handler: &[u8; 4], stsd: &[u8]) -> Vec<u8> {
        let stbl = boxed(b"stbl", &[stsd, &full(b"stts", &[0, 0, 0, 0])].concat());
        let minf = boxed(b"minf", &[full(b"vmhd", &[0; 8]), stbl].concat());
        let mdia = boxed(b"mdia", &[full(b"mdhd", &[0; 20]), hdlr(handler), minf].concat());
        boxed(b"trak", &[tkhd(id), mdia].concat())
    }

    fn file(traks: &[Vec<u8>]) -> Vec<u8> {
        let ftyp = boxed(b"ftyp", b"isom\0\0\x02\0isom");
        let moov = boxed(b"moov", &[full(b"mvhd", &[0; 96]), traks.concat()].concat());
        [ftyp, boxed(b"free", b""), moov, boxed(b"mdat", b"0123456789")].concat()
    }

    fn parse(data: &[u8], id: u32) -> Result<Option<Vec<u8>>, String> {
        video_sample_description(&mut Cursor::new(data), data.len() as u64, id)
    }

    #[test]
    fn finds_the_video_tracks_sample_description() {
        let data = file(&[trak(1, b"soun", &stsd(&[&avc1()])), trak(2, b"vide", &stsd(&[&avc1()]))]);
        let got = parse(&data, 2).unwrap().unwrap();
        assert_eq!(got, [&[0u8, 0, 0, 0, 0, 0, 0, 1], avc1().as_slice()].concat());
        assert_eq!(sample_entry_type(&got), Some(*b"avc1"));
        // The audio track, a missing track, two sample entries: not ours to copy.
        assert_eq!(parse(&data, 1).unwrap(), None);
        assert_eq!(parse(&data, 7).unwrap(), None);
        let two = file(&[trak(1, b"vide", &stsd(&[&avc1(), &avc1()]))]);
        assert_eq!(parse(&two, 1).unwrap(), None);
    }

    #[test]
    fn large_and_open_ended_sizes_are_read() {
        // moov with a 64-bit size, then an mdat that runs to the end of the file (size 0).
        let inner = [full(b"mvhd", &[0; 96]), trak(1, b"vide", &stsd(&[&avc1()]))].concat();
        let moov =
            [1u32.to_be_bytes().as_slice(), b"moov", &((inner.len() + 16) as u64).to_be_bytes(), &inner].concat();
        let data = [boxed(b"ftyp", b"isom"), moov, [0, 0, 0, 0].to_vec(), b"mdat12345".to_vec()].concat();
        assert!(parse(&data, 1).unwrap().is_some());
    }

    #[test]
    fn damaged_boxes_are_errors_not_panics() {
        let good = file(&[trak(1, b"vide", &stsd(&[&avc1()]))]);
        let moov_at = good.windows(4).position(|w| w == b"moov").unwrap() - 4;
        // Cut anywhere inside the moov: an error (or, cut inside the mdat after it, a result).
        for cut in 0..good.len() {
            let r = parse(&good[..cut], 1);
            if cut < moov_at + u32::from_be_bytes(good[moov_at..moov_at + 4].try_into().unwrap()) as usize {
                assert!(r.is_err(), "cut at {cut}: {r:?}");
            }
        }
        // Garbage, sizes that are too small or too large, nested boxes bigger than their parent.
        assert!(parse(b"definitely not a video", 1).is_err());
        assert!(parse(&[0u8; 64], 1).is_err());
        let mut tiny = good.clone();
        tiny[moov_at..moov_at + 4].copy_from_slice(&4u32.to_be_bytes());
        assert!(parse(&tiny, 1).is_err());
        let mut huge = good.clone();
        huge[moov_at..moov_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse(&huge, 1).unwrap_err().contains("moov"));
        let trak_at = good.windows(4).position(|w| w == b"trak").unwrap() - 4;
        let mut big_child = good.clone();
        big_child[trak_at..trak_at + 4].copy_from_slice(&0x7fff_fff0u32.to_be_bytes());
        assert!(parse(&big_child, 1).is_err());
        let mut large = good.clone();
        large[moov_at..moov_at + 4].copy_from_slice(&1u32.to_be_bytes());
        assert!(parse(&large, 1).is_err());
        // A track without stsd, a sample entry whose size disagrees with its box.
        let no_stsd = file(&[trak(1, b"vide", &full(b"free", &[]))]);
        assert!(parse(&no_stsd, 1).unwrap_err().contains("stsd"));
        let mut entry = avc1();
        entry[3] = 200;
        let bad_entry = file(&[trak(1, b"vide", &stsd(&[&entry]))]);
        assert!(parse(&bad_entry, 1).is_err());
        let short_tkhd = file(&[boxed(b"trak", &full(b"tkhd", &[0; 4]))]);
        assert!(parse(&short_tkhd, 1).unwrap_err().contains("tkhd"));
        // Any byte flipped to 0xff somewhere in the moov: a result or an error, never a panic.
        for i in moov_at..good.len() {
            let mut d = good.clone();
            d[i] = 0xff;
            let _ = parse(&d, 1);
        }
    }

    #[test]
    fn tables_are_run_length() {
        let mut s = SampleTable::new();
        // Two B-frame style samples then steady ones; a non-sync sample at 3.
        for (i, (dts, pts, key)) in
            [(-2, 0, true), (-1, 2, true), (0, 1, false), (1, 3, true), (2, 4, true)].into_iter().enumerate()
        {
            s.push(dts, pts, 1, key).unwrap_or_else(|e| panic!("{i}: {e}"));
        }
        s.finish();
        assert_eq!(s.stts, vec![(5, 1)]);
        assert_eq!(s.ctts, vec![(1, 2), (1, 3), (1, 1), (2, 2)]);
        assert_eq!(s.sync, vec![1, 2, 4, 5]);
        assert_eq!(s.media_duration(), 5);
        assert!(s.push(2, 5, 1, true).is_err(), "decode times must increase");
        assert!(SampleTable::new().push(5, 4, 1, true).is_err(), "presented before decoded");
    }

    #[test]
    fn edit_lists_follow_ffmpeg() {
        // MP3 at 16 kHz: first frame at -1105, 144000 real samples.
        let mut a = SampleTable::new();
        let frames = (144_000 + 1105 + 575) / 576;
        for i in 0..frames {
            let ts = i as i64 * 576 - 1105;
            let left = 144_000 - ts;
            a.push(ts, ts, if i + 1 == frames { left.min(576) } else { 576 }, true).unwrap();
        }
        a.finish();
        assert_eq!(a.edits(16000), vec![(9000, 1105)]);
        assert_eq!((a.media_duration(), a.presentation_span()), (145_105, 145_105));
        assert_eq!(a.stts.len(), 2);
        // Video presented from 0.2 s with a reorder delay: an empty edit, then the composition
        // offset of the first sample.
        let mut v = SampleTable::new();
        v.push(-2048, 2048, 2048, true).unwrap();
        v.push(0, 10240, 2048, false).unwrap();
        v.push(2048, 6144, 81920 - 6144, false).unwrap();
        v.finish();
        assert_eq!(v.edits(10240), vec![(200, -1), (7800, 4096)]);
        assert_eq!(v.presentation_span(), 79872);
        // Presented from 0 with dts starting below zero: media time skips the reorder delay.
        let mut w = SampleTable::new();
        w.push(-4096, 0, 2048, true).unwrap();
        w.push(-2048, 8192, 2048, false).unwrap();
        w.finish();
        assert_eq!(w.edits(10240), vec![(1000, 4096)]);
    }

    #[test]
    fn moov_offsets_are_rebased_and_widened_when_needed() {
        let mut s = SampleTable::new();
        s.push(0, 0, 10, true).unwrap();
        s.push(10, 10, 10, true).unwrap();
        s.finish();
        let mut c = Chunks::default();
        c.push(0, 1);
        c.push(100, 1);
        let sizes = |_: usize| 100u32;
        let stsd = mp3_sample_description(1, 16000, 32000, 32000);
        let t = Track {
            id: 1,
            handler: Handler::Audio,
            timescale: 16000,
            stsd: &stsd,
            samples: &s,
            sizes: &sizes,
            chunks: &c,
        };
        let m = placed_moov(std::slice::from_ref(&t), 32, 200).unwrap();
        let at = m.bytes.windows(4).position(|w| w == b"stco").unwrap();
        let base = 32 + m.bytes.len() as u32 + 8;
        assert_eq!(be32(&m.bytes, at + 8), Some(2));
        assert_eq!((be32(&m.bytes, at + 12), be32(&m.bytes, at + 16)), (Some(base), Some(base + 100)));
        let stsz = m.bytes.windows(4).position(|w| w == b"stsz").unwrap();
        assert_eq!((be32(&m.bytes, stsz + 8), be32(&m.bytes, stsz + 12)), (Some(100), Some(2)), "constant size");
        // An mdat past 4 GiB: co64 and a 64-bit mdat size.
        let mut far = Chunks::default();
        far.push(0, 1);
        far.push(5 << 30, 1);
        let t = Track { chunks: &far, ..t };
        let m = placed_moov(std::slice::from_ref(&t), 32, 6 << 30).unwrap();
        let at = m.bytes.windows(4).position(|w| w == b"co64").unwrap();
        let base = 32 + m.bytes.len() as u64 + 16;
        let off = |i: usize| u64::from_be_bytes(m.bytes[at + 12 + 8 * i..at + 20 + 8 * i].try_into().unwrap());
        assert_eq!((off(0), off(1)), (base, base + (5 << 30)));
        assert_eq!(mdat_header(6 << 30).len(), 16);
        assert_eq!(mdat_header(100), [0, 0, 0, 108, b'm', b'd', b'a', b't']);
    }

    #[test]
    fn mp3_sample_entry_matches_ffmpeg() {
        // FFmpeg 5.1's mp4a for a 16 kHz MP3 track 2 at 32,010 bit/s.
        let want = "000000646d7034610000000000000001000000000000000000020010000000003e800000\
                    0000002c6573647300000000038080801b000200048080800d691500000000007d0a00007d0a\
                    06808080010200000014627472740000000000007d0a00007d0a";
        let got = mp3_sample_description(2, 16000, 32010, 32010);
        let hex: String = got[8..].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want.replace(' ', ""));
        assert_eq!(mp3_sample_description(2, 44100, 1, 1)[8 + 36 + 12 + 5 + 3 + 5], 0x6B);
    }
}
