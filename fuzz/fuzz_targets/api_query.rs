//! Arbitrary text as the query string of an RWS listing (`/api/v2/recordings?…`): a page or a
//! client error naming a parameter, never a panic or a server error (times past what a date holds,
//! thousands of terms, huge values).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reclife::catalog::{Catalog, SqliteCatalog};
use reclife::model::Kind;
use std::sync::OnceLock;

/// A catalog of a few hundred synthetic calls, made once per fuzzing process.
fn catalog() -> &'static SqliteCatalog {
    static CATALOG: OnceLock<(tempfile::TempDir, SqliteCatalog)> = OnceLock::new();
    &CATALOG
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let cat = SqliteCatalog::open(&dir.path().join("catalog.db")).expect("a catalog");
            let end = chrono::DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z").expect("a time").to_utc();
            reclife::catalog::synth::fill(&cat, 300, end, 30, 7, 1000).expect("synthetic calls");
            (dir, cat)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    for kind in [Kind::Voice, Kind::Screen] {
        let cat: &dyn Catalog = catalog();
        if let Err(f) = reclife::api::rws::list_ids(cat, raw, kind) {
            assert!(f.status.is_client_error(), "{raw:?}: {} {}", f.status, f.message);
        }
    }
});
