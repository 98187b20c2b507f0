//! The shared catalog: PostgreSQL, for deployments of more than one node.
//!
//! In: a `postgres://user@host:port/db` URL (no password in it), the password from
//! `PGPASSWORD` or a `password_file`, and optionally a schema. Out: a [`Catalog`] that every
//! node pointed at the same database shares: recordings, documents, plans, state and leases.
//! Guarantees: the same as SQLite's (the [`conformance`](super::conformance) suite runs on
//! both), across nodes: every write that depends on a read is one transaction that locks the
//! rows it read (`FOR UPDATE`), so versions, conditional writes and conditional deletes hold
//! between processes on different machines; a lease is taken and judged on the database's
//! clock (`now()`), never a node's, so nodes whose clocks differ still agree on who holds it.
//!
//! Why synchronous: the [`Catalog`] trait is blocking and async code already calls it from
//! `spawn_blocking` (the lifecycle's `blocking` helper, the API handlers, the muxer), so the
//! blocking `postgres` client with a small pool of our own ([`pool`]) fits it without a
//! second async stack. That client blocks on a private tokio runtime, which panics on a thread
//! that drives async tasks; the pool moves such calls to a helper thread (see [`pool`]).
//!
//! Layout, as in SQLite: `recordings` holds the fields queries need, with the scroll key
//! `(start_ms, id)` indexed; `docs` holds each document twice, as JSONB (for queries on its
//! fields) and as the exact text given (which [`Recording::doc`] promises back, key order and
//! all); labels, attached data, agents and partitions are rows of `tags`. Batches are written
//! with one statement per table (`unnest` of arrays), not one per row.

mod pool;
mod query;
mod schema;

use super::{
    Catalog, CatalogError, Cursor, DeleteOutcome, Doom, Entry, Hold, HoldState, Lease, ManifestRow, Page, Query, Row,
    RowState, Upsert, Version,
};
use crate::model::{Kind, Recording};
use chrono::{DateTime, TimeZone, Utc};
use pool::{Failure, Pool};
use postgres::types::ToSql;
use postgres::GenericClient;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;

const TAG_LABEL: i16 = 1;
const TAG_ATTACHED: i16 = 2;
const TAG_AGENT: i16 = 3;
const TAG_PARTITION: i16 = 4;

/// A screen recording (`r`) whose call is held: the call named by its `callRecordingId`, or,
/// without one, the call (kind 0) sharing its `callUuid` (as `screens_of` links them). Both
/// lookups are indexed (the primary key; `rec_call_uuid`, whose predicate this implies).
macro_rules! call_held {
    () => {
        "(r.kind = 1 AND (EXISTS (SELECT 1 FROM recordings hc WHERE hc.id = r.call_recording_id \
         AND (hc.non_delete OR hc.hold_reason IS NOT NULL)) \
         OR (r.call_recording_id IS NULL AND r.call_uuid IS NOT NULL AND EXISTS (SELECT 1 FROM recordings hc \
         WHERE hc.call_uuid = r.call_uuid AND hc.kind = 0 AND hc.call_uuid IS NOT NULL \
         AND (hc.non_delete OR hc.hold_reason IS NOT NULL)))))"
    };
}

/// The one rule of what is held ([`Row::held`]): nonDelete or a hold, of `r` or of its call.
macro_rules! held {
    () => {
        concat!("(r.non_delete OR r.hold_reason IS NOT NULL OR ", call_held!(), ")")
    };
}
/// [`held!`] as a constant, for the query builder.
const HELD: &str = held!();

const ROW_COLS: &str = concat!(
    "r.id, r.kind, r.start_ms, r.stop_ms, r.region, r.call_type, r.media_count, r.bytes, ",
    held!(),
    ", r.labels, r.call_recording_id, r.agent_user, r.call_uuid, r.version"
);

const ENTRY_COLS: &str = concat!(
    "r.id, d.doc_text, r.call_recording_id, d.encrypted_media, r.hold_reason, r.hold_ms, r.version, r.hold_by, \
     r.hold_history, ",
    call_held!()
);

/// How to reach the catalog database. Its `Debug` never shows the password.
#[derive(Clone, Default)]
pub struct PgOptions {
    /// `postgres://user@host:port/db` (or `postgresql://`); a password in it is refused.
    pub url: String,
    /// Resolved password, if any (from `PGPASSWORD` or a file).
    password: Option<String>,
    /// Schema holding the catalog's tables (default `public`).
    pub schema: String,
    /// Connections per process.
    pub pool_size: usize,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// True when `s` names a PostgreSQL catalog rather than a file.
pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

impl PgOptions {
    /// Options for `url`, with the password from `password_file` when given, else from env
    /// `PGPASSWORD`, else none (trust or peer authentication).
    pub fn new(url: &str, password_file: Option<&PathBuf>) -> Result<PgOptions, CatalogError> {
        let password = match password_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| CatalogError::Db(format!("catalog password_file {}: {e}", p.display())))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
        };
        let o = PgOptions { url: url.to_string(), password, schema: "public".into(), pool_size: 8 };
        o.config()?;
        Ok(o)
    }

    pub fn with_schema(mut self, schema: &str) -> PgOptions {
        self.schema = schema.to_string();
        self
    }

    pub fn with_pool_size(mut self, n: usize) -> PgOptions {
        self.pool_size = n.max(1);
        self
    }

    fn config(&self) -> Result<postgres::Config, CatalogError> {
        if !is_postgres_url(&self.url) {
            return Err(CatalogError::Db(format!("catalog {:?} is not a postgres:// URL", self.url)));
        }
        // Judge the URL by its parts, and never echo a URL that holds a password.
        let parsed =
            url::Url::parse(&self.url).map_err(|e| CatalogError::Db(format!("catalog URL does not parse: {e}")))?;
        if parsed.password().is_some() {
            return Err(CatalogError::Db(
                "the catalog URL holds a password: put it in PGPASSWORD or the catalog's password_file instead".into(),
            ));
        }
        let mut c: postgres::Config =
            self.url.parse().map_err(|e| CatalogError::Db(format!("catalog URL {:?}: {e}", self.url)))?;
        if let Some(p) = &self.password {
            c.password(p.as_bytes());
        }
        if c.get_connect_timeout().is_none() {
            c.connect_timeout(std::time::Duration::from_secs(10));
        }
        c.application_name("reclife");
        c.options(format!("-c search_path={}", schema::quote_ident(&self.schema)).as_str());
        Ok(c)
    }
}

