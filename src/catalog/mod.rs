//! Where recording metadata lives and how it is scanned.
//!
//! [`Catalog`] is one trait with an embedded SQLite implementation ([`SqliteCatalog`], the
//! default, at `<data dir>/catalog.db`) and a PostgreSQL one ([`PgCatalog`], shared by several
//! nodes); both pass the same [`conformance`] suite, and [`copy`] moves a catalog between them. Queries are answered page by page through a resumable keyset [`Cursor`] (never
//! OFFSET): the start-time range is cut into `scan_intervals_per_day` slices as GIR MLM does,
//! and each slice is walked in `(startTime, id)` order, so memory stays flat however many
//! recordings match. Besides recordings, the catalog keeps small named state
//! ([`Catalog::state_get`]) and leases ([`Catalog::lease_acquire`]) so that every node that
//! shares a catalog also shares schedules, journals and claims.
//!
//! Every recording carries a [`Version`] that changes with every edit (document, labels, hold,
//! media added). Writes that depend on an earlier read are conditional on the version read
//! ([`Catalog::upsert_if`], [`Catalog::delete_checked`]), inside one transaction: optimistic
//! concurrency that holds across threads, processes and nodes. Plans are durable
//! [`manifest`]s keyed by job id, written while scrolling and consumed page by page.

pub mod conformance;
pub mod copy;
mod cursor;
pub mod hold;
pub mod manifest;
pub mod namespaces;
mod postgres;
mod query;
mod sqlite;
pub mod synth;

pub use self::postgres::{is_postgres_url, PgCatalog, PgOptions};
pub use cursor::Cursor;
pub use hold::{Hold, HoldAction, HoldEvent, HoldOutcome, HoldState};
pub use manifest::{DeleteOutcome, Doom, Lease, ManifestRow, RowState};
pub use query::{parse_rws, Query, RwsSearch};
/// The RWS search parameters' bounds and names ([`parse_rws`]).
pub mod rws_search {
    pub use super::query::{DEFAULT_LIMIT, MAX_LIMIT, MAX_TERMS, MAX_VALUE_BYTES, RWS_PARAMS};
}
pub use sqlite::SqliteCatalog;

use crate::model::{Kind, Recording};
use chrono::{DateTime, Utc};

/// Catalog errors.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no recording {0}")]
    NotFound(String),
    #[error("catalog database: {0}")]
    Db(String),
    #[error("recording {id}: stored document does not parse: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: crate::model::ModelError,
    },
    #[error("bad cursor token {0:?}")]
    BadCursor(String),
    #[error("bad query: {0}")]
    BadQuery(String),
    /// A catalog copy (`reclife catalog migrate`) found the target unlike the source.
    #[error("catalog copy: {0}")]
    Copy(String),
    /// A request the catalog refuses (an empty hold reason).
    #[error("{0}")]
    Invalid(String),
    /// A conditional write found another version than the one it was read at.
    #[error("recording {id} changed since it was read (version {expected}, now {found})")]
    Changed { id: String, expected: Version, found: Version },
}

/// A recording's version: a number that grows with every edit of the recording (document,
/// labels, hold, media). Equal versions mean nothing changed in between.
pub type Version = i64;

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    Updated,
    Unchanged,
}

/// A recording as the catalog holds it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub recording: Recording,
    pub hold: Option<Hold>,
    /// Every hold placed or released on it, oldest first.
    pub hold_history: Vec<HoldEvent>,
    /// A screen recording whose call (by `callRecordingId`, or `callUuid`) is held: set by the
    /// catalog when it reads the entry, by the same rule as [`Row::held`]. Not copied by `import`.
    pub call_held: bool,
    pub version: Version,
}

impl Entry {
    /// Protected from deletion: `nonDelete` in the document, a hold, or (a screen recording)
    /// its call's.
    pub fn held(&self) -> bool {
        self.recording.non_delete || self.hold.is_some() || self.call_held
    }

    /// The hold in force and its history.
    pub fn hold_state(&self) -> HoldState {
        HoldState { hold: self.hold.clone(), history: self.hold_history.clone() }
    }
}

