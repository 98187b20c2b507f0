//! The purge journal and the deletion audit log.
//!
//! A purge deletes in batches. Each batch is first written to the catalog's state (namespace
//! [`NAMESPACE`], durable: SQLite with synchronous=FULL) as a [`JournalEntry`] naming every
//! recording with the version it may be deleted at. Then, in one catalog transaction, each
//! recording is deleted only if it is not held and still at that version, leaving a tombstone
//! under the entry's id ([`Catalog::delete_checked`]); a held or changed one is skipped and
//! reported, never deleted. Then the tombstoned recordings' media go, then one audit line per
//! deleted recording is appended to `<data dir>/audit/deletions.jsonl` and fsynced (with its
//! folder), the notification is queued in the durable [`outbox`](super::outbox), and only
//! then are the entry and its tombstones removed.
//!
//! [`recover`] finishes every open entry that no live process holds (each executing entry is
//! claimed by the lease `lifecycle/journal/<id>`). Recovery re-runs both checks for rows not
//! yet deleted (so a hold placed after a crash wins), and finishes media and audit for rows
//! that were (the tombstones say which). Each step is idempotent, so a crash at any point
//! ends, after the next task on any process, with every recording fully present or fully gone
//! and audited exactly once.
//!
//! [`Catalog::delete_checked`]: crate::catalog::Catalog::delete_checked

use super::lease::Held;
use super::{failpoint, Failure, LifecycleError};
use crate::catalog::{DeleteOutcome, Doom, Version};
use crate::config::Context;
use crate::ingest::in_place;
use crate::model::Kind;
use crate::progress::Progress;
use crate::storage::{Key, StorageError};
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Catalog state namespace of open journal entries.
pub const NAMESPACE: &str = crate::catalog::namespaces::PURGE_JOURNAL;
/// Catalog state namespace of the audit logs an open entry may have been audited to (key: the
/// entry's id; value: a JSON list of paths). Nodes sharing a catalog each keep their own audit
/// log: a node finishing another's entry reads these too, so it does not audit twice.
pub const AUDIT_LOGS: &str = crate::catalog::namespaces::AUDIT_LOGS;

/// One media file about to be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoomedMedia {
    #[serde(rename = "mediaId")]
    pub media_id: String,
    pub size: Option<u64>,
}

/// One recording about to be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doomed {
    pub id: String,
    /// The version it may be deleted at (the one archived, or planned).
    #[serde(default)]
    pub version: Version,
    pub kind: Kind,
    /// For a screen recording purged with its call: the call's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    pub media: Vec<DoomedMedia>,
}

/// A batch of deletions, recorded before any of them happens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub id: String,
    /// The job or rule run that purges.
    pub job: String,
    pub rule: Option<String>,
    pub task: usize,
    /// The archive that holds these recordings, if a backup came first.
    pub archive: Option<String>,
    pub at: DateTime<Utc>,
    pub items: Vec<Doomed>,
}

/// One line of `audit/deletions.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditLine {
    pub time: DateTime<Utc>,
    pub journal: String,
    pub job: String,
    #[serde(default)]
    pub rule: Option<String>,
    pub task: usize,
    pub recording: String,
    pub kind: Kind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    pub media: Vec<DoomedMedia>,
    #[serde(default)]
    pub archive: Option<String>,
}

/// `<data dir>/audit/deletions.jsonl`.
pub fn audit_path(ctx: &Context) -> PathBuf {
    ctx.data_dir.join("audit").join("deletions.jsonl")
}

/// What executing a journal entry did.
#[derive(Debug, Default)]
pub struct Executed {
    pub deleted: Vec<Doomed>,
    pub failed: Vec<Failure>,
    /// Left alone: `skipped: held`, `skipped: changed since backup`, `skipped: already gone`.
    pub skipped: Vec<Failure>,
}

/// The lease that claims an entry while a process executes it.
pub fn lease_name(entry: &str) -> String {
    format!("lifecycle/journal/{entry}")
}

/// Records the entry durably. Nothing has been deleted yet.
pub async fn open(ctx: &Context, entry: &JournalEntry) -> Result<(), LifecycleError> {
    let text = serde_json::to_string(entry).map_err(|e| LifecycleError::Other(e.to_string()))?;
    let catalog = ctx.catalog.clone();
    let id = entry.id.clone();
    super::blocking(move || Ok(catalog.state_put(NAMESPACE, &id, &text)?)).await?;
    failpoint::hit("purge.after_journal");
    Ok(())
}

