//! The catalog conformance suite, run against every catalog backend available here.

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
