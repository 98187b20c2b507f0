//! The media pipeline on real files: inputs generated with the ffmpeg CLI, output checked with
//! ffprobe and by decoding it back with ffmpeg (the external oracles).

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Duration, TimeZone, Utc};
use reclife::media::{mux, MediaError, MuxOptions, ScreenVideo, VoiceSegment};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 10, 9, 15, 0).unwrap()
}

fn at(ms: i64) -> DateTime<Utc> {
    t0() + Duration::milliseconds(ms)
}

fn ffmpeg(args: &[&str]) {
    let st = Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).status().unwrap();
    assert!(st.success(), "ffmpeg {args:?}");
}

/// A tone file: `freq` Hz for `secs` seconds at `rate`, `channels` channels, as MP3 (`.mp3`) or
/// 16-bit WAV (`.wav`). With `lead_ms`, silence first.
fn tone(dir: &Path, name: &str, freq: u32, secs: f64, rate: u32, channels: u32, lead_ms: u32) -> PathBuf {
    let path = dir.join(name);
    let src = format!("sine=frequency={freq}:sample_rate={rate}:duration={secs}");
    let ac = channels.to_string();
    let mut args = vec!["-f", "lavfi", "-i", &src, "-ac", &ac];
    let delay = format!("adelay={lead_ms}:all=1");
    if lead_ms > 0 {
        args.extend(["-af", &delay]);
    }
    if name.ends_with(".mp3") {
        args.extend(["-c:a", "libmp3lame", "-b:a", "32k"]);
    } else {
        args.extend(["-c:a", "pcm_s16le"]);
    }
    let p = path.to_str().unwrap().to_string();
    args.push(&p);
    ffmpeg(&args);
    path
}

/// Screen video: `secs` seconds of test pattern at 5 fps, H.264, like a screen recorder's.
fn screen(dir: &Path, secs: u32) -> PathBuf {
    let path = dir.join("screen.mp4");
    let src = format!("testsrc=size=320x240:rate=5:duration={secs}");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &src,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        path.to_str().unwrap(),
    ]);
    path
}

fn probe(path: &Path) -> serde_json::Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_streams", "-show_format", "-count_packets"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn stream<'a>(p: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    p["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["codec_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} stream"))
}

fn num(v: &serde_json::Value) -> f64 {
    v.as_str().and_then(|s| s.parse().ok()).or(v.as_f64()).unwrap_or(f64::NAN)
}

