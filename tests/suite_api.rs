//! Test suite `suite_api`: the HTTP faces: the RWS and v1 APIs, authentication, the contract, the daemon's run and shutdown, the pages (server-side and in Chromium) and the hostile-input corpus.
//!
//! One test binary per area (each binary links the whole crate, so the suite links a few times,
//! not once per file); every file below is a module of its own, as it was a binary of its own.
//! Modules that crash or pause the binary at failpoints need `--features failpoints`.

// Each file declares the support modules it uses, as it did when it was a binary of its own, so a
// support module shared by two files of a suite is compiled twice (its items are plain helpers).
#![allow(clippy::duplicate_mod)]

#[path = "api_auth.rs"]
mod api_auth;
#[path = "api_contract.rs"]
mod api_contract;
#[path = "api_run.rs"]
mod api_run;
#[path = "api_rws.rs"]
mod api_rws;
#[path = "api_schemathesis.rs"]
mod api_schemathesis;
#[cfg(feature = "failpoints")]
#[path = "api_shutdown.rs"]
mod api_shutdown;
#[path = "api_v1.rs"]
mod api_v1;
#[path = "hostile_corpus.rs"]
mod hostile_corpus;
#[path = "web_browser.rs"]
mod web_browser;
#[path = "web_pages.rs"]
mod web_pages;

/// `autotests = false` means a test file that no suite names would never run: every `tests/*.rs`
/// file other than the suites is a module of exactly one suite.
#[test]
fn every_test_file_is_in_a_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut suites = String::new();
    let mut files = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".rs") {
            continue;
        }
        if name.starts_with("suite_") {
            suites.push_str(&std::fs::read_to_string(dir.join(&name)).unwrap());
        } else {
            files.push(name);
        }
    }
    assert!(!files.is_empty());
    for f in files {
        let n = suites.matches(&format!("#[path = \"{f}\"]")).count();
        assert_eq!(n, 1, "tests/{f} is named by {n} suites (add it to one tests/suite_*.rs)");
    }
}
