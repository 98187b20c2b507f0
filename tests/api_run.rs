//! `reclife run` serves the API too when `[api] listen` is set, and one SIGTERM stops both.

mod api_support;

use api_support::{Node, USER};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn run_serves_the_api_and_stops_on_sigterm() {
    let node = Node::new(0);
    let empty = node.dir.path().join("no-rules");
    std::fs::create_dir_all(&empty).unwrap();
    let cfg = std::fs::read_to_string(node.config()).unwrap();
    let cfg: String = cfg
        .lines()
        .map(|l| {
            if l.starts_with("rules_dir") {
                format!("rules_dir = \"{}\"\n", empty.display())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
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
