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
    assert_eq!(versions, vec![1, 2, 3], "each migration applied once, in order: {applied:?}");
    drop(opened);
    let again = reclife::catalog::PgCatalog::open(&schemas.options(&name)).unwrap();
    assert_eq!(again.migrations().unwrap(), applied, "reopening applies nothing");
    again.drop_schema().unwrap();
}