/// The PostgreSQL catalog; see the module doc.
#[derive(Debug)]
pub struct PgCatalog {
    pool: Pool,
    schema: String,
}

fn pg(e: postgres::Error) -> Failure {
    Failure::Pg(e)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn kind_code(k: Kind) -> i16 {
    match k {
        Kind::Voice => 0,
        Kind::Screen => 1,
    }
}

/// A recording's columns, ready to bind.
struct Prepared<'a> {
    rec: &'a Recording,
    hash: String,
    encrypted: Vec<String>,
}

fn prepare(rec: &Recording) -> Prepared<'_> {
    let encrypted: Vec<String> = rec.media.iter().filter(|m| m.encrypted).map(|m| m.media_id.clone()).collect();
    let mut h = Sha256::new();
    h.update(rec.doc().as_bytes());
    h.update([0]);
    for e in &encrypted {
        h.update(e.as_bytes());
        h.update([0]);
    }
    if let Some(c) = &rec.call_recording_id {
        h.update(c.as_bytes());
    }
    Prepared { rec, hash: hex::encode(h.finalize()), encrypted }
}

impl PgCatalog {
    /// Connects and brings the schema up to date.
    pub fn open(opts: &PgOptions) -> Result<PgCatalog, CatalogError> {
        let pool = Pool::new(opts.config()?, opts.pool_size);
        let c = PgCatalog { pool, schema: opts.schema.clone() };
        let schema = c.schema.clone();
        c.pool.run(|client| schema::migrate(client, &schema).map_err(pg))?;
        Ok(c)
    }

    /// The schema this catalog lives in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Drops the catalog's schema and everything in it. For tests and benchmarks: no command
    /// of reclife calls it.
    pub fn drop_schema(self) -> Result<(), CatalogError> {
        let s = schema::quote_ident(&self.schema);
        self.pool.run(|c| c.batch_execute(&format!("DROP SCHEMA IF EXISTS {s} CASCADE")).map_err(pg))
    }

    /// The migrations applied, as `(version, name)` in order.
    pub fn migrations(&self) -> Result<Vec<(i32, String)>, CatalogError> {
        self.pool.run(|c| {
            Ok(c.query("SELECT version, name FROM reclife_migrations ORDER BY version", &[])
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect())
        })
    }

