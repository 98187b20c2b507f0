//! The catalog conformance suite, run against every catalog backend available here.
//!
//! PostgreSQL runs when `RECLIFE_TEST_PG` names a server (`eval "$(bash deploy/servers.sh
//! start)"`); each catalog the suite asks for is a fresh schema there, dropped at the end, so
//! runs in parallel never see each other. Without that environment the PostgreSQL test is
//! skipped, unless `CI` or `RECLIFE_REQUIRE_SERVERS` is set: then it fails.

mod catalog_support;

use reclife::catalog::{conformance, Catalog, SqliteCatalog};

#[test]
fn sqlite_in_memory_passes_the_suite() {
    conformance::run(&|| Box::new(SqliteCatalog::in_memory().expect("open")) as Box<dyn Catalog>);
}

#[test]
fn sqlite_on_disk_passes_the_suite() {
    let dirs = std::sync::Mutex::new(Vec::new());
    conformance::run(&|| {
        let d = tempfile::tempdir().expect("tempdir");
        let c = SqliteCatalog::open(&d.path().join("catalog.db")).expect("open");
        dirs.lock().unwrap().push(d);
        Box::new(c) as Box<dyn Catalog>
    });
}

#[test]
fn postgres_passes_the_suite() {
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    conformance::run(&|| Box::new(schemas.fresh()) as Box<dyn Catalog>);
}

#[test]
fn postgres_refuses_a_password_in_the_url_and_never_shows_one() {
    let Some(server) = catalog_support::pg_server() else { return };
    let with_pw = server.replacen("postgres://reclife@", "postgres://reclife:s3cret-pw@", 1);
    let e = reclife::catalog::PgOptions::new(&with_pw, None).unwrap_err().to_string();
    assert!(e.contains("PGPASSWORD") && !e.contains("s3cret-pw"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "wrong-password-xyz\n").unwrap();
    let opts = reclife::catalog::PgOptions::new(&server, Some(&file)).unwrap();
    assert!(!format!("{opts:?}").contains("wrong-password-xyz"), "Debug hides the password");
    let e = reclife::catalog::PgCatalog::open(&opts).unwrap_err().to_string();
    assert!(e.contains("password authentication failed"), "a wrong password is refused: {e}");
    assert!(!e.contains("wrong-password-xyz"), "the error does not show the password: {e}");
}

#[test]
fn postgres_nodes_starting_together_migrate_once() {
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    let name = catalog_support::unique_schema("m");
    let opened: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> =
            (0..4).map(|_| s.spawn(|| reclife::catalog::PgCatalog::open(&schemas.options(&name)))).collect();
        hs.into_iter().map(|h| h.join().unwrap().expect("every node opens the catalog")).collect()
    });
    let applied = opened[0].migrations().unwrap();
    let versions: Vec<i32> = applied.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, vec![1, 2, 3, 4], "each migration applied once, in order: {applied:?}");
    drop(opened);
    let again = reclife::catalog::PgCatalog::open(&schemas.options(&name)).unwrap();
    assert_eq!(again.migrations().unwrap(), applied, "reopening applies nothing");
    again.drop_schema().unwrap();
}

/// A held recording of a catalog made before holds kept who placed them.
fn held_call(c: &dyn Catalog) {
    let doc = r#"{"id":"OLD1","startTime":"2024-03-01T00:00:00.000+0000","stopTime":"2024-03-01T00:01:00.000+0000","mediaFiles":[]}"#;
    c.upsert(&reclife::model::Recording::parse(doc).unwrap()).unwrap();
    c.hold("OLD1", "litigation 3", "tester", chrono::Utc::now()).unwrap();
}

/// Reopened after its catalog was taken back to the schema before issue 20: the hold is kept
/// (who placed it is unknown), and new holds record who and their history.
fn old_hold_survives(c: &dyn Catalog) {
    let e = c.get("OLD1").unwrap().unwrap();
    let h = e.hold.clone().expect("the hold survives the migration");
    assert_eq!((h.reason.as_str(), h.by.as_deref()), ("litigation 3", None));
    assert!(e.hold_history.is_empty());
    assert!(matches!(
        c.hold("OLD1", "second", "bob", chrono::Utc::now()).unwrap(),
        reclife::catalog::HoldOutcome::AlreadyHeld(_)
    ));
    assert_eq!(c.get("OLD1").unwrap().unwrap().hold_history.len(), 1);
}

#[test]
fn sqlite_catalog_of_an_earlier_version_opens_with_its_holds() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("catalog.db");
    held_call(&SqliteCatalog::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "ALTER TABLE recordings DROP COLUMN hold_by; ALTER TABLE recordings DROP COLUMN hold_history;
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    old_hold_survives(&SqliteCatalog::open(&path).unwrap());
}

#[test]
fn postgres_catalog_of_an_earlier_version_opens_with_its_holds() {
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    let name = catalog_support::unique_schema("v2");
    held_call(&reclife::catalog::PgCatalog::open(&schemas.options(&name)).unwrap());
    // The server's password comes from PGPASSWORD, as deploy/servers.sh exports it.
    let mut cfg: postgres::Config = server.parse().unwrap();
    if let Ok(pw) = std::env::var("PGPASSWORD") {
        cfg.password(pw);
    }
    let mut client = cfg.connect(postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "SET search_path TO \"{name}\";
             ALTER TABLE recordings DROP COLUMN hold_by, DROP COLUMN hold_history;
             DROP INDEX rec_call_uuid;
             DELETE FROM reclife_migrations WHERE version >= 3;"
        ))
        .unwrap();
    let c = reclife::catalog::PgCatalog::open(&schemas.options(&name)).unwrap();
    assert_eq!(c.migrations().unwrap().len(), 4, "migrated again");
    old_hold_survives(&c);
    c.drop_schema().unwrap();
}
