//! `reclife catalog migrate`: an SQLite catalog copied into PostgreSQL, killed half way and
//! run again, ends with every recording at the same version (holds and labels included), the
//! durable state carried over, and the copy resumed rather than restarted.

mod catalog_support;

use reclife::catalog::copy::{PROGRESS_KEY, PROGRESS_NS};
use reclife::catalog::{synth, Catalog, CatalogExt, Query, SqliteCatalog};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const N: u64 = 10_000;

fn migrate(db: &std::path::Path, to: &str, cfg: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.args(["--config", cfg.to_str().unwrap(), "-q", "catalog", "migrate"])
        .args(["--from", &format!("sqlite:{}", db.display()), "--to", to, "--page", "25"])
        .env_remove("RECLIFE_CATALOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn an_interrupted_migration_resumes_and_checks_versions() {
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    let target = schemas.fresh();
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("catalog.db");
    let src = SqliteCatalog::open(&db).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339("2025-06-25T00:00:00Z").unwrap().to_utc();
    synth::fill(&src, N, end, 30, 7, 1000).unwrap();
    // Versions above 1, holds and labels, so the copy has something to get wrong.
    let some: Vec<String> = src.scroll(&Query::default(), 997).map(|p| p.unwrap().rows[0].id.clone()).collect();
    for (i, id) in some.iter().enumerate() {
        src.label(id, "vip").unwrap();
        if i % 2 == 0 {
            src.hold(id, "litigation 7", "tester", end).unwrap();
        }
    }
    src.state_put(reclife::lifecycle::jobs::NAMESPACE, "job-1", "{\"id\":\"job-1\"}").unwrap();
    src.state_put(reclife::lifecycle::rules::OVERRIDES, "Nightly", "false").unwrap();
    drop(src);
    let cfg = tmp.path().join("node.toml");
    std::fs::write(&cfg, format!("[postgres]\nschema = \"{}\"\n", target.schema())).unwrap();

    // Killed once the first pages are in.
    let mut child = migrate(&db, &server, &cfg).spawn().unwrap();
    let t = Instant::now();
    loop {
        if target.state_get(PROGRESS_NS, PROGRESS_KEY).unwrap().is_some() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the migration never wrote a page");
        assert!(child.try_wait().unwrap().is_none(), "the migration ended before it could be interrupted");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = target.count(&Query::default()).unwrap();
    assert!(partial > 0 && partial < N, "killed half way: {partial} copied");

    let o = migrate(&db, &server, &cfg).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("resumed") && out.contains(&format!("verified {N} recording(s)")), "{out}");
    let written: u64 = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(written < N, "the rerun continued instead of starting over: {out}");

    // Checked independently of the command's own check.
    let src = SqliteCatalog::open(&db).unwrap();
    assert_eq!(target.count(&Query::default()).unwrap(), N);
    for id in &some {
        let (a, b) = (src.get(id).unwrap().unwrap(), target.get(id).unwrap().unwrap());
        assert_eq!((a.version, a.hold.clone(), a.recording.doc()), (b.version, b.hold.clone(), b.recording.doc()));
        assert!(b.version > 1 && b.recording.labels.contains(&"vip".to_string()));
    }
    let held = Query { held: Some(true), ..Query::default() };
    assert_eq!(target.count(&held).unwrap(), src.count(&held).unwrap());
    assert_eq!(target.state_get(reclife::lifecycle::rules::OVERRIDES, "Nightly").unwrap().as_deref(), Some("false"));
    assert!(target.state_get(reclife::lifecycle::jobs::NAMESPACE, "job-1").unwrap().is_some());

    // A third run has nothing to do and still checks.
    let o = migrate(&db, &server, &cfg).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.starts_with("copied 0 recording(s)"), "{out}");

    // An edit in the source after the copy is carried over by another run.
    src.label(&some[0], "late").unwrap();
    let v = src.get(&some[0]).unwrap().unwrap().version;
    drop(src);
    let o = migrate(&db, &server, &cfg).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && out.starts_with("copied 1 recording(s)"), "{out}");
    assert_eq!(target.get(&some[0]).unwrap().unwrap().version, v);
}