/// The output's audio decoded by ffmpeg (edit list honoured) to mono f32 at 16 kHz.
fn decoded_audio(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "decode failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// (ffmpeg's `sine` source has amplitude 1/8.)
/// Amplitude of `freq` in `x` (Goertzel), normalised so a full-window sine of amplitude A gives A.
fn goertzel(x: &[f32], freq: f64, rate: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / rate;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &v in x {
        let s = f64::from(v) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - c * s1 * s2;
    2.0 * power.sqrt() / x.len() as f64
}

const RATE: f64 = 16000.0;
const WIN: usize = 160; // 10 ms

/// Tone amplitude in the 10 ms window centred at `ms`.
fn level_at(pcm: &[f32], freq: f64, ms: f64) -> f64 {
    let c = (ms / 1000.0 * RATE) as usize;
    let s = c.saturating_sub(WIN / 2).min(pcm.len().saturating_sub(WIN));
    goertzel(&pcm[s..s + WIN], freq, RATE)
}

/// Where `freq` first reaches half its steady level (measured at `steady_ms`), searching from
/// `from_ms`, in ms: the onset, to about a millisecond.
fn onset(pcm: &[f32], freq: f64, from_ms: f64, steady_ms: f64) -> f64 {
    let steady = level_at(pcm, freq, steady_ms);
    assert!(steady > 0.05, "no {freq} Hz tone at {steady_ms} ms (level {steady})");
    let mut ms = from_ms;
    while ms < steady_ms {
        if level_at(pcm, freq, ms) >= steady / 2.0 {
            return ms;
        }
        ms += 0.25;
    }
    panic!("{freq} Hz never rose between {from_ms} and {steady_ms} ms");
}

fn assert_near(what: &str, got: f64, want: f64, tol: f64) {
    eprintln!("{what}: {got} (want {want} ± {tol})");
    assert!((got - want).abs() <= tol, "{what}: got {got}, want {want} ± {tol}");
}

/// moov before mdat, found by walking the top-level boxes.
fn moov_first(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    let mut i = 0usize;
    while i + 8 <= data.len() {
        let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
        match &data[i + 4..i + 8] {
            b"moov" => return true,
            b"mdat" => return false,
            _ => {}
        }
        if size < 8 {
            return false;
        }
        i += size;
    }
    false
}

/// The output decodes end to end without a single error.
fn decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-xerror", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "decode errors: {}", String::from_utf8_lossy(&out.stderr));
}

/// A temporary directory, kept for inspection when MEDIA_TEST_KEEP is set.
fn workdir() -> tempfile::TempDir {
    let mut b = tempfile::Builder::new();
    b.prefix("media-test-");
    b.disable_cleanup(std::env::var_os("MEDIA_TEST_KEEP").is_some());
    b.tempdir().unwrap()
}

fn voice(path: PathBuf, start_ms: i64) -> VoiceSegment {
    VoiceSegment { path, start: at(start_ms), stop: None }
}

#[test]
fn segments_play_at_their_offsets_and_video_is_padded_both_ends() {
    let dir = workdir();
    let d = dir.path();
    // Video 10 s from +2.0 s; voices: 8 kHz mono MP3 at 0, 8 kHz WAV at +5.0 s, 16 kHz stereo MP3
    // at +9.5 s running to +12.5 s: audio starts before and ends after the video.
    let video = ScreenVideo { path: screen(d, 10), start: at(2000), stop: Some(at(12000)) };
    let voices = vec![
        voice(tone(d, "a.mp3", 1000, 3.0, 8000, 1, 0), 0),
        voice(tone(d, "b.wav", 1800, 2.0, 8000, 1, 0), 5000),
        voice(tone(d, "c.mp3", 2600, 3.0, 16000, 2, 0), 9500),
    ];
    let out = d.join("out/muxed.mp4");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let report = mux(&video, &voices, &out, &MuxOptions::default()).unwrap();
    assert_eq!(report.output_start, t0());
    assert_eq!(report.duration_ms, 12500);
    assert!(report.audio_reencoded);
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());

    let p = probe(&out);
    assert_eq!(p["streams"].as_array().unwrap().len(), 2);
    let v = stream(&p, "video");
    let a = stream(&p, "audio");
    assert_eq!(v["codec_name"], "h264");
    assert_eq!(a["codec_name"], "mp3");
    assert_eq!(a["sample_rate"], "16000", "8 kHz voice must be resampled to an MP4-legal rate");
    assert_eq!(a["channels"], 2);
    assert_near("video start", num(&v["start_time"]), 0.0, 0.001);
    assert_near("audio start", num(&a["start_time"]), 0.0, 0.001);
    // ffprobe's stream duration is the decode span, which for this B-frame stream is the
    // presentation span minus the last packet's reorder delay: the unpadded video would end by
    // 12.0 s, the padded one reaches the end within two frames.
    assert_near("video duration", num(&v["duration"]), 12.3, 0.21);
    assert_near("file duration", num(&p["format"]["duration"]), 12.5, 0.1);
    // 50 frames copied plus the held first frame for the 2 s lead-in (one 5 s slice).
    assert_eq!(v["nb_read_packets"], "51");
    assert!(moov_first(&out), "moov must precede mdat");
    decodes_cleanly(&out);

    let pcm = decoded_audio(&out);
    assert_near("audio length (s)", pcm.len() as f64 / RATE, 12.5, 0.05);
    assert_near("segment a onset (ms)", onset(&pcm, 1000.0, 0.0, 1500.0), 0.0, 20.0);
    assert_near("segment b onset (ms)", onset(&pcm, 1800.0, 4000.0, 6000.0), 5000.0, 20.0);
    assert_near("segment c onset (ms)", onset(&pcm, 2600.0, 8500.0, 11000.0), 9500.0, 20.0);
    // Gaps are silence.
    assert!(level_at(&pcm, 1000.0, 4000.0) < 0.01 && level_at(&pcm, 1800.0, 8000.0) < 0.01);
}

