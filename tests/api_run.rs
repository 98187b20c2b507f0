//! `reclife run` serves the API too when `[api] listen` is set, and one SIGTERM stops both.

mod api_support;

use api_support::{Node, USER};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// The node's config with an empty rules folder (the daemon then schedules nothing).
fn config_without_rules(node: &Node) -> String {
    let empty = node.dir.path().join("no-rules");
    std::fs::create_dir_all(&empty).unwrap();
    let cfg = std::fs::read_to_string(node.config()).unwrap();
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

#[test]
fn run_serves_the_api_and_stops_on_sigterm() {
    let node = Node::new(0);
    let cfg = config_without_rules(&node);
    std::fs::write(node.config(), format!("{cfg}listen = \"127.0.0.1:0\"\n")).unwrap();
    let mut child = node.cmd().arg("run").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("API listening on ").unwrap_or_else(|| panic!("run said {line:?}")).to_string();
    let r = reqwest::blocking::Client::new()
        .get(format!("{url}/api/v2/recordings"))
        .basic_auth(USER.0, Some(USER.1))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().unwrap();
    assert_eq!(v["recordings"].as_array().unwrap().len(), 4);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
}

/// `[muxer] enabled = true`: `reclife run` muxes too (the API shows it), and one SIGTERM stops
/// the scheduler, the muxer and the API.
#[test]
fn run_with_the_muxer_enabled_muxes_and_stops_on_sigterm() {
    let node = Node::new(0);
    let keys = api_support::repo().join("testdata/keys");
    let cfg = config_without_rules(&node);
    let text = format!(
        "keys_dir = \"{}\"\n{cfg}listen = \"127.0.0.1:0\"\n\n[muxer]\nenabled = true\nmin_poll_interval = 1\nscreen_certs = [\"{}\"]\ntemp_dir = \"{}\"\n",
        keys.display(),
        keys.join("recording-cert.pem").display(),
        node.dir.path().join("mux-tmp").display()
    );
    std::fs::write(node.config(), text).unwrap();
    // Call A ended 2024-03-10T09:15:06Z: inside the muxer's window (720..5 minutes) at noon.
    let mut child = node
        .cmd()
        .args(["--now", "2024-03-10T12:00:00Z", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut url = None;
    let mut muxer = false;
    for _ in 0..2 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        if let Some(u) = line.trim().strip_prefix("API listening on ") {
            url = Some(u.to_string());
        }
        muxer |= line.starts_with("muxer polling");
    }
    let url = url.expect("the API listens");
    assert!(muxer, "the muxer runs");
    let c = reqwest::blocking::Client::new();
    let t = std::time::Instant::now();
    loop {
        let v: serde_json::Value =
            c.get(format!("{url}/api/v1/muxer")).basic_auth(USER.0, Some(USER.1)).send().unwrap().json().unwrap();
        if v["muxed"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(120), "nothing muxed: {v}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
}
