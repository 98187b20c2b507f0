//! The operators' pages in a real browser: `reclife serve` over the sample recordings, and
//! `node --test tests/browser/` driving Debian's headless Chromium with playwright-core
//! (installed by `deploy/install.sh` into `tests/browser/node_modules`).
//!
//! Without Chromium, node or playwright-core the test says so and passes, unless
//! `RECLIFE_REQUIRE_SERVERS=1` (CI), where it fails. `RECLIFE_CHROMIUM` names another browser
//! build (default `/usr/bin/chromium`). Screenshots go to
//! `$RECLIFE_ARTIFACTS` when set.

mod api_support;

use api_support::{Node, OPS, USER};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Debian's Chromium, unless `RECLIFE_CHROMIUM` names another build.
fn chromium() -> String {
    std::env::var("RECLIFE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// What is missing to run the browser tests, if anything.
fn missing(dir: &Path) -> Option<String> {
    let chromium = chromium();
    if !Path::new(&chromium).exists() {
        return Some(format!("{chromium} (Debian package chromium)"));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return Some("node (Debian package nodejs)".into()),
    }
    if !dir.join("node_modules/playwright-core/package.json").exists() {
        return Some("tests/browser/node_modules/playwright-core (npm ci in tests/browser)".into());
    }
    None
}

#[test]
fn the_pages_work_in_headless_chromium() {
    let dir: PathBuf = api_support::repo().join("tests/browser");
    if let Some(what) = missing(&dir) {
        assert!(
            std::env::var("RECLIFE_REQUIRE_SERVERS").as_deref() != Ok("1"),
            "RECLIFE_REQUIRE_SERVERS=1 and {what} is missing: run deploy/install.sh"
        );
        eprintln!("browser test skipped: {what} is missing (deploy/install.sh installs it)");
        return;
    }
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
        .env("RECLIFE_CHROMIUM", chromium());
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
