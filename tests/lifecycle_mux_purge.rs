//! The muxer and a purge on the same call at the same time, as separate processes, in both
//! orders: whichever wins, no media file is left that no document points at, and no document
//! points at missing media (`reclife check` is clean). And `reclife check --repair` while the
//! muxer has stored its file but not yet recorded it: the file is the muxer's, not an orphan.

mod lifecycle_util;
#[path = "muxer_support/mod.rs"]
mod support;

use lifecycle_util::wait_reached;
use std::path::Path;
use std::process::Stdio;
use support::*;

const A: &str = "CALLA0000000000000000000000000001";
const A_SCREEN: &str = "CALLA0000000000000000000000000001_2024-03-10_09-15-02";
const MUX_NOW: &str = "2024-03-10T12:00:00Z";
const PURGE: [&str; 8] =
    ["--now", "2025-06-25T00:00:00Z", "purge", "--type", "voice", "--min-age", "300", "--include-screen"];

fn check_clean(data: &Path, cfg: &Path) -> String {
    let o = run(data, cfg, &["check"]);
    assert!(o.status.success(), "check:\n{}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

fn exists(data: &Path, cfg: &Path, id: &str) -> bool {
    run(data, cfg, &["recordings", "show", id]).status.success()
}

/// `reclife mux --once`, paused (failpoint) once it has stored its output and before it adds it
/// to the screen's document; `flag` lets it go on.
fn mux_paused_after_store(data: &Path, cfg: &Path, flag: &Path) -> std::process::Child {
    let mux = command(data, cfg, &["mux", "--once", "--now", MUX_NOW, "--json"])
        .env("RECLIFE_FAILPOINT", format!("mux.after_store:1:pause={}", flag.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(flag);
    mux
}

#[test]
fn a_purge_that_wins_over_the_muxer_leaves_no_orphan_file() {
    let (tmp, data, cfg) = samples();
    let flag = tmp.path().join("go-mux");
    // The muxer stores its output, then pauses before adding it to the screen's document.
    let mux = mux_paused_after_store(&data, &cfg, &flag);
    // Meanwhile the call and its screen are purged.
    expect(&run(&data, &cfg, &PURGE), 0);
    assert!(!exists(&data, &cfg, A_SCREEN), "the screen was purged");
    std::fs::write(&flag, b"").unwrap();
    let o = mux.wait_with_output().unwrap();
    let report = stdout(&o);
    assert!(report.contains("purged while it was muxed"), "{report}\n{}", stderr(&o));
    assert!(!exists(&data, &cfg, A_SCREEN), "the muxer must not re-create a purged screen");
    check_clean(&data, &cfg);
    assert!(!data.join("media").join(A_SCREEN).exists(), "the muxed file was left on disk");
}

#[test]
fn a_muxer_that_wins_during_a_purge_keeps_the_screen_whole() {
    let (tmp, data, cfg) = samples();
    let flag = tmp.path().join("go-purge");
    // The purge journals its batch (the screen at the version it planned), then pauses.
    let purge = command(&data, &cfg, &PURGE)
        .env("RECLIFE_FAILPOINT", format!("purge.after_journal:1:pause={}", flag.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&flag);
    let r = mux_json(&data, &cfg, &["--once", "--now", MUX_NOW], 0);
    assert_eq!(muxed_screens(&r), [A_SCREEN], "{r}");
    std::fs::write(&flag, b"").unwrap();
    let o = purge.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains(&format!("skipped: changed since planned {A_SCREEN}")), "{}", stdout(&o));
    assert!(exists(&data, &cfg, A_SCREEN), "a screen muxed after the plan was purged");
    assert_eq!(muxed_entries(&data, &cfg, A_SCREEN).len(), 1, "the muxed file is on the document");
    check_clean(&data, &cfg);
    // The muxer also labels the call (mark_screen_recording_label), so the call changed too
    // and is left for the next purge, with its label.
    assert!(exists(&data, &cfg, A), "a call labelled after the plan was purged");
    assert!(stdout(&o).contains(&format!("skipped: changed since planned {A}")), "{}", stdout(&o));
    expect(&run(&data, &cfg, &PURGE), 0);
    assert!(!exists(&data, &cfg, A) && !exists(&data, &cfg, A_SCREEN), "the next purge takes both");
    check_clean(&data, &cfg);
}

#[test]
fn a_repair_while_the_muxer_stores_its_file_leaves_it_alone() {
    let (tmp, data, cfg) = samples();
    let flag = tmp.path().join("go-mux");
    let mux = mux_paused_after_store(&data, &cfg, &flag);
    // The stored file, not on the screen's document yet; made old, as if the mux took hours,
    // so that only the muxer's intent keeps it from being taken for an orphan.
    let dir = data.join("media").join(A_SCREEN);
    let muxed: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-muxed"))
        .collect();
    assert_eq!(muxed.len(), 1, "{muxed:?}");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&muxed[0]).unwrap().set_modified(old).unwrap();
    let o = run(&data, &cfg, &["check", "--repair"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(muxed[0].exists(), "check --repair removed the file the muxer was storing: {}", stdout(&o));
    std::fs::write(&flag, b"").unwrap();
    let o = mux.wait_with_output().unwrap();
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(muxed_entries(&data, &cfg, A_SCREEN).len(), 1, "the muxed file is on the document");
    check_clean(&data, &cfg);
}