    /// Upserts a batch in one transaction's worth of statements; returns each outcome and version.
    fn upsert_in(tx: &mut impl GenericClient, recs: &[Recording]) -> Result<Vec<(Upsert, Version)>, Failure> {
        if recs.is_empty() {
            return Ok(Vec::new());
        }
        let prepared: Vec<Prepared<'_>> = recs.iter().map(prepare).collect();
        let ids: Vec<&str> = recs.iter().map(|r| r.id.as_str()).collect();
        let mut old: HashMap<String, (String, Version)> = HashMap::new();
        for r in tx
            .query(
                "SELECT d.id, d.doc_hash, r.version FROM docs d JOIN recordings r ON r.id = d.id
                 WHERE d.id = ANY($1) ORDER BY d.id FOR UPDATE OF r",
                &[&ids],
            )
            .map_err(pg)?
        {
            old.insert(r.get(0), (r.get(1), r.get(2)));
        }
        // A batch may name an id twice: the last document wins, as row-by-row upserts would.
        let mut last: HashMap<&str, usize> = HashMap::new();
        for (i, r) in recs.iter().enumerate() {
            last.insert(r.id.as_str(), i);
        }
        let mut out = vec![(Upsert::Unchanged, 0); recs.len()];
        let mut write: Vec<usize> = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            match old.get(&p.rec.id) {
                Some((h, v)) if *h == p.hash => out[i] = (Upsert::Unchanged, *v),
                Some(_) => out[i] = (Upsert::Updated, 0),
                None => out[i] = (Upsert::Inserted, 0),
            }
            if last[p.rec.id.as_str()] == i && out[i].0 != Upsert::Unchanged {
                write.push(i);
            }
        }
        // Rows are written in id order, so two writers of overlapping batches lock alike.
        write.sort_by(|a, b| recs[*a].id.cmp(&recs[*b].id));
        if !write.is_empty() {
            let w = |f: &dyn Fn(&Recording) -> Option<String>| -> Vec<Option<String>> {
                write.iter().map(|&i| f(&recs[i])).collect()
            };
            let id: Vec<&str> = write.iter().map(|&i| recs[i].id.as_str()).collect();
            let start: Vec<i64> = write.iter().map(|&i| ms(recs[i].start)).collect();
            let kind: Vec<i16> = write.iter().map(|&i| kind_code(recs[i].kind)).collect();
            let stop: Vec<i64> = write.iter().map(|&i| ms(recs[i].stop)).collect();
            let region = w(&|r| r.region.clone());
            let call_type = w(&|r| r.call_type.clone());
            let call_type_lc = w(&|r| r.call_type.as_ref().map(|c| c.to_lowercase()));
            let non_delete: Vec<bool> = write.iter().map(|&i| recs[i].non_delete).collect();
            let agent = w(&|r| r.agent_user.clone());
            let call = w(&|r| r.call_recording_id.clone());
            let uuid = w(&|r| r.call_uuid.clone().filter(|u| !u.is_empty()));
            let media_count: Vec<i32> = write.iter().map(|&i| recs[i].media.len() as i32).collect();
            let bytes: Vec<i64> = write.iter().map(|&i| recs[i].bytes() as i64).collect();
            // Arrays of arrays must be rectangular in PostgreSQL: labels travel as JSON text.
            let labels: Vec<String> =
                write.iter().map(|&i| serde_json::to_string(&recs[i].labels).expect("strings serialise")).collect();
            let params: [&(dyn ToSql + Sync); 14] = [
                &id,
                &start,
                &kind,
                &stop,
                &region,
                &call_type,
                &call_type_lc,
                &non_delete,
                &agent,
                &call,
                &uuid,
                &media_count,
                &bytes,
                &labels,
            ];
            let rows = tx
                .query(
                    "INSERT INTO recordings (id, start_ms, kind, stop_ms, region, call_type, call_type_lc, non_delete,
                         agent_user, call_recording_id, call_uuid, media_count, bytes, labels, version)
                     SELECT u.id, u.start_ms, u.kind, u.stop_ms, u.region, u.call_type, u.call_type_lc, u.non_delete,
                         u.agent_user, u.call_recording_id, u.call_uuid, u.media_count, u.bytes,
                         ARRAY(SELECT jsonb_array_elements_text(u.labels::jsonb)), 1
                     FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::bigint[], $5::text[], $6::text[],
                         $7::text[], $8::boolean[], $9::text[], $10::text[], $11::text[], $12::integer[],
                         $13::bigint[], $14::text[])
                         AS u(id, start_ms, kind, stop_ms, region, call_type, call_type_lc, non_delete, agent_user,
                              call_recording_id, call_uuid, media_count, bytes, labels)
                     ON CONFLICT (id) DO UPDATE SET start_ms = excluded.start_ms, kind = excluded.kind,
                         stop_ms = excluded.stop_ms, region = excluded.region, call_type = excluded.call_type,
                         call_type_lc = excluded.call_type_lc, non_delete = excluded.non_delete,
                         agent_user = excluded.agent_user, call_recording_id = excluded.call_recording_id,
                         call_uuid = excluded.call_uuid, media_count = excluded.media_count, bytes = excluded.bytes,
                         labels = excluded.labels, version = recordings.version + 1
                     RETURNING id, version",
                    &params,
                )
                .map_err(pg)?;
            let versions: HashMap<String, Version> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let doc: Vec<&str> = write.iter().map(|&i| recs[i].doc()).collect();
            let hash: Vec<&str> = write.iter().map(|&i| prepared[i].hash.as_str()).collect();
            let enc: Vec<String> = write
                .iter()
                .map(|&i| serde_json::to_string(&prepared[i].encrypted).expect("strings serialise"))
                .collect();
            tx.execute(
                "INSERT INTO docs (id, doc, doc_text, doc_hash, encrypted_media)
                 SELECT u.id, u.doc::jsonb, u.doc, u.hash, ARRAY(SELECT jsonb_array_elements_text(u.enc::jsonb))
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(id, doc, hash, enc)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, doc_text = excluded.doc_text,
                     doc_hash = excluded.doc_hash, encrypted_media = excluded.encrypted_media",
                &[&id, &doc, &hash, &enc],
            )
            .map_err(pg)?;
            tx.execute("DELETE FROM tags WHERE rec_id = ANY($1)", &[&id]).map_err(pg)?;
            let (mut tt, mut tk, mut tv, mut tr): (Vec<i16>, Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
            for &i in &write {
                let r = &recs[i];
                for l in &r.labels {
                    tt.push(TAG_LABEL);
                    tk.push(l);
                    tv.push("");
                    tr.push(&r.id);
                }
                for (k, v) in &r.attached_data {
                    tt.push(TAG_ATTACHED);
                    tk.push(k);
                    tv.push(v);
                    tr.push(&r.id);
                }
                for u in &r.agent_users {
                    tt.push(TAG_AGENT);
                    tk.push(u);
                    tv.push("");
                    tr.push(&r.id);
                }
                for p in &r.partitions {
                    tt.push(TAG_PARTITION);
                    tk.push(p);
                    tv.push("");
                    tr.push(&r.id);
                }
            }
            if !tt.is_empty() {
                tx.execute(
                    "INSERT INTO tags (tag, k, v, rec_id)
                     SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING",
                    &[&tt, &tk, &tv, &tr],
                )
                .map_err(pg)?;
            }
            for (i, o) in out.iter_mut().enumerate() {
                if o.0 != Upsert::Unchanged {
                    o.1 = versions.get(&recs[i].id).copied().unwrap_or(1);
                }
            }
        }
        Ok(out)
    }
}

fn read_row(r: &postgres::Row) -> Row {
    Row {
        id: r.get(0),
        kind: if r.get::<_, i16>(1) == 1 { Kind::Screen } else { Kind::Voice },
        start: from_ms(r.get(2)),
        stop: from_ms(r.get(3)),
        region: r.get(4),
        call_type: r.get(5),
        media_count: r.get::<_, i32>(6) as u32,
        bytes: r.get::<_, i64>(7) as u64,
        held: r.get(8),
        labels: r.get(9),
        call_recording_id: r.get(10),
        agent_user: r.get(11),
        call_uuid: r.get(12),
        version: r.get(13),
    }
}