#[test]
fn video_longer_than_voice_keeps_its_frames_and_voice_lands_inside() {
    let dir = workdir();
    let d = dir.path();
    let video = ScreenVideo { path: screen(d, 8), start: at(0), stop: None };
    let voices = vec![voice(tone(d, "a.wav", 1200, 2.0, 16000, 1, 0), 3250)];
    let out = d.join("m.mp4");
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let opts = MuxOptions { temp_dir: Some(tmp.clone()), ..Default::default() };
    let report = mux(&video, &voices, &out, &opts).unwrap();
    assert_eq!((report.output_start, report.duration_ms), (t0(), 8000));
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "temp_dir holds nothing after the rename");
    let p = probe(&out);
    assert_eq!(stream(&p, "video")["nb_read_packets"], "40", "no padding needed: frames copied as they are");
    assert_eq!(stream(&p, "audio")["channels"], 1);
    let pcm = decoded_audio(&out);
    assert_near("onset (ms)", onset(&pcm, 1200.0, 2000.0, 4250.0), 3250.0, 20.0);
    decodes_cleanly(&out);
}

/// Speech is never dropped: through a one-second overlap both segments are heard, whatever
/// `max_overlap_allowed` says (it governs fill, never recordings).
#[test]
fn overlapping_segments_are_both_heard_whatever_max_overlap_allowed() {
    let dir = workdir();
    let d = dir.path();
    let video = ScreenVideo { path: screen(d, 6), start: at(0), stop: None };
    // a: 0..4 s, b: 3..6 s: one second of overlap.
    let voices =
        vec![voice(tone(d, "a.mp3", 1000, 4.0, 8000, 1, 0), 0), voice(tone(d, "b.mp3", 2200, 3.0, 8000, 1, 0), 3000)];
    for max in [0, 500, 1000] {
        let out = d.join(format!("m{max}.mp4"));
        mux(&video, &voices, &out, &MuxOptions { max_overlap_allowed_ms: max, ..Default::default() }).unwrap();
        let pcm = decoded_audio(&out);
        assert!(level_at(&pcm, 1000.0, 2500.0) > 0.08, "max {max}: a plays before the overlap");
        assert!(level_at(&pcm, 1000.0, 3500.0) > 0.05, "max {max}: a is still heard in the overlap");
        assert!(level_at(&pcm, 2200.0, 3500.0) > 0.05, "max {max}: and b too");
        assert!(level_at(&pcm, 1000.0, 4500.0) < 0.01, "max {max}: a ends at its own end");
        assert_near("b onset (ms)", onset(&pcm, 2200.0, 2000.0, 4500.0), 3000.0, 20.0);
        let peak = pcm.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak < 0.999, "max {max}: no clipping (peak {peak})");
    }
}

#[test]
fn mixed_rates_and_stereo_are_resampled_in_sync() {
    let dir = workdir();
    let d = dir.path();
    let video = ScreenVideo { path: screen(d, 5), start: at(0), stop: None };
    let voices =
        vec![voice(tone(d, "a.wav", 900, 2.0, 44100, 2, 0), 500), voice(tone(d, "b.mp3", 2000, 2.0, 8000, 1, 0), 2750)];
    let out = d.join("m.mp4");
    mux(&video, &voices, &out, &MuxOptions::default()).unwrap();
    let p = probe(&out);
    let a = stream(&p, "audio");
    assert_eq!((a["sample_rate"].as_str(), a["channels"].as_i64()), (Some("22050"), Some(2)));
    let pcm = decoded_audio(&out);
    assert_near("44.1 kHz stereo onset", onset(&pcm, 900.0, 0.0, 1500.0), 500.0, 20.0);
    assert_near("8 kHz mono onset", onset(&pcm, 2000.0, 2000.0, 3750.0), 2750.0, 20.0);
}

