//! Helpers for the downloader tests: a reclife node whose media lives on the test S3 server
//! (SeaweedFS from `deploy/servers.sh`), recordings written as GIR folders and ingested with the
//! real binary, `reclife serve` on a free port, and `reclife download` against it.
#![allow(dead_code)]

pub mod hostile;

use base64::Engine as _;
use sha1::Digest as _;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub const USER: (&str, &str) = ("rcbs", "rcbs-pw-93");

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reclife")
}

/// One media file of a test recording.
#[derive(Clone, Debug)]
pub struct Media {
    pub id: String,
    pub mime: String,
    pub bytes: Vec<u8>,
}

impl Media {
    pub fn new(id: &str, mime: &str, bytes: Vec<u8>) -> Media {
        Media { id: id.into(), mime: mime.into(), bytes }
    }
}

/// Deterministic bytes that differ per seed.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A node serving recordings whose media is on S3. `None` when the servers are not running
/// (the test is skipped; with RECLIFE_REQUIRE_SERVERS=1 or CI it fails instead).
pub struct Node {
    pub dir: tempfile::TempDir,
    pub media: String,
    server: Option<Child>,
    pub url: String,
}

impl Node {
    pub fn new() -> Option<Node> {
        let base = super::storage_support::server_env("RECLIFE_TEST_S3")?;
        let media = super::storage_support::fresh_location(&base).to_string();
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        let sha = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(USER.1.as_bytes()));
        std::fs::write(&users, format!("{}:{{SHA}}{sha}\n", USER.0)).unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("reclife.toml"),
            format!(
                // The downloader's user is `ops`: the `user` role is served no store paths, so
                // it would fetch every file through the API rather than straight from S3.
                "contact_center_id = \"cc1\"\nrules_dir = \"rules\"\nmedia_location = \"{media}\"\n\n[api]\nusers_file = \"{}\"\nops_users = [\"{}\"]\n",
                users.display(),
                USER.0
            ),
        )
        .unwrap();
        Some(Node { dir, media, server: None, url: String::new() })
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("--config")
            .arg(self.dir.path().join("reclife.toml"))
            .env_remove("RECLIFE_NOW");
        c
    }

    /// Writes recordings as GIR folders (`<id>/meta-data.json` + media) and ingests them.
    pub fn ingest(&self, recs: &[Rec]) {
        let src = tempfile::tempdir().unwrap();
        for r in recs {
            r.write(src.path());
        }
        let out = self.cmd().arg("ingest").arg(src.path()).output().unwrap();
        assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Starts `reclife serve`.
    pub fn serve(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let mut child =
            self.cmd().args(["serve", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        self.url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve said {line:?}")).to_string();
        self.server = Some(child);
    }

    pub fn prefix(&self) -> String {
        format!("{}/api/v2", self.url)
    }

    /// `reclife download` with the API credentials and `args`, target `target`.
    pub fn download_cmd(&self, target: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(["--quiet", "download", "--gws-uri-prefix", &self.prefix(), "--target-dir"])
            .arg(target)
            .args(args)
            .env("GWS_USERNAME", USER.0)
            .env("GWS_PASSWORD", USER.1)
            .env_remove("RECLIFE_NOW")
            .env_remove("RECLIFE_CONFIG");
        c
    }

    pub fn download(&self, target: &Path, args: &[&str]) -> Output {
        self.download_cmd(target, args).output().unwrap()
    }

    /// The recording document the API serves (a call, else a screen recording: a recording
    /// with only video is a screen recording).
    pub fn api_doc(&self, id: &str) -> serde_json::Value {
        for kind in ["recordings", "screen-recordings"] {
            let r = reqwest::blocking::Client::new()
                .get(format!("{}/{kind}/{id}", self.prefix()))
                .basic_auth(USER.0, Some(USER.1))
                .send()
                .unwrap();
            if r.status() == 200 {
                let v: serde_json::Value = r.json().unwrap();
                return v["recording"].clone();
            }
        }
        panic!("the API has no recording {id}")
    }

    /// The media store (for removing an object under the API's feet).
    pub fn store(&self) -> std::sync::Arc<dyn reclife::storage::MediaStore> {
        reclife::storage::open(&reclife::storage::Location::parse(&self.media).unwrap()).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
}

/// A call recording to ingest.
#[derive(Clone, Debug)]
pub struct Rec {
    pub id: String,
    pub start: String,
    pub stop: String,
    pub media: Vec<Media>,
}

impl Rec {
    pub fn new(id: &str, start: &str, stop: &str, media: Vec<Media>) -> Rec {
        Rec { id: id.into(), start: start.into(), stop: stop.into(), media }
    }

    pub fn write(&self, root: &Path) {
        let dir = root.join(&self.id);
        std::fs::create_dir_all(&dir).unwrap();
        let files: Vec<serde_json::Value> = self
            .media
            .iter()
            .map(|m| {
                std::fs::write(dir.join(&m.id), &m.bytes).unwrap();
                serde_json::json!({"mediaId": m.id, "type": m.mime, "startTime": self.start, "stopTime": self.stop,
                    "size": m.bytes.len().to_string(), "tenant": "Environment", "duration": "1000"})
            })
            .collect();
        let doc = serde_json::json!({"id": self.id, "callerPhoneNumber": "100", "dialedPhoneNumber": "200",
            "startTime": self.start, "stopTime": self.stop, "callType": "Inbound", "region": "us",
            "mediaFiles": files, "x-undocumented": {"kept": true}});
        std::fs::write(dir.join("meta-data.json"), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }
}

/// Every file below `root` (relative path → bytes), leaving out the downloader's own files
/// (the lock, the checkpoint, its work folder).
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).into_iter().flatten() {
        if !e.file_type().is_file() {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if rel == ".reclife-download.lock"
            || rel == "last_recording_endtime.txt"
            || rel.starts_with(".reclife-download/")
        {
            continue;
        }
        out.insert(rel, std::fs::read(e.path()).unwrap());
    }
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The `downloaded N file(s)` figure of the summary line.
pub fn downloaded(o: &Output) -> u64 {
    let s = stdout(o);
    let rest = s.split("downloaded ").nth(1).unwrap_or_else(|| panic!("no summary: {s}"));
    rest.split_whitespace().next().unwrap().parse().unwrap()
}

pub fn checkpoint(target: &Path) -> Option<i64> {
    std::fs::read_to_string(target.join("last_recording_endtime.txt")).ok().map(|s| s.trim().parse().unwrap())
}

pub fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_millis()
}

pub fn path(p: &Path) -> PathBuf {
    p.to_path_buf()
}

/// A real forward proxy (Debian's tinyproxy) on a free loopback port, logging every request
/// line to its log file, which [`Proxy::log`] reads. Stopped on drop.
pub struct Proxy {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Proxy {
    pub fn start() -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nLogLevel Info\nMaxClients 50\nLogFile \"{}\"\n",
                dir.path().join("proxy.log").display()
            ),
        )
        .unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy (deploy/install.sh installs it)");
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Proxy { port, dir, child }
    }

    /// The proxy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("proxy.log")).unwrap_or_default()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
