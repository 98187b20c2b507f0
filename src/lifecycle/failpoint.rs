//! Test hook: `RECLIFE_FAILPOINT=<name>:<n>` aborts the process (as `kill -9` would: no
//! destructors, no flushing) the `n`-th time the point `<name>` is passed. The crash tests use it
//! to stop backups and purges at every step and check that the next run repairs everything.
//!
//! Points: `backup.after_entry`, `backup.before_rename`, `backup.after_rename`,
//! `purge.after_journal`, `purge.after_catalog_delete`, `purge.after_media_delete`,
//! `purge.after_audit`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static HITS: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("RECLIFE_FAILPOINT").ok()?;
        let (name, n) = v.rsplit_once(':').unwrap_or((v.as_str(), "1"));
        Some((name.to_string(), n.parse().unwrap_or(1)))
    })
}

/// Passes the point `name`; aborts the process if the failpoint says so.
pub fn hit(name: &str) {
    if let Some((t, n)) = target() {
        if t == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            eprintln!("failpoint {name}:{n}: aborting");
            std::process::abort();
        }
    }
}
