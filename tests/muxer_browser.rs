//! A muxed file in headless Chromium (the harness of tests/browser/, shared with the operators'
//! pages): two 8 kHz MP3 segments with distinct tones, one starting before the screen video
//! (so the video is padded with a held frame) and one inside it, and a video whose colour
//! changes every two seconds, muxed by `reclife::media::mux`; then `node --test
//! tests/browser/mux.test.mjs` checks playback to `ended`, decoded audio, the duration, each
//! tone's onset (±40 ms) and each colour's time.
//!
//! Without Chromium, node or playwright-core the test says so and passes, unless
//! `RECLIFE_REQUIRE_SERVERS=1` (CI), where it fails.

use chrono::{Duration, TimeZone, Utc};
use reclife::media::{self, MuxOptions, ScreenVideo, VoiceSegment};
use std::process::Command;

mod browser_support;
use browser_support::chromium;

fn ffmpeg(args: &[&str]) {
    let o = Command::new("ffmpeg").args(["-hide_banner", "-loglevel", "error", "-y"]).args(args).output().unwrap();
    assert!(o.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// Muxes the two tones with a video that is red, then green, then blue for two seconds each
/// (5 fps, x264 with `x264` options), starting `video_ms` after the first tone, and has Chromium
/// check it against `frames` (output time, colour).
fn play_in_chromium(x264: &[&str], video_ms: i64, frames: serde_json::Value) {
    let browser = browser_support::dir();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    for (name, freq) in [("a.mp3", 1000), ("b.mp3", 2200)] {
        let src = format!("sine=frequency={freq}:sample_rate=8000:duration=1.5");
        ffmpeg(&["-f", "lavfi", "-i", &src, "-c:a", "libmp3lame", "-b:a", "32k", &p(name)]);
    }
    let colour = |c: &str| format!("color=c={c}:s=160x120:r=5:d=2");
    let mut args: Vec<String> = Vec::new();
    for c in ["red", "lime", "blue"] {
        args.extend(["-f".into(), "lavfi".into(), "-i".into(), colour(c)]);
    }
    args.extend(["-filter_complex", "[0][1][2]concat=n=3:v=1[v]", "-map", "[v]", "-c:v", "libx264"].map(String::from));
    args.extend(x264.iter().map(|a| a.to_string()));
    args.extend(["-pix_fmt".into(), "yuv420p".into(), p("v.mp4")]);
    ffmpeg(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The video starts at t0 + video_ms; segment a at t0 (before it), b at t0 + 3.5 s.
    let t0 = Utc.with_ymd_and_hms(2025, 6, 1, 10, 0, 0).unwrap();
    let screen = ScreenVideo { path: d.join("v.mp4"), start: t0 + Duration::milliseconds(video_ms), stop: None };
    let voices = vec![
        VoiceSegment { path: d.join("a.mp3"), start: t0, stop: None },
        VoiceSegment { path: d.join("b.mp3"), start: t0 + Duration::milliseconds(3500), stop: None },
    ];
    let report = media::mux(&screen, &voices, &d.join("out.mp4"), &MuxOptions::default()).unwrap();
    assert_eq!(report.output_start, t0);
    assert_eq!(report.duration_ms as i64, 6000 + video_ms, "0 .. the video's end");
    let expect = serde_json::json!({
        "duration": (6000 + video_ms) as f64 / 1000.0,
        "tones": [{"freq": 1000, "at": 0.0}, {"freq": 2200, "at": 3.5}],
        "frames": frames,
    });
    std::fs::write(d.join("expect.json"), expect.to_string()).unwrap();
    let o = Command::new("node")
        .current_dir(&browser)
        .args(["--test", "--test-timeout=120000", "mux.test.mjs"])
        .env("RECLIFE_MUX_DIR", d)
        .env("RECLIFE_CHROMIUM", chromium())
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "node --test mux.test.mjs failed:\n{out}\n{err}");
    assert!(out.contains("# pass 2") && out.contains("# fail 0"), "{out}");
    eprintln!("{out}");
}

#[test]
fn a_muxed_file_plays_in_chromium_with_tones_and_frames_at_their_times() {
    if !browser_support::available() {
        return;
    }
    // Colours on the output timeline: the held first frame before the video starts (0.5 s),
    // then red 0.5..2.5, green 2.5..4.5, blue 4.5..6.5.
    let frames = serde_json::json!([
        {"at": 0.2, "colour": "red"}, {"at": 1.5, "colour": "red"}, {"at": 3.5, "colour": "green"},
        {"at": 5.5, "colour": "blue"}
    ]);
    play_in_chromium(&["-preset", "ultrafast", "-g", "5"], 500, frames);
}

/// A B-frame video (reorder delay 0.4 s at 5 fps) that starts 0.2 s after the call: shorter than
/// its delay, so its held frames are decoded before time zero. Chromium must show each colour at
/// its time, not 0.2 s early (as it would with an empty edit): 0.1 s either side of the changes.
#[test]
fn a_b_frame_video_starting_within_its_reorder_delay_plays_in_sync() {
    if !browser_support::available() {
        return;
    }
    // red 0.2..2.2, green 2.2..4.2, blue 4.2..6.2 on the output timeline.
    let frames = serde_json::json!([
        {"at": 0.1, "colour": "red"}, {"at": 2.1, "colour": "red"}, {"at": 2.3, "colour": "green"},
        {"at": 4.1, "colour": "green"}, {"at": 4.3, "colour": "blue"}
    ]);
    let x264 = ["-preset", "veryfast", "-g", "10", "-bf", "2", "-x264-params", "b-adapt=0:scenecut=0"];
    play_in_chromium(&x264, 200, frames);
}