/// One line of a scroll: the fields queries and listings need, without the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: String,
    pub kind: Kind,
    pub start: DateTime<Utc>,
    pub stop: DateTime<Utc>,
    pub region: Option<String>,
    pub call_type: Option<String>,
    pub media_count: u32,
    pub bytes: u64,
    /// Protected from deletion: `nonDelete` or a hold, of the recording or, for a screen
    /// recording, of its call (by `callRecordingId`, else `callUuid`). The one rule every
    /// backend applies in rows, the `held` filter, entries and [`Catalog::delete_checked`].
    pub held: bool,
    pub labels: Vec<String>,
    pub call_recording_id: Option<String>,
    pub agent_user: Option<String>,
    pub call_uuid: Option<String>,
    pub version: Version,
}

/// A page of a scroll, and where the next one starts (`None`: the scroll is complete).
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Row>,
    pub next: Option<Cursor>,
}

/// `(call id, screen)` pairs grouped by call in the order of `calls`, each call's screens by
/// (start, id): how `screens_of_calls` answers, whatever query found the screens.
pub(crate) fn in_call_order(
    calls: &[Row],
    mut by_call: std::collections::HashMap<&str, Vec<Row>>,
) -> Vec<(String, Row)> {
    let mut out = Vec::new();
    for c in calls {
        if let Some(mut v) = by_call.remove(c.id.as_str()) {
            v.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
            out.extend(v.into_iter().map(|s| (c.id.clone(), s)));
        }
    }
    out
}

