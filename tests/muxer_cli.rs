//! `reclife mux` end to end on the built binary and real media: the sample calls with screens,
//! encrypted in → sealed out (opened by `openssl cms`, read by ffprobe), window selection,
//! user name rules, and failed pairs marked with reasons and retried a bounded number of times.

#[path = "muxer_support/mod.rs"]
mod support;

use std::process::Command;
use support::*;

const A: &str = "CALLA0000000000000000000000000001";
const A_SCREEN: &str = "CALLA0000000000000000000000000001_2024-03-10_09-15-02";
const C: &str = "CALLC0000000000000000000000000003";
const C_SCREEN: &str = "CALLC0000000000000000000000000003_2025-06-24_10-00-00";

#[test]
fn plain_pair_is_muxed_recorded_and_labelled_once() {
    let (_tmp, data, cfg) = samples();
    // Call A ended 2024-03-10T09:15:06Z: inside 720..5 minutes before noon.
    let r = mux_json(&data, &cfg, &["--once", "--now", "2024-03-10T12:00:00Z"], 0);
    assert_eq!(muxed_screens(&r), [A_SCREEN], "{r}");
    assert_eq!(r["muxed"][0]["encrypted"], false, "no source was encrypted");

    let entries = muxed_entries(&data, &cfg, A_SCREEN);
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    let sources: Vec<&str> =
        e["parameters"]["muxed_mediaIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(
        sources,
        [
            "Jz0Vt5zQ55mcnS8ibDzFsA_CALLA0000000000000000000000000001_2024-03-10_09-15-02.mp4",
            "CALLA0000000000000000000000000001_2024-03-10_09-15-00-0001.mp3"
        ]
    );
    assert_eq!(e["type"], "video/mp4");
    // The output spans the voice start (09:15:00) to the video stop (09:15:12).
    assert_eq!(e["startTime"], "2024-03-10T09:15:00.000+0000");
    let file = data.join("media").join(A_SCREEN).join(e["mediaId"].as_str().unwrap());
    assert_eq!(e["size"].as_str().unwrap(), std::fs::metadata(&file).unwrap().len().to_string());
    // Issue 24: the pass reports the bytes it wrote, per output and in all.
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size > 0);
    assert_eq!(r["muxed"][0]["bytes"].as_u64(), Some(size), "{r}");
    assert_eq!(r["bytes"].as_u64(), Some(size), "{r}");
    let codecs = ffprobe_codecs(&file);
    assert!(codecs.contains(&"h264".to_string()) && codecs.len() == 2, "{codecs:?}");

    let call = show(&data, &cfg, A);
    assert!(call["labels"].as_array().unwrap().iter().any(|l| l == "screenRecording"), "{call}");
    assert_eq!(call["x-undocumented"]["kept"], true, "the rest of the document is kept");

    // Again, and with a window that overlaps: nothing is muxed twice.
    let r = mux_json(&data, &cfg, &["--once", "--now", "2024-03-10T13:00:00Z"], 0);
    assert!(muxed_screens(&r).is_empty(), "{r}");
    assert_eq!(r["alreadyMuxed"], 1);
    assert_eq!(muxed_entries(&data, &cfg, A_SCREEN).len(), 1);
    let status = expect(&run(&data, &cfg, &["mux", "--status"]), 0);
    assert!(status.starts_with("muxed 1, failed 0"), "{status}");
}