/// Carries out an open entry; safe to run again after a crash at any point.
/// The caller holds the entry's lease. `progress` advances by one for each item that is not a
/// screen purged with its call, as it is skipped, fails, or has its media deleted (with its
/// bytes); the order of the steps above is the same either way.
pub async fn execute(
    ctx: &Context,
    entry: &JournalEntry,
    recovering: bool,
    progress: &dyn Progress,
) -> Result<Executed, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let doom: Vec<Doom> =
        entry.items.iter().map(|d| Doom { id: d.id.clone(), version: d.version, parent: d.call.clone() }).collect();
    let tomb = entry.id.clone();
    let (outcomes, tombstoned) = super::blocking(move || {
        let o = catalog.delete_checked(&doom, &tomb)?;
        Ok((o, catalog.tombstones(&tomb)?))
    })
    .await?;
    failpoint::hit("purge.after_catalog_delete");
    let tombstoned: HashSet<String> = tombstoned.into_iter().collect();
    let mut out = Executed::default();
    let since = if entry.archive.is_some() { "changed since backup" } else { "changed since planned" };
    let mut gone = Vec::new();
    for (d, o) in entry.items.iter().zip(outcomes) {
        if tombstoned.contains(&d.id) {
            gone.push(d.clone());
            continue;
        }
        let why = match o {
            DeleteOutcome::Held => "skipped: held".to_string(),
            DeleteOutcome::Changed => format!("skipped: {since}"),
            DeleteOutcome::Missing | DeleteOutcome::Deleted => "skipped: already gone".to_string(),
        };
        out.skipped.push(Failure { item: d.id.clone(), reason: why });
        if d.call.is_none() {
            progress.inc(1);
        }
    }

    // Media registered in place is deleted where it is (`ingest --in-place`).
    let c2 = ctx.clone();
    let placed = super::blocking(move || Ok(in_place::any(&c2)?)).await?;
    let results: Vec<(usize, Result<(), String>)> = futures::stream::iter(gone.clone().into_iter().enumerate())
        .map(|(i, d)| {
            async move {
                let where_ = if placed {
                    let (c, id) = (ctx.clone(), d.id.clone());
                    super::blocking(move || Ok(in_place::placed(&c, &id)?)).await.map_err(|e| e.to_string())?
                } else {
                    Default::default()
                };
                for m in &d.media {
                    Key::media(&d.id, &m.media_id).map_err(|e| e.to_string())?;
                    let (media, key) =
                        in_place::locate_in(ctx, &where_, &d.id, &m.media_id).map_err(|e| e.to_string())?;
                    match media.delete(&key).await {
                        Ok(()) | Err(StorageError::NotFound { .. }) => {}
                        Err(e) => return Err(format!("media {}: {e}", m.media_id)),
                    }
                }
                failpoint::hit("purge.after_media_delete");
                // Each recording counts as its media go (a failed one below, once it failed).
                progress.bytes(d.media.iter().filter_map(|m| m.size).sum());
                if d.call.is_none() {
                    progress.inc(1);
                }
                Ok(())
            }
            .map(move |r: Result<(), String>| (i, r))
        })
        .buffer_unordered(16)
        .collect()
        .await;

    let mut failed_items = Vec::new();
    let mut done = vec![false; gone.len()];
    for (i, r) in results {
        match r {
            Ok(()) => done[i] = true,
            Err(reason) => {
                out.failed.push(Failure { item: gone[i].id.clone(), reason });
                if gone[i].call.is_none() {
                    progress.inc(1);
                }
                failed_items.push(gone[i].clone());
            }
        }
    }
    let deleted: Vec<Doomed> = gone.iter().zip(&done).filter(|(_, ok)| **ok).map(|(d, _)| d.clone()).collect();
    if placed {
        let (c, ids) = (ctx.clone(), deleted.iter().map(|d| d.id.clone()).collect::<Vec<_>>());
        super::blocking(move || {
            for id in ids {
                if !in_place::placed(&c, &id)?.is_empty() {
                    in_place::forget(&c, &id)?;
                }
            }
            Ok(())
        })
        .await?;
    }

    let path = audit_path(ctx);
    let now = ctx.clock.now();
    let e2 = entry.clone();
    let to_audit = deleted.clone();
    let catalog = ctx.catalog.clone();
    super::blocking(move || {
        if to_audit.is_empty() {
            return Ok(());
        }
        // Name this node's audit log before writing to it, so that whoever finishes the entry
        // after a crash here knows where its lines may already be.
        let mut logs: Vec<String> =
            catalog.state_get(AUDIT_LOGS, &e2.id)?.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
        let mine = path.display().to_string();
        if !logs.contains(&mine) {
            logs.push(mine);
            let text = serde_json::to_string(&logs).map_err(|e| LifecycleError::Other(e.to_string()))?;
            catalog.state_put(AUDIT_LOGS, &e2.id, &text)?;
        }
        let others: Vec<PathBuf> = logs.iter().map(PathBuf::from).filter(|p| *p != path).collect();
        append_audit(&path, &others, &e2, &to_audit, now, recovering)
    })
    .await?;
    failpoint::hit("purge.after_audit");

    // The notification is queued durably before the entry ends, and delivered (at least once)
    // from the outbox.
    if ctx.config.notify.is_some() && !deleted.is_empty() {
        let ids: Vec<String> = deleted.iter().map(|d| d.id.clone()).collect();
        super::outbox::enqueue(ctx, &entry.id, &ids).await?;
    }

    // Items whose media could not be deleted stay journaled (with their tombstones), so the
    // next run retries them.
    let catalog = ctx.catalog.clone();
    let id = entry.id.clone();
    let rest = if failed_items.is_empty() {
        None
    } else {
        let mut e = entry.clone();
        e.items = failed_items;
        Some(serde_json::to_string(&e).map_err(|e| LifecycleError::Other(e.to_string()))?)
    };
    super::blocking(move || {
        match rest {
            None => {
                catalog.state_delete(NAMESPACE, &id)?;
                catalog.tombstones_clear(&id)?;
                catalog.state_delete(AUDIT_LOGS, &id)?;
            }
            Some(text) => catalog.state_put(NAMESPACE, &id, &text)?,
        }
        Ok(())
    })
    .await?;
    out.deleted = deleted;
    Ok(out)
}