/// The metadata store. Implementations are shared across threads (`Arc<dyn Catalog>`); calls
/// block, so async code calls them from `spawn_blocking`.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// Inserts or replaces a recording, keyed by id. A hold set on it stays.
    fn upsert(&self, rec: &Recording) -> Result<Upsert, CatalogError>;

    /// Upserts many in one transaction; returns what happened to each.
    fn upsert_many(&self, recs: &[Recording]) -> Result<Vec<Upsert>, CatalogError> {
        recs.iter().map(|r| self.upsert(r)).collect()
    }

    fn get(&self, id: &str) -> Result<Option<Entry>, CatalogError>;

    /// The recordings of `ids` that exist, in the order given (a page of a listing).
    fn get_many(&self, ids: &[String]) -> Result<Vec<Entry>, CatalogError> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = self.get(id)? {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// Writes recordings as another catalog holds them (document, hold and version), in one
    /// transaction: copying a catalog. A recording already here at the entry's version or a
    /// newer one is left alone (`Unchanged`), so a copy that is run again skips what it
    /// copied and never undoes a later edit.
    fn import(&self, entries: &[Entry]) -> Result<Vec<Upsert>, CatalogError>;

    /// Replaces a recording only if it is still at version `expected`, in one transaction.
    /// Gone: `NotFound`; edited since: `Changed`. Returns the new version.
    fn upsert_if(&self, rec: &Recording, expected: Version) -> Result<Version, CatalogError>;

    /// The screen recordings that belong to a call: linked by `callRecordingId`, or by the
    /// call's `callUuid` when a screen has no `callRecordingId`. One indexed lookup.
    fn screens_of(&self, call_id: &str) -> Result<Vec<Row>, CatalogError>;

    /// The screens of each call of a page, as `(call id, screen)` grouped by call in the
    /// order of `calls`. Backends answer a whole page in one or two indexed queries.
    fn screens_of_calls(&self, calls: &[Row]) -> Result<Vec<(String, Row)>, CatalogError> {
        let mut out = Vec::new();
        for c in calls {
            out.extend(self.screens_of(&c.id)?.into_iter().map(|s| (c.id.clone(), s)));
        }
        Ok(out)
    }

    /// Deletes each recording only if it is not held (as [`Row::held`] says: a screen recording
    /// whose call is held is held, whatever `parent` names) and still at the version given, all
    /// in one transaction, which reads the holds it checks so that one placed meanwhile wins.
    /// Each recording deleted leaves a tombstone under `tombstone` (a journal id) in that same
    /// transaction, so a crash after the commit is told apart from a recording someone else
    /// deleted. Returns one outcome per item, in order.
    fn delete_checked(&self, items: &[Doom], tombstone: &str) -> Result<Vec<DeleteOutcome>, CatalogError>;
    /// Ids deleted under `tombstone`, in id order.
    fn tombstones(&self, tombstone: &str) -> Result<Vec<String>, CatalogError>;
    /// Forgets the tombstones of `tombstone` (its journal entry is finished).
    fn tombstones_clear(&self, tombstone: &str) -> Result<(), CatalogError>;

    /// Appends rows to the manifest of `(job, task)`; a row's `seq` must be new there.
    fn manifest_add(&self, job: &str, task: u32, rows: &[ManifestRow]) -> Result<(), CatalogError>;
    /// Rows of `(job, task)` with `seq > after`, in seq order, optionally in one state only.
    fn manifest_page(
        &self,
        job: &str,
        task: u32,
        state: Option<RowState>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ManifestRow>, CatalogError>;
    /// Replaces the state, versions, archive and note of existing rows (matched by seq).
    fn manifest_update(&self, job: &str, task: u32, rows: &[ManifestRow]) -> Result<(), CatalogError>;
    /// Moves every row of `(job, task)` in state `from` to `to`, setting `archive` when given.
    /// Returns how many moved.
    fn manifest_promote(
        &self,
        job: &str,
        task: u32,
        from: RowState,
        to: RowState,
        archive: Option<&str>,
    ) -> Result<u64, CatalogError>;
    /// Rows of `(job, task)` per state.
    fn manifest_counts(&self, job: &str, task: u32) -> Result<Vec<(RowState, u64)>, CatalogError>;
    /// Drops every manifest row of a job; returns how many.
    fn manifest_drop(&self, job: &str) -> Result<u64, CatalogError>;
    /// Jobs that have manifest rows, in id order.
    fn manifest_jobs(&self) -> Result<Vec<String>, CatalogError>;

    /// Deletes a recording and, with `with_screens`, the screen recordings that belong to
    /// it. Returns the ids deleted (the recording first). Deleting a missing id is `NotFound`.
    fn delete(&self, id: &str, with_screens: bool) -> Result<Vec<String>, CatalogError>;

    /// Deletes many recordings (no screens implied) in one transaction where the backend can;
    /// ids that are already gone are skipped. Returns the ids deleted.
    fn delete_many(&self, ids: &[String]) -> Result<Vec<String>, CatalogError> {
        let mut out = Vec::new();
        for id in ids {
            match self.delete(id, false) {
                Ok(mut d) => out.append(&mut d),
                Err(CatalogError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Reads the recording's hold state and writes the one `f` returns (nothing when it returns
    /// `None`), bumping the version, in one transaction. Returns the state now. `NotFound` when
    /// missing. `f` may be called again when a backend retries the transaction. [`hold`](self::hold) holds the rules; use [`Catalog::hold`] and friends.
    fn edit_hold(
        &self,
        id: &str,
        f: &mut (dyn FnMut(&HoldState) -> Option<HoldState> + Send),
    ) -> Result<HoldState, CatalogError>;

    /// Holds a recording, for `reason`, placed by `by`. A recording already held keeps that
    /// hold; the request goes into its history ([`HoldOutcome::AlreadyHeld`]).
    fn hold(&self, id: &str, reason: &str, by: &str, at: DateTime<Utc>) -> Result<HoldOutcome, CatalogError> {
        hold::place(self, id, reason, by, at)
    }

    /// Releases the hold in force (a `released` event by `by`); returns it, `None` when there
    /// was none. A document's `nonDelete` stays.
    fn unhold(&self, id: &str, by: &str, at: DateTime<Utc>) -> Result<Option<Hold>, CatalogError> {
        hold::release(self, id, by, at)
    }

    /// Applies a hold that metadata carries (ingest, restore): set when none is in force, never
    /// released, its history merged. Returns the state now.
    fn apply_carried_hold(&self, id: &str, carried: &HoldState) -> Result<HoldState, CatalogError> {
        hold::apply_carried(self, id, carried)
    }

    /// Adds a label to the recording's document (`labels`); idempotent.
    fn label(&self, id: &str, label: &str) -> Result<(), CatalogError>;
    fn unlabel(&self, id: &str, label: &str) -> Result<(), CatalogError>;

    /// One page of the recordings matching `q`, at most `limit`, starting at `cursor`.
    fn scroll_page(&self, q: &Query, cursor: &Cursor, limit: usize) -> Result<Page, CatalogError>;

    /// Number of recordings matching `q`.
    fn count(&self, q: &Query) -> Result<u64, CatalogError>;

    /// Named state: a small string value under `(namespace, key)`.
    fn state_get(&self, namespace: &str, key: &str) -> Result<Option<String>, CatalogError>;
    fn state_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), CatalogError>;
    fn state_delete(&self, namespace: &str, key: &str) -> Result<(), CatalogError>;
    /// Every `(key, value)` of a namespace, in key order.
    fn state_list(&self, namespace: &str) -> Result<Vec<(String, String)>, CatalogError> {
        let mut out = Vec::new();
        loop {
            let page = self.state_page(namespace, out.last().map(|(k, _): &(String, String)| k.as_str()), 1000)?;
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                return Ok(out);
            }
        }
    }
    /// Every namespace that holds at least one entry, in name order (what `check` and
    /// `catalog migrate` compare with the registry, [`namespaces`]).
    fn state_namespaces(&self) -> Result<Vec<String>, CatalogError>;
    /// At most `limit` `(key, value)` of a namespace with keys after `after`, in key order.
    fn state_page(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, CatalogError>;

    /// Takes the lease `name` for `holder` until `until`, if it is free, expired at `now`,
    /// or already held by `holder` (which extends it). True when `holder` has it. `now` is the
    /// caller's clock: a backend on a shared server may instead judge on the server's clock,
    /// taking `until - now` as the lease's length, so nodes with skewed clocks still agree.
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, CatalogError>;
    /// Gives the lease back, if `holder` has it.
    fn lease_release(&self, name: &str, holder: &str) -> Result<(), CatalogError>;
    /// Leases whose name starts with `prefix`, live or expired, in name order.
    fn lease_list(&self, prefix: &str) -> Result<Vec<Lease>, CatalogError>;

    /// Refreshes the query planner's statistics after a bulk write (a copy, a large ingest),
    /// so the first scrolls after it do not run on plans made for empty tables. Backends
    /// whose plans do not depend on gathered statistics have nothing to do.
    fn refresh_statistics(&self) -> Result<(), CatalogError> {
        Ok(())
    }
}

/// Conveniences on any catalog.
pub trait CatalogExt: Catalog {
    /// Iterates pages of a query from its start.
    fn scroll<'a>(&'a self, q: &'a Query, page_size: usize) -> Scroll<'a, Self> {
        Scroll { catalog: self, query: q, cursor: Some(Cursor::start()), page_size }
    }
}

impl<T: Catalog + ?Sized> CatalogExt for T {}

/// An iterator over the pages of a query; see [`CatalogExt::scroll`].
pub struct Scroll<'a, C: ?Sized> {
    catalog: &'a C,
    query: &'a Query,
    cursor: Option<Cursor>,
    page_size: usize,
}

impl<C: Catalog + ?Sized> Scroll<'_, C> {
    /// Where the next page starts; save it to resume later.
    pub fn cursor(&self) -> Option<&Cursor> {
        self.cursor.as_ref()
    }
}

impl<C: Catalog + ?Sized> Iterator for Scroll<'_, C> {
    type Item = Result<Page, CatalogError>;
    fn next(&mut self) -> Option<Self::Item> {
        let cur = self.cursor.take()?;
        match self.catalog.scroll_page(self.query, &cur, self.page_size) {
            Ok(page) => {
                self.cursor = page.next.clone();
                if page.rows.is_empty() && page.next.is_none() {
                    return None;
                }
                Some(Ok(page))
            }
            Err(e) => Some(Err(e)),
        }
    }
}
