//! Purge: delete the planned recordings' metadata and media (and their screen recordings, with
//! `include_screen`), never a held one, never one changed since it was archived or planned,
//! each deletion journaled and audited.
//!
//! In: a purge task and the manifest rows it consumes: the rows a backup of the same job
//! archived and verified (state `archived`, with the versions archived), or, for a purge with
//! no backup before it, its own planned rows. A row whose backup failed is never in the first
//! set, so `on_failure = "continue"` never purges what failed to archive. Out: counts, the
//! items set aside, and the recordings left alone with why.
//!
//! [`purge_one`] deletes one recording on demand (the API's `DELETE`), the same way: a call with
//! its screen recordings, one journal entry, conditional on the versions read and on holds
//! (of it, of its screens, and of a screen's call), audited under the name given.

use super::journal::{self, Doomed, DoomedMedia, JournalEntry};
use super::lease::Held;
use super::{blocking, Failure, LifecycleError, Task};
use crate::catalog::{Catalog, Entry, ManifestRow, RowState};
use crate::config::Context;
use crate::progress::Progress;
use serde::Serialize;
use std::sync::Arc;

/// Recordings per journal entry.
pub const BATCH: usize = 500;

/// The manifest rows a purge consumes.
#[derive(Debug, Clone)]
pub struct Source {
    pub job: String,
    /// The task whose rows these are (the backup's, or the purge's own).
    pub task: u32,
    /// `Archived` after a backup, `Planned` otherwise.
    pub state: RowState,
}

/// Who purges, for the journal and the audit log.
#[derive(Debug, Clone)]
pub struct Who {
    pub job: String,
    pub rule: Option<String>,
    pub task: usize,
}

/// What a purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeOutcome {
    /// Recordings deleted (calls, or screens for a screen task).
    pub deleted: u64,
    /// Screen recordings deleted with their calls.
    pub screens: u64,
    pub media: u64,
    pub bytes: u64,
    /// Held recordings left alone.
    pub held: u64,
    /// Recordings left alone because they changed after they were archived or planned.
    pub changed: u64,
    pub failed: Vec<Failure>,
    /// What was left alone, with why (the first [`super::jobs::MAX_FAILED_KEPT`]).
    pub skipped: Vec<Failure>,
    pub skipped_total: u64,
}

/// The journal items of one manifest row: the recording at the version given, and its screens.
fn doomed_of(catalog: &dyn Catalog, row: &ManifestRow, with_screens: bool) -> Result<Vec<Doomed>, LifecycleError> {
    let mut out = Vec::new();
    let one = |id: &str, version, call: Option<&str>| -> Result<Option<Doomed>, LifecycleError> {
        let Some(e) = catalog.get(id)? else { return Ok(None) };
        Ok(Some(Doomed {
            id: id.to_string(),
            version,
            kind: e.recording.kind,
            call: call.map(str::to_string),
            media: e
                .recording
                .media
                .iter()
                .map(|m| DoomedMedia { media_id: m.media_id.clone(), size: m.size })
                .collect(),
        }))
    };
    out.extend(one(&row.id, row.version, None)?);
    if with_screens {
        for s in &row.screens {
            out.extend(one(&s.id, s.version, Some(&row.id))?);
        }
    }
    Ok(out)
}

/// Runs a purge task over `source`. Progress counts rows and the media bytes deleted, one
/// recording at a time as its media go ([`journal::execute`]). Cancelling stops between
/// batches.
pub async fn run_purge(
    ctx: &Context,
    task: &Task,
    source: Source,
    archive: Option<String>,
    who: &Who,
    cancel: &tokio_util::sync::CancellationToken,
    progress: Arc<dyn Progress>,
) -> Result<PurgeOutcome, LifecycleError> {
    let mut out = PurgeOutcome::default();
    let with_screens = task.include_screen && task.filter.recording_type == crate::model::Kind::Voice;
    let mut after = 0u64;
    let mut seq = 0u32;
    loop {
        if cancel.is_cancelled() {
            return Err(LifecycleError::Cancelled);
        }
        let (catalog, src) = (ctx.catalog.clone(), source.clone());
        let (rows, doomed) = blocking(move || {
            let rows = catalog.manifest_page(&src.job, src.task, Some(src.state), after, BATCH)?;
            let mut doomed = Vec::new();
            for r in &rows {
                doomed.extend(doomed_of(catalog.as_ref(), r, with_screens)?);
            }
            Ok((rows.len(), (rows.last().map(|r| r.seq), doomed)))
        })
        .await?;
        let (last, doomed) = doomed;
        let Some(last) = last else { break };
        after = last;
        if doomed.is_empty() {
            progress.inc(rows as u64);
            continue;
        }
        seq += 1;
        let entry = JournalEntry {
            id: format!("{}-{}-{seq:06}", who.job, who.task),
            job: who.job.clone(),
            rule: who.rule.clone(),
            task: who.task,
            archive: archive.clone(),
            at: ctx.clock.now(),
            items: doomed,
        };
        let claim = Held::take(ctx.catalog.clone(), &journal::lease_name(&entry.id), ctx.config.lease_seconds)
            .await?
            .ok_or_else(|| {
            LifecycleError::Other(format!("journal entry {} is claimed by another process", entry.id))
        })?;
        journal::open(ctx, &entry).await?;
        // The entry's rows count one by one as they are deleted (or skipped); the rows whose
        // recording was gone before the entry count here.
        let counted = entry.items.iter().filter(|d| d.call.is_none()).count();
        let r = journal::execute(ctx, &entry, false, progress.as_ref()).await?;
        drop(claim);
        progress.inc(rows.saturating_sub(counted) as u64);
        for d in &r.deleted {
            if d.call.is_some() {
                out.screens += 1;
            } else {
                out.deleted += 1;
            }
            out.media += d.media.len() as u64;
            out.bytes += d.media.iter().filter_map(|m| m.size).sum::<u64>();
        }
        for s in &r.skipped {
            if s.reason == "skipped: held" {
                out.held += 1;
            } else if s.reason.starts_with("skipped: changed") {
                out.changed += 1;
            }
        }
        out.failed.extend(r.failed);
        out.skipped_total += r.skipped.len() as u64;
        let room = super::jobs::MAX_FAILED_KEPT.saturating_sub(out.skipped.len());
        out.skipped.extend(r.skipped.into_iter().take(room));
        super::outbox::deliver(ctx).await;
    }
    Ok(out)
}

