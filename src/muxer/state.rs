//! What the muxer remembers between passes and shares between processes, all in the
//! catalog: a record per pair (muxed, or failed with its reason and attempt count) in the
//! state namespace [`NS`], and a lease per pair while a process works on it.
//!
//! The durable "done" marker is the screen recording's muxed file (`muxed_mediaIds`); the
//! pair record is written after it and serves `--status` and the retry bound.

use crate::catalog::{Catalog, CatalogError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// State namespace of pair records, keyed by screen recording id.
pub const NS: &str = crate::catalog::namespaces::MUXER_PAIRS;

/// Outcome of the last attempt at a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PairStatus {
    Muxed,
    Failed,
}

/// One pair's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairRecord {
    pub call_id: String,
    pub screen_id: String,
    pub status: PairStatus,
    /// Failed attempts so far.
    pub attempts: u32,
    pub reason: Option<String>,
    /// The muxed file's mediaId, once muxed.
    pub output: Option<String>,
    /// The media the muxed file was made from (screen video, then voice segments): a call
    /// with a voice segment not among them has to be muxed again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    pub at: DateTime<Utc>,
}

impl PairRecord {
    /// True when a failed pair has used up its attempts.
    pub fn given_up(&self, max_retries: u32) -> bool {
        self.status == PairStatus::Failed && self.attempts >= max_retries
    }
}

pub fn get(catalog: &dyn Catalog, screen_id: &str) -> Result<Option<PairRecord>, CatalogError> {
    match catalog.state_get(NS, screen_id)? {
        None => Ok(None),
        // A record this version cannot read is treated as absent rather than blocking the pair.
        Some(v) => Ok(serde_json::from_str(&v).ok()),
    }
}

fn put(catalog: &dyn Catalog, r: &PairRecord) -> Result<(), CatalogError> {
    let v = serde_json::to_string(r).map_err(|e| CatalogError::Db(e.to_string()))?;
    catalog.state_put(NS, &r.screen_id, &v)
}

pub fn mark_muxed(
    catalog: &dyn Catalog,
    call_id: &str,
    screen_id: &str,
    output: &str,
    at: DateTime<Utc>,
) -> Result<(), CatalogError> {
    mark_muxed_from(catalog, call_id, screen_id, output, &[], at)
}

/// [`mark_muxed`], naming the sources the muxed file was made from.
pub fn mark_muxed_from(
    catalog: &dyn Catalog,
    call_id: &str,
    screen_id: &str,
    output: &str,
    sources: &[String],
    at: DateTime<Utc>,
) -> Result<(), CatalogError> {
    let attempts = get(catalog, screen_id)?.map(|r| r.attempts).unwrap_or(0);
    put(
        catalog,
        &PairRecord {
            call_id: call_id.into(),
            screen_id: screen_id.into(),
            status: PairStatus::Muxed,
            attempts,
            reason: None,
            output: Some(output.into()),
            sources: sources.to_vec(),
            at,
        },
    )
}

/// Records a failed attempt; returns the record with the attempt counted.
pub fn mark_failed(
    catalog: &dyn Catalog,
    call_id: &str,
    screen_id: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<PairRecord, CatalogError> {
    let attempts = get(catalog, screen_id)?.filter(|r| r.status == PairStatus::Failed).map(|r| r.attempts).unwrap_or(0);
    let r = PairRecord {
        call_id: call_id.into(),
        screen_id: screen_id.into(),
        status: PairStatus::Failed,
        attempts: attempts.saturating_add(1),
        reason: Some(reason.into()),
        output: None,
        sources: Vec::new(),
        at,
    };
    put(catalog, &r)?;
    Ok(r)
}

/// Forgets a pair's failures so later passes try it again (`reclife mux --retry`).
pub fn reset(catalog: &dyn Catalog, screen_id: &str) -> Result<bool, CatalogError> {
    let existed = catalog.state_get(NS, screen_id)?.is_some();
    catalog.state_delete(NS, screen_id)?;
    Ok(existed)
}

/// Every pair record, in screen id order.
/// At most `limit` records with screen ids after `after`, in screen id order, of `only` that
/// status (or all); and the screen id to pass as `after` for the next page, if there is one.
pub fn page(
    catalog: &dyn Catalog,
    after: Option<&str>,
    limit: usize,
    only: Option<PairStatus>,
) -> Result<(Vec<PairRecord>, Option<String>), CatalogError> {
    let limit = limit.clamp(1, 10_000);
    let mut out = Vec::new();
    let mut cursor = after.map(str::to_string);
    loop {
        let rows = catalog.state_page(NS, cursor.as_deref(), 1000)?;
        let n = rows.len();
        for (k, v) in rows {
            cursor = Some(k);
            let Ok(r) = serde_json::from_str::<PairRecord>(&v) else { continue };
            if only.is_none_or(|s| s == r.status) {
                out.push(r);
                // One more than asked: there is a next page, after the last one shown.
                if out.len() > limit {
                    out.pop();
                    let next = out.last().map(|r| r.screen_id.clone());
                    return Ok((out, next));
                }
            }
        }
        if n < 1000 {
            return Ok((out, None));
        }
    }
}

pub fn list(catalog: &dyn Catalog) -> Result<Vec<PairRecord>, CatalogError> {
    Ok(catalog.state_list(NS)?.into_iter().filter_map(|(_, v)| serde_json::from_str(&v).ok()).collect())
}

/// The lease name of a pair.
fn lease_name(screen_id: &str) -> String {
    format!("muxer/pair/{screen_id}")
}

/// Claims one pair for `holder`, shared by every process on the catalog; false when another
/// holder has it. Leases run on the system clock even under `--now`: they protect real
/// processes, and a fixed clock would keep a crashed holder's claim alive for ever.
pub fn claim(catalog: &dyn Catalog, screen_id: &str, holder: &str, lease_seconds: u64) -> Result<bool, CatalogError> {
    let now = Utc::now();
    let secs = i64::try_from(lease_seconds).unwrap_or(i64::MAX).min(86_400 * 365);
    catalog.lease_acquire(&lease_name(screen_id), holder, now, now + Duration::seconds(secs))
}

/// Gives a claim back.
pub fn unclaim(catalog: &dyn Catalog, screen_id: &str, holder: &str) -> Result<(), CatalogError> {
    catalog.lease_release(&lease_name(screen_id), holder)
}

/// A holder name unique to this process: host, pid and start time.
pub fn holder_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let nanos = Utc::now().timestamp_nanos_opt().unwrap_or_default();
    format!("{host}:{}:{nanos}", std::process::id())
}

