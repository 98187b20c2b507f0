//! Copying one catalog into another (`reclife catalog migrate`), e.g. a node's SQLite file
//! into the PostgreSQL catalog that several nodes will share.
//!
//! In: a source and a target catalog. The state carried over, and the state that must be
//! empty first (work in flight), come from the registry ([`super::namespaces`]); a source
//! holding state in a namespace the registry does not know is refused, so nothing is left
//! behind unnoticed. Out: a [`CopyReport`]. Guarantees:
//! - streaming: recordings move one scroll page at a time (documents of a page in one
//!   `get_many`), so memory stays flat however big the catalog;
//! - resumable: after each page the source cursor is saved in the target (state
//!   [`PROGRESS_NS`]); a rerun continues from it, and since each page is written with
//!   [`Catalog::import`] (conditional on versions) a page written twice changes nothing; a
//!   finished copy run again goes over everything once more and carries over later edits;
//! - checked: at the end the two are scrolled side by side, and every recording must be in
//!   both at the same version, with the same counts.
//!
//! Leases are not copied (they belong to live processes); manifests and open purge journal
//! entries mean a job is in flight, and the copy refuses to start until they are finished.

use super::{Catalog, CatalogError, CatalogExt, Cursor, Query};

/// Target state namespace holding the copy's progress (key: [`PROGRESS_KEY`]).
pub const PROGRESS_NS: &str = super::namespaces::MIGRATE_PROGRESS;
pub const PROGRESS_KEY: &str = "recordings";

/// How to copy.
#[derive(Debug, Clone, Copy)]
pub struct CopySpec {
    /// Recordings per page.
    pub page: usize,
}

/// What a copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Recordings written (inserted or updated) by this run.
    pub written: u64,
    /// Recordings found already copied (same version or newer).
    pub unchanged: u64,
    /// State keys copied.
    pub state_keys: u64,
    /// True when this run continued an interrupted one.
    pub resumed: bool,
    /// Recordings in both catalogs at the end, checked one by one.
    pub verified: u64,
}

/// Copies `from` into `to`; see the module doc. `source` names the source in the progress
/// record, so a rerun with another source starts over instead of resuming. `progress` is
/// called with the running count of recordings handled.
pub fn copy(
    from: &dyn Catalog,
    to: &dyn Catalog,
    source: &str,
    spec: &CopySpec,
    progress: &dyn Fn(u64),
) -> Result<CopyReport, CatalogError> {
    for ns in from.state_namespaces()? {
        if super::namespaces::find(&ns).is_none() {
            return Err(CatalogError::Copy(format!(
                "the source holds state in namespace {ns}, which this reclife does not know, so it would not be \
                 carried over: migrate with the reclife version that wrote it"
            )));
        }
    }
    for (ns, what) in super::namespaces::in_flight() {
        if !from.state_page(ns, None, 1)?.is_empty() {
            return Err(CatalogError::Copy(format!("the source has open entries in {ns}: {what}")));
        }
    }
    if let Some(job) = from.manifest_jobs()?.first() {
        return Err(CatalogError::Copy(format!(
            "job {job} has a plan in the source catalog: let it finish (or cancel it) before copying"
        )));
    }
    let mut report = CopyReport::default();
    for ns in super::namespaces::durable() {
        let mut after: Option<String> = None;
        loop {
            let page = from.state_page(ns, after.as_deref(), 1000)?;
            for (k, v) in &page {
                to.state_put(ns, k, v)?;
            }
            report.state_keys += page.len() as u64;
            match page.last() {
                Some((k, _)) if page.len() == 1000 => after = Some(k.clone()),
                _ => break,
            }
        }
    }

    let q = Query::default();
    let saved = to.state_get(PROGRESS_NS, PROGRESS_KEY)?;
    let mut cursor = match saved.as_deref().and_then(|s| s.split_once('\n')) {
        // A finished copy run again starts over: conditional writes skip what is unchanged
        // and carry over what changed in the source since.
        Some((src, tok)) if src == source && tok != "done" => {
            report.resumed = true;
            Some(Cursor::from_token(tok)?)
        }
        _ => Some(Cursor::start()),
    };
    let mut handled = 0u64;
    while let Some(cur) = cursor.take() {
        let page = from.scroll_page(&q, &cur, spec.page.max(1))?;
        let ids: Vec<String> = page.rows.iter().map(|r| r.id.clone()).collect();
        let entries = from.get_many(&ids)?;
        for u in to.import(&entries)? {
            match u {
                super::Upsert::Unchanged => report.unchanged += 1,
                _ => report.written += 1,
            }
        }
        handled += entries.len() as u64;
        progress(handled);
        let mark = match &page.next {
            Some(n) => n.token(),
            None => "done".to_string(),
        };
        to.state_put(PROGRESS_NS, PROGRESS_KEY, &format!("{source}\n{mark}"))?;
        cursor = page.next;
    }

    // A freshly filled PostgreSQL catalog has no planner statistics until autovacuum comes
    // by: its first scrolls (this check's, the first rule's) would run on plans made for
    // empty tables.
    to.refresh_statistics()?;
    report.verified = verify(from, to, spec.page.max(1))?;
    Ok(report)
}

/// Scrolls both catalogs side by side: the same ids in the same order, at the same versions.
/// Returns how many recordings were compared.
pub fn verify(from: &dyn Catalog, to: &dyn Catalog, page: usize) -> Result<u64, CatalogError> {
    let q = Query::default();
    let (n_from, n_to) = (from.count(&q)?, to.count(&q)?);
    if n_from != n_to {
        return Err(CatalogError::Copy(format!("the source holds {n_from} recordings, the target {n_to}")));
    }
    let mut a = from.scroll(&q, page).flat_map(|p| match p {
        Ok(p) => p.rows.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    let mut b = to.scroll(&q, page).flat_map(|p| match p {
        Ok(p) => p.rows.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => vec![Err(e)],
    });
    let mut n = 0u64;
    loop {
        match (a.next().transpose()?, b.next().transpose()?) {
            (None, None) => return Ok(n),
            (Some(x), Some(y)) => {
                if x.id != y.id || x.version != y.version || x.held != y.held {
                    return Err(CatalogError::Copy(format!(
                        "recording {} (version {}, held {}) in the source, {} (version {}, held {}) in the target",
                        x.id, x.version, x.held, y.id, y.version, y.held
                    )));
                }
                n += 1;
            }
            (Some(x), None) => return Err(CatalogError::Copy(format!("recording {} is missing in the target", x.id))),
            (None, Some(y)) => return Err(CatalogError::Copy(format!("recording {} is only in the target", y.id))),
        }
    }
}
