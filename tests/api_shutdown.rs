//! SIGTERM to `reclife serve` while a job it started is running: the job stops at its next safe
//! point, is recorded as cancelled with the reason, publishes no archive, and the server exits 0.

mod api_support;

use api_support::{Node, OPS};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_an_api_job_at_a_safe_point_and_says_so() {
    let node = Node::new(0);
    let flag = node.dir.path().join("go-on");
    let mut child = node
        .cmd()
        .args(["serve", "--listen", "127.0.0.1:0"])
        // Pause the backup after its second entry.
        .env("RECLIFE_FAILPOINT", format!("backup.after_entry:2:pause={}", flag.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").unwrap().to_string();
    let c = reqwest::blocking::Client::new();
    let backups = node.dir.path().join("stop-backups");
    let body = serde_json::json!({ "tasks": [{ "type": "backup", "filter": { "recording_type": "voice", "min_age": 1 },
        "location": format!("file://{}", backups.display()) }] });
    let v: Value =
        c.post(format!("{url}/api/v1/jobs")).basic_auth(OPS.0, Some(OPS.1)).json(&body).send().unwrap().json().unwrap();
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let r = c
        .post(format!("{url}/api/v1/jobs/{id}/start"))
        .basic_auth(OPS.0, Some(OPS.1))
        .header("content-type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let reached = std::path::PathBuf::from(format!("{}.reached", flag.display()));
    let t = Instant::now();
    while !reached.exists() {
        assert!(t.elapsed() < Duration::from_secs(120), "the failpoint was never reached");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGTERM while the job is mid-archive, then let the job go on to its next safe point.
    std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&flag, b"").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "serve exited {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    // The job record, read by the CLI: cancelled, saying why; no archive published.
    let o = node.cmd().args(["jobs", "show", &id, "--json"]).output().unwrap();
    let job: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    let job = if job.get("job").is_some() { job["job"].clone() } else { job };
    assert_eq!(job["state"], "cancelled", "{job}");
    let notes = job.to_string();
    assert!(notes.contains("cancel"), "{job}");
    let published: Vec<_> = std::fs::read_dir(&backups)
        .map(|d| d.flatten().map(|e| e.file_name()).filter(|n| !n.to_string_lossy().contains(".part")).collect())
        .unwrap_or_default();
    assert!(published.is_empty(), "an archive was published: {published:?}");
}