/// Forgets pair records older than `before`, and records of screens no longer in the catalog
/// (purged), a page at a time. The muxed file on the document stays the durable marker, so a
/// forgotten muxed pair is still never muxed twice. Returns how many were removed.
pub fn prune(catalog: &dyn Catalog, before: DateTime<Utc>) -> Result<u64, CatalogError> {
    let mut after: Option<String> = None;
    let mut removed = 0;
    loop {
        let page = catalog.state_page(NS, after.as_deref(), 500)?;
        let n = page.len();
        for (k, v) in page {
            let old = serde_json::from_str::<PairRecord>(&v).map_or(true, |r| r.at < before);
            if old || catalog.get(&k)?.is_none() {
                catalog.state_delete(NS, &k)?;
                removed += 1;
            }
            after = Some(k);
        }
        if n < 500 {
            return Ok(removed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SqliteCatalog;

    #[test]
    fn failures_count_until_muxed_or_reset() {
        let c = SqliteCatalog::in_memory().unwrap();
        let now = Utc::now();
        assert_eq!(get(&c, "S1").unwrap(), None);
        let r = mark_failed(&c, "C1", "S1", "truncated MP3", now).unwrap();
        assert_eq!(r.attempts, 1);
        assert!(!r.given_up(2));
        let r = mark_failed(&c, "C1", "S1", "truncated MP3 again", now).unwrap();
        assert_eq!((r.attempts, r.given_up(2)), (2, true));
        assert_eq!(list(&c).unwrap().len(), 1);
        assert!(reset(&c, "S1").unwrap());
        assert_eq!(get(&c, "S1").unwrap(), None);
        mark_failed(&c, "C1", "S1", "x", now).unwrap();
        mark_muxed(&c, "C1", "S1", "S1-muxed.mp4", now).unwrap();
        let r = get(&c, "S1").unwrap().unwrap();
        assert_eq!((r.status, r.output.as_deref(), r.attempts), (PairStatus::Muxed, Some("S1-muxed.mp4"), 1));
        assert_eq!(mark_failed(&c, "C1", "S1", "y", now).unwrap().attempts, 1, "a fresh failure after success");
    }

    #[test]
    fn one_claim_at_a_time() {
        let c = SqliteCatalog::in_memory().unwrap();
        assert!(claim(&c, "S1", "proc-a", 60).unwrap(), "free");
        assert!(claim(&c, "S1", "proc-a", 60).unwrap(), "the holder may extend");
        assert!(!claim(&c, "S1", "proc-b", 60).unwrap(), "held by a");
        assert!(claim(&c, "S2", "proc-b", 60).unwrap(), "another pair is free");
        unclaim(&c, "S1", "proc-b").unwrap();
        assert!(!claim(&c, "S1", "proc-b", 60).unwrap(), "only the holder releases");
        unclaim(&c, "S1", "proc-a").unwrap();
        assert!(claim(&c, "S1", "proc-b", 60).unwrap(), "released");
        // A crashed holder's claim, expired an hour ago, is taken over.
        let past = Utc::now() - Duration::hours(2);
        assert!(c.lease_acquire(&lease_name("S3"), "crashed", past, past + Duration::hours(1)).unwrap());
        assert!(claim(&c, "S3", "proc-b", 60).unwrap(), "expired claim taken over");
        assert_ne!(holder_id(), "");
    }
}
