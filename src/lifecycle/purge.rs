//! Purge: delete the planned recordings' metadata and media (and their screen recordings, with
//! `include_screen`), never a held one, never one changed since it was archived or planned,
//! each deletion journaled and audited.
//!
//! In: a purge task and the manifest rows it consumes: the rows a backup of the same job
//! archived and verified (state `archived`, with the versions archived), or, for a purge with
//! no backup before it, its own planned rows. A row whose backup failed is never in the first
//! set, so `on_failure = "continue"` never purges what failed to archive. Out: counts, the
//! items set aside, and the recordings left alone with why.

use super::journal::{self, Doomed, DoomedMedia, JournalEntry};
use super::lease::Held;
use super::{blocking, Failure, LifecycleError, Task};
use crate::catalog::{Catalog, ManifestRow, RowState};
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

/// Runs a purge task over `source`. Progress counts rows. Cancelling stops between batches.
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
        progress.inc(rows as u64);
        if doomed.is_empty() {
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
        let r = journal::execute(ctx, &entry, false).await?;
        drop(claim);
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
