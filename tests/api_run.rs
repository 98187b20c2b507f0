//! `reclife run` serves the API too when `[api] listen` is set, and one SIGTERM stops both.

mod api_support;

use api_support::{Node, USER};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn run_serves_the_api_and_stops_on_sigterm() {
    let node = Node::new(0);
    let cfg = node.config_without_rules();
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
    let (mut child, url, lines) = node.run_with_muxer();
    assert!(lines.iter().any(|l| l.starts_with("muxer polling")), "the muxer runs: {lines:?}");
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
