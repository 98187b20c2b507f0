//! What the browser tests share (tests/web_browser.rs, tests/muxer_browser.rs): which Chromium,
//! and whether everything the harness of tests/browser/ needs is here.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's Chromium, unless `RECLIFE_CHROMIUM` names another build.
pub fn chromium() -> String {
    std::env::var("RECLIFE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// tests/browser: the harness, its tests and its node_modules.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// What is missing to run the browser tests, if anything.
fn missing(dir: &Path) -> Option<String> {
    if !Path::new(&chromium()).exists() {
        return Some(format!("{} (Debian package chromium)", chromium()));
    }
    if !Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Some("node (Debian package nodejs)".into());
    }
    if !dir.join("node_modules/playwright-core/package.json").exists() {
        return Some("tests/browser/node_modules/playwright-core (npm ci in tests/browser)".into());
    }
    None
}

/// True when the browser tests can run. Otherwise says what is missing and returns false (the
/// test passes as skipped), unless `RECLIFE_REQUIRE_SERVERS=1` (CI), where it fails.
pub fn available() -> bool {
    let Some(what) = missing(&dir()) else { return true };
    assert!(
        std::env::var("RECLIFE_REQUIRE_SERVERS").as_deref() != Ok("1"),
        "RECLIFE_REQUIRE_SERVERS=1 and {what} is missing: run deploy/install.sh"
    );
    eprintln!("browser test skipped: {what} is missing (deploy/install.sh installs it)");
    false
}