fn entry_of(r: &postgres::Row) -> Result<Entry, CatalogError> {
    let id: String = r.get(0);
    let doc: &str = r.get(1);
    let call: Option<&str> = r.get(2);
    let enc: Vec<String> = r.get(3);
    let reason: Option<String> = r.get(4);
    let hold_ms: Option<i64> = r.get(5);
    let version: Version = r.get(6);
    let by: Option<String> = r.get(7);
    let history: Option<&str> = r.get(8);
    let call_held: bool = r.get(9);
    let mut recording = Recording::parse_in(doc, call).map_err(|source| CatalogError::Corrupt { id, source })?;
    for m in &mut recording.media {
        m.encrypted |= enc.contains(&m.media_id);
    }
    let hold = reason.map(|reason| Hold { reason, at: from_ms(hold_ms.unwrap_or(0)), by });
    let hold_history = super::hold::history_of(history);
    Ok(Entry { recording, hold, hold_history, call_held, version })
}

fn get_in(c: &mut impl GenericClient, id: &str, lock: bool) -> Result<Option<Entry>, Failure> {
    let sql = format!(
        "SELECT {ENTRY_COLS} FROM recordings r JOIN docs d ON d.id = r.id WHERE r.id = $1{}",
        if lock { " FOR UPDATE OF r" } else { "" }
    );
    match c.query_opt(&sql, &[&id]).map_err(pg)? {
        Some(r) => Ok(Some(entry_of(&r)?)),
        None => Ok(None),
    }
}

impl PgCatalog {
    fn edit_labels(&self, id: &str, f: &(dyn Fn(&mut Vec<serde_json::Value>) + Sync)) -> Result<(), CatalogError> {
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let entry = get_in(&mut tx, id, true)?.ok_or_else(|| CatalogError::NotFound(id.to_string()))?;
            let mut doc = entry.recording.doc_value();
            let obj = doc.as_object_mut().expect("a recording document is an object");
            let labels = obj.entry("labels").or_insert_with(|| serde_json::Value::Array(Vec::new()));
            if !labels.is_array() {
                *labels = serde_json::Value::Array(Vec::new());
            }
            f(labels.as_array_mut().expect("made an array above"));
            let rec = entry
                .recording
                .with_doc(&doc)
                .map_err(|source| CatalogError::Corrupt { id: id.to_string(), source })?;
            Self::upsert_in(&mut tx, std::slice::from_ref(&rec))?;
            tx.commit().map_err(pg)
        })
    }
}

impl Catalog for PgCatalog {
    fn upsert(&self, rec: &Recording) -> Result<Upsert, CatalogError> {
        Ok(self.upsert_many(std::slice::from_ref(rec))?[0])
    }

