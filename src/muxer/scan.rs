//! Finding the pairs of one window: the calls of this node's region and shard that ended in
//! the window, each with the screen recordings linked to it. Calls are read a page at a time
//! (`pagination`), so memory follows the page, not the window.

use super::pairing::{self, Skip};
use super::shard::{self, Shard};
use super::state::{self, PairStatus};
use super::window::Window;
use crate::catalog::{Catalog, CatalogError, CatalogExt, Cursor, Query};
use crate::model::{Kind, Recording};
use chrono::Duration;
use std::collections::HashMap;

/// A call and one of its screen recordings.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub call: Recording,
    pub screen: Recording,
}

/// What the scan set aside without muxing, by reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanCounts {
    pub calls: u64,
    pub other_shard: u64,
    pub already_muxed: u64,
    pub user_mismatch: u64,
    pub unusable: u64,
}

/// The query for calls that ended in `w` and have screen recordings linked by id, narrowed by
/// `filter` (GIR's query strings: started at or after, ended before, phone numbers, agent user
/// names, attached data, region), ANDed with the window and this node's region.
pub fn calls_query(w: &Window, region: Option<&str>, with_screen: bool, filter: Option<&Query>) -> Query {
    let mut q = Query {
        kind: Some(Kind::Voice),
        stop_from: Some(w.from),
        stop_to: Some(w.to),
        region: region.map(str::to_string),
        has_screen: with_screen.then_some(true),
        ..Query::default()
    };
    if let Some(f) = filter {
        q.start_from = f.start_from;
        q.stop_to = f.stop_to.map_or(q.stop_to, |t| Some(t.min(w.to)));
        q.caller_phone = f.caller_phone.clone();
        q.dialed_phone = f.dialed_phone.clone();
        q.attached_value_any = f.attached_value_any.clone();
        q.agent_user_any = f.agent_user_any.clone();
        match (&q.region, &f.region) {
            (None, r) => q.region = r.clone(),
            // Another region than this node's: nothing of it is this node's to mux.
            (Some(mine), Some(theirs)) if mine != theirs => q.stop_to = Some(w.from),
            _ => {}
        }
    }
    q
}

fn load(catalog: &dyn Catalog, id: &str) -> Result<Option<Recording>, CatalogError> {
    Ok(catalog.get(id)?.map(|e| e.recording))
}

/// Screen recordings without `callRecordingId` that may belong to calls of `w` by
/// `callUuid`, keyed by that uuid. A screen starts no later than its call ends, and calls
/// are taken to last at most a day.
fn orphans(
    catalog: &dyn Catalog,
    w: &Window,
    region: Option<&str>,
) -> Result<HashMap<String, Vec<Recording>>, CatalogError> {
    let q = Query {
        kind: Some(Kind::Screen),
        start_from: Some(w.from.checked_sub_signed(Duration::days(1)).unwrap_or(w.from)),
        start_to: Some(w.to),
        region: region.map(str::to_string),
        ..Query::default()
    };
    let mut out: HashMap<String, Vec<Recording>> = HashMap::new();
    for page in catalog.scroll(&q, 500) {
        for row in page?.rows {
            if row.call_recording_id.is_some() {
                continue;
            }
            if let Some(s) = load(catalog, &row.id)? {
                if let Some(u) = s.call_uuid.clone().filter(|u| !u.is_empty()) {
                    out.entry(u).or_default().push(s);
                }
            }
        }
    }
    Ok(out)
}

/// What to scan: a window, this node's region and shard, the user name rule, page size.
#[derive(Debug, Clone)]
pub struct ScanSpec {
    pub window: Window,
    pub region: Option<String>,
    pub shard: Option<Shard>,
    pub check_username: bool,
    pub page_size: usize,
    /// GIR's query string for the calls (`call_recording_query_string` or `…_extra_…`).
    pub filter: Option<Query>,
}

