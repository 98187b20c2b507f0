//! The operators' pages in a real browser: `reclife serve` over the sample recordings, and
//! `node --test tests/browser/` driving Debian's headless Chromium with playwright-core
//! (installed by `deploy/install.sh` into `tests/browser/node_modules`).
//!
//! Without Chromium, node or playwright-core the test says so and passes, unless
//! `RECLIFE_REQUIRE_SERVERS=1` (CI), where it fails. `RECLIFE_CHROMIUM` names another browser
//! build (default `/usr/bin/chromium`). Screenshots go to
//! `$RECLIFE_ARTIFACTS` when set.

mod api_support;
mod browser_support;

use api_support::{Node, OPS, USER};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_pages_work_in_headless_chromium() {
    if !browser_support::available() {
        return;
    }
    let dir = browser_support::dir();
    let node = Node::new(0);
    let s = node.serve(&[]);
    let t = Instant::now();
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .args(["--test", "--test-concurrency=1", "--test-timeout=120000"])
        .arg("web.test.mjs")
        .env("RECLIFE_URL", &s.url)
        .env("RECLIFE_OPS", format!("{}:{}", OPS.0, OPS.1))
        .env("RECLIFE_USER", format!("{}:{}", USER.0, USER.1))
        .env("RECLIFE_CHROMIUM", browser_support::chromium());
    let out = cmd.output().unwrap();
    let took = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed ({:?}):\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        api_support::read(&s.stderr)
    );
    // node's runner says how many passed; all four must have run.
    assert!(stdout.contains("# pass 4") && stdout.contains("# fail 0"), "{stdout}");
    eprintln!("browser tests: {took:?}");
    assert!(took < Duration::from_secs(180), "the browser tests took {took:?}");
}