#[test]
fn encrypted_in_sealed_out_that_openssl_opens() {
    let (tmp, data, cfg) = samples();
    // Batch mode over call C's day (its voice is a CMS envelope for testdata/keys).
    let r = mux_json(&data, &cfg, &["--since", "2025-06-24T00:00:00Z", "--until", "2025-06-25T00:00:00Z"], 0);
    assert_eq!(muxed_screens(&r), [C_SCREEN], "{r}");
    assert_eq!(r["muxed"][0]["encrypted"], true);
    let e = &muxed_entries(&data, &cfg, C_SCREEN)[0];
    assert_eq!(e["certAlias"][0], "recording-cert");
    let sealed = data.join("media").join(C_SCREEN).join(e["mediaId"].as_str().unwrap());
    let head = std::fs::read(&sealed).unwrap();
    assert_eq!(head[0], 0x30, "a DER envelope, not an MP4");
    let opened = tmp.path().join("opened.mp4");
    let o = Command::new("openssl")
        .args(["cms", "-decrypt", "-inform", "DER", "-binary", "-in"])
        .arg(&sealed)
        .arg("-inkey")
        .arg(testdata().join("keys/recording-key.pem"))
        .arg("-out")
        .arg(&opened)
        .output()
        .unwrap();
    assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
    let codecs = ffprobe_codecs(&opened);
    assert!(codecs.contains(&"h264".to_string()) && codecs.len() == 2, "{codecs:?}");
    let call = show(&data, &cfg, C);
    assert!(call["labels"].as_array().unwrap().iter().any(|l| l == "screenRecording"), "{call}");
    // No plaintext was left behind in temp_dir.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("mux-tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn window_selects_calls_by_end_time() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "split_window_enabled = 1\nmax_interval_minutes = 60");
    let now = t("2025-03-01T12:00:00Z");
    let mins = |m: i64| now - chrono::Duration::minutes(m);
    // Calls end 6 s after they start. Window: ended in [11:55 - 715 min, 11:55).
    let pairs = vec![
        Pair::new("WIN_TOO_RECENT", mins(4)),  // ends 3 min 54 s ago
        Pair::new("WIN_JUST_INSIDE", mins(6)), // ends 5 min 54 s ago
        Pair::new("WIN_MIDDLE", mins(300)),
        Pair::new("WIN_OLDEST_IN", mins(719)), // ends 718 min 54 s ago
        Pair::new("WIN_TOO_OLD", mins(721)),   // ends 720 min 54 s ago
    ];
    ingest(tmp.path(), &data, &cfg, &pairs);
    let r = mux_json(&data, &cfg, &["--once", "--now", "2025-03-01T12:00:00Z"], 0);
    let mut got = muxed_screens(&r);
    got.sort();
    assert_eq!(got, ["WIN_JUST_INSIDE_S", "WIN_MIDDLE_S", "WIN_OLDEST_IN_S"], "{r}");
    assert_eq!(r["windows"].as_array().unwrap().len(), 12, "715 minutes in hour slices");
    // Ten minutes later the too-recent call has aged into the window.
    let r = mux_json(&data, &cfg, &["--once", "--now", "2025-03-01T12:10:00Z"], 0);
    assert_eq!(muxed_screens(&r), ["WIN_TOO_RECENT_S"], "{r}");
}

#[test]
fn user_names_must_match_unless_unknown_or_unchecked() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let start = t("2025-03-01T10:00:00Z");
    let mut mismatch = Pair::new("USER_MISMATCH", start);
    mismatch.screen_user = "agent2".into();
    let mut unknown = Pair::new("USER_UNKNOWN", start);
    unknown.call_user = Some("UNKNOWN".into());
    unknown.screen_user = "agent7".into();
    let mut absent = Pair::new("USER_ABSENT", start);
    absent.call_user = None;
    absent.screen_user = "agent8".into();
    let pairs = vec![Pair::new("USER_SAME", start), mismatch, unknown, absent];
    let cfg = config(tmp.path(), "");
    ingest(tmp.path(), &data, &cfg, &pairs);
    let window = ["--since", "2025-03-01T00:00:00Z", "--until", "2025-03-02T00:00:00Z"];
    let r = mux_json(&data, &cfg, &window, 0);
    let mut got = muxed_screens(&r);
    got.sort();
    assert_eq!(got, ["USER_ABSENT_S", "USER_SAME_S", "USER_UNKNOWN_S"], "{r}");
    assert_eq!(r["userMismatch"], 1);
    let cfg = config(tmp.path(), "check_matching_username = 0");
    let r = mux_json(&data, &cfg, &window, 0);
    assert_eq!(muxed_screens(&r), ["USER_MISMATCH_S"], "{r}");
}