/// Walks the window page by page and hands each page's candidates to `each`.
pub fn scan(
    catalog: &dyn Catalog,
    spec: &ScanSpec,
    counts: &mut ScanCounts,
    mut each: impl FnMut(Vec<Candidate>) -> Result<(), CatalogError>,
) -> Result<(), CatalogError> {
    let (w, region, shard, check_username) = (&spec.window, spec.region.as_deref(), spec.shard, spec.check_username);
    let page_size = spec.page_size.max(1);
    let orphans = orphans(catalog, w, region)?;
    // Without orphans only calls with linked screens matter, which the catalog filters.
    let q = calls_query(w, region, orphans.is_empty(), spec.filter.as_ref());
    let mut cursor = Some(Cursor::start());
    while let Some(cur) = cursor.take() {
        let page = catalog.scroll_page(&q, &cur, page_size)?;
        cursor = page.next;
        let mut batch = Vec::new();
        for row in page.rows {
            counts.calls += 1;
            if !shard::owns(shard, &row.id) {
                counts.other_shard += 1;
                continue;
            }
            let Some(call) = load(catalog, &row.id)? else { continue };
            // Screens recorded as muxed from every voice segment the call has now are counted
            // without reading their documents: the record is written only after the muxed file
            // is on the document. This keeps a poll over a window of finished calls cheap. A
            // segment that arrived later makes the pair muxed again.
            let voices: Vec<&str> = pairing::voice_media(&call).iter().map(|m| m.media_id.as_str()).collect();
            let mut screens = Vec::new();
            for s in catalog.screens_of(&row.id)? {
                let current = |r: &state::PairRecord| {
                    r.status == PairStatus::Muxed
                        && (r.sources.is_empty() || voices.iter().all(|v| r.sources.iter().any(|s| s == v)))
                };
                if state::get(catalog, &s.id)?.is_some_and(|r| current(&r)) {
                    counts.already_muxed += 1;
                    continue;
                }
                if let Some(s) = load(catalog, &s.id)? {
                    screens.push(s);
                }
            }
            if let Some(list) = call.call_uuid.as_ref().and_then(|u| orphans.get(u)) {
                // The catalog links uuid-only screens too; take each screen once.
                for o in list {
                    if !screens.iter().any(|s| s.id == o.id) {
                        screens.push(o.clone());
                    }
                }
            }
            for screen in screens {
                if !pairing::linked(&call, &screen) {
                    continue;
                }
                match pairing::check(&call, &screen, check_username) {
                    Ok(()) => batch.push(Candidate { call: call.clone(), screen }),
                    Err(Skip::AlreadyMuxed) => counts.already_muxed += 1,
                    Err(skip @ Skip::UserMismatch { .. }) => {
                        tracing::info!(call = %call.id, screen = %screen.id, reason = %skip, "pair not muxed");
                        counts.user_mismatch += 1;
                    }
                    Err(skip) => {
                        tracing::info!(call = %call.id, screen = %screen.id, reason = %skip, "pair not muxed");
                        counts.unusable += 1;
                    }
                }
            }
        }
        if !batch.is_empty() {
            each(batch)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod query_tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn query_strings_narrow_the_window() {
        let t = |h| Utc.with_ymd_and_hms(2025, 4, 1, h, 0, 0).unwrap();
        let w = Window { from: t(0), to: t(12) };
        let f = crate::catalog::parse_rws("userName=a%20AND%20b&userData=x*&endTime=1743501600000", Kind::Voice, 24)
            .unwrap()
            .query;
        let q = calls_query(&w, Some("us"), true, Some(&f));
        assert_eq!((q.stop_from, q.stop_to), (Some(t(0)), f.stop_to), "endTime (10:00) inside the window wins");
        assert_eq!(q.agent_user_any, [vec!["a".to_string()], vec!["b".to_string()]]);
        assert_eq!(q.attached_value_any, ["x*"]);
        assert_eq!(q.region.as_deref(), Some("us"));
        // Another region than the node's: an empty range.
        let other = crate::catalog::parse_rws("region=eu", Kind::Voice, 24).unwrap().query;
        let q = calls_query(&w, Some("us"), true, Some(&other));
        assert_eq!(q.stop_to, Some(w.from));
        let q = calls_query(&w, None, true, Some(&other));
        assert_eq!(q.region.as_deref(), Some("eu"));
    }
}