#[test]
fn fast_path_copies_a_single_legal_mp3_and_keeps_sync() {
    let dir = workdir();
    let d = dir.path();
    // 16 kHz MP3 starting 0.5 s before the video; its tone begins 1.0 s into the file.
    let voices = vec![voice(tone(d, "a.mp3", 1500, 4.0, 16000, 1, 1000), 0)];
    let video = ScreenVideo { path: screen(d, 4), start: at(500), stop: None };
    let out = d.join("m.mp4");
    let report = mux(&video, &voices, &out, &MuxOptions::default()).unwrap();
    assert!(!report.audio_reencoded, "frames should have been copied");
    assert_eq!(report.duration_ms, 5000);
    let p = probe(&out);
    assert_eq!(stream(&p, "audio")["sample_rate"], "16000");
    // Held first frame for 0.5 s, last frame held to 5.0 s (decode span: see the first test).
    assert_near("video duration", num(&stream(&p, "video")["duration"]), 4.8, 0.21);
    assert_near("file duration", num(&p["format"]["duration"]), 5.0, 0.05);
    assert!(moov_first(&out));
    decodes_cleanly(&out);
    let pcm = decoded_audio(&out);
    assert_near("onset (ms)", onset(&pcm, 1500.0, 0.0, 2000.0), 1000.0, 20.0);
}

#[test]
fn bad_inputs_give_errors_naming_the_file_and_leave_no_output() {
    let dir = workdir();
    let d = dir.path();
    let video_path = screen(d, 4);
    let video = ScreenVideo { path: video_path.clone(), start: at(0), stop: None };
    let good = tone(d, "good.mp3", 1000, 3.0, 8000, 1, 0);
    let out = d.join("m.mp4");

    // Truncated MP3: the second half cut off.
    let data = std::fs::read(&good).unwrap();
    let cut = d.join("cut.mp3");
    std::fs::write(&cut, &data[..data.len() / 2 + 7]).unwrap();
    let e = mux(&video, &[voice(cut.clone(), 0)], &out, &MuxOptions::default()).unwrap_err();
    assert!(matches!(e, MediaError::Audio { .. }), "{e}");
    assert_eq!(e.path(), Some(cut.as_path()));
    assert!(e.to_string().contains("cut.mp3") && e.to_string().contains("truncated"), "{e}");

    // Garbage voice.
    let junk = d.join("junk.wav");
    std::fs::write(&junk, vec![0x5Au8; 10_000]).unwrap();
    let e = mux(&video, &[voice(junk.clone(), 0)], &out, &MuxOptions::default()).unwrap_err();
    assert!(matches!(e, MediaError::Audio { .. }) && e.to_string().contains("junk.wav"), "{e}");

    // Missing voice file.
    let e = mux(&video, &[voice(d.join("nope.mp3"), 0)], &out, &MuxOptions::default()).unwrap_err();
    assert!(e.to_string().contains("nope.mp3"), "{e}");

    // Truncated MP4, moov first: the index promises frames the file no longer holds.
    let fast = d.join("fast.mp4");
    ffmpeg(&["-i", video_path.to_str().unwrap(), "-c", "copy", "-movflags", "+faststart", fast.to_str().unwrap()]);
    let data = std::fs::read(&fast).unwrap();
    let cut_mp4 = d.join("cut.mp4");
    std::fs::write(&cut_mp4, &data[..data.len() * 6 / 10]).unwrap();
    let v = ScreenVideo { path: cut_mp4.clone(), start: at(0), stop: None };
    let e = mux(&v, &[voice(good.clone(), 0)], &out, &MuxOptions::default()).unwrap_err();
    assert!(matches!(e, MediaError::Video { .. }) && e.to_string().contains("cut.mp4"), "{e}");

    // Truncated MP4, moov last (the usual recorder output cut short): no index at all.
    let data = std::fs::read(&video_path).unwrap();
    let cut_tail = d.join("cut-tail.mp4");
    std::fs::write(&cut_tail, &data[..data.len() - 200]).unwrap();
    let v = ScreenVideo { path: cut_tail.clone(), start: at(0), stop: None };
    let e = mux(&v, &[voice(good.clone(), 0)], &out, &MuxOptions::default()).unwrap_err();
    assert!(matches!(e, MediaError::Video { .. }) && e.to_string().contains("cut-tail.mp4"), "{e}");

    // Garbage MP4.
    let junk_mp4 = d.join("junk.mp4");
    std::fs::write(&junk_mp4, b"definitely not a video").unwrap();
    let v = ScreenVideo { path: junk_mp4, start: at(0), stop: None };
    let e = mux(&v, &[voice(good.clone(), 0)], &out, &MuxOptions::default()).unwrap_err();
    assert!(e.to_string().contains("junk.mp4"), "{e}");

    // A start time ten hours off: rejected before any memory is spent on the timeline.
    let e = mux(&video, &[voice(good, 10 * 3600 * 1000)], &out, &MuxOptions::default()).unwrap_err();
    assert!(matches!(e, MediaError::Timeline { .. }), "{e}");

    assert!(!out.exists(), "a failed mux leaves nothing at the output path");
    let leftovers: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".reclife-mux-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files cleaned up: {leftovers:?}");
}