#[test]
fn bad_pairs_fail_with_reasons_and_are_retried_a_bounded_number_of_times() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "max_retries = 2");
    let start = t("2025-04-01T10:00:00Z");
    let mut garbage = Pair::new("BAD_AUDIO", start);
    garbage.voice_bytes = Some((0..20_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect());
    let mut truncated = Pair::new("BAD_MP4", start);
    truncated.screen_bytes = Some(std::fs::read(testdata().join("media/screen.mp4")).unwrap()[..400].to_vec());
    let mut cut = Pair::new("BAD_CUT_MP3", start);
    let mp3 = std::fs::read(testdata().join("media/voice-440.mp3")).unwrap();
    cut.voice_bytes = Some(mp3[..mp3.len() * 3 / 5].to_vec());
    let missing = Pair::new("BAD_MISSING", start);
    // A voice sealed for a key the key store does not hold.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let o = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=other"])
        .arg("-keyout")
        .arg(other.join("key.pem"))
        .arg("-out")
        .arg(other.join("cert.pem"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let sealed = other.join("voice.cms");
    let o = Command::new("openssl")
        .args(["cms", "-encrypt", "-binary", "-outform", "DER", "-aes-128-cbc", "-in"])
        .arg(testdata().join("media/voice-440.mp3"))
        .arg("-out")
        .arg(&sealed)
        .arg(other.join("cert.pem"))
        .output()
        .unwrap();
    assert!(o.status.success());
    let mut nokey = Pair::new("BAD_NO_KEY", start);
    nokey.voice_bytes = Some(std::fs::read(&sealed).unwrap());
    let pairs = vec![Pair::new("GOOD_ONE", start), garbage, truncated, cut, missing.clone(), nokey];
    ingest(tmp.path(), &data, &cfg, &pairs);
    std::fs::remove_file(data.join("media").join(missing.screen_id()).join(format!("{}.mp4", missing.screen_id())))
        .unwrap();

    let window = ["--since", "2025-04-01T00:00:00Z", "--until", "2025-04-02T00:00:00Z"];
    let o = run(&data, &cfg, &[&["-v", "mux"][..], &window].concat());
    expect(&o, 3);
    let err = stderr(&o);
    for id in ["BAD_AUDIO_S", "BAD_MP4_S", "BAD_CUT_MP3_S", "BAD_MISSING_S", "BAD_NO_KEY_S"] {
        assert!(err.contains(&format!("failed {id}")), "{id} not reported:\n{err}");
    }
    assert!(stdout(&o).contains("muxed 1, failed 5"), "{}", stdout(&o));
    // Issue 24: the text report names the bytes the pass wrote (the one good pair's output).
    let good = stdout(&o).lines().find_map(|l| l.split(", bytes written ").nth(1).map(str::to_string));
    assert!(good.as_deref().and_then(|b| b.trim().parse::<u64>().ok()).is_some_and(|b| b > 0), "{}", stdout(&o));
    // And so does its last progress log line (`-v`): six pairs handled, the bytes written.
    let line = err.lines().rfind(|l| l.contains("mux pass") && l.contains("progress")).expect(&err);
    assert!(line.contains("recordings=6"), "{line}");
    let bytes: u64 = line.split("bytes=").nth(1).and_then(|b| b.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(bytes > 0, "{line}");

    let st: serde_json::Value =
        serde_json::from_str(&expect(&run(&data, &cfg, &["mux", "--status", "--json"]), 0)).unwrap();
    assert_eq!(st["muxed"], 1);
    let failed = st["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 5);
    let reason =
        |id: &str| failed.iter().find(|f| f["screenId"] == id).unwrap()["reason"].as_str().unwrap().to_string();
    assert!(reason("BAD_AUDIO_S").contains("BAD_AUDIO_0001.mp3"), "{}", reason("BAD_AUDIO_S"));
    assert!(reason("BAD_MP4_S").contains("mux failed"), "{}", reason("BAD_MP4_S"));
    assert!(reason("BAD_CUT_MP3_S").contains("BAD_CUT_MP3_0001.mp3"), "{}", reason("BAD_CUT_MP3_S"));
    assert!(reason("BAD_MISSING_S").contains("BAD_MISSING_S.mp4"), "{}", reason("BAD_MISSING_S"));
    assert!(reason("BAD_NO_KEY_S").contains("decrypt"), "{}", reason("BAD_NO_KEY_S"));
    assert!(failed.iter().all(|f| f["attempts"] == 1 && f["givenUp"] == false));

    // Second pass: tried again, now given up (max_retries = 2).
    let r = mux_json(&data, &cfg, &window, 3);
    assert_eq!(r["failed"].as_array().unwrap().len(), 5);
    assert!(r["failed"].as_array().unwrap().iter().all(|f| f["attempts"] == 2));
    let text = expect(&run(&data, &cfg, &["mux", "--status"]), 0);
    assert!(text.contains("failed BAD_AUDIO_S (call BAD_AUDIO): attempt 2/2, given up"), "{text}");

    // Third pass: left alone. After --retry, that pair is tried once more.
    let r = mux_json(&data, &cfg, &window, 0);
    assert_eq!((r["givenUp"].as_u64(), r["failed"].as_array().unwrap().len()), (Some(5), 0), "{r}");
    expect(&run(&data, &cfg, &["mux", "--retry", "BAD_MP4_S"]), 0);
    let r = mux_json(&data, &cfg, &window, 3);
    assert_eq!(r["failed"].as_array().unwrap().len(), 1);
    assert_eq!(r["failed"][0]["screenId"], "BAD_MP4_S");
    assert_eq!(r["givenUp"], 4);
}

#[test]
fn screens_linked_by_call_uuid_and_temp_files_kept_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "save_temp_file = 1\nmark_screen_recording_label = 0");
    let mut p = Pair::new("UUID_ONLY", t("2025-03-05T10:00:00Z"));
    p.by_uuid = true;
    ingest(tmp.path(), &data, &cfg, std::slice::from_ref(&p));
    assert!(show(&data, &cfg, &p.screen_id()).get("callRecordingId").is_none());
    let r = mux_json(&data, &cfg, &["--since", "2025-03-05T00:00:00Z", "--until", "2025-03-06T00:00:00Z"], 0);
    assert_eq!(muxed_screens(&r), [p.screen_id()], "{r}");
    assert_eq!(r["muxed"][0]["callId"], "UUID_ONLY");
    let call = show(&data, &cfg, "UUID_ONLY");
    assert!(call.get("labels").is_none(), "mark_screen_recording_label = 0: {call}");
    // save_temp_file = 1 keeps the pair's folder: fetched voice and screen, and the output.
    let kept: Vec<_> = std::fs::read_dir(tmp.path().join("mux-tmp")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let names: Vec<String> =
        std::fs::read_dir(&kept[0]).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n.ends_with("UUID_ONLY_0001.mp3")), "{names:?}");
    assert!(names.iter().any(|n| n == "UUID_ONLY_S-muxed.mp4"), "{names:?}");
}

#[test]
fn polling_mode_muxes_until_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "min_poll_interval = 1");
    let p = Pair::new("POLLED", t("2025-03-05T10:00:00Z"));
    ingest(tmp.path(), &data, &cfg, std::slice::from_ref(&p));
    let mut child = command(&data, &cfg, &["mux", "--now", "2025-03-05T12:00:00Z"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first pass to land (bounded), then stop the poller we started.
    let mut status = String::new();
    for _ in 0..600 {
        status = expect(&run(&data, &cfg, &["mux", "--status"]), 0);
        if status.starts_with("muxed 1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let still_running = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(still_running, "the poller keeps running after a pass");
    assert!(status.starts_with("muxed 1, failed 0"), "{status}");
    assert_eq!(muxed_entries(&data, &cfg, &p.screen_id()).len(), 1);
}

#[test]
fn every_encrypted_form_and_encrypt_always_give_sealed_output() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "encrypt_always = 1");
    let start = t("2025-03-07T10:00:00Z");
    // Screen video sealed (attached envelope).
    let sealed_screen = tmp.path().join("screen.cms");
    openssl_seal(&testdata().join("media/screen.mp4"), &sealed_screen);
    let mut enc_screen = Pair::new("ENC_SCREEN", start);
    enc_screen.screen_bytes = Some(std::fs::read(&sealed_screen).unwrap());
    // Voice with a detached envelope in the metadata (`pkcs7`), ciphertext as the media.
    let sealed_voice = tmp.path().join("voice.cms");
    openssl_seal(&testdata().join("media/voice-440.mp3"), &sealed_voice);
    let raw = tmp.path().join("voice.raw");
    let pem = reclife::crypto::detach_file(&sealed_voice, &raw).unwrap();
    let mut detached = Pair::new("DETACHED_VOICE", start);
    detached.voice_bytes = Some(std::fs::read(&raw).unwrap());
    detached.voice_pkcs7 = Some(pem);
    let plain = Pair::new("PLAIN_ALWAYS", start);
    let pairs = [enc_screen, detached, plain];
    ingest(tmp.path(), &data, &cfg, &pairs);
    let r = mux_json(&data, &cfg, &["--since", "2025-03-07T00:00:00Z", "--until", "2025-03-08T00:00:00Z"], 0);
    assert_eq!(r["muxed"].as_array().unwrap().len(), 3, "{r}");
    for p in &pairs {
        let e = &muxed_entries(&data, &cfg, &p.screen_id())[0];
        let stored = data.join("media").join(p.screen_id()).join(e["mediaId"].as_str().unwrap());
        let opened = tmp.path().join(format!("{}.mp4", p.call_id));
        openssl_open(&stored, &opened);
        let codecs = ffprobe_codecs(&opened);
        assert!(codecs.contains(&"h264".to_string()) && codecs.len() == 2, "{}: {codecs:?}", p.call_id);
    }
}

#[test]
fn calls_of_other_regions_are_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "");
    let p = Pair::new("REGION_US", t("2025-03-09T10:00:00Z"));
    ingest(tmp.path(), &data, &cfg, std::slice::from_ref(&p));
    let window = ["--since", "2025-03-09T00:00:00Z", "--until", "2025-03-10T00:00:00Z"];
    let eu = tmp.path().join("eu.toml");
    std::fs::write(&eu, format!("region = \"eu\"\n{}", std::fs::read_to_string(&cfg).unwrap())).unwrap();
    let r = mux_json(&data, &eu, &window, 0);
    assert_eq!((r["calls"].as_u64(), r["muxed"].as_array().unwrap().len()), (Some(0), 0), "{r}");
    let us = tmp.path().join("us.toml");
    std::fs::write(&us, format!("region = \"us\"\n{}", std::fs::read_to_string(&cfg).unwrap())).unwrap();
    let r = mux_json(&data, &us, &window, 0);
    assert_eq!(muxed_screens(&r), [p.screen_id()], "{r}");
}

