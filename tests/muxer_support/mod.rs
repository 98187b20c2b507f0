//! Shared by the muxer tests: run the built binary, write a config, and lay out synthetic
//! call + screen recordings in the GIR folder layout from the real media in testdata/.

#![allow(dead_code)]

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `reclife --data-dir DATA --config CONFIG --quiet ARGS…`
pub fn command(data: &Path, config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.arg("--data-dir").arg(data).arg("--config").arg(config).arg("--quiet").args(args);
    c.env_remove("RECLIFE_CONFIG").env_remove("RECLIFE_NOW").env_remove("RECLIFE_DATA_DIR");
    c
}

pub fn run(data: &Path, config: &Path, args: &[&str]) -> Output {
    command(data, config, args).output().expect("run reclife")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts exit status `code` and returns stdout.
pub fn expect(o: &Output, code: i32) -> String {
    assert_eq!(o.status.code(), Some(code), "exit status\nstdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
    stdout(o)
}

/// Writes a config: `[muxer]` lines given, keys from testdata, temp_dir inside `dir`.
pub fn config(dir: &Path, muxer_lines: &str) -> PathBuf {
    let p = dir.join("reclife.toml");
    let keys = testdata().join("keys");
    let text = format!(
        "keys_dir = {:?}\n[muxer]\ntemp_dir = {:?}\nscreen_certs = [{:?}]\n{muxer_lines}\n",
        keys.display().to_string(),
        dir.join("mux-tmp").display().to_string(),
        keys.join("recording-cert.pem").display().to_string()
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// One synthetic pair to lay out.
#[derive(Clone)]
pub struct Pair {
    pub call_id: String,
    /// Call start; the call lasts 6 s and the screen 10 s from start + 1 s.
    pub start: DateTime<Utc>,
    /// Agent user name on the call (`None`: no user name at all).
    pub call_user: Option<String>,
    pub screen_user: String,
    /// Replace the voice with these bytes (bad input).
    pub voice_bytes: Option<Vec<u8>>,
    /// Replace the screen video with these bytes (bad input).
    pub screen_bytes: Option<Vec<u8>>,
    /// Link the screen by callUuid only: a separate recording without callRecordingId.
    pub by_uuid: bool,
    /// A detached envelope (PEM) for the voice: its bytes are then the raw ciphertext.
    pub voice_pkcs7: Option<String>,
    /// Attached data (key, value) added to the call in its eventHistory.
    pub user_data: Option<(String, String)>,
}

impl Pair {
    pub fn new(call_id: &str, start: DateTime<Utc>) -> Pair {
        Pair {
            call_id: call_id.into(),
            start,
            call_user: Some("agent1".into()),
            screen_user: "agent1".into(),
            voice_bytes: None,
            screen_bytes: None,
            by_uuid: false,
            voice_pkcs7: None,
            user_data: None,
        }
    }
    pub fn screen_id(&self) -> String {
        format!("{}_S", self.call_id)
    }
    pub fn stop(&self) -> DateTime<Utc> {
        self.start + Duration::seconds(6)
    }
}

fn gir(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Writes the pair under `root/<call id>/` (screen in `screen/<screen id>/`).
pub fn lay_out(root: &Path, p: &Pair) {
    let d = root.join(&p.call_id);
    let sd = if p.by_uuid { root.join(p.screen_id()) } else { d.join("screen").join(p.screen_id()) };
    std::fs::create_dir_all(&sd).unwrap();
    std::fs::create_dir_all(&d).unwrap();
    let voice_id = format!("{}_0001.mp3", p.call_id);
    let voice = p.voice_bytes.clone().unwrap_or_else(|| std::fs::read(testdata().join("media/voice-440.mp3")).unwrap());
    std::fs::write(d.join(&voice_id), &voice).unwrap();
    let pkcs7 =
        p.voice_pkcs7.as_ref().map(|v| format!(r#""pkcs7": {}, "#, Value::from(v.as_str()))).unwrap_or_default();
    let user = p.call_user.as_ref().map(|u| format!(r#""username": "{u}", "#)).unwrap_or_default();
    let call = format!(
        r#"{{"id": "{id}", "startTime": "{s}", "stopTime": "{e}", "callType": "Inbound", "region": "us",
  "mediaFiles": [{{"mediaId": "{voice_id}", "type": "audio/mp3", "startTime": "{s}", "stopTime": "{e}", "duration": "6000", {pkcs7}
     "size": "{n}", "channels": 1, "parameters": {{{user}"agentId": "1", "callUuid": "{id}"}}}}],
  "eventHistory": {events}, "screenRecording": true}}"#,
        events = p
            .user_data
            .as_ref()
            .map(|(k, v)| serde_json::json!([{"event": "AttachedDataChanged", "data": {"added": {k: v}}}]).to_string())
            .unwrap_or_else(|| "[]".into()),
        id = p.call_id,
        s = gir(p.start),
        e = gir(p.stop()),
        n = voice.len()
    );
    std::fs::write(d.join("meta-data.json"), call).unwrap();
    let video_id = format!("{}.mp4", p.screen_id());
    let video = p.screen_bytes.clone().unwrap_or_else(|| std::fs::read(testdata().join("media/screen.mp4")).unwrap());
    std::fs::write(sd.join(&video_id), &video).unwrap();
    let (ss, se) = (p.start + Duration::seconds(1), p.start + Duration::seconds(11));
    let link = if p.by_uuid { String::new() } else { format!(r#""callRecordingId": "{}", "#, p.call_id) };
    let screen = format!(
        r#"{{"id": "{sid}", {link}"startTime": "{s}", "stopTime": "{e}", "region": "us",
  "mediaFiles": [{{"mediaId": "{video_id}", "type": "video/mp4", "startTime": "{s}", "stopTime": "{e}", "duration": "0:00:10",
     "size": "{n}", "parameters": {{"agentID": "1", "callUuid": "{id}", "contact": {{"userName": "{u}"}}}}}}],
  "eventHistory": [], "nonDelete": false}}"#,
        sid = p.screen_id(),
        id = p.call_id,
        s = gir(ss),
        e = gir(se),
        n = video.len(),
        u = p.screen_user
    );
    std::fs::write(sd.join("meta-data.json"), screen).unwrap();
}

/// Lays out `pairs` under `dir/in` and ingests them into `data`.
pub fn ingest(dir: &Path, data: &Path, config: &Path, pairs: &[Pair]) {
    let root = dir.join("in");
    for p in pairs {
        lay_out(&root, p);
    }
    let out = expect(&run(data, config, &["ingest", root.to_str().unwrap()]), 0);
    assert!(out.contains(&format!("ingested {}", pairs.len() * 2)), "{out}");
}

/// The stored document of a recording.
pub fn show(data: &Path, config: &Path, id: &str) -> Value {
    serde_json::from_str(&expect(&run(data, config, &["recordings", "show", id]), 0)).expect("show prints JSON")
}

/// The muxed media entries of a screen recording.
pub fn muxed_entries(data: &Path, config: &Path, screen_id: &str) -> Vec<Value> {
    let doc = show(data, config, screen_id);
    doc["mediaFiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["parameters"]["muxed_mediaIds"].as_array().is_some_and(|a| !a.is_empty()))
        .cloned()
        .collect()
}

/// `reclife mux … --json` output.
pub fn mux_json(data: &Path, config: &Path, args: &[&str], code: i32) -> Value {
    let mut a = vec!["mux", "--json"];
    a.extend_from_slice(args);
    let out = expect(&run(data, config, &a), code);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

pub fn muxed_screens(report: &Value) -> Vec<String> {
    report["muxed"].as_array().unwrap().iter().map(|m| m["screenId"].as_str().unwrap().to_string()).collect()
}

/// Streams ffprobe finds in a file: codec names.
pub fn ffprobe_codecs(file: &Path) -> Vec<String> {
    let o = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe");
    assert!(o.status.success(), "ffprobe {}: {}", file.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
}

/// `openssl cms -encrypt` (attached, DER) of `input` for the testdata certificate.
pub fn openssl_seal(input: &Path, output: &Path) {
    let o = Command::new("openssl")
        .args(["cms", "-encrypt", "-binary", "-outform", "DER", "-aes-256-cbc", "-in"])
        .arg(input)
        .arg("-out")
        .arg(output)
        .arg(testdata().join("keys/recording-cert.pem"))
        .output()
        .expect("openssl");
    assert!(o.status.success(), "openssl: {}", String::from_utf8_lossy(&o.stderr));
}

/// `openssl cms -decrypt` with the testdata key.
pub fn openssl_open(input: &Path, output: &Path) {
    let o = Command::new("openssl")
        .args(["cms", "-decrypt", "-inform", "DER", "-binary", "-in"])
        .arg(input)
        .arg("-inkey")
        .arg(testdata().join("keys/recording-key.pem"))
        .arg("-out")
        .arg(output)
        .output()
        .expect("openssl");
    assert!(o.status.success(), "openssl cms -decrypt {}: {}", input.display(), String::from_utf8_lossy(&o.stderr));
}

/// A data dir with the sample recordings of testdata/ ingested, and its config.
pub fn samples() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "");
    let out = expect(&run(&data, &cfg, &["ingest", testdata().join("recordings").to_str().unwrap()]), 0);
    assert!(out.contains("rejected 0"), "{out}");
    (tmp, data, cfg)
}