    fn upsert_many(&self, recs: &[Recording]) -> Result<Vec<Upsert>, CatalogError> {
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let out = Self::upsert_in(&mut tx, recs)?;
            tx.commit().map_err(pg)?;
            Ok(out.into_iter().map(|(u, _)| u).collect())
        })
    }

    fn get(&self, id: &str) -> Result<Option<Entry>, CatalogError> {
        self.pool.run(|c| get_in(c, id, false))
    }

    fn get_many(&self, ids: &[String]) -> Result<Vec<Entry>, CatalogError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.run(|c| {
            let sql = format!(
                "SELECT {ENTRY_COLS} FROM unnest($1::text[]) WITH ORDINALITY AS j(id, n)
                 JOIN recordings r ON r.id = j.id JOIN docs d ON d.id = r.id ORDER BY j.n"
            );
            let rows = c.query(&sql, &[&ids]).map_err(pg)?;
            rows.iter().map(|r| entry_of(r).map_err(Failure::Catalog)).collect()
        })
    }

    fn import(&self, entries: &[Entry]) -> Result<Vec<Upsert>, CatalogError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let ids: Vec<&str> = entries.iter().map(|e| e.recording.id.as_str()).collect();
            let have: HashMap<String, Version> = tx
                .query("SELECT id, version FROM recordings WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&ids])
                .map_err(pg)?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            let mut out = Vec::with_capacity(entries.len());
            let mut recs = Vec::new();
            let mut take = Vec::new();
            for e in entries {
                match have.get(&e.recording.id) {
                    Some(v) if *v >= e.version => out.push(Upsert::Unchanged),
                    h => {
                        out.push(if h.is_some() { Upsert::Updated } else { Upsert::Inserted });
                        recs.push(e.recording.clone());
                        take.push(e);
                    }
                }
            }
            if !recs.is_empty() {
                Self::upsert_in(&mut tx, &recs)?;
                let id: Vec<&str> = take.iter().map(|e| e.recording.id.as_str()).collect();
                let version: Vec<i64> = take.iter().map(|e| e.version).collect();
                let reason: Vec<Option<&str>> =
                    take.iter().map(|e| e.hold.as_ref().map(|h| h.reason.as_str())).collect();
                let at: Vec<Option<i64>> = take.iter().map(|e| e.hold.as_ref().map(|h| ms(h.at))).collect();
                let by: Vec<Option<&str>> =
                    take.iter().map(|e| e.hold.as_ref().and_then(|h| h.by.as_deref())).collect();
                let history: Vec<Option<String>> =
                    take.iter().map(|e| super::hold::history_text(&e.hold_history)).collect();
                tx.execute(
                    "UPDATE recordings r SET version = u.version, hold_reason = u.reason, hold_ms = u.at,
                         hold_by = u.by, hold_history = u.history
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[])
                         AS u(id, version, reason, at, by, history)
                     WHERE r.id = u.id",
                    &[&id, &version, &reason, &at, &by, &history],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
            Ok(out)
        })
    }

    fn upsert_if(&self, rec: &Recording, expected: Version) -> Result<Version, CatalogError> {
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let found: Option<Version> = tx
                .query_opt("SELECT version FROM recordings WHERE id = $1 FOR UPDATE", &[&rec.id])
                .map_err(pg)?
                .map(|r| r.get(0));
            match found {
                None => return Err(CatalogError::NotFound(rec.id.clone()).into()),
                Some(v) if v != expected => {
                    return Err(CatalogError::Changed { id: rec.id.clone(), expected, found: v }.into())
                }
                Some(_) => {}
            }
            let (_, v) = Self::upsert_in(&mut tx, std::slice::from_ref(rec))?[0];
            tx.commit().map_err(pg)?;
            Ok(v)
        })
    }

    fn screens_of(&self, call_id: &str) -> Result<Vec<Row>, CatalogError> {
        self.pool.run(|c| {
            let sql = format!(
                "SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND r.call_recording_id = $1
                 UNION
                 SELECT {ROW_COLS} FROM recordings r
                 WHERE r.kind = 1 AND r.call_recording_id IS NULL AND r.call_uuid IS NOT NULL
                     AND r.call_uuid = (SELECT c.call_uuid FROM recordings c WHERE c.id = $1)
                 ORDER BY 3, 1"
            );
            Ok(c.query(&sql, &[&call_id]).map_err(pg)?.iter().map(read_row).collect())
        })
    }

    fn screens_of_calls(&self, calls: &[Row]) -> Result<Vec<(String, Row)>, CatalogError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        let uuids: Vec<&str> = calls.iter().filter_map(|c| c.call_uuid.as_deref()).collect();
        let rows = self.pool.run(|c| {
            let sql = format!(
                "SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND r.call_recording_id = ANY($1)
                 UNION ALL
                 SELECT {ROW_COLS} FROM recordings r WHERE r.kind = 1 AND r.call_recording_id IS NULL
                     AND r.call_uuid IS NOT NULL AND r.call_uuid = ANY($2)"
            );
            Ok(c.query(&sql, &[&ids, &uuids]).map_err(pg)?.iter().map(read_row).collect::<Vec<_>>())
        })?;
        let by_id: std::collections::HashSet<&str> = ids.iter().copied().collect();
        let by_uuid: HashMap<&str, &str> =
            calls.iter().filter_map(|c| c.call_uuid.as_deref().map(|u| (u, c.id.as_str()))).collect();
        let mut by_call: HashMap<&str, Vec<Row>> = HashMap::new();
        for r in rows {
            let owner = match r.call_recording_id.as_deref() {
                Some(id) => by_id.get(id).copied(),
                None => r.call_uuid.as_deref().and_then(|u| by_uuid.get(u).copied()),
            };
            if let Some(o) = owner {
                by_call.entry(o).or_default().push(r);
            }
        }
        Ok(crate::catalog::in_call_order(calls, by_call))
    }

    fn delete_checked(&self, items: &[Doom], tombstone: &str) -> Result<Vec<DeleteOutcome>, CatalogError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let ids: Vec<&str> = items.iter().map(|d| d.id.as_str()).collect();
            // Lock what may be deleted (in id order, as every writer locks), then share-lock the
            // calls their screens belong to (by callRecordingId, or callUuid) and the parents
            // named, so a hold placed on one of those meanwhile waits for this transaction; then
            // read the held rule, which sees every hold committed before those locks.
            let mut calls: Vec<String> = Vec::new();
            let mut uuids: Vec<String> = Vec::new();
            for r in tx
                .query(
                    "SELECT id, kind, call_recording_id, call_uuid FROM recordings
                     WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                    &[&ids],
                )
                .map_err(pg)?
            {
                if r.get::<_, i16>(1) != 1 {
                    continue;
                }
                match (r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3)) {
                    (Some(call), _) => calls.push(call),
                    (None, Some(uuid)) => uuids.push(uuid),
                    (None, None) => {}
                }
            }
            calls.extend(items.iter().filter_map(|d| d.parent.clone()));
            if !calls.is_empty() || !uuids.is_empty() {
                tx.query(
                    "SELECT id FROM recordings WHERE id = ANY($1)
                         OR (kind = 0 AND call_uuid IS NOT NULL AND call_uuid = ANY($2))
                     ORDER BY id FOR SHARE",
                    &[&calls, &uuids],
                )
                .map_err(pg)?;
            }
            let mut found: HashMap<String, (Version, bool)> = HashMap::new();
            for r in tx
                .query(&format!("SELECT r.id, r.version, {HELD} FROM recordings r WHERE r.id = ANY($1)"), &[&ids])
                .map_err(pg)?
            {
                found.insert(r.get(0), (r.get(1), r.get(2)));
            }
            let parents: Vec<&str> = items.iter().filter_map(|d| d.parent.as_deref()).collect();
            let mut held_parents = std::collections::HashSet::new();
            if !parents.is_empty() {
                for r in tx
                    .query(
                        "SELECT id, (non_delete OR hold_reason IS NOT NULL) FROM recordings WHERE id = ANY($1)",
                        &[&parents],
                    )
                    .map_err(pg)?
                {
                    if r.get::<_, bool>(1) {
                        held_parents.insert(r.get::<_, String>(0));
                    }
                }
            }
            let mut out = Vec::with_capacity(items.len());
            let mut gone: Vec<&str> = Vec::new();
            for d in items {
                let parent_held = d.parent.as_ref().is_some_and(|p| held_parents.contains(p));
                let o = match found.get(&d.id) {
                    None => DeleteOutcome::Missing,
                    Some((_, true)) => DeleteOutcome::Held,
                    Some(_) if parent_held => DeleteOutcome::Held,
                    Some((v, false)) if *v != d.version => DeleteOutcome::Changed,
                    Some(_) if gone.contains(&d.id.as_str()) => DeleteOutcome::Missing,
                    Some(_) => {
                        gone.push(&d.id);
                        DeleteOutcome::Deleted
                    }
                };
                out.push(o);
            }
            if !gone.is_empty() {
                tx.execute("DELETE FROM tags WHERE rec_id = ANY($1)", &[&gone]).map_err(pg)?;
                tx.execute("DELETE FROM docs WHERE id = ANY($1)", &[&gone]).map_err(pg)?;
                tx.execute("DELETE FROM recordings WHERE id = ANY($1)", &[&gone]).map_err(pg)?;
                tx.execute(
                    "INSERT INTO tombstones (tomb, id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
                    &[&tombstone, &gone],
                )
                .map_err(pg)?;
            }
            tx.commit().map_err(pg)?;
            Ok(out)
        })
    }

    fn tombstones(&self, tombstone: &str) -> Result<Vec<String>, CatalogError> {
        self.pool.run(|c| {
            Ok(c.query("SELECT id FROM tombstones WHERE tomb = $1 ORDER BY id", &[&tombstone])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn tombstones_clear(&self, tombstone: &str) -> Result<(), CatalogError> {
        self.pool.run(|c| c.execute("DELETE FROM tombstones WHERE tomb = $1", &[&tombstone]).map(|_| ()).map_err(pg))
    }

    fn manifest_add(&self, job: &str, task: u32, rows: &[ManifestRow]) -> Result<(), CatalogError> {
        if rows.is_empty() {
            return Ok(());
        }
        let m = ManifestArrays::of(rows);
        self.pool.run(|c| {
            c.execute(
                "INSERT INTO manifest (job, task, seq, rec_id, version, screens, state, archive, note, bytes)
                 SELECT $1, $2, u.seq, u.rec_id, u.version, u.screens::jsonb, u.state, u.archive, u.note, u.bytes
                 FROM unnest($3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[],
                     $10::bigint[]) AS u(seq, rec_id, version, screens, state, archive, note, bytes)",
                &[&job, &(task as i32), &m.seq, &m.id, &m.version, &m.screens, &m.state, &m.archive, &m.note, &m.bytes],
            )
            .map(|_| ())
            .map_err(pg)
        })
    }

    fn manifest_page(
        &self,
        job: &str,
        task: u32,
        state: Option<RowState>,
        after: u64,
        limit: usize,
    ) -> Result<Vec<ManifestRow>, CatalogError> {
        let st = state.map(RowState::as_str);
        self.pool.run(|c| {
            let rows = c
                .query(
                    "SELECT seq, rec_id, version, screens::text, state, archive, note, bytes FROM manifest
                     WHERE job = $1 AND task = $2 AND seq > $3 AND ($4::text IS NULL OR state = $4)
                     ORDER BY seq LIMIT $5",
                    &[&job, &(task as i32), &(after as i64), &st, &(limit as i64)],
                )
                .map_err(pg)?;
            Ok(rows
                .iter()
                .map(|r| ManifestRow {
                    seq: r.get::<_, i64>(0) as u64,
                    id: r.get(1),
                    version: r.get(2),
                    screens: serde_json::from_str(r.get(3)).unwrap_or_default(),
                    state: RowState::parse(r.get(4)).unwrap_or(RowState::Failed),
                    archive: r.get(5),
                    note: r.get(6),
                    bytes: r.get::<_, i64>(7) as u64,
                })
                .collect())
        })
    }

    fn manifest_update(&self, job: &str, task: u32, rows: &[ManifestRow]) -> Result<(), CatalogError> {
        if rows.is_empty() {
            return Ok(());
        }
        let m = ManifestArrays::of(rows);
        self.pool.run(|c| {
            c.execute(
                "UPDATE manifest m SET version = u.version, screens = u.screens::jsonb, state = u.state,
                     archive = u.archive, note = u.note, bytes = u.bytes
                 FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::bigint[]) AS u(seq, version, screens, state, archive, note, bytes)
                 WHERE m.job = $1 AND m.task = $2 AND m.seq = u.seq",
                &[&job, &(task as i32), &m.seq, &m.version, &m.screens, &m.state, &m.archive, &m.note, &m.bytes],
            )
            .map(|_| ())
            .map_err(pg)
        })
    }

    fn manifest_promote(
        &self,
        job: &str,
        task: u32,
        from: RowState,
        to: RowState,
        archive: Option<&str>,
    ) -> Result<u64, CatalogError> {
        self.pool.run(|c| {
            c.execute(
                "UPDATE manifest SET state = $4, archive = coalesce($5, archive)
                 WHERE job = $1 AND task = $2 AND state = $3",
                &[&job, &(task as i32), &from.as_str(), &to.as_str(), &archive],
            )
            .map_err(pg)
        })
    }

    fn manifest_counts(&self, job: &str, task: u32) -> Result<Vec<(RowState, u64)>, CatalogError> {
        self.pool.run(|c| {
            Ok(c.query(
                "SELECT state, count(*) FROM manifest WHERE job = $1 AND task = $2 GROUP BY state ORDER BY state",
                &[&job, &(task as i32)],
            )
            .map_err(pg)?
            .iter()
            .map(|r| (RowState::parse(r.get(0)).unwrap_or(RowState::Failed), r.get::<_, i64>(1) as u64))
            .collect())
        })
    }

    fn manifest_drop(&self, job: &str) -> Result<u64, CatalogError> {
        self.pool.run(|c| c.execute("DELETE FROM manifest WHERE job = $1", &[&job]).map_err(pg))
    }

    fn manifest_jobs(&self) -> Result<Vec<String>, CatalogError> {
        self.pool.run(|c| {
            Ok(c.query("SELECT DISTINCT job FROM manifest ORDER BY job", &[])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn delete(&self, id: &str, with_screens: bool) -> Result<Vec<String>, CatalogError> {
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            if tx.query_opt("SELECT 1 FROM recordings WHERE id = $1 FOR UPDATE", &[&id]).map_err(pg)?.is_none() {
                return Err(CatalogError::NotFound(id.to_string()).into());
            }
            let mut ids = vec![id.to_string()];
            if with_screens {
                for r in tx
                    .query("SELECT id FROM recordings WHERE call_recording_id = $1 ORDER BY id FOR UPDATE", &[&id])
                    .map_err(pg)?
                {
                    ids.push(r.get(0));
                }
            }
            tx.execute("DELETE FROM tags WHERE rec_id = ANY($1)", &[&ids]).map_err(pg)?;
            tx.execute("DELETE FROM docs WHERE id = ANY($1)", &[&ids]).map_err(pg)?;
            tx.execute("DELETE FROM recordings WHERE id = ANY($1)", &[&ids]).map_err(pg)?;
            tx.commit().map_err(pg)?;
            Ok(ids)
        })
    }

    fn delete_many(&self, ids: &[String]) -> Result<Vec<String>, CatalogError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            tx.execute("DELETE FROM tags WHERE rec_id = ANY($1)", &[&ids]).map_err(pg)?;
            tx.execute("DELETE FROM docs WHERE id = ANY($1)", &[&ids]).map_err(pg)?;
            let gone: std::collections::HashSet<String> = tx
                .query("DELETE FROM recordings WHERE id = ANY($1) RETURNING id", &[&ids])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.commit().map_err(pg)?;
            let mut out = Vec::with_capacity(gone.len());
            for i in ids {
                if gone.contains(i) && !out.contains(i) {
                    out.push(i.clone());
                }
            }
            Ok(out)
        })
    }

    fn edit_hold(
        &self,
        id: &str,
        f: &mut (dyn FnMut(&HoldState) -> Option<HoldState> + Send),
    ) -> Result<HoldState, CatalogError> {
        // A retried attempt reads the state afresh and asks `f` again.
        self.pool.run(|c| {
            let mut tx = c.transaction().map_err(pg)?;
            let row = tx
                .query_opt(
                    "SELECT hold_reason, hold_ms, hold_by, hold_history FROM recordings WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .map_err(pg)?
                .ok_or_else(|| CatalogError::NotFound(id.to_string()))?;
            let reason: Option<String> = row.get(0);
            let at: Option<i64> = row.get(1);
            let history: Option<&str> = row.get(3);
            let now = HoldState {
                hold: reason.map(|reason| Hold { reason, at: from_ms(at.unwrap_or(0)), by: row.get(2) }),
                history: super::hold::history_of(history),
            };
            let Some(next) = f(&now) else { return Ok(now) };
            let (reason, at, by) = match &next.hold {
                Some(h) => (Some(h.reason.as_str()), Some(ms(h.at)), h.by.as_deref()),
                None => (None, None, None),
            };
            tx.execute(
                "UPDATE recordings SET hold_reason = $2, hold_ms = $3, hold_by = $4, hold_history = $5,
                     version = version + 1 WHERE id = $1",
                &[&id, &reason, &at, &by, &super::hold::history_text(&next.history)],
            )
            .map_err(pg)?;
            tx.commit().map_err(pg)?;
            Ok(next)
        })
    }

    fn label(&self, id: &str, label: &str) -> Result<(), CatalogError> {
        self.edit_labels(id, &|labels| {
            if !labels.iter().any(|l| l.as_str() == Some(label)) {
                labels.push(serde_json::Value::String(label.to_string()));
            }
        })
    }

    fn unlabel(&self, id: &str, label: &str) -> Result<(), CatalogError> {
        self.edit_labels(id, &|labels| labels.retain(|l| l.as_str() != Some(label)))
    }

    /// One statement per page. Slices are consecutive and each is walked in `(start, id)`
    /// order, so walking them one by one (as SQLite does, in process) returns exactly the
    /// rows of one keyset range scan over `(start_ms, id)`; over the network the one query
    /// saves a round trip per slice. The cursor names the slice of the last row, as SQLite's.
    fn scroll_page(&self, q: &Query, cursor: &Cursor, limit: usize) -> Result<Page, CatalogError> {
        if limit == 0 {
            return Err(CatalogError::BadQuery("page size 0".into()));
        }
        let mut f = query::Filter::default();
        let filter = query::filter_sql(&Query { start_from: None, start_to: None, ..q.clone() }, &mut f);
        let lower = q.start_from.map(ms);
        let upper = q.start_to.map(ms);
        // Where this page starts: after the cursor's row, else at its slice (or the query's
        // start, whichever is later).
        let from = match (cursor.slice_start_ms, lower) {
            (Some(s), Some(l)) => Some(s.max(l)),
            (s, l) => s.or(l),
        };
        let mut w = vec![filter];
        if let Some(v) = from {
            w.push(format!("r.start_ms >= {}", f.bind(v)));
        }
        if let Some(v) = upper {
            w.push(format!("r.start_ms < {}", f.bind(v)));
        }
        if let Some((t, id)) = &cursor.after {
            let (bt, bi) = (f.bind(*t), f.bind(id.clone()));
            w.push(format!("(r.start_ms, r.id) > ({bt}, {bi})"));
        }
        let lim = f.bind(limit as i64);
        let sql = format!(
            "SELECT {ROW_COLS} FROM recordings r WHERE {} ORDER BY r.start_ms, r.id LIMIT {lim}",
            w.join(" AND ")
        );
        let rows: Vec<Row> =
            self.pool.run(|c| Ok(c.query(&sql, &f.refs()).map_err(pg)?.iter().map(read_row).collect()))?;
        let next = if rows.len() == limit {
            let last = rows.last().expect("a full page");
            Some(Cursor {
                slice_start_ms: Some(q.slice_of(ms(last.start))),
                after: Some((ms(last.start), last.id.clone())),
            })
        } else {
            None
        };
        Ok(Page { rows, next })
    }

    fn count(&self, q: &Query) -> Result<u64, CatalogError> {
        let mut f = query::Filter::default();
        let filter = query::filter_sql(q, &mut f);
        self.pool.run(|c| {
            let n: i64 = c
                .query_one(&format!("SELECT count(*) FROM recordings r WHERE {filter}"), &f.refs())
                .map_err(pg)?
                .get(0);
            Ok(n as u64)
        })
    }

    fn state_get(&self, namespace: &str, key: &str) -> Result<Option<String>, CatalogError> {
        self.pool.run(|c| {
            Ok(c.query_opt("SELECT v FROM state WHERE ns = $1 AND k = $2", &[&namespace, &key])
                .map_err(pg)?
                .map(|r| r.get(0)))
        })
    }

    fn state_put(&self, namespace: &str, key: &str, value: &str) -> Result<(), CatalogError> {
        self.pool.run(|c| {
            c.execute(
                "INSERT INTO state (ns, k, v) VALUES ($1, $2, $3) ON CONFLICT (ns, k) DO UPDATE SET v = excluded.v",
                &[&namespace, &key, &value],
            )
            .map(|_| ())
            .map_err(pg)
        })
    }

    fn state_delete(&self, namespace: &str, key: &str) -> Result<(), CatalogError> {
        self.pool.run(|c| {
            c.execute("DELETE FROM state WHERE ns = $1 AND k = $2", &[&namespace, &key]).map(|_| ()).map_err(pg)
        })
    }

    fn state_namespaces(&self) -> Result<Vec<String>, CatalogError> {
        self.pool.run(|c| {
            Ok(c.query("SELECT DISTINCT ns FROM state ORDER BY ns", &[])
                .map_err(pg)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
    }

    fn state_page(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, CatalogError> {
        let after = after.unwrap_or("");
        self.pool.run(|c| {
            Ok(c.query(
                "SELECT k, v FROM state WHERE ns = $1 AND k > $2 ORDER BY k LIMIT $3",
                &[&namespace, &after, &(limit as i64)],
            )
            .map_err(pg)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// On the database's clock: the lease runs for `until - now` from the server's `now()`,
    /// and a lease is expired when the server's `now()` has passed its end.
    fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, CatalogError> {
        let len_ms = (until - now).num_milliseconds();
        self.pool.run(|c| {
            let n = c
                .execute(
                    "INSERT INTO leases (name, holder, until_at) VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond')
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
                     WHERE leases.holder = excluded.holder OR leases.until_at <= now()",
                    &[&name, &holder, &len_ms],
                )
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    fn lease_release(&self, name: &str, holder: &str) -> Result<(), CatalogError> {
        self.pool.run(|c| {
            c.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).map(|_| ()).map_err(pg)
        })
    }

    fn refresh_statistics(&self) -> Result<(), CatalogError> {
        self.pool.run(|c| c.batch_execute("ANALYZE recordings, docs, tags").map_err(pg))
    }

    /// `until` is told on this node's clock: the time left on the server's clock, added to
    /// this node's now, so callers compare it with their own clock as with any backend.
    fn lease_list(&self, prefix: &str) -> Result<Vec<Lease>, CatalogError> {
        let rows = self.pool.run(|c| {
            Ok(c.query(
                "SELECT name, holder, (extract(epoch FROM (until_at - now())) * 1000)::bigint FROM leases
                 WHERE starts_with(name, $1) ORDER BY name",
                &[&prefix],
            )
            .map_err(pg)?
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1), r.get::<_, i64>(2)))
            .collect::<Vec<_>>())
        })?;
        let here = Utc::now();
        Ok(rows
            .into_iter()
            .map(|(name, holder, left)| Lease { name, holder, until: here + chrono::Duration::milliseconds(left) })
            .collect())
    }
}

/// Manifest rows as column arrays, for one `unnest` statement.
struct ManifestArrays {
    seq: Vec<i64>,
    id: Vec<String>,
    version: Vec<i64>,
    screens: Vec<String>,
    state: Vec<&'static str>,
    archive: Vec<Option<String>>,
    note: Vec<Option<String>>,
    bytes: Vec<i64>,
}

impl ManifestArrays {
    fn of(rows: &[ManifestRow]) -> ManifestArrays {
        ManifestArrays {
            seq: rows.iter().map(|r| r.seq as i64).collect(),
            id: rows.iter().map(|r| r.id.clone()).collect(),
            version: rows.iter().map(|r| r.version).collect(),
            screens: rows.iter().map(|r| serde_json::to_string(&r.screens).expect("screens serialise")).collect(),
            state: rows.iter().map(|r| r.state.as_str()).collect(),
            archive: rows.iter().map(|r| r.archive.clone()).collect(),
            note: rows.iter().map(|r| r.note.clone()).collect(),
            bytes: rows.iter().map(|r| r.bytes as i64).collect(),
        }
    }
}