/// GIR's own muxer.cfg, as it is: its window and label options take effect; what does not
/// apply is named; an option GIR does not have fails the run, naming it.
#[test]
fn gir_muxer_cfg_is_read_as_it_is() {
    let (tmp, data, cfg) = samples();
    let gir = tmp.path().join("muxer.cfg");
    std::fs::write(
        &gir,
        "[htcc]\nbase_uri = https://gws:443/\npassword = ops\n\n[processing]\nffmpeg = C:\\ffmpeg\\ffmpeg.exe\n\
         window_past = 1440\nwindow_past_older_than = 725\n\n[advanced]\nmark_screen_recording_label = 0\n\
         [rcs]\nbase_uri = https://rcs:443/\n[logfile]\nlevel = debug\n",
    )
    .unwrap();
    // Call A ended 2024-03-10T09:15:06Z: 12:30 later is inside 1440..725 minutes, outside 720..5.
    let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .args(["mux", "--once", "--json", "--gir-config", gir.to_str().unwrap(), "--now", "2024-03-10T21:45:06Z"])
        .env_remove("RECLIFE_CONFIG")
        .output()
        .unwrap();
    let out = expect(&o, 0);
    let err = stderr(&o);
    assert!(err.contains("3 option(s) applied"), "{err}");
    assert!(err.contains("htcc.base_uri not applied") && err.contains("processing.ffmpeg not applied"), "{err}");
    assert!(!err.contains("ops"), "a password value is never printed: {err}");
    // The hints name only options this build has.
    assert!(err.contains("rcs.base_uri not applied") && err.contains("keys_dir"), "{err}");
    assert!(err.contains("logfile.level not applied") && err.contains("-v/-vv"), "{err}");
    assert!(!err.contains("--log-level") && !err.contains("[crypto]"), "{err}");
    let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(muxed_screens(&r), [A_SCREEN], "{r}");
    let call = show(&data, &cfg, A);
    let labels = call["labels"].as_array().cloned().unwrap_or_default();
    assert!(!labels.iter().any(|l| l == "screenRecording"), "label off: {call}");

    std::fs::write(&gir, "[processing]\nwindow_pst = 10\n").unwrap();
    let o = run(&data, &cfg, &["mux", "--once", "--gir-config", gir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("[processing] window_pst: not an option of GIR's Recording Muxer Script"),
        "{}",
        stderr(&o)
    );
}

/// A batch pass reports true totals first (pairs, and seconds of media), then each pair; and
/// `--status` pages through the muxed pairs.
#[test]
fn progress_has_true_totals_and_status_pages() {
    use reclife::progress::Progress;
    use std::sync::Mutex;
    #[derive(Default)]
    struct Seen {
        total: Mutex<Option<u64>>,
        done: Mutex<u64>,
        bytes: Mutex<Vec<u64>>,
        messages: Mutex<Vec<String>>,
    }
    impl Progress for Seen {
        fn set_total(&self, t: u64) {
            *self.total.lock().unwrap() = Some(t);
        }
        fn inc(&self, n: u64) {
            *self.done.lock().unwrap() += n;
        }
        fn bytes(&self, n: u64) {
            self.bytes.lock().unwrap().push(n);
        }
        fn message(&self, m: &str) {
            self.messages.lock().unwrap().push(m.to_string());
        }
    }
    let (_tmp, data, cfg) = samples();
    let mut config = reclife::config::Config::load(&cfg).unwrap();
    config.resolve_against(cfg.parent().unwrap());
    let ctx = reclife::config::Context::open(&data, config, reclife::config::Clock::system()).unwrap();
    let seen = Seen::default();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let report = rt
        .block_on(async {
            let mx = reclife::muxer::Muxer::new(&ctx).unwrap();
            let w = reclife::muxer::Window { from: t("2020-01-01T00:00:00Z"), to: t("2027-01-01T00:00:00Z") };
            mx.pass_with(&ctx, w, &seen).await
        })
        .unwrap();
    assert_eq!(report.muxed.len(), 2, "{report:?}");
    assert_eq!(*seen.total.lock().unwrap(), Some(2), "the total is known before the first pair");
    assert_eq!(*seen.done.lock().unwrap(), 2);
    // Issue 24: each output's bytes, as it is stored.
    let outputs: Vec<u64> = report.muxed.iter().map(|m| m.bytes).collect();
    assert!(outputs.iter().all(|b| *b > 0), "{report:?}");
    let mut bytes: Vec<u64> = seen.bytes.lock().unwrap().iter().copied().filter(|b| *b > 0).collect();
    let mut want = outputs.clone();
    bytes.sort_unstable();
    want.sort_unstable();
    assert_eq!(bytes, want, "one bytes report per output stored");
    let messages = seen.messages.lock().unwrap();
    let (first, last) = (messages.first().unwrap(), messages.last().unwrap());
    let total_s: u64 = first.trim_start_matches("0/").split(' ').next().unwrap().parse().unwrap();
    assert!(total_s >= 10, "{first}");
    assert_eq!(last, &format!("{total_s}/{total_s} s of media"), "{messages:?}");
    drop(ctx);

    let one = expect(&run(&data, &cfg, &["mux", "--status", "--muxed", "--limit", "1"]), 0);
    let lines: Vec<&str> = one.lines().collect();
    assert_eq!(lines[0], "muxed 2, failed 0", "{one}");
    assert!(lines[1].starts_with("muxed CALLA"), "{one}");
    let after = lines[2].strip_prefix("more: reclife mux --status --muxed --after ").expect(&one);
    let two = expect(&run(&data, &cfg, &["mux", "--status", "--muxed", "--limit", "1", "--after", after]), 0);
    let lines: Vec<&str> = two.lines().collect();
    assert!(lines[1].starts_with("muxed CALLC"), "{two}");
    assert_eq!(lines.len(), 2, "the last page says no more: {two}");
}

/// A voice segment that arrives after its call was muxed: the pair is muxed again with every
/// segment, the new file replaces the old one in the document (one muxed file, never two) and
/// the old file is removed from the store.
#[test]
fn a_late_voice_segment_remuxes_and_replaces_the_muxed_file() {
    let (tmp, data, cfg) = samples();
    let r = mux_json(&data, &cfg, &["--once", "--now", "2024-03-10T12:00:00Z"], 0);
    assert_eq!(muxed_screens(&r), [A_SCREEN], "{r}");
    let first = muxed_entries(&data, &cfg, A_SCREEN)[0]["mediaId"].as_str().unwrap().to_string();
    assert!(data.join("media").join(A_SCREEN).join(&first).exists());

    // The call again, with a second segment (7 s after the first began).
    let src = testdata().join("recordings/cc1/Environment/2024/03/10").join(A);
    let late = tmp.path().join("late").join(A);
    std::fs::create_dir_all(&late).unwrap();
    let one = format!("{A}_2024-03-10_09-15-00-0001.mp3");
    let two = format!("{A}_2024-03-10_09-15-07-0002.mp3");
    std::fs::copy(src.join(&one), late.join(&one)).unwrap();
    std::fs::copy(src.join(&one), late.join(&two)).unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(src.join("meta-data.json")).unwrap()).unwrap();
    let rec = &mut doc["recording"];
    let mut seg = rec["mediaFiles"][0].clone();
    seg["mediaId"] = two.clone().into();
    seg["startTime"] = "2024-03-10T09:15:07.000+0000".into();
    seg["stopTime"] = "2024-03-10T09:15:13.000+0000".into();
    rec["mediaFiles"].as_array_mut().unwrap().push(seg);
    rec["stopTime"] = "2024-03-10T09:15:13.000+0000".into();
    std::fs::write(late.join("meta-data.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
    let out = expect(&run(&data, &cfg, &["ingest", late.parent().unwrap().to_str().unwrap()]), 0);
    assert!(out.contains("updated 1"), "{out}");

    let r = mux_json(&data, &cfg, &["--once", "--now", "2024-03-10T12:05:00Z"], 0);
    assert_eq!(muxed_screens(&r), [A_SCREEN], "muxed again: {r}");
    let entries = muxed_entries(&data, &cfg, A_SCREEN);
    assert_eq!(entries.len(), 1, "one muxed file, never two: {entries:?}");
    let second = entries[0]["mediaId"].as_str().unwrap();
    assert_ne!(second, first);
    let sources: Vec<&str> =
        entries[0]["parameters"]["muxed_mediaIds"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(sources.contains(&two.as_str()) && sources.contains(&one.as_str()), "{sources:?}");
    assert!(!data.join("media").join(A_SCREEN).join(&first).exists(), "the replaced file is not left behind");
    assert!(data.join("media").join(A_SCREEN).join(second).exists());
    // The output now spans both segments: 09:15:00 .. 09:15:13.
    assert_eq!(entries[0]["stopTime"], "2024-03-10T09:15:13.000+0000", "{}", entries[0]);
    // Up to date now: a third pass does nothing.
    let r = mux_json(&data, &cfg, &["--once", "--now", "2024-03-10T12:10:00Z"], 0);
    assert!(muxed_screens(&r).is_empty(), "{r}");
    expect(&run(&data, &cfg, &["check"]), 0);
}

/// Issue 22: GIR's query strings, read through the RWS search parser `reclife serve` uses.
/// `call_recording_query_string` (userName without case, userData with a `*`) selects exactly
/// the matching calls, in one batch pass after which `reclife mux` exits instead of polling;
/// `call_recording_extra_query_string` from GIR's muxer.cfg narrows a window; the pairs they
/// left out are muxed by a plain window afterwards; a bad query string names its option.
#[test]
fn gir_query_strings_select_exactly_the_matching_pairs() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let start = t("2025-04-01T10:00:00Z");
    let with = |id: &str, user: &str, value: Option<&str>| {
        let mut p = Pair::new(id, start);
        p.call_user = Some(user.into());
        p.screen_user = user.into();
        p.user_data = value.map(|v| ("SRSState".to_string(), v.to_string()));
        p
    };
    let pairs = vec![
        with("Q_MATCH", "agent1", Some("SRSScreenRecordingStateStarted")),
        with("Q_OTHER_USER", "agent2", Some("SRSScreenRecordingStateStarted")),
        with("Q_NO_DATA", "agent1", None),
        with("Q_OTHER_DATA", "agent1", Some("SRSScreenRecordingStateStopped")),
    ];
    let cfg = config(tmp.path(), "");
    ingest(tmp.path(), &data, &cfg, &pairs);

    // Batch: no window, no --once: one pass over what the query selects, then exit.
    // (Each configuration in a folder of its own: `config` writes `<dir>/reclife.toml`.)
    let sub = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let batch = config(&sub("batch"), "call_recording_query_string = \"userName=AGENT1&userData=SRSScreen*Started\"");
    let r = mux_json(&data, &batch, &[], 0);
    assert_eq!(muxed_screens(&r), ["Q_MATCH_S"], "{r}");
    assert_eq!(r["calls"], 1, "only the matching call is read: {r}");

    // The extra query string from GIR's own muxer.cfg, ANDed with a window.
    let gir = tmp.path().join("muxer.cfg");
    std::fs::write(&gir, "[advanced]\ncall_recording_extra_query_string = userName=agent2 agent9\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
        .arg("--data-dir")
        .arg(&data)
        .arg("--config")
        .arg(&cfg)
        .args(["mux", "--json", "--gir-config", gir.to_str().unwrap()])
        .args(["--since", "2025-04-01T00:00:00Z", "--until", "2025-04-02T00:00:00Z"])
        .env_remove("RECLIFE_CONFIG")
        .output()
        .unwrap();
    let out = expect(&o, 0);
    assert!(stderr(&o).contains("1 option(s) applied"), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(muxed_screens(&r), ["Q_OTHER_USER_S"], "{r}");

    // What the queries left out is muxed by the window alone.
    let r = mux_json(&data, &cfg, &["--since", "2025-04-01T00:00:00Z", "--until", "2025-04-02T00:00:00Z"], 0);
    let mut got = muxed_screens(&r);
    got.sort();
    assert_eq!(got, ["Q_NO_DATA_S", "Q_OTHER_DATA_S"], "{r}");

    let bad = config(&sub("bad"), "call_recording_query_string = \"userNam=agent1\"");
    let o = run(&data, &bad, &["mux", "--once"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("muxer.call_recording_query_string: unknown parameter \"userNam\""), "{}", stderr(&o));
}
