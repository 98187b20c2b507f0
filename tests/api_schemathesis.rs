//! schemathesis (PyPI, installed by deploy/install.sh) against a live `reclife serve` with the
//! sample recordings, driven by the server's own OpenAPI document: no answer may be a server
//! error, every status must be documented, every JSON answer must match its schema. Bounded in
//! time (`--max-time`) and examples. The event stream is left out: it stays open by design.

mod api_support;

use api_support::{Node, OPS};

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let node = Node::new(200);
    let s = node.serve(&[]);
    let report = node.dir.path().join("schemathesis");
    let out = std::process::Command::new("schemathesis")
        .args(["run", &format!("{}/api/v1/openapi.json", s.url)])
        .args(["--auth", &format!("{}:{}", OPS.0, OPS.1)])
        .args(["--checks", "not_a_server_error,status_code_conformance,response_schema_conformance"])
        .args(["--max-examples", "25", "--max-time", "90", "--seed", "7", "--workers", "1"])
        .args(["--exclude-path-regex", "/events$"])
        .args(["--request-timeout", "30"])
        .arg("--report-dir")
        .arg(&report)
        .current_dir(node.dir.path()) // its cache stays out of the source tree
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .expect("schemathesis is installed by deploy/install.sh");
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis failed:\n{text}\nserver log:\n{}", api_support::read(&s.stderr));
    assert!(!api_support::read(&s.stderr).contains("panicked"), "{}", api_support::read(&s.stderr));
}