/// Why [`purge_one`] deleted nothing (or not everything).
#[derive(Debug, thiserror::Error)]
pub enum PurgeOneError {
    #[error("no {what} {id}")]
    NotFound { what: &'static str, id: String },
    /// Held (by itself, one of its screens, or its call), or changed while being deleted.
    #[error("{what} {id} is not deleted: {why}")]
    Refused { what: &'static str, id: String, why: String },
    #[error(transparent)]
    Failed(#[from] LifecycleError),
}

fn held_why(e: &Entry) -> String {
    match &e.hold {
        Some(h) => match &h.by {
            Some(b) => format!("it is held ({}, by {b})", h.reason),
            None => format!("it is held ({})", h.reason),
        },
        None if e.recording.non_delete => "its metadata says nonDelete".to_string(),
        None => "its call is held".to_string(),
    }
}

fn doomed(e: &Entry, call: Option<&str>) -> Doomed {
    Doomed {
        id: e.recording.id.clone(),
        // Deleted only if still at the version read here, and not held, in the deleting
        // transaction: a hold or an edit that lands in between wins.
        version: e.version,
        kind: e.recording.kind,
        call: call.map(str::to_string),
        media: e.recording.media.iter().map(|m| DoomedMedia { media_id: m.media_id.clone(), size: m.size }).collect(),
    }
}

/// Deletes the recording `id` of `kind` (a call with its screen recordings) as a purge does:
/// refused, with nothing deleted, when it or one of those screens is held, or it is a screen
/// whose call is held; else one journal entry, deleted conditionally (versions read here, holds
/// re-checked in the deleting transaction), media removed, one audit line each with job `job`.
/// Returns the ids deleted (the recording first).
pub async fn purge_one(
    ctx: &Context,
    id: &str,
    kind: crate::model::Kind,
    job: &str,
) -> Result<Vec<String>, PurgeOneError> {
    use crate::model::Kind;
    let what = if kind == Kind::Voice { "recording" } else { "screen recording" };
    let (catalog, id2) = (ctx.catalog.clone(), id.to_string());
    let gathered = blocking(move || {
        let Some(e) = catalog.get(&id2)?.filter(|e| e.recording.kind == kind) else { return Ok(Err(None)) };
        if e.held() {
            return Ok(Err(Some(held_why(&e))));
        }
        let mut items = vec![doomed(&e, None)];
        if kind == Kind::Voice {
            for row in catalog.screens_of(&id2)? {
                let Some(se) = catalog.get(&row.id)? else { continue };
                if se.held() {
                    return Ok(Err(Some(format!("its screen recording {} is protected: {}", row.id, held_why(&se)))));
                }
                items.push(doomed(&se, Some(&id2)));
            }
        }
        Ok(Ok(items))
    })
    .await?;
    let items = match gathered {
        Ok(items) => items,
        Err(None) => return Err(PurgeOneError::NotFound { what, id: id.to_string() }),
        Err(Some(why)) => return Err(PurgeOneError::Refused { what, id: id.to_string(), why }),
    };
    let now = ctx.clock.now();
    let entry = JournalEntry {
        id: format!("{}-one", super::jobs::new_id(now)),
        job: job.to_string(),
        rule: None,
        task: 0,
        archive: None,
        at: now,
        items,
    };
    let claim = Held::take(ctx.catalog.clone(), &journal::lease_name(&entry.id), ctx.config.lease_seconds)
        .await?
        .ok_or_else(|| LifecycleError::Other(format!("journal entry {} is claimed by another process", entry.id)))?;
    journal::open(ctx, &entry).await?;
    let done = journal::execute(ctx, &entry, false, &crate::progress::NoProgress).await?;
    drop(claim);
    if let Some(k) = done.skipped.first() {
        let why = format!("{} was not deleted ({})", k.item, k.reason);
        return Err(PurgeOneError::Refused { what, id: id.to_string(), why });
    }
    if let Some(f) = done.failed.first() {
        return Err(LifecycleError::Other(format!(
            "deleting {}: {} (the journal entry {} stays open; the next run finishes it)",
            f.item, f.reason, entry.id
        ))
        .into());
    }
    Ok(done.deleted.into_iter().map(|d| d.id).collect())
}
