//! Where recording metadata lives and how it is scanned.
//!
//! [`Catalog`] is one trait with an embedded SQLite implementation ([`SqliteCatalog`], the
//! default, at `<data dir>/catalog.db`); a PostgreSQL one passes the same [`conformance`]
//! suite. Queries are answered page by page through a resumable keyset [`Cursor`] (never
//! OFFSET): the start-time range is cut into `scan_intervals_per_day` slices as GIR MLM does,
//! and each slice is walked in `(startTime, id)` order, so memory stays flat however many
//! recordings match. Besides recordings, the catalog keeps small named state
//! ([`Catalog::state_get`]) and leases ([`Catalog::lease_acquire`]) so that every node that
//! shares a catalog also shares schedules, journals and claims.

pub mod conformance;
mod cursor;
mod query;
mod sqlite;
pub mod synth;

pub use cursor::Cursor;
pub use query::Query;
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
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Inserted,
    Updated,
    Unchanged,
}

/// A hold set through reclife (a legal hold), as opposed to `nonDelete` in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A recording as the catalog holds it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub recording: Recording,
    pub hold: Option<Hold>,
}

impl Entry {
    /// Protected from deletion: `nonDelete` in the document, or a hold.
    pub fn held(&self) -> bool {
        self.recording.non_delete || self.hold.is_some()
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
    pub held: bool,
    pub labels: Vec<String>,
    pub call_recording_id: Option<String>,
    pub agent_user: Option<String>,
}

/// A page of a scroll, and where the next one starts (`None`: the scroll is complete).
#[derive(Debug, Clone)]
pub struct Page {
    pub rows: Vec<Row>,
    pub next: Option<Cursor>,
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

    fn hold(&self, id: &str, reason: &str, at: DateTime<Utc>) -> Result<(), CatalogError>;
    fn unhold(&self, id: &str) -> Result<(), CatalogError>;

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
    fn state_list(&self, namespace: &str) -> Result<Vec<(String, String)>, CatalogError>;

    /// Takes the lease `name` for `holder` until `until`, if it is free, expired at `now`,
    /// or already held by `holder` (which extends it). True when `holder` has it.
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, CatalogError>;
    /// Gives the lease back, if `holder` has it.
    fn lease_release(&self, name: &str, holder: &str) -> Result<(), CatalogError>;
}

/// Conveniences on any catalog.
pub trait CatalogExt: Catalog {
    /// Iterates pages of a query from its start.
    fn scroll<'a>(&'a self, q: &'a Query, page_size: usize) -> Scroll<'a, Self> {
        Scroll { catalog: self, query: q, cursor: Some(Cursor::start()), page_size }
    }

    /// The screen recordings that belong to a call.
    fn screens_of(&self, call_id: &str) -> Result<Vec<Row>, CatalogError> {
        let q = Query { kind: Some(Kind::Screen), call_recording_id: Some(call_id.to_string()), ..Query::default() };
        let mut out = Vec::new();
        for page in self.scroll(&q, 500) {
            out.extend(page?.rows);
        }
        Ok(out)
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
