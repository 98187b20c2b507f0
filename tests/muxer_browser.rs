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

#[test]
fn a_muxed_file_plays_in_chromium_with_tones_and_frames_at_their_times() {
    if !browser_support::available() {
        return;
    }
    let browser = browser_support::dir();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = |n: &str| d.join(n).to_str().unwrap().to_string();
    for (name, freq) in [("a.mp3", 1000), ("b.mp3", 2200)] {
        let src = format!("sine=frequency={freq}:sample_rate=8000:duration=1.5");
        ffmpeg(&["-f", "lavfi", "-i", &src, "-c:a", "libmp3lame", "-b:a", "32k", &p(name)]);
    }
    let colour = |c: &str| format!("color=c={c}:s=160x120:r=5:d=2");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &colour("red"),
        "-f",
        "lavfi",
        "-i",
        &colour("lime"),
        "-f",
        "lavfi",
        "-i",
        &colour("blue"),
        "-filter_complex",
        "[0][1][2]concat=n=3:v=1[v]",
        "-map",
        "[v]",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-g",
        "5",
        "-pix_fmt",
        "yuv420p",
        &p("v.mp4"),
    ]);
    // The video starts at t0 + 0.5 s; segment a at t0 (before it), b at t0 + 3.5 s.
    let t0 = Utc.with_ymd_and_hms(2025, 6, 1, 10, 0, 0).unwrap();
    let screen = ScreenVideo { path: d.join("v.mp4"), start: t0 + Duration::milliseconds(500), stop: None };
    let voices = vec![
        VoiceSegment { path: d.join("a.mp3"), start: t0, stop: None },
        VoiceSegment { path: d.join("b.mp3"), start: t0 + Duration::milliseconds(3500), stop: None },
    ];
    let report = media::mux(&screen, &voices, &d.join("out.mp4"), &MuxOptions::default()).unwrap();
    assert_eq!(report.output_start, t0);
    assert_eq!(report.duration_ms, 6500, "0 .. the video's end at 6.5 s");
    // Colours on the output timeline: the held first frame before the video starts, then
    // red 0.5..2.5, green 2.5..4.5, blue 4.5..6.5.
    let expect = serde_json::json!({
        "duration": 6.5,
        "tones": [{"freq": 1000, "at": 0.0}, {"freq": 2200, "at": 3.5}],
        "frames": [
            {"at": 0.2, "colour": "red"}, {"at": 1.5, "colour": "red"}, {"at": 3.5, "colour": "green"},
            {"at": 5.5, "colour": "blue"}
        ],
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
    assert!(out.contains("# pass 1") && out.contains("# fail 0"), "{out}");
    eprintln!("{out}");
}
