//! The embedded catalog: SQLite (bundled), WAL mode, one file.

use super::{
    Catalog, CatalogError, Cursor, DeleteOutcome, Doom, Entry, Hold, HoldState, Lease, ManifestRow, Page, Query, Row,
    RowState, Upsert, Version,
};
use crate::model::{Kind, Recording};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS recordings (
    start_ms INTEGER NOT NULL,
    id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    stop_ms INTEGER NOT NULL,
    region TEXT,
    call_type TEXT,
    call_type_lc TEXT,
    non_delete INTEGER NOT NULL,
    hold_reason TEXT,
    hold_ms INTEGER,
    agent_user TEXT,
    call_recording_id TEXT,
    media_count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    labels TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    call_uuid TEXT,
    hold_by TEXT,
    hold_history TEXT,
    PRIMARY KEY (start_ms, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS rec_id ON recordings(id);
CREATE INDEX IF NOT EXISTS rec_stop ON recordings(stop_ms);
CREATE INDEX IF NOT EXISTS rec_call ON recordings(call_recording_id);
CREATE TABLE IF NOT EXISTS docs (
    id TEXT PRIMARY KEY,
    doc TEXT NOT NULL,
    doc_hash TEXT NOT NULL,
    encrypted_media TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    tag INTEGER NOT NULL,
    k TEXT NOT NULL,
    v TEXT NOT NULL,
    rec_id TEXT NOT NULL,
    PRIMARY KEY (tag, k, v, rec_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_rec ON tags(rec_id);
CREATE TABLE IF NOT EXISTS state (
    ns TEXT NOT NULL,
    k TEXT NOT NULL,
    v TEXT NOT NULL,
    PRIMARY KEY (ns, k)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tombstones (
    tomb TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (tomb, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifest (
    job TEXT NOT NULL,
    task INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    rec_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    screens TEXT NOT NULL,
    state TEXT NOT NULL,
    archive TEXT,
    note TEXT,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (job, task, seq)
) WITHOUT ROWID;
"#;

/// Schema changes after the first release, applied in order; `PRAGMA user_version` counts them.
const MIGRATIONS: &[&str] = &[
    // 1: versions and callUuid links (catalogs made before issue 8).
    "ALTER TABLE recordings ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE recordings ADD COLUMN call_uuid TEXT;",
    // 2: who placed a hold, and every hold placed or released (issue 20).
    "ALTER TABLE recordings ADD COLUMN hold_by TEXT;
     ALTER TABLE recordings ADD COLUMN hold_history TEXT;",
    // 3: attached data is each key's current value, not every value it ever had (issue 20):
    // the tags are derived again from the documents ([`SqliteCatalog::rederive_attached`]).
    "SELECT 1;",
];

/// Indexes on columns that migrations add.
const INDEXES: &str = "CREATE INDEX IF NOT EXISTS rec_uuid ON recordings(call_uuid) WHERE call_uuid IS NOT NULL;";

const TAG_LABEL: i64 = 1;
const TAG_ATTACHED: i64 = 2;
const TAG_AGENT: i64 = 3;
const TAG_PARTITION: i64 = 4;

/// A screen recording (`r`) whose call is held: the call named by its `callRecordingId`, or,
/// without one, the call (kind 0) sharing its `callUuid` (as `screens_of` links them). Both
/// lookups are indexed (`rec_id`, `rec_uuid`).
macro_rules! call_held {
    () => {
        "(r.kind = 1 AND (EXISTS (SELECT 1 FROM recordings hc WHERE hc.id = r.call_recording_id \
         AND (hc.non_delete = 1 OR hc.hold_reason IS NOT NULL)) \
         OR (r.call_recording_id IS NULL AND r.call_uuid IS NOT NULL AND EXISTS (SELECT 1 FROM recordings hc \
         WHERE hc.call_uuid = r.call_uuid AND hc.call_uuid IS NOT NULL AND hc.kind = 0 \
         AND (hc.non_delete = 1 OR hc.hold_reason IS NOT NULL)))))"
    };
}

/// The one rule of what is held ([`Row::held`]): nonDelete or a hold, of `r` or of its call.
macro_rules! held {
    () => {
        concat!("(r.non_delete = 1 OR r.hold_reason IS NOT NULL OR ", call_held!(), ")")
    };
}

const ROW_COLS: &str = concat!(
    "r.id, r.kind, r.start_ms, r.stop_ms, r.region, r.call_type, r.media_count, r.bytes, ",
    held!(),
    ", r.labels, r.call_recording_id, r.agent_user, r.call_uuid, r.version"
);

/// The SQLite catalog. One connection behind a mutex: SQLite serialises writers anyway, and
/// each call is short (one page, one upsert).
///
/// Layout: `recordings` holds the query fields only and is clustered by the scroll key
/// `(start_ms, id)` (WITHOUT ROWID), so a scroll reads consecutive pages instead of hopping
/// through a wide table; documents live apart in `docs`; labels, attached data, agents and
/// partitions are rows of `tags` for indexed filters.
#[derive(Debug)]
pub struct SqliteCatalog {
    conn: Mutex<Connection>,
}

fn db(e: rusqlite::Error) -> CatalogError {
    CatalogError::Db(e.to_string())
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn kind_code(k: Kind) -> i64 {
    match k {
        Kind::Voice => 0,
        Kind::Screen => 1,
    }
}

impl SqliteCatalog {
    /// Opens (creating if needed) the catalog file.
    pub fn open(path: &Path) -> Result<SqliteCatalog, CatalogError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        if let Some(parent) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| CatalogError::Db(format!("{}: {e}", parent.display())))?;
        }
        // The catalog holds every recording's metadata: owner-only. SQLite gives its -wal and
        // -shm files the database file's mode.
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| CatalogError::Db(format!("{}: {e}", path.display())))?;
        }
        let conn = Connection::open(path).map_err(|e| CatalogError::Db(format!("{}: {e}", path.display())))?;
        Self::init(conn)
    }

    /// A private in-memory catalog (tests, dry runs).
    pub fn in_memory() -> Result<SqliteCatalog, CatalogError> {
        Self::init(Connection::open_in_memory().map_err(db)?)
    }

    fn init(conn: Connection) -> Result<SqliteCatalog, CatalogError> {
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(db)?;
        // WAL lets scrolls read while another process writes; synchronous=FULL makes every
        // commit durable before the call returns, which purge journaling relies on.
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        Self::migrate(&conn)?;
        Ok(SqliteCatalog { conn: Mutex::new(conn) })
    }

    /// Creates the schema, or brings an older one up to date (in one transaction).
    fn migrate(conn: &Connection) -> Result<(), CatalogError> {
        conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
        let r = (|| {
            let fresh: bool = conn
                .query_row("SELECT NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'recordings')", [], |r| {
                    r.get(0)
                })
                .map_err(db)?;
            let have: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
            conn.execute_batch(SCHEMA).map_err(db)?;
            if !fresh {
                for m in MIGRATIONS.iter().skip(usize::try_from(have).unwrap_or(0)) {
                    conn.execute_batch(m).map_err(db)?;
                }
                if have < 1 {
                    Self::backfill_uuids(conn)?;
                }
                if have < 3 {
                    Self::rederive_attached(conn)?;
                }
            }
            conn.execute_batch(INDEXES).map_err(db)?;
            conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64).map_err(db)?;
            Ok(())
        })();
        match r {
            Ok(()) => conn.execute_batch("COMMIT").map_err(db),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Fills `call_uuid` of a catalog made before it existed, from the stored documents.
    fn backfill_uuids(conn: &Connection) -> Result<(), CatalogError> {
        let mut st = conn
            .prepare("SELECT r.id, d.doc, r.call_recording_id FROM recordings r JOIN docs d ON d.id = r.id")
            .map_err(db)?;
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?)))
            .map_err(db)?;
        let mut set = conn.prepare("UPDATE recordings SET call_uuid = ?2 WHERE id = ?1").map_err(db)?;
        for row in rows {
            let (id, doc, call) = row.map_err(db)?;
            if let Ok(rec) = Recording::parse_in(&doc, call.as_deref()) {
                if rec.call_uuid.is_some() {
                    set.execute(params![id, rec.call_uuid]).map_err(db)?;
                }
            }
        }
        Ok(())
    }

    /// Derives the attached-data tags of every recording again from its document (catalogs
    /// made before attached data meant the current value).
    fn rederive_attached(conn: &Connection) -> Result<(), CatalogError> {
        let mut st = conn
            .prepare(
                "SELECT r.id, d.doc, r.call_recording_id FROM recordings r JOIN docs d ON d.id = r.id
                 WHERE EXISTS (SELECT 1 FROM tags t WHERE t.rec_id = r.id AND t.tag = ?1)",
            )
            .map_err(db)?;
        let rows = st
            .query_map([TAG_ATTACHED], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .map_err(db)?;
        let mut del = conn.prepare("DELETE FROM tags WHERE rec_id = ?1 AND tag = ?2").map_err(db)?;
        let mut ins =
            conn.prepare("INSERT OR IGNORE INTO tags (tag, k, v, rec_id) VALUES (?1, ?2, ?3, ?4)").map_err(db)?;
        for row in rows {
            let (id, doc, call) = row.map_err(db)?;
            if let Ok(rec) = Recording::parse_in(&doc, call.as_deref()) {
                del.execute(params![id, TAG_ATTACHED]).map_err(db)?;
                for (k, v) in &rec.attached_data {
                    ins.execute(params![TAG_ATTACHED, k, v, id]).map_err(db)?;
                }
            }
        }
        Ok(())
    }

    /// A write transaction, begun IMMEDIATE: a deferred one that reads first and then writes
    /// fails with "database is locked" (not waiting out busy_timeout) when another process
    /// wrote in between, because its read snapshot cannot be upgraded.
    fn write_tx(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, CatalogError> {
        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(db)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent (transactions roll
        // back), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn upsert_in(tx: &Connection, rec: &Recording) -> Result<Upsert, CatalogError> {
        Self::upsert_versioned(tx, rec).map(|(u, _)| u)
    }

    /// Upserts and returns what happened with the version the recording has now.
    fn upsert_versioned(tx: &Connection, rec: &Recording) -> Result<(Upsert, Version), CatalogError> {
        let encrypted: Vec<&str> = rec.media.iter().filter(|m| m.encrypted).map(|m| m.media_id.as_str()).collect();
        let encrypted = serde_json::to_string(&encrypted).expect("strings serialise");
        let mut h = Sha256::new();
        h.update(rec.doc().as_bytes());
        h.update([0]);
        h.update(encrypted.as_bytes());
        if let Some(c) = &rec.call_recording_id {
            h.update(c.as_bytes());
        }
        let hash = hex::encode(h.finalize());
        let old: Option<String> = tx
            .prepare_cached("SELECT doc_hash FROM docs WHERE id = ?1")
            .map_err(db)?
            .query_row([&rec.id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        // The start time is part of the primary key, so an update is a delete and an insert;
        // a hold set on the recording carries over, and the version grows by one.
        type Prev = (Option<String>, Option<i64>, Version, Option<String>, Option<String>);
        let prev: Option<Prev> = tx
            .prepare_cached("SELECT hold_reason, hold_ms, version, hold_by, hold_history FROM recordings WHERE id = ?1")
            .map_err(db)?
            .query_row([&rec.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()
            .map_err(db)?;
        if old.as_deref() == Some(hash.as_str()) {
            return Ok((Upsert::Unchanged, prev.map_or(1, |p| p.2)));
        }
        let (hold_reason, hold_ms, version, hold_by, hold_history) = match prev {
            Some((r, m, v, b, h)) => (r, m, v + 1, b, h),
            None => (None, None, 1, None, None),
        };
        tx.prepare_cached("DELETE FROM recordings WHERE id = ?1").map_err(db)?.execute([&rec.id]).map_err(db)?;
        let labels = serde_json::to_string(&rec.labels).expect("strings serialise");
        tx.prepare_cached(
            "INSERT INTO recordings (start_ms, id, kind, stop_ms, region, call_type, call_type_lc, non_delete,
                 hold_reason, hold_ms, agent_user, call_recording_id, media_count, bytes, labels, version, call_uuid,
                 hold_by, hold_history)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        )
        .map_err(db)?
        .execute(params![
            ms(rec.start),
            rec.id,
            kind_code(rec.kind),
            ms(rec.stop),
            rec.region,
            rec.call_type,
            rec.call_type.as_ref().map(|c| c.to_lowercase()),
            rec.non_delete,
            hold_reason,
            hold_ms,
            rec.agent_user,
            rec.call_recording_id,
            rec.media.len() as i64,
            rec.bytes() as i64,
            labels,
            version,
            rec.call_uuid.as_deref().filter(|u| !u.is_empty()),
            hold_by,
            hold_history,
        ])
        .map_err(db)?;
        tx.prepare_cached(
            "INSERT INTO docs (id, doc, doc_hash, encrypted_media) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, doc_hash = excluded.doc_hash,
                 encrypted_media = excluded.encrypted_media",
        )
        .map_err(db)?
        .execute(params![rec.id, rec.doc(), hash, encrypted])
        .map_err(db)?;
        tx.prepare_cached("DELETE FROM tags WHERE rec_id = ?1").map_err(db)?.execute([&rec.id]).map_err(db)?;
        let mut ins =
            tx.prepare_cached("INSERT OR IGNORE INTO tags (tag, k, v, rec_id) VALUES (?1, ?2, ?3, ?4)").map_err(db)?;
        for l in &rec.labels {
            ins.execute(params![TAG_LABEL, l, "", rec.id]).map_err(db)?;
        }
        for (k, v) in &rec.attached_data {
            ins.execute(params![TAG_ATTACHED, k, v, rec.id]).map_err(db)?;
        }
        for u in &rec.agent_users {
            ins.execute(params![TAG_AGENT, u, "", rec.id]).map_err(db)?;
        }
        for p in &rec.partitions {
            ins.execute(params![TAG_PARTITION, p, "", rec.id]).map_err(db)?;
        }
        Ok((if old.is_some() { Upsert::Updated } else { Upsert::Inserted }, version))
    }

    /// The columns [`Self::entry_of`] reads, after the id.
    const ENTRY_COLS: &'static str = concat!(
        "r.id, d.doc, r.call_recording_id, d.encrypted_media, r.hold_reason, r.hold_ms, r.version, r.hold_by, \
         r.hold_history, ",
        call_held!()
    );

    fn get_in(conn: &Connection, id: &str) -> Result<Option<Entry>, CatalogError> {
        let sql = format!("SELECT {} FROM recordings r JOIN docs d ON d.id = r.id WHERE r.id = ?1", Self::ENTRY_COLS);
        let mut st = conn.prepare_cached(&sql).map_err(db)?;
        let mut rows = st.query([id]).map_err(db)?;
        match rows.next().map_err(db)? {
            Some(r) => Self::entry_of(r).map(Some),
            None => Ok(None),
        }
    }

    /// The recordings of `ids` that exist, in that order, in one statement (a listing page: one
    /// prepare for the page, not one per row).
    fn get_many_in(conn: &Connection, ids: &[String]) -> Result<Vec<Entry>, CatalogError> {
        let list = serde_json::to_string(ids).map_err(|e| CatalogError::Db(e.to_string()))?;
        let sql = format!(
            "SELECT {} FROM json_each(?1) j JOIN recordings r ON r.id = j.value JOIN docs d ON d.id = r.id ORDER BY j.key",
            Self::ENTRY_COLS
        );
        let mut st = conn.prepare_cached(&sql).map_err(db)?;
        let mut rows = st.query([list]).map_err(db)?;
        let mut out = Vec::with_capacity(ids.len());
        while let Some(r) = rows.next().map_err(db)? {
            out.push(Self::entry_of(r)?);
        }
        Ok(out)
    }

    fn entry_of(r: &rusqlite::Row<'_>) -> Result<Entry, CatalogError> {
        let id: String = r.get(0).map_err(db)?;
        let doc: String = r.get(1).map_err(db)?;
        let call: Option<String> = r.get(2).map_err(db)?;
        let enc: String = r.get(3).map_err(db)?;
        let reason: Option<String> = r.get(4).map_err(db)?;
        let hold_ms: Option<i64> = r.get(5).map_err(db)?;
        let version: Version = r.get(6).map_err(db)?;
        let by: Option<String> = r.get(7).map_err(db)?;
        let history: Option<String> = r.get(8).map_err(db)?;
        let call_held: bool = r.get(9).map_err(db)?;
        let mut recording =
            Recording::parse_in(&doc, call.as_deref()).map_err(|source| CatalogError::Corrupt { id, source })?;
        let enc: Vec<String> = serde_json::from_str(&enc).unwrap_or_default();
        for m in &mut recording.media {
            m.encrypted |= enc.contains(&m.media_id);
        }
        let hold = reason.map(|reason| Hold { reason, at: from_ms(hold_ms.unwrap_or(0)), by });
        let hold_history = super::hold::history_of(history.as_deref());
        Ok(Entry { recording, hold, hold_history, call_held, version })
    }

    fn edit_labels(&self, id: &str, f: impl FnOnce(&mut Vec<serde_json::Value>)) -> Result<(), CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let entry = Self::get_in(&tx, id)?.ok_or_else(|| CatalogError::NotFound(id.to_string()))?;
        let mut doc = entry.recording.doc_value();
        let obj = doc.as_object_mut().expect("a recording document is an object");
        let labels = obj.entry("labels").or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if !labels.is_array() {
            *labels = serde_json::Value::Array(Vec::new());
        }
        f(labels.as_array_mut().expect("made an array above"));
        let rec =
            entry.recording.with_doc(&doc).map_err(|source| CatalogError::Corrupt { id: id.to_string(), source })?;
        Self::upsert_in(&tx, &rec)?;
        tx.commit().map_err(db)
    }

    /// The WHERE clause (without slice and cursor bounds) and its parameters.
    fn filter_sql(q: &Query) -> (String, Vec<SqlValue>) {
        let mut w: Vec<String> = Vec::new();
        let mut p: Vec<SqlValue> = Vec::new();
        let bind = |p: &mut Vec<SqlValue>, v: SqlValue| {
            p.push(v);
            format!("?{}", p.len())
        };
        if let Some(k) = q.kind {
            let b = bind(&mut p, SqlValue::Integer(kind_code(k)));
            w.push(format!("r.kind = {b}"));
        }
        if let Some(t) = q.start_from {
            let b = bind(&mut p, SqlValue::Integer(ms(t)));
            w.push(format!("r.start_ms >= {b}"));
        }
        if let Some(t) = q.start_to {
            let b = bind(&mut p, SqlValue::Integer(ms(t)));
            w.push(format!("r.start_ms < {b}"));
        }
        if let Some(t) = q.stop_from {
            let b = bind(&mut p, SqlValue::Integer(ms(t)));
            w.push(format!("r.stop_ms >= {b}"));
        }
        if let Some(t) = q.stop_to {
            let b = bind(&mut p, SqlValue::Integer(ms(t)));
            w.push(format!("r.stop_ms < {b}"));
        }
        if let Some(r) = &q.region {
            let b = bind(&mut p, SqlValue::Text(r.clone()));
            w.push(format!("r.region = {b}"));
        }
        if let Some(c) = &q.call_type {
            let b = bind(&mut p, SqlValue::Text(c.to_lowercase()));
            w.push(format!("r.call_type_lc = {b}"));
        }
        for l in &q.labels_include {
            let b = bind(&mut p, SqlValue::Text(l.clone()));
            w.push(format!("EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_LABEL} AND t.k = {b} AND t.v = '' AND t.rec_id = r.id)"));
        }
        for l in &q.labels_exclude {
            let b = bind(&mut p, SqlValue::Text(l.clone()));
            w.push(format!("NOT EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_LABEL} AND t.k = {b} AND t.v = '' AND t.rec_id = r.id)"));
        }
        for (k, v) in &q.attached {
            let bk = bind(&mut p, SqlValue::Text(k.clone()));
            let bv = bind(&mut p, SqlValue::Text(v.clone()));
            w.push(format!("EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_ATTACHED} AND t.k = {bk} AND t.v = {bv} AND t.rec_id = r.id)"));
        }
        for (k, v) in &q.attached_not {
            let bk = bind(&mut p, SqlValue::Text(k.clone()));
            let bv = bind(&mut p, SqlValue::Text(v.clone()));
            w.push(format!("NOT EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_ATTACHED} AND t.k = {bk} AND t.v = {bv} AND t.rec_id = r.id)"));
        }
        if let Some(u) = &q.agent_user {
            let b = bind(&mut p, SqlValue::Text(u.clone()));
            w.push(format!("EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_AGENT} AND t.k = {b} AND t.v = '' AND t.rec_id = r.id)"));
        }
        if !q.partitions.is_empty() {
            let bs: Vec<String> = q.partitions.iter().map(|x| bind(&mut p, SqlValue::Text(x.clone()))).collect();
            w.push(format!(
                "EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_PARTITION} AND t.k IN ({}) AND t.v = '' AND t.rec_id = r.id)",
                bs.join(", ")
            ));
        }
        if let Some(h) = q.held {
            let cond = held!();
            w.push(if h { cond.to_string() } else { format!("NOT {cond}") });
        }
        if let Some(h) = q.has_screen {
            let cond = "EXISTS (SELECT 1 FROM recordings s WHERE s.call_recording_id = r.id)";
            w.push(if h { cond.to_string() } else { format!("NOT {cond}") });
        }
        if let Some(c) = &q.call_recording_id {
            let b = bind(&mut p, SqlValue::Text(c.clone()));
            w.push(format!("r.call_recording_id = {b}"));
        }
        // RWS search parameters (api/rws): `*` patterns become GLOBs with every other GLOB
        // metacharacter escaped. Phone numbers live only in the document, so those two filters
        // read it (a scan of the matching time range, not an index lookup).
        for (field, pat) in [("callerPhoneNumber", &q.caller_phone), ("dialedPhoneNumber", &q.dialed_phone)] {
            if let Some(pat) = pat {
                let b = bind(&mut p, SqlValue::Text(rws_glob(pat)));
                let mut num = format!("coalesce(json_extract(d.doc, '$.{field}'), '')");
                for c in ["+", "-", " ", "(", ")", ".", "/"] {
                    num = format!("replace({num}, '{c}', '')");
                }
                w.push(format!("EXISTS (SELECT 1 FROM docs d WHERE d.id = r.id AND {num} GLOB {b})"));
            }
        }
        if !q.attached_value_any.is_empty() {
            let bs: Vec<String> = q
                .attached_value_any
                .iter()
                .map(|v| format!("t.v GLOB {}", bind(&mut p, SqlValue::Text(rws_glob(v)))))
                .collect();
            w.push(format!(
                "EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_ATTACHED} AND t.rec_id = r.id AND ({}))",
                bs.join(" OR ")
            ));
        }
        for group in &q.agent_user_any {
            let bs: Vec<String> = group
                .iter()
                .map(|u| format!("lower(t.k) GLOB {}", bind(&mut p, SqlValue::Text(rws_glob(&u.to_ascii_lowercase())))))
                .collect();
            if !bs.is_empty() {
                w.push(format!(
                    "EXISTS (SELECT 1 FROM tags t WHERE t.tag = {TAG_AGENT} AND t.rec_id = r.id AND ({}))",
                    bs.join(" OR ")
                ));
            }
        }
        let sql = if w.is_empty() { "1 = 1".to_string() } else { w.join(" AND ") };
        (sql, p)
    }

    fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let labels: String = r.get(9)?;
        Ok(Row {
            id: r.get(0)?,
            kind: if r.get::<_, i64>(1)? == 1 { Kind::Screen } else { Kind::Voice },
            start: from_ms(r.get(2)?),
            stop: from_ms(r.get(3)?),
            region: r.get(4)?,
            call_type: r.get(5)?,
            media_count: r.get::<_, i64>(6)? as u32,
            bytes: r.get::<_, i64>(7)? as u64,
            held: r.get(8)?,
            labels: if labels == "[]" { Vec::new() } else { serde_json::from_str(&labels).unwrap_or_default() },
            call_recording_id: r.get(10)?,
            agent_user: r.get(11)?,
            call_uuid: r.get(12)?,
            version: r.get(13)?,
        })
    }

    /// The first start time at or after `from_ms`, used to skip empty slices instead of
    /// visiting each one (one step into the clustered primary key).
    fn next_start(conn: &Connection, from_ms: i64) -> Result<Option<i64>, CatalogError> {
        conn.query_row("SELECT min(start_ms) FROM recordings WHERE start_ms >= ?1", [from_ms], |r| r.get(0)).map_err(db)
    }
}

impl Catalog for SqliteCatalog {
    fn upsert(&self, rec: &Recording) -> Result<Upsert, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let r = Self::upsert_in(&tx, rec)?;
        tx.commit().map_err(db)?;
        Ok(r)
    }

    fn upsert_many(&self, recs: &[Recording]) -> Result<Vec<Upsert>, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let out = recs.iter().map(|r| Self::upsert_in(&tx, r)).collect::<Result<Vec<_>, _>>()?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn get(&self, id: &str) -> Result<Option<Entry>, CatalogError> {
        Self::get_in(&self.lock(), id)
    }

    fn get_many(&self, ids: &[String]) -> Result<Vec<Entry>, CatalogError> {
        Self::get_many_in(&self.lock(), ids)
    }

    fn delete(&self, id: &str, with_screens: bool) -> Result<Vec<String>, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let exists: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM recordings WHERE id = ?1)", [id], |r| r.get(0)).map_err(db)?;
        if !exists {
            return Err(CatalogError::NotFound(id.to_string()));
        }
        let mut ids = vec![id.to_string()];
        if with_screens {
            let mut st =
                tx.prepare("SELECT id FROM recordings WHERE call_recording_id = ?1 ORDER BY id").map_err(db)?;
            let screens = st.query_map([id], |r| r.get::<_, String>(0)).map_err(db)?;
            for s in screens {
                ids.push(s.map_err(db)?);
            }
        }
        for i in &ids {
            tx.execute("DELETE FROM tags WHERE rec_id = ?1", [i]).map_err(db)?;
            tx.execute("DELETE FROM recordings WHERE id = ?1", [i]).map_err(db)?;
            tx.execute("DELETE FROM docs WHERE id = ?1", [i]).map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(ids)
    }

    fn delete_many(&self, ids: &[String]) -> Result<Vec<String>, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let mut out = Vec::with_capacity(ids.len());
        for i in ids {
            tx.prepare_cached("DELETE FROM tags WHERE rec_id = ?1").map_err(db)?.execute([i]).map_err(db)?;
            tx.prepare_cached("DELETE FROM docs WHERE id = ?1").map_err(db)?.execute([i]).map_err(db)?;
            if tx.prepare_cached("DELETE FROM recordings WHERE id = ?1").map_err(db)?.execute([i]).map_err(db)? > 0 {
                out.push(i.clone());
            }
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn edit_hold(
        &self,
        id: &str,
        f: &mut (dyn FnMut(&HoldState) -> Option<HoldState> + Send),
    ) -> Result<HoldState, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        type Cols = (Option<String>, Option<i64>, Option<String>, Option<String>);
        let found: Option<Cols> = tx
            .prepare_cached("SELECT hold_reason, hold_ms, hold_by, hold_history FROM recordings WHERE id = ?1")
            .map_err(db)?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()
            .map_err(db)?;
        let (reason, at, by, history) = found.ok_or_else(|| CatalogError::NotFound(id.to_string()))?;
        let now = HoldState {
            hold: reason.map(|reason| Hold { reason, at: from_ms(at.unwrap_or(0)), by }),
            history: super::hold::history_of(history.as_deref()),
        };
        let Some(next) = f(&now) else { return Ok(now) };
        tx.prepare_cached(
            "UPDATE recordings SET hold_reason = ?2, hold_ms = ?3, hold_by = ?4, hold_history = ?5,
                 version = version + 1 WHERE id = ?1",
        )
        .map_err(db)?
        .execute(params![
            id,
            next.hold.as_ref().map(|h| h.reason.as_str()),
            next.hold.as_ref().map(|h| ms(h.at)),
            next.hold.as_ref().and_then(|h| h.by.as_deref()),
            super::hold::history_text(&next.history),
        ])
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(next)
    }

    fn label(&self, id: &str, label: &str) -> Result<(), CatalogError> {
        self.edit_labels(id, |labels| {
            if !labels.iter().any(|l| l.as_str() == Some(label)) {
                labels.push(serde_json::Value::String(label.to_string()));
            }
        })
    }

    fn unlabel(&self, id: &str, label: &str) -> Result<(), CatalogError> {
        self.edit_labels(id, |labels| labels.retain(|l| l.as_str() != Some(label)))
    }

    fn scroll_page(&self, q: &Query, cursor: &Cursor, limit: usize) -> Result<Page, CatalogError> {
        if limit == 0 {
            return Err(CatalogError::BadQuery("page size 0".into()));
        }
        let conn = self.lock();
        let slice_len = q.slice_ms();
        let lower = q.start_from.map(ms);
        let upper = q.start_to.map(ms);
        let mut slice = match cursor.slice_start_ms {
            Some(s) => s,
            None => match Self::next_start(&conn, lower.unwrap_or(i64::MIN))? {
                Some(first) => q.slice_of(first),
                None => return Ok(Page { rows: Vec::new(), next: None }),
            },
        };
        let mut after = cursor.after.clone();
        // The slice bounds (lo, hi) already carry start_from/start_to. Repeating them in the
        // WHERE clause let SQLite range the index on the query's far bound instead of the
        // slice's, so each slice scanned to the end of the range (quadratic over a long scan).
        let (filter, base) = Self::filter_sql(&Query { start_from: None, start_to: None, ..q.clone() });
        let sql_first = format!(
            "SELECT {ROW_COLS} FROM recordings r WHERE {filter} AND r.start_ms >= ?{} AND r.start_ms < ?{} \
             ORDER BY r.start_ms, r.id LIMIT ?{}",
            base.len() + 1,
            base.len() + 2,
            base.len() + 3
        );
        let sql_after = format!(
            "SELECT {ROW_COLS} FROM recordings r WHERE {filter} AND r.start_ms >= ?{} AND r.start_ms < ?{} \
             AND (r.start_ms, r.id) > (?{}, ?{}) ORDER BY r.start_ms, r.id LIMIT ?{}",
            base.len() + 1,
            base.len() + 2,
            base.len() + 4,
            base.len() + 5,
            base.len() + 3
        );
        let mut rows = Vec::with_capacity(limit.min(4096));
        loop {
            if upper.is_some_and(|u| slice >= u) {
                return Ok(Page { rows, next: None });
            }
            let lo = lower.map_or(slice, |l| l.max(slice));
            let hi = upper.map_or(slice.saturating_add(slice_len), |u| u.min(slice.saturating_add(slice_len)));
            let want = limit - rows.len();
            let mut params = base.clone();
            params.push(SqlValue::Integer(lo));
            params.push(SqlValue::Integer(hi));
            params.push(SqlValue::Integer(want as i64));
            let sql = match &after {
                Some((t, id)) => {
                    params.push(SqlValue::Integer(*t));
                    params.push(SqlValue::Text(id.clone()));
                    &sql_after
                }
                None => &sql_first,
            };
            let mut st = conn.prepare_cached(sql).map_err(db)?;
            let mut got = 0usize;
            let mut it = st.query(params_from_iter(params.iter())).map_err(db)?;
            while let Some(r) = it.next().map_err(db)? {
                rows.push(Self::read_row(r).map_err(db)?);
                got += 1;
            }
            if got == want {
                let last = rows.last().expect("got rows");
                let next = Cursor { slice_start_ms: Some(slice), after: Some((ms(last.start), last.id.clone())) };
                return Ok(Page { rows, next: Some(next) });
            }
            // This slice is exhausted: jump to the slice of the next recording of this kind.
            let slice_end = slice.saturating_add(slice_len);
            after = None;
            match Self::next_start(&conn, slice_end)? {
                Some(t) if upper.is_none_or(|u| t < u) => slice = q.slice_of(t),
                _ => return Ok(Page { rows, next: None }),
            }
        }
    }

    fn count(&self, q: &Query) -> Result<u64, CatalogError> {
        let (filter, params) = Self::filter_sql(q);
        let conn = self.lock();
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM recordings r WHERE {filter}"),
                params_from_iter(params.iter()),
                |r| r.get(0),
            )
            .map_err(db)?;
        Ok(n as u64)
    }

    fn state_get(&self, namespace: &str, key: &str) -> Result<Option<String>, CatalogError> {
        self.lock()
            .query_row("SELECT v FROM state WHERE ns = ?1 AND k = ?2", [namespace, key], |r| r.get(0))
            .optional()
            .map_err(db)
    }

    fn state_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), CatalogError> {
        self.lock()
            .execute(
                "INSERT INTO state (ns, k, v) VALUES (?1, ?2, ?3) ON CONFLICT(ns, k) DO UPDATE SET v = excluded.v",
                [namespace, key, value],
            )
            .map_err(db)?;
        Ok(())
    }

    fn state_delete(&self, namespace: &str, key: &str) -> Result<(), CatalogError> {
        self.lock().execute("DELETE FROM state WHERE ns = ?1 AND k = ?2", [namespace, key]).map_err(db)?;
        Ok(())
    }

    fn state_namespaces(&self) -> Result<Vec<String>, CatalogError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached("SELECT DISTINCT ns FROM state ORDER BY ns").map_err(db)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn state_page(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let conn = self.lock();
        let mut st =
            conn.prepare_cached("SELECT k, v FROM state WHERE ns = ?1 AND k > ?2 ORDER BY k LIMIT ?3").map_err(db)?;
        let rows = st
            .query_map(params![namespace, after.unwrap_or(""), limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, CatalogError> {
        let n = self
            .lock()
            .execute(
                "INSERT INTO leases (name, holder, until_ms) VALUES (?1, ?2, ?4)
                 ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms
                 WHERE leases.holder = excluded.holder OR leases.until_ms <= ?3",
                params![name, holder, ms(now), ms(until)],
            )
            .map_err(db)?;
        Ok(n == 1)
    }

    fn lease_release(&self, name: &str, holder: &str) -> Result<(), CatalogError> {
        self.lock().execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", [name, holder]).map_err(db)?;
        Ok(())
    }

    fn lease_list(&self, prefix: &str) -> Result<Vec<Lease>, CatalogError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached("SELECT name, holder, until_ms FROM leases WHERE substr(name, 1, ?2) = ?1 ORDER BY name")
            .map_err(db)?;
        let rows = st
            .query_map(params![prefix, prefix.chars().count() as i64], |r| {
                Ok(Lease { name: r.get(0)?, holder: r.get(1)?, until: from_ms(r.get(2)?) })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn import(&self, entries: &[Entry]) -> Result<Vec<Upsert>, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let have: Option<Version> = tx
                .prepare_cached("SELECT version FROM recordings WHERE id = ?1")
                .map_err(db)?
                .query_row([&e.recording.id], |r| r.get(0))
                .optional()
                .map_err(db)?;
            if have.is_some_and(|v| v >= e.version) {
                out.push(Upsert::Unchanged);
                continue;
            }
            Self::upsert_in(&tx, &e.recording)?;
            tx.prepare_cached(
                "UPDATE recordings SET version = ?2, hold_reason = ?3, hold_ms = ?4, hold_by = ?5, hold_history = ?6
                 WHERE id = ?1",
            )
            .map_err(db)?
            .execute(params![
                e.recording.id,
                e.version,
                e.hold.as_ref().map(|h| h.reason.as_str()),
                e.hold.as_ref().map(|h| ms(h.at)),
                e.hold.as_ref().and_then(|h| h.by.as_deref()),
                super::hold::history_text(&e.hold_history),
            ])
            .map_err(db)?;
            out.push(if have.is_some() { Upsert::Updated } else { Upsert::Inserted });
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn upsert_if(&self, rec: &Recording, expected: Version) -> Result<Version, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let found: Option<Version> = tx
            .prepare_cached("SELECT version FROM recordings WHERE id = ?1")
            .map_err(db)?
            .query_row([&rec.id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match found {
            None => return Err(CatalogError::NotFound(rec.id.clone())),
            Some(v) if v != expected => return Err(CatalogError::Changed { id: rec.id.clone(), expected, found: v }),
            Some(_) => {}
        }
        let (_, v) = Self::upsert_versioned(&tx, rec)?;
        tx.commit().map_err(db)?;
        Ok(v)
    }

    fn screens_of(&self, call_id: &str) -> Result<Vec<Row>, CatalogError> {
        let conn = self.lock();
        let uuid: Option<String> = conn
            .prepare_cached("SELECT call_uuid FROM recordings WHERE id = ?1")
            .map_err(db)?
            .query_row([call_id], |r| r.get(0))
            .optional()
            .map_err(db)?
            .flatten();
        let sql = format!(
            "SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND r.call_recording_id = ?1
             UNION
             SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND ?2 IS NOT NULL AND r.call_uuid = ?2
                 AND r.call_uuid IS NOT NULL AND +r.call_recording_id IS NULL
             ORDER BY 3, 1"
        );
        let mut st = conn.prepare_cached(&sql).map_err(db)?;
        let rows = st.query_map(params![call_id, uuid], Self::read_row).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn screens_of_calls(&self, calls: &[Row]) -> Result<Vec<(String, Row)>, CatalogError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.lock();
        let mut by_call: std::collections::HashMap<&str, Vec<Row>> = std::collections::HashMap::new();
        let ids: std::collections::HashMap<&str, &str> = calls.iter().map(|c| (c.id.as_str(), c.id.as_str())).collect();
        let by_uuid: std::collections::HashMap<&str, &str> =
            calls.iter().filter_map(|c| c.call_uuid.as_deref().map(|u| (u, c.id.as_str()))).collect();
        // Chunks keep under SQLite's bound-parameter limit. The `+` keeps SQLite from ranging
        // the callRecordingId index over every call (all have none) instead of the uuid index.
        for chunk in calls.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql =
                format!("SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND r.call_recording_id IN ({marks})");
            let mut st = conn.prepare_cached(&sql).map_err(db)?;
            let rows =
                st.query_map(params_from_iter(chunk.iter().map(|c| c.id.as_str())), Self::read_row).map_err(db)?;
            for r in rows {
                let r = r.map_err(db)?;
                if let Some(c) = r.call_recording_id.as_deref().and_then(|id| ids.get(id)) {
                    by_call.entry(c).or_default().push(r);
                }
            }
            let uuids: Vec<&str> = chunk.iter().filter_map(|c| c.call_uuid.as_deref()).collect();
            if uuids.is_empty() {
                continue;
            }
            let marks = vec!["?"; uuids.len()].join(", ");
            let sql = format!(
                "SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND r.call_uuid IN ({marks}) \
                 AND r.call_uuid IS NOT NULL AND +r.call_recording_id IS NULL"
            );
            let mut st = conn.prepare_cached(&sql).map_err(db)?;
            let rows = st.query_map(params_from_iter(uuids.iter()), Self::read_row).map_err(db)?;
            for r in rows {
                let r = r.map_err(db)?;
                if let Some(call) = r.call_uuid.as_deref().and_then(|u| by_uuid.get(u)) {
                    by_call.entry(call).or_default().push(r);
                }
            }
        }
        Ok(super::in_call_order(calls, by_call))
    }

    fn delete_checked(&self, items: &[Doom], tombstone: &str) -> Result<Vec<DeleteOutcome>, CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        let mut out = Vec::with_capacity(items.len());
        for d in items {
            // The held rule, read inside this write transaction (SQLite's IMMEDIATE lock keeps
            // every other writer out until the commit): a hold placed before it wins.
            let found: Option<(Version, bool)> = tx
                .prepare_cached(concat!("SELECT r.version, ", held!(), " FROM recordings r WHERE r.id = ?1"))
                .map_err(db)?
                .query_row([&d.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(db)?;
            let parent_held = match &d.parent {
                None => false,
                Some(p) => tx
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM recordings WHERE id = ?1
                             AND (non_delete = 1 OR hold_reason IS NOT NULL))",
                    )
                    .map_err(db)?
                    .query_row([p], |r| r.get(0))
                    .map_err(db)?,
            };
            let outcome = match found {
                None => DeleteOutcome::Missing,
                Some((_, true)) => DeleteOutcome::Held,
                Some(_) if parent_held => DeleteOutcome::Held,
                Some((v, false)) if v != d.version => DeleteOutcome::Changed,
                Some(_) => {
                    for sql in [
                        "DELETE FROM tags WHERE rec_id = ?1",
                        "DELETE FROM docs WHERE id = ?1",
                        "DELETE FROM recordings WHERE id = ?1",
                    ] {
                        tx.prepare_cached(sql).map_err(db)?.execute([&d.id]).map_err(db)?;
                    }
                    tx.prepare_cached("INSERT OR IGNORE INTO tombstones (tomb, id) VALUES (?1, ?2)")
                        .map_err(db)?
                        .execute([tombstone, &d.id])
                        .map_err(db)?;
                    DeleteOutcome::Deleted
                }
            };
            out.push(outcome);
        }
        tx.commit().map_err(db)?;
        Ok(out)
    }

    fn tombstones(&self, tombstone: &str) -> Result<Vec<String>, CatalogError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached("SELECT id FROM tombstones WHERE tomb = ?1 ORDER BY id").map_err(db)?;
        let rows = st.query_map([tombstone], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn tombstones_clear(&self, tombstone: &str) -> Result<(), CatalogError> {
        self.lock().execute("DELETE FROM tombstones WHERE tomb = ?1", [tombstone]).map_err(db)?;
        Ok(())
    }

    fn manifest_add(&self, job: &str, task: u32, rows: &[ManifestRow]) -> Result<(), CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        {
            let mut ins = tx
                .prepare_cached(
                    "INSERT INTO manifest (job, task, seq, rec_id, version, screens, state, archive, note, bytes)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(db)?;
            for r in rows {
                ins.execute(params![
                    job,
                    task,
                    r.seq as i64,
                    r.id,
                    r.version,
                    serde_json::to_string(&r.screens).expect("screens serialise"),
                    r.state.as_str(),
                    r.archive,
                    r.note,
                    r.bytes as i64
                ])
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    fn manifest_page(
        &self,
        job: &str,
        task: u32,
        state: Option<RowState>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ManifestRow>, CatalogError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT seq, rec_id, version, screens, state, archive, note, bytes FROM manifest
                 WHERE job = ?1 AND task = ?2 AND seq > ?3 AND (?4 IS NULL OR state = ?4)
                 ORDER BY seq LIMIT ?5",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![job, task, after as i64, state.map(RowState::as_str), limit as i64], |r| {
                let screens: String = r.get(3)?;
                let state: String = r.get(4)?;
                Ok(ManifestRow {
                    seq: r.get::<_, i64>(0)? as u64,
                    id: r.get(1)?,
                    version: r.get(2)?,
                    screens: serde_json::from_str(&screens).unwrap_or_default(),
                    state: RowState::parse(&state).unwrap_or(RowState::Failed),
                    archive: r.get(5)?,
                    note: r.get(6)?,
                    bytes: r.get::<_, i64>(7)? as u64,
                })
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn manifest_update(&self, job: &str, task: u32, rows: &[ManifestRow]) -> Result<(), CatalogError> {
        let mut conn = self.lock();
        let tx = Self::write_tx(&mut conn)?;
        {
            let mut up = tx
                .prepare_cached(
                    "UPDATE manifest SET version = ?4, screens = ?5, state = ?6, archive = ?7, note = ?8, bytes = ?9
                     WHERE job = ?1 AND task = ?2 AND seq = ?3",
                )
                .map_err(db)?;
            for r in rows {
                up.execute(params![
                    job,
                    task,
                    r.seq as i64,
                    r.version,
                    serde_json::to_string(&r.screens).expect("screens serialise"),
                    r.state.as_str(),
                    r.archive,
                    r.note,
                    r.bytes as i64
                ])
                .map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    fn manifest_promote(
        &self,
        job: &str,
        task: u32,
        from: RowState,
        to: RowState,
        archive: Option<&str>,
    ) -> Result<u64, CatalogError> {
        let n = self
            .lock()
            .execute(
                "UPDATE manifest SET state = ?4, archive = coalesce(?5, archive)
                 WHERE job = ?1 AND task = ?2 AND state = ?3",
                params![job, task, from.as_str(), to.as_str(), archive],
            )
            .map_err(db)?;
        Ok(n as u64)
    }

    fn manifest_counts(&self, job: &str, task: u32) -> Result<Vec<(RowState, u64)>, CatalogError> {
        let conn = self.lock();
        let mut st = conn
            .prepare_cached(
                "SELECT state, count(*) FROM manifest WHERE job = ?1 AND task = ?2 GROUP BY state ORDER BY state",
            )
            .map_err(db)?;
        let rows = st
            .query_map(params![job, task], |r| {
                let s: String = r.get(0)?;
                Ok((RowState::parse(&s).unwrap_or(RowState::Failed), r.get::<_, i64>(1)? as u64))
            })
            .map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }

    fn manifest_drop(&self, job: &str) -> Result<u64, CatalogError> {
        let n = self.lock().execute("DELETE FROM manifest WHERE job = ?1", [job]).map_err(db)?;
        Ok(n as u64)
    }

    fn manifest_jobs(&self) -> Result<Vec<String>, CatalogError> {
        let conn = self.lock();
        let mut st = conn.prepare_cached("SELECT DISTINCT job FROM manifest ORDER BY job").map_err(db)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(db)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db)
    }
}

/// An RWS search pattern (`*` is the only wildcard) as an SQLite GLOB.
fn rws_glob(pat: &str) -> String {
    let mut out = String::with_capacity(pat.len());
    for c in pat.chars() {
        match c {
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog made when attached data meant every value a key ever had: opening it derives
    /// the tags again, so a filter on `keep_recording = "no"` no longer matches a call whose
    /// agent changed it to "yes".
    #[test]
    fn opening_an_older_catalog_derives_attached_data_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("catalog.db");
        let doc = r#"{"id":"K1","startTime":"2024-01-01T00:00:00.000+0000","stopTime":"2024-01-01T00:01:00.000+0000",
            "mediaFiles":[{"mediaId":"K1.mp3","type":"audio/mp3","size":"1"}],
            "eventHistory":[{"event":"Data","data":{"added":{"keep_recording":"no"}}},
                            {"event":"Data","data":{"updated":{"keep_recording":"yes"}}}]}"#;
        let q = Query { attached: vec![("keep_recording".into(), "no".into())], ..Query::default() };
        {
            let c = SqliteCatalog::open(&path).unwrap();
            c.upsert(&Recording::parse(doc).unwrap()).unwrap();
            // As an older build wrote it: the history's value too, and schema version 2.
            let conn = c.lock();
            conn.execute(
                "INSERT INTO tags (tag, k, v, rec_id) VALUES (?1, 'keep_recording', 'no', 'K1')",
                [TAG_ATTACHED],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 2).unwrap();
        }
        {
            let conn = Connection::open(&path).unwrap();
            let n: i64 =
                conn.query_row("SELECT count(*) FROM tags WHERE k = 'keep_recording'", [], |r| r.get(0)).unwrap();
            assert_eq!(n, 2, "the older catalog holds both values");
        }
        let c = SqliteCatalog::open(&path).unwrap();
        assert_eq!(c.count(&q).unwrap(), 0, "the value the key no longer has still matches");
        let yes = Query { attached: vec![("keep_recording".into(), "yes".into())], ..Query::default() };
        assert_eq!(c.count(&yes).unwrap(), 1);
    }
}