/// Appends the audit lines of `items` to `path`. When recovering, lines already in `path` or
/// in `others` (other nodes' logs this entry was audited to, where readable) are not repeated.
fn append_audit(
    path: &std::path::Path,
    others: &[PathBuf],
    entry: &JournalEntry,
    items: &[Doomed],
    now: DateTime<Utc>,
    recovering: bool,
) -> Result<(), LifecycleError> {
    if items.is_empty() {
        return Ok(());
    }
    let io = |e| LifecycleError::io(path, e);
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let new_dir = !dir.exists();
    if new_dir {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    }
    let new_file = !path.exists();
    let mut already = if recovering { audited(path, &entry.id)? } else { HashSet::new() };
    if recovering {
        for o in others {
            match audited(o, &entry.id) {
                Ok(a) => already.extend(a),
                Err(e) => tracing::warn!(journal = %entry.id, error = %e,
                    "cannot read another node's audit log: recordings it audited may be audited again here"),
            }
        }
    }
    let mut buf = Vec::new();
    for d in items.iter().filter(|d| !already.contains(&d.id)) {
        let line = AuditLine {
            time: now,
            journal: entry.id.clone(),
            job: entry.job.clone(),
            rule: entry.rule.clone(),
            task: entry.task,
            recording: d.id.clone(),
            kind: d.kind,
            call: d.call.clone(),
            media: d.media.clone(),
            archive: entry.archive.clone(),
        };
        serde_json::to_writer(&mut buf, &line).map_err(|e| LifecycleError::Other(e.to_string()))?;
        buf.push(b'\n');
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).read(true).mode(0o600).open(path).map_err(io)?;
    // Appenders (of every process) take the file's lock, so a line without its newline at the
    // end is never another writer's line in progress: it is one torn by a crash mid-write, whose
    // journal entry is still open and is being finished now. It is cut off, and written whole
    // again below (recovery finds it not audited), so the log never holds a broken line.
    f.lock().map_err(io)?;
    cut_torn_tail(&mut f).map_err(io)?;
    // One write per batch: O_APPEND keeps concurrent purges' lines whole.
    f.write_all(&buf).map_err(io)?;
    f.sync_data().map_err(io)?;
    // A new file (or folder) is durable only once its folder's entry is: fsync the folder, so a
    // power cut cannot lose the first audit lines after their journal entry is gone.
    if new_file {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    if new_dir {
        if let Some(parent) = dir.parent() {
            std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io)?;
        }
    }
    Ok(())
}

/// Cuts a last line that has no newline (a write torn by a crash) off the file. The caller
/// holds the file's lock. Returns the number of bytes cut.
pub(crate) fn cut_torn_tail(f: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    while end > 0 {
        let n = chunk.len().min(end as usize);
        let start = end - n as u64;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|&b| b == b'\n') {
            let keep = start + i as u64 + 1;
            if keep < len {
                f.set_len(keep)?;
            }
            return Ok(len - keep);
        }
        end = start;
    }
    if len > 0 {
        f.set_len(0)?;
    }
    Ok(len)
}

/// Line numbers (from 1) of lines of the audit log at `path` that are not whole audit lines.
pub fn broken_audit_lines(path: &std::path::Path) -> Result<Vec<usize>, LifecycleError> {
    broken_lines::<AuditLine>(path)
}