#[test]
fn committed_samples_mux() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/media");
    let dir = workdir();
    let video = ScreenVideo { path: root.join("screen.mp4"), start: at(1000), stop: None };
    let voices = vec![
        voice(root.join("voice-440.mp3"), 0),
        voice(root.join("voice-660.wav"), 6000),
        voice(root.join("voice-880.mp3"), 7000),
    ];
    let out = dir.path().join("m.mp4");
    let r = mux(&video, &voices, &out, &MuxOptions::default()).unwrap();
    assert_eq!(r.duration_ms, 11000);
    let pcm = decoded_audio(&out);
    assert_near("660 Hz onset", onset(&pcm, 660.0, 5000.0, 6500.0), 6000.0, 20.0);
    decodes_cleanly(&out);
}

/// A voice start time a year before its screen (a wrong clock) fails the pair at once, before
/// either path runs: nothing is written, however the span would have been filled.
#[test]
fn a_span_beyond_max_span_fails_before_any_work() {
    let dir = workdir();
    let d = dir.path();
    let video = ScreenVideo { path: screen(d, 2), start: at(0), stop: None };
    // One MP3 starting before the video: the fast path's case, which had no span limit.
    let early = tone(d, "early.mp3", 440, 2.0, 16000, 1, 0);
    let year_ms = 365 * 24 * 3600 * 1000;
    let out = d.join("out.mp4");
    let e = mux(&video, &[voice(early.clone(), -year_ms)], &out, &MuxOptions::default()).unwrap_err();
    assert!(e.to_string().contains("max_span"), "{e}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "only the inputs remain: {leftovers:?}");
    // A smaller limit applies as configured.
    let opts = MuxOptions { max_span_ms: 1000, ..MuxOptions::default() };
    assert!(mux(&video, &[voice(early, 0)], &out, &opts).unwrap_err().to_string().contains("max_span"));
}

/// A screen that is not MP4 (here WebM/VP9) goes through FFmpeg's muxer, the fallback: same
/// timing (held first frame for the lead-in, last frame held to the end, the voice at its
/// offset), moov first.
#[test]
fn a_webm_screen_goes_through_the_fallback_with_the_same_timing() {
    let dir = workdir();
    let d = dir.path();
    let path = d.join("screen.webm");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=5:duration=3",
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-b:v",
        "200k",
        path.to_str().unwrap(),
    ]);
    let video = ScreenVideo { path, start: at(1500), stop: None };
    let voices = vec![voice(tone(d, "a.wav", 1300, 5.0, 16000, 1, 0), 0)];
    let out = d.join("m.mp4");
    let report = mux(&video, &voices, &out, &MuxOptions::default()).unwrap();
    assert_eq!(report.duration_ms, 5000);
    let p = probe(&out);
    let v = stream(&p, "video");
    assert_eq!(v["codec_name"], "vp9");
    assert_near("video start", num(&v["start_time"]), 0.0, 0.001);
    assert_eq!(v["nb_read_packets"], "16", "15 frames plus the held first frame");
    assert_near("file duration", num(&p["format"]["duration"]), 5.0, 0.05);
    assert!(moov_first(&out));
    decodes_cleanly(&out);
    let pcm = decoded_audio(&out);
    assert_near("onset (ms)", onset(&pcm, 1300.0, 0.0, 1000.0), 0.0, 20.0);
}
