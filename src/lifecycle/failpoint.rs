//! Test hook, compiled only with the cargo feature `failpoints` (the test suite turns it on;
//! release builds ignore `RECLIFE_FAILPOINT`, so it can never stop a production process).
//!
//! `RECLIFE_FAILPOINT=<name>:<n>` aborts the process (as `kill -9` would: no
//! destructors, no flushing) the `n`-th time the point `<name>` is passed. The crash tests use it
//! to stop backups and purges at every step and check that the next run repairs everything.
//!
//! `RECLIFE_FAILPOINT=<name>:<n>:pause=<file>` instead pauses there: it creates
//! `<file>.reached` and waits (up to 120 s) until `<file>` exists, so a test can run another
//! process at exactly that moment (an edit, a hold, a muxer) and then let this one go on.
//!
//! Points: `backup.after_entry`, `backup.before_rename`, `backup.after_rename`,
//! `purge.after_journal`, `purge.after_catalog_delete`, `purge.after_media_delete`,
//! `purge.after_audit`, `task.start` (after planning, before a task executes),
//! `mux.after_store` (a muxed file stored, not yet on its document), `ingest.after_media` (a
//! media file of a recording stored by ingest, before the next one and the document),
//! `import.after_media`, `import.after_document`, `import.after_delete`, `import.before_cursor`
//! (a Genesys Cloud import).

#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;

/// `(point, n, pause file)`.
#[cfg(feature = "failpoints")]
static TARGET: OnceLock<Option<(String, u64, Option<String>)>> = OnceLock::new();
#[cfg(feature = "failpoints")]
static HITS: AtomicU64 = AtomicU64::new(0);

#[cfg(feature = "failpoints")]
fn target() -> &'static Option<(String, u64, Option<String>)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("RECLIFE_FAILPOINT").ok()?;
        let (v, pause) = match v.split_once(":pause=") {
            Some((a, f)) => (a.to_string(), Some(f.to_string())),
            None => (v, None),
        };
        let (name, n) = v.rsplit_once(':').unwrap_or((v.as_str(), "1"));
        Some((name.to_string(), n.parse().unwrap_or(1), pause))
    })
}

/// Passes the point `name`: nothing at all without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Passes the point `name`; aborts (or pauses) the process if the failpoint says so.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    if let Some((t, n, pause)) = target() {
        if t == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            if let Some(f) = pause {
                eprintln!("failpoint {name}:{n}: paused until {f} exists");
                let _ = std::fs::write(format!("{f}.reached"), b"");
                let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
                while !std::path::Path::new(f).exists() && std::time::Instant::now() < until {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                return;
            }
            eprintln!("failpoint {name}:{n}: aborting");
            std::process::abort();
        }
    }
}

#[cfg(all(test, not(feature = "failpoints")))]
mod tests {
    /// Without the feature, even a matching RECLIFE_FAILPOINT does nothing (were it honoured,
    /// this test process would abort).
    #[test]
    fn release_builds_ignore_the_failpoint_variable() {
        std::env::set_var("RECLIFE_FAILPOINT", "unit.test:1");
        super::hit("unit.test");
        super::hit("unit.test");
    }
}
