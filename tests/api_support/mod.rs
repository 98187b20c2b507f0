//! Helpers shared by the API tests: a data directory with the sample recordings (and,
//! optionally, synthetic calls), an htpasswd file, and `reclife serve` on a free loopback port.
#![allow(dead_code)]

use base64::Engine as _;
use sha1::Digest as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const OPS: (&str, &str) = ("ops", "ops-secret-42");
pub const USER: (&str, &str) = ("alice", "alice-pw-17");
pub const CCID: &str = "cc1";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reclife")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A data directory and config, ready to serve.
pub struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    /// The sample recordings, ingested with the real binary, plus `synthetic` generated calls.
    pub fn new(synthetic: u64) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users");
        // ops: bcrypt as `htpasswd -B` writes it ($2y$); alice: `{SHA}` as `htpasswd -s` does.
        let ops_hash = bcrypt::hash_with_result(OPS.1, 5).unwrap().format_for_version(bcrypt::Version::TwoY);
        let sha = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(USER.1.as_bytes()));
        std::fs::write(&users, format!("# test users\n{}:{ops_hash}\n{}:{{SHA}}{sha}\n", OPS.0, USER.0)).unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        // The demo's enabled copies of the example rules (no placeholder location; they use
        // the node's default), and the example purge.
        for f in std::fs::read_dir(repo().join("deploy/demo-rules")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, rules.join(f.file_name().unwrap())).unwrap();
        }
        std::fs::copy(repo().join("rules/purge-old.toml"), rules.join("purge-old.toml")).unwrap();
        std::fs::write(
            dir.path().join("reclife.toml"),
            format!(
                "contact_center_id = \"{CCID}\"\nrules_dir = \"{}\"\ndefault_backup_location = \"file://{}\"\n\n[api]\nusers_file = \"{}\"\nops_users = [\"{}\"]\n",
                rules.display(),
                dir.path().join("backups").display(),
                users.display(),
                OPS.0
            ),
        )
        .unwrap();
        let node = Node { dir };
        let out = node.cmd().arg("ingest").arg(repo().join("testdata/recordings")).output().unwrap();
        assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
        if synthetic > 0 {
            let cat = reclife::catalog::SqliteCatalog::open(&node.data().join("catalog.db")).unwrap();
            let end = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").unwrap().to_utc();
            reclife::catalog::synth::fill(&cat, synthetic, end, 30, 7, 1000).unwrap();
        }
        node
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("reclife.toml")
    }

    /// The binary with this node's data dir and config.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data-dir").arg(self.data()).arg("--config").arg(self.config()).env_remove("RECLIFE_NOW");
        c
    }

    /// `reclife serve` on a free port; `extra` goes before the subcommand (e.g. `-vv`).
    pub fn serve(&self, extra: &[&str]) -> Server {
        let stderr = self.dir.path().join(format!("serve-{}.log", rand_suffix()));
        let mut child = self
            .cmd()
            .args(extra)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve said {line:?}")).to_string();
        Server { child: Some(child), url, stderr }
    }

    /// Ingests, with the real binary, one call `id` (2024-03-11 10:00 to 10:01 UTC) whose one
    /// media file `media_id` has the metadata type `mime` and the bytes `bytes`; the metadata
    /// also gives it a GIR `mediaDescriptor` naming a server path.
    pub fn add_call(&self, id: &str, media_id: &str, mime: &str, bytes: &[u8]) {
        let src = tempfile::tempdir().unwrap();
        let dir = src.path().join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(media_id), bytes).unwrap();
        let (start, stop) = ("2024-03-11T10:00:00.000+0000", "2024-03-11T10:01:00.000+0000");
        let doc = serde_json::json!({"id": id, "callerPhoneNumber": "100", "dialedPhoneNumber": "200",
            "startTime": start, "stopTime": stop, "callType": "Inbound", "region": "us",
            "mediaFiles": [{"mediaId": media_id, "type": mime, "startTime": start, "stopTime": stop,
                "size": bytes.len().to_string(), "tenant": "Environment", "duration": "60000",
                "mediaDescriptor": {"storage": "WebDAV", "path": format!("/srv/gir-store/2024/03/11/{media_id}")},
                "originalMediaDescriptor": {"storage": "s3", "path": format!("/secret-bucket/{media_id}")}}]});
        std::fs::write(dir.join("meta-data.json"), serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
        let out = self.cmd().arg("ingest").arg(src.path()).output().unwrap();
        assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Ingests, with the real binary in one run, `n` calls `{prefix}{i:06}` (2024-03-11, one
    /// minute apart) each with one `audio/mp3` media file of `size` bytes.
    #[allow(dead_code)]
    pub fn add_calls(&self, prefix: &str, n: usize, size: usize) {
        let src = tempfile::tempdir().unwrap();
        let t0 = chrono::DateTime::parse_from_rfc3339("2024-03-11T00:00:00Z").unwrap().to_utc();
        let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S.000+0000").to_string();
        for i in 0..n {
            let id = format!("{prefix}{i:06}");
            let dir = src.path().join(&id);
            std::fs::create_dir_all(&dir).unwrap();
            let media_id = format!("{id}.mp3");
            let bytes: Vec<u8> = (0..size).map(|k| (k.wrapping_mul(31) ^ i) as u8).collect();
            std::fs::write(dir.join(&media_id), &bytes).unwrap();
            let start = t0 + chrono::Duration::minutes(i as i64);
            let (start, stop) = (fmt(start), fmt(start + chrono::Duration::seconds(30)));
            let doc = serde_json::json!({"id": id, "callerPhoneNumber": "100", "dialedPhoneNumber": "200",
                "startTime": start, "stopTime": stop, "callType": "Inbound", "region": "us",
                "mediaFiles": [{"mediaId": media_id, "type": "audio/mp3", "startTime": start, "stopTime": stop,
                    "size": size.to_string(), "tenant": "Environment", "duration": "30000"}]});
            std::fs::write(dir.join("meta-data.json"), serde_json::to_vec(&doc).unwrap()).unwrap();
        }
        let out = self.cmd().arg("ingest").arg(src.path()).output().unwrap();
        assert!(out.status.success(), "ingest: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// The node's config with `rules_dir` pointed at an empty folder (no rule fires).
    pub fn config_without_rules(&self) -> String {
        let empty = self.dir.path().join("no-rules");
        std::fs::create_dir_all(&empty).unwrap();
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        cfg.lines()
            .map(|l| {
                if l.starts_with("rules_dir") {
                    format!("rules_dir = \"{}\"\n", empty.display())
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    /// `reclife run` at 2024-03-10T12:00:00Z (sample call A, ended 09:15:06, is inside the
    /// muxer's window) with no rules, the API on a free loopback port and `[muxer] enabled`
    /// (the test keys, sealed to the test certificate). Returns the daemon, the API's URL and
    /// its first two lines of output.
    pub fn run_with_muxer(&self) -> (Child, String, Vec<String>) {
        let keys = repo().join("testdata/keys");
        let text = format!(
            "keys_dir = \"{}\"\n{}listen = \"127.0.0.1:0\"\n\n[muxer]\nenabled = true\nmin_poll_interval = 1\nscreen_certs = [\"{}\"]\ntemp_dir = \"{}\"\n",
            keys.display(),
            self.config_without_rules(),
            keys.join("recording-cert.pem").display(),
            self.dir.path().join("mux-tmp").display()
        );
        std::fs::write(self.config(), text).unwrap();
        let mut child = self
            .cmd()
            .args(["--now", "2024-03-10T12:00:00Z", "run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let lines: Vec<String> = (0..2)
            .map(|_| {
                let mut line = String::new();
                out.read_line(&mut line).unwrap();
                line.trim().to_string()
            })
            .collect();
        let url = lines.iter().find_map(|l| l.strip_prefix("API listening on ")).expect("the API listens").to_string();
        (child, url, lines)
    }
}

impl Node {
    /// Gives the node the test key store (`keys_dir`: testdata/keys), which opens the sample
    /// call C's encrypted voice file.
    pub fn add_keys(&self) {
        let cfg = std::fs::read_to_string(self.config()).unwrap();
        let keys = repo().join("testdata/keys");
        std::fs::write(self.config(), format!("keys_dir = \"{}\"\n{cfg}", keys.display())).unwrap();
    }

    /// The lines of the playback audit log (`audit/plays.jsonl`), once it holds at least `n`
    /// (lines are written when an answer has ended, fsynced in batches: waits up to 10 s).
    pub fn plays(&self, n: usize) -> Vec<serde_json::Value> {
        let path = self.data().join("audit/plays.jsonl");
        let t = std::time::Instant::now();
        loop {
            let lines: Vec<serde_json::Value> =
                read(&path).lines().map(|l| serde_json::from_str(l).expect("a whole JSON line")).collect();
            if lines.len() >= n || t.elapsed() > std::time::Duration::from_secs(10) {
                return lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

/// The plaintext of an encrypted sample file, as `openssl cms -decrypt` opens it with the test
/// key.
pub fn openssl_decrypt(file: &Path) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["cms", "-decrypt", "-inform", "DER", "-binary", "-in"])
        .arg(file)
        .arg("-inkey")
        .arg(repo().join("testdata/keys/recording-key.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// The sample call whose voice file is encrypted (an attached DER envelope for the test key).
pub const ENCRYPTED_CALL: &str = "CALLC0000000000000000000000000003";

/// Its encrypted voice file in testdata.
pub fn encrypted_sample() -> PathBuf {
    repo().join(
        "testdata/recordings/cc1/Environment/2025/06/24/CALLC0000000000000000000000000003/CALLC0000000000000000000000000003_0001.mp3",
    )
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

/// A running `reclife serve`; stopped with SIGTERM on drop.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    pub stderr: PathBuf,
}

impl Server {
    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::new()
    }

    pub fn get(&self, who: (&str, &str), path: &str) -> reqwest::blocking::Response {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.url) };
        self.client().get(url).basic_auth(who.0, Some(who.1)).send().unwrap()
    }

    /// A write as a client that is not a browser sends it: JSON, no `Origin`.
    pub fn send(
        &self,
        who: (&str, &str),
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::blocking::Response {
        let r = self
            .client()
            .request(method, format!("{}{path}", self.url))
            .basic_auth(who.0, Some(who.1))
            .header("content-type", "application/json");
        match body {
            Some(b) => r.body(b.to_string()),
            None => r,
        }
        .send()
        .unwrap()
    }

    /// GET, expecting 200 and a JSON body with `statusCode` 0.
    pub fn json(&self, who: (&str, &str), path: &str) -> serde_json::Value {
        let r = self.get(who, path);
        let status = r.status();
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(status, 200, "{path}: {v}");
        assert_eq!(v["statusCode"], 0, "{path}: {v}");
        v
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop();
        }
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
