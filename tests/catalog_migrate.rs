//! `reclife catalog migrate`: an SQLite catalog copied into PostgreSQL, killed half way and
//! run again, ends with every recording at the same version (holds and labels included), the
//! durable state carried over, and the copy resumed rather than restarted. A node with media
//! registered in place, the claim of a folder backup killed mid-way and audit-log records is
//! migrated whole: on the new catalog its media is found where it is, and its repair removes
//! the dead backup's partial folder.

mod catalog_support;
#[path = "storage_support/mod.rs"]
mod storage_support;

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

fn testdata() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/recordings")
}

/// The binary on a node: `--data-dir data --config cfg`.
fn node(data: &std::path::Path, cfg: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.args(["--data-dir", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "-q"])
        .args(args)
        .env_remove("RECLIFE_CATALOG")
        .env_remove("RECLIFE_FAILPOINT")
        .stdin(Stdio::null());
    c
}

fn ok(c: &mut Command) -> String {
    let o = c.output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{c:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// The samples' metadata in `out`, each media file uploaded to `remote` and named there by its
/// `mediaDescriptor` (WebDAV's `storagePath` form).
async fn samples_in_place(remote: &reclife::storage::Location, out: &std::path::Path) {
    use reclife::storage::MediaStoreExt;
    let store = reclife::storage::open(remote).unwrap();
    let http = remote.to_string().replacen("webdav://", "http://", 1);
    for e in walkdir::WalkDir::new(testdata()) {
        let e = e.unwrap();
        if e.file_name() != "meta-data.json" {
            continue;
        }
        let dir = e.path().parent().unwrap();
        let rel = dir.strip_prefix(testdata()).unwrap();
        let mut whole: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        let doc = if whole.get("recording").is_some() { &mut whole["recording"] } else { &mut whole };
        let id = doc["id"].as_str().unwrap().to_string();
        for m in doc["mediaFiles"].as_array_mut().unwrap() {
            let media_id = m["mediaId"].as_str().unwrap().to_string();
            let bytes = std::fs::read(dir.join(&media_id)).unwrap();
            store.put_bytes(&reclife::storage::Key::media(&id, &media_id).unwrap(), bytes.into()).await.unwrap();
            m["mediaDescriptor"] = serde_json::json!({"storage": "WebDAV", "path": format!("/{id}/{media_id}"), "data": {"storagePath": http}});
        }
        std::fs::create_dir_all(out.join(rel)).unwrap();
        std::fs::write(out.join(rel).join("meta-data.json"), serde_json::to_vec_pretty(&whole).unwrap()).unwrap();
    }
}

#[test]
fn a_node_with_in_place_media_a_folder_claim_and_audit_logs_is_migrated_whole() {
    use reclife::catalog::namespaces;
    let Some(server) = catalog_support::pg_server() else { return };
    let Some(dav) = storage_support::server_env("RECLIFE_TEST_WEBDAV") else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schemas = catalog_support::Schemas::new(&server);
    let target = schemas.fresh();
    let tmp = tempfile::tempdir().unwrap();
    let (data, cfg) = (tmp.path().join("data"), tmp.path().join("node.toml"));
    std::fs::write(
        &cfg,
        format!("contact_center_id = \"cc1\"\nrules_dir = \"rules\"\n[postgres]\nschema = \"{}\"\n", target.schema()),
    )
    .unwrap();

    // Media registered in place on WebDAV.
    let remote = storage_support::fresh_location(&dav);
    let meta = tmp.path().join("meta");
    rt.block_on(samples_in_place(&remote, &meta));
    let out = ok(&mut node(&data, &cfg, &["ingest", "--in-place", meta.to_str().unwrap()]));
    assert!(out.contains("ingested 6"), "{out}");
    // A folder backup to WebDAV killed mid-way: its claim (a catalog note) and partial folder stay.
    let backups = storage_support::fresh_location(&dav);
    let backup = |loc: &str| {
        ["backup", "--type", "voice", "--min-age", "1", "--include-screen", "--no-zip", "--location", loc]
            .map(str::to_string)
            .to_vec()
    };
    let args = backup(&backups.to_string());
    let o = node(&data, &cfg, &args.iter().map(String::as_str).collect::<Vec<_>>())
        .env("RECLIFE_FAILPOINT", "backup.after_entry:2")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("failpoint backup.after_entry:2: aborting"));
    let partial = || -> Vec<String> {
        let store = reclife::storage::open(&backups).unwrap();
        rt.block_on(store.list(None)).unwrap().into_iter().map(|m| m.key.to_string()).collect()
    };
    assert!(partial().iter().any(|k| k.ends_with("/.reclife.writing")), "the killed backup's claim: {:?}", partial());
    // A local backup finishes off the killed job (not the remote folder: only remote backups
    // and repairs do that), so nothing is in flight.
    let local = format!("file://{}", tmp.path().join("local").display());
    let args = backup(&local);
    ok(&mut node(&data, &cfg, &args.iter().map(String::as_str).collect::<Vec<_>>()));
    // The record of the audit logs a purge batch went to, as a crash between the end of the
    // batch's journal entry and the removal of that record leaves it.
    let audit_logs = serde_json::json!([data.join("audit/deletions.jsonl")]).to_string();
    {
        let src = SqliteCatalog::open(&data.join("catalog.db")).unwrap();
        src.state_put(namespaces::AUDIT_LOGS, "entry-1", &audit_logs).unwrap();
        assert!(!src.state_list(namespaces::REMOTE_FOLDERS).unwrap().is_empty());
        assert_eq!(src.state_list(namespaces::IN_PLACE).unwrap().len(), 6);
    }

    ok(&mut migrate(&data.join("catalog.db"), &server, &cfg));
    assert_eq!(target.state_list(namespaces::IN_PLACE).unwrap().len(), 6, "in-place registrations carried over");
    assert_eq!(target.state_list(namespaces::REMOTE_FOLDERS).unwrap().len(), 1, "the folder claim carried over");
    assert_eq!(target.state_get(namespaces::AUDIT_LOGS, "entry-1").unwrap(), Some(audit_logs), "audit-log records");

    // The node, now on PostgreSQL with a fresh data dir (its own media store is empty).
    let data2 = tmp.path().join("data2");
    let cfg2 = tmp.path().join("node2.toml");
    std::fs::write(
        &cfg2,
        format!(
            "contact_center_id = \"cc1\"\nrules_dir = \"rules\"\ncatalog = \"{server}\"\n[postgres]\nschema = \"{}\"\n",
            target.schema()
        ),
    )
    .unwrap();
    let o = node(&data2, &cfg2, &["check"]).output().unwrap();
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{report}{}", String::from_utf8_lossy(&o.stderr));
    assert!(report.contains("open-remote-folder"), "the dead backup's partial folder is known: {report}");
    assert!(!report.contains("missing-media"), "in-place media is found where it is: {report}");
    ok(&mut node(&data2, &cfg2, &["check", "--repair"]));
    assert!(
        partial().iter().all(|k| !k.ends_with("/.reclife.writing")),
        "repair removed the partial folder: {:?}",
        partial()
    );
    let report = ok(&mut node(&data2, &cfg2, &["check"]));
    assert!(report.contains("0 problem(s)"), "{report}");
    // In-place media still resolves: an export reads it where it is, byte for byte.
    let c = "CALLC0000000000000000000000000003";
    let exp = tmp.path().join("export");
    ok(&mut node(&data2, &cfg2, &["recordings", "export", c, "--out", exp.to_str().unwrap()]));
    let sample = std::fs::read(testdata().join(format!("cc1/Environment/2025/06/24/{c}/{c}_0001.mp3"))).unwrap();
    assert!(
        std::fs::read(exp.join(c).join(format!("{c}_0001.mp3"))).unwrap() == sample,
        "export reads the media in place"
    );
}

/// State in a namespace the registry does not know (another version of reclife wrote it):
/// `check` reports it and `catalog migrate` refuses, naming it, rather than leave it behind.
#[test]
fn state_the_registry_does_not_know_is_reported_and_never_left_behind() {
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    let target = schemas.fresh();
    let tmp = tempfile::tempdir().unwrap();
    let (data, cfg) = (tmp.path().join("data"), tmp.path().join("node.toml"));
    std::fs::write(&cfg, format!("rules_dir = \"rules\"\n[postgres]\nschema = \"{}\"\n", target.schema())).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    SqliteCatalog::open(&data.join("catalog.db")).unwrap().state_put("lifecycle.from-the-future", "k", "v").unwrap();
    let o = node(&data, &cfg, &["check"]).output().unwrap();
    let report = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(report.contains("unknown-state: lifecycle.from-the-future"), "{report}");
    let o = migrate(&data.join("catalog.db"), &server, &cfg).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("namespace lifecycle.from-the-future"), "{err}");
    assert_eq!(target.count(&Query::default()).unwrap(), 0, "nothing copied");
}
