//! The PostgreSQL catalog's schema and its versioned migrations.
//!
//! In: a connection whose `search_path` names the catalog's schema. Out: that schema at the
//! newest version. Guarantees: migrations run in order, each once, each in the transaction
//! that records it in `reclife_migrations`; nodes starting together serialise on an advisory
//! lock, so exactly one applies a migration and the others see it applied.
//!
//! Text that the catalog compares or sorts (ids, state keys, lease names) is `COLLATE "C"`:
//! byte order, as SQLite sorts, whatever locale the database was created with, so cursors and
//! pages mean the same thing on both backends.

use postgres::Client;

/// The migrations, in order; `reclife_migrations` records the ones applied.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "recordings, documents, tags, state, leases, tombstones, manifests",
        r#"
CREATE TABLE recordings (
    id text COLLATE "C" PRIMARY KEY,
    start_ms bigint NOT NULL,
    kind smallint NOT NULL,
    stop_ms bigint NOT NULL,
    region text,
    call_type text,
    call_type_lc text,
    non_delete boolean NOT NULL,
    hold_reason text,
    hold_ms bigint,
    agent_user text,
    call_recording_id text COLLATE "C",
    call_uuid text COLLATE "C",
    media_count integer NOT NULL,
    bytes bigint NOT NULL,
    labels text[] NOT NULL,
    version bigint NOT NULL
);
CREATE UNIQUE INDEX rec_scroll ON recordings (start_ms, id);
CREATE INDEX rec_stop ON recordings (stop_ms);
CREATE INDEX rec_call ON recordings (call_recording_id) WHERE call_recording_id IS NOT NULL;
CREATE INDEX rec_uuid ON recordings (call_uuid) WHERE call_uuid IS NOT NULL AND call_recording_id IS NULL;
CREATE TABLE docs (
    id text COLLATE "C" PRIMARY KEY,
    doc jsonb NOT NULL,
    doc_text text NOT NULL,
    doc_hash text NOT NULL,
    encrypted_media text[] NOT NULL
);
CREATE TABLE tags (
    tag smallint NOT NULL,
    k text COLLATE "C" NOT NULL,
    v text COLLATE "C" NOT NULL,
    rec_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (tag, k, v, rec_id)
);
CREATE INDEX tags_rec ON tags (rec_id);
CREATE TABLE state (
    ns text COLLATE "C" NOT NULL,
    k text COLLATE "C" NOT NULL,
    v text NOT NULL,
    PRIMARY KEY (ns, k)
);
CREATE TABLE leases (
    name text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    until_at timestamptz NOT NULL
);
CREATE TABLE tombstones (
    tomb text COLLATE "C" NOT NULL,
    id text COLLATE "C" NOT NULL,
    PRIMARY KEY (tomb, id)
);
CREATE TABLE manifest (
    job text COLLATE "C" NOT NULL,
    task integer NOT NULL,
    seq bigint NOT NULL,
    rec_id text NOT NULL,
    version bigint NOT NULL,
    screens jsonb NOT NULL,
    state text COLLATE "C" NOT NULL,
    archive text,
    note text,
    bytes bigint NOT NULL,
    PRIMARY KEY (job, task, seq)
);
"#,
    ),
    (
        2,
        "the callUuid index holds screens only",
        // Calls carry a callUuid too: probing an index that holds them found each call of a
        // page and fetched its row only to drop it (kind 0), 0.1 ms a call on a cold cache.
        r#"
DROP INDEX rec_uuid;
CREATE INDEX rec_screen_uuid ON recordings (call_uuid)
    WHERE kind = 1 AND call_uuid IS NOT NULL AND call_recording_id IS NULL;
"#,
    ),
    (
        3,
        "who placed a hold, the hold history, calls by callUuid",
        // A screen is held while its call is: the call is found by the screen's callUuid when it
        // has no callRecordingId (the held rule, and the delete that locks the call).
        r#"
ALTER TABLE recordings ADD COLUMN hold_by text, ADD COLUMN hold_history text;
CREATE INDEX rec_call_uuid ON recordings (call_uuid) WHERE kind = 0 AND call_uuid IS NOT NULL;
"#,
    ),
    (
        4,
        "attached data is each key's current value",
        // Each key's last added/updated value in eventHistory order, none after a deleted (as
        // `model::Recording::parse` derives it); before, every value the key ever had.
        r#"
DELETE FROM tags WHERE tag = 2;
INSERT INTO tags (tag, k, v, rec_id)
SELECT 2, last.k, last.v, last.id FROM (
    SELECT DISTINCT ON (d.id, kv.key) d.id, kv.key AS k, p.part,
        CASE jsonb_typeof(kv.value)
            WHEN 'string' THEN kv.value #>> '{}'
            WHEN 'number' THEN kv.value::text
            WHEN 'boolean' THEN kv.value::text
        END AS v
    FROM docs d
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(d.doc -> 'eventHistory') = 'array' THEN d.doc -> 'eventHistory' ELSE '[]'::jsonb END
    ) WITH ORDINALITY AS e(ev, i)
    CROSS JOIN (VALUES (1, 'added'), (2, 'updated'), (3, 'deleted')) AS p(ord, part)
    CROSS JOIN LATERAL jsonb_each(
        CASE WHEN jsonb_typeof(e.ev -> 'data' -> p.part) = 'object' THEN e.ev -> 'data' -> p.part ELSE '{}'::jsonb END
    ) AS kv
    ORDER BY d.id, kv.key, e.i DESC, p.ord DESC
) last
WHERE last.part <> 'deleted' AND last.v IS NOT NULL
ON CONFLICT DO NOTHING;
"#,
    ),
];

/// Brings the schema of `client`'s search path up to date. `schema` is created if missing.
pub fn migrate(client: &mut Client, schema: &str) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    // One key per schema: nodes of different catalogs on one server do not wait for each other.
    tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('reclife-migrate:' || $1, 0))", &[&schema])?;
    // Checked first rather than `IF NOT EXISTS`, which logs a notice at every start.
    if tx.query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])?.is_none() {
        tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(schema)))?;
    }
    let table: Option<String> = tx.query_one("SELECT to_regclass('reclife_migrations')::text", &[])?.get(0);
    if table.is_none() {
        tx.batch_execute(
            "CREATE TABLE reclife_migrations (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())",
        )?;
    }
    let have: i32 = tx.query_one("SELECT coalesce(max(version), 0) FROM reclife_migrations", &[])?.get(0);
    for (v, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > have) {
        tracing::info!(version = v, migration = name, "applying catalog migration");
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO reclife_migrations (version, name) VALUES ($1, $2)", &[v, name])?;
    }
    tx.commit()
}

/// `name` as an SQL identifier, quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
