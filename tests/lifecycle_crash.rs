//! Crash safety of backup-then-purge: the process is killed (abort at a failpoint, or SIGKILL
//! at a random moment) at many points; after each restart every recording must be fully
//! present, or fully gone, audited exactly once and inside a verified archive; no media may be
//! orphaned; no archive under a final name may be incomplete.

mod lifecycle_util;

use lifecycle_util::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const OLD: usize = 40;

struct Fixture {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    backups: PathBuf,
    cfg: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let (data, backups, cfg) = backup_and_purge_node(tmp.path(), "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&data, &backups);
        for i in 0..OLD {
            add_call(&ctx, &format!("OLD{i:03}"), 400 + i as i64, i % 7 == 3, i % 3 == 0, 20_000).await;
        }
        add_call(&ctx, "NEW1", 5, false, true, 1000).await;
    });
    Fixture { _tmp: tmp, data, backups, cfg }
}

fn command(f: &Fixture) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.args(["--data-dir", f.data.to_str().unwrap(), "--config", f.cfg.to_str().unwrap()])
        .args(["--now", "2025-06-25T03:00:00Z", "-q", "run", "--once"])
        .env_remove("RECLIFE_FAILPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn zip_names(path: &Path) -> HashSet<String> {
    let za = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    za.file_names().map(|n| n.unwrap().to_string()).collect()
}

/// No archive under a final name is incomplete (temporary names start with a dot).
fn check_archives(f: &Fixture) {
    let Ok(rd) = std::fs::read_dir(&f.backups) else { return };
    for e in rd {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let o = Command::new("unzip").arg("-tq").arg(&p).output().unwrap();
        assert!(o.status.success(), "{name} is under a final name but fails unzip -t");
    }
}

/// The invariants after a successful restart.
fn check_invariants(f: &Fixture, when: &str) {
    check_archives(f);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&f.data, &f.backups);
        let catalog_ids: HashSet<String> = {
            let mut s = HashSet::new();
            let q = reclife::catalog::Query::default();
            for page in reclife::catalog::CatalogExt::scroll(ctx.catalog.as_ref(), &q, 1000) {
                s.extend(page.unwrap().rows.into_iter().map(|r| r.id));
            }
            s
        };
        // No orphaned media: every stored object belongs to a recording in the catalog.
        for o in ctx.media.list(None).await.unwrap() {
            let id = o.key.segments().next().unwrap().to_string();
            assert!(catalog_ids.contains(&id), "{when}: orphaned media {}", o.key);
        }
        assert!(
            ctx.catalog.state_list(reclife::lifecycle::journal::NAMESPACE).unwrap().is_empty(),
            "{when}: open journal"
        );
        let mut ids: Vec<String> = (0..OLD).map(|i| format!("OLD{i:03}")).collect();
        ids.extend((0..OLD).filter(|i| i % 3 == 0).map(|i| format!("OLD{i:03}_scr")));
        ids.push("NEW1".into());
        ids.push("NEW1_scr".into());
        for id in &ids {
            let lines = audit_lines(&f.data, id);
            if catalog_ids.contains(id) {
                let present = media_present(&ctx, id).await;
                assert!(!present.is_empty() && present.iter().all(|p| *p), "{when}: {id} present but media missing");
                assert!(lines.is_empty(), "{when}: {id} present but audited as deleted");
            } else {
                assert!(!id.starts_with("NEW"), "{when}: {id} was too young to purge");
                assert!(!any_media_left(&ctx, id).await, "{when}: {id} gone but media left");
                assert_eq!(lines.len(), 1, "{when}: {id} gone, audited {} times", lines.len());
                let archive = PathBuf::from(lines[0]["archive"].as_str().unwrap());
                let names = zip_names(&archive);
                assert!(
                    names.iter().any(|n| n.ends_with(&format!("/{id}/meta-data.json"))),
                    "{when}: {id} purged but not in {}",
                    archive.display()
                );
            }
        }
        // Held recordings survive everything.
        for i in (0..OLD).filter(|i| i % 7 == 3) {
            assert!(catalog_ids.contains(&format!("OLD{i:03}")), "{when}: held OLD{i:03} purged");
        }
    });
}

fn restart(f: &Fixture, when: &str) {
    let o = command(f).output().unwrap();
    assert!(o.status.success(), "{when}: restart failed: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn killed_at_every_failpoint_then_restarted() {
    let points = [
        "backup.after_entry:1",
        "backup.after_entry:17",
        "backup.before_rename:1",
        "backup.after_rename:1",
        "purge.after_journal:1",
        "purge.after_catalog_delete:1",
        "purge.after_media_delete:1",
        "purge.after_media_delete:20",
        "purge.after_audit:1",
    ];
    for fp in points {
        let f = fixture();
        let o = command(&f).env("RECLIFE_FAILPOINT", fp).output().unwrap();
        assert!(!o.status.success(), "{fp}: the failpoint did not fire");
        assert!(String::from_utf8_lossy(&o.stderr).contains("aborting"), "{fp}");
        check_archives(&f);
        restart(&f, fp);
        check_invariants(&f, fp);
        // A second crash during recovery-then-run, and another restart, changes nothing.
        restart(&f, fp);
        check_invariants(&f, &format!("{fp} (second restart)"));
    }
}

#[test]
fn killed_at_random_moments_then_restarted() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..8 {
        let f = fixture();
        let mut child = command(&f).stderr(Stdio::null()).spawn().unwrap();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay_ms = 20 + (seed >> 33) % 400;
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let when = format!("random kill {round} after {delay_ms} ms");
        check_archives(&f);
        restart(&f, &when);
        check_invariants(&f, &when);
    }
}