/// Line numbers (from 1) of lines of the JSON-lines log at `path` that are not whole `T`
/// records (the deletion and the playback audit logs).
pub fn broken_lines<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<Vec<usize>, LifecycleError> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LifecycleError::io(path, e)),
    };
    // Shared with other readers, exclusive of appenders: a line being written is not torn.
    f.lock_shared().map_err(|e| LifecycleError::io(path, e))?;
    let mut out = Vec::new();
    let mut r = std::io::BufReader::new(f);
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).map_err(|e| LifecycleError::io(path, e))? == 0 {
            break;
        }
        n += 1;
        let whole = line.last() == Some(&b'\n');
        if !whole || serde_json::from_slice::<T>(&line).is_err() {
            out.push(n);
        }
    }
    Ok(out)
}

/// Recording ids already audited under journal entry `journal` (used when recovering).
fn audited(path: &std::path::Path, journal: &str) -> Result<HashSet<String>, LifecycleError> {
    let mut out = HashSet::new();
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(LifecycleError::io(path, e)),
    };
    let needle = format!("\"journal\":\"{journal}\"");
    for line in std::io::BufReader::new(f).lines() {
        let line = line.map_err(|e| LifecycleError::io(path, e))?;
        if !line.contains(&needle) {
            continue;
        }
        // A torn last line (crash mid-write) does not parse and is not counted.
        if let Ok(a) = serde_json::from_str::<AuditLine>(&line) {
            out.insert(a.recording);
        }
    }
    Ok(out)
}

/// Finishes every open journal entry that no live process is executing. Returns what it did.
pub async fn recover(ctx: &Context) -> Result<Executed, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let open = super::blocking(move || Ok(catalog.state_list(NAMESPACE)?)).await?;
    let mut total = Executed::default();
    for (key, text) in open {
        let entry: JournalEntry = match serde_json::from_str(&text) {
            Ok(e) => e,
            Err(e) => {
                total.failed.push(Failure { item: format!("journal entry {key}"), reason: e.to_string() });
                continue;
            }
        };
        // Claimed by a live process: it is being executed now, not interrupted.
        let Some(_claim) = Held::take(ctx.catalog.clone(), &lease_name(&entry.id), ctx.config.lease_seconds).await?
        else {
            continue;
        };
        // Re-read under the claim: the holder may have finished it just before.
        let (catalog, k) = (ctx.catalog.clone(), key.clone());
        let Some(text) = super::blocking(move || Ok(catalog.state_get(NAMESPACE, &k)?)).await? else { continue };
        let Ok(entry) = serde_json::from_str::<JournalEntry>(&text) else { continue };
        tracing::warn!(journal = %entry.id, recordings = entry.items.len(), "finishing an interrupted purge");
        let mut r = execute(ctx, &entry, true, &crate::progress::NoProgress).await?;
        total.deleted.append(&mut r.deleted);
        total.failed.append(&mut r.failed);
        total.skipped.append(&mut r.skipped);
    }
    super::outbox::deliver(ctx).await;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ids: &[&str]) -> JournalEntry {
        JournalEntry {
            id: "j1".into(),
            job: "rule:r".into(),
            rule: Some("r".into()),
            task: 1,
            archive: None,
            at: Utc::now(),
            items: ids
                .iter()
                .map(|id| Doomed {
                    id: id.to_string(),
                    version: 1,
                    kind: Kind::Voice,
                    call: None,
                    media: vec![DoomedMedia { media_id: format!("{id}-m"), size: Some(3) }],
                })
                .collect(),
        }
    }

    /// A crash mid-write leaves a line without its newline; recovery cuts it off and writes the
    /// record whole, so the log never holds a broken line and no recording is audited twice.
    #[test]
    fn a_torn_last_line_is_cut_and_written_whole_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit").join("deletions.jsonl");
        let e = entry(&["A", "B", "C"]);
        append_audit(&path, &[], &e, &e.items[..1], Utc::now(), false).unwrap();
        // B's line torn half-way by a kill.
        let mut whole = Vec::new();
        serde_json::to_writer(
            &mut whole,
            &AuditLine {
                time: Utc::now(),
                journal: "j1".into(),
                job: e.job.clone(),
                rule: e.rule.clone(),
                task: 1,
                recording: "B".into(),
                kind: Kind::Voice,
                call: None,
                media: e.items[1].media.clone(),
                archive: None,
            },
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&whole[..whole.len() / 2]).unwrap();
        drop(f);
        assert_eq!(broken_audit_lines(&path).unwrap(), vec![2]);
        // Recovery: A is audited already, B and C are not.
        append_audit(&path, &[], &e, &e.items, Utc::now(), true).unwrap();
        assert!(broken_audit_lines(&path).unwrap().is_empty());
        let ids: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<AuditLine>(l).unwrap().recording)
            .collect();
        assert_eq!(ids, ["A", "B", "C"]);
    }

    #[test]
    fn a_file_that_is_one_torn_line_is_emptied_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deletions.jsonl");
        std::fs::write(&path, b"{\"time\":\"20").unwrap();
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        assert_eq!(cut_torn_tail(&mut f).unwrap(), 11);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
