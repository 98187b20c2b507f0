//! Running tasks in order: the one code path behind scheduled rules, `run --once` and the
//! on-demand `backup` / `purge` jobs.
//!
//! Each task takes its place in the [`OverlapGuard`] first, counts its true total for progress,
//! then executes. A purge that follows a backup deletes only what that backup archived and
//! verified; when the backup failed the purge runs only if the backup task said
//! `on_failure = "continue"`. A failed task with `on_failure = "stop"` (the default) skips the
//! rest.

use super::backup::{run_backup, BackupOutcome};
use super::guard::{Footprint, OverlapGuard};
use super::jobs::{self, JobRecord, JobState, TaskRecord};
use super::purge::{run_purge, Source, Who};
use super::{LifecycleError, OnFailure, Op, Task};
use crate::config::Context;
use crate::progress::Progress;
use std::sync::Arc;

/// Makes one progress sink per task (the CLI draws a bar for each; others ignore them).
pub type ProgressFactory = dyn Fn(&str) -> Arc<dyn Progress> + Send + Sync;

/// No progress at all.
pub fn no_progress() -> Arc<ProgressFactory> {
    Arc::new(|_| Arc::new(crate::progress::NoProgress) as Arc<dyn Progress>)
}

/// Runs `tasks` as one job of `kind` (`rule`, `backup`, `purge`). The record is saved as it
/// moves from planned to running to its end state. `job` may carry a pre-made record (so a
/// caller knows its id in advance).
pub async fn run_tasks(
    ctx: &Context,
    mut job: JobRecord,
    tasks: &[Task],
    guard: &OverlapGuard,
    progress: &ProgressFactory,
) -> Result<JobRecord, LifecycleError> {
    jobs::save(ctx, &job).await?;
    job.state = JobState::Running;
    job.started = Some(ctx.clock.now());
    jobs::save(ctx, &job).await?;
    let label = job.rule.clone().unwrap_or_else(|| job.id.clone());
    // The last backup of this run: its outcome, or None if it failed.
    let mut last_backup: Option<Option<BackupOutcome>> = None;
    let mut stop: Option<String> = None;
    let mut all_ok = true;
    for (i, task) in tasks.iter().enumerate() {
        let n = i + 1;
        let mut rec = TaskRecord { task: n, op: Some(task.op), ..TaskRecord::default() };
        if let Some(why) = &stop {
            rec.state = "skipped".into();
            rec.note = Some(why.clone());
            job.tasks.push(rec);
            continue;
        }
        let fp = Footprint::of(format!("{label} / task {n}"), task);
        let _permit = guard.acquire(&fp).await;
        let started = ctx.clock.now();
        let total = super::plan::count(ctx.catalog.clone(), super::plan::task_query(ctx, task, started)).await?;
        let bar = progress(&format!("{label} task {n} {:?}", task.op).to_lowercase());
        bar.set_total(total);
        let ok = match task.op {
            Op::Backup => match run_backup(ctx, task, started, bar.clone()).await {
                Ok(o) => {
                    rec.archive = o.archive.as_ref().map(|p| p.display().to_string());
                    rec.recordings = o.recordings;
                    rec.screens = o.screens;
                    rec.media = o.media;
                    rec.bytes = o.bytes;
                    rec.failed = o.failed.len() as u64;
                    if let Some(t) = &o.name_taken {
                        rec.note =
                            Some(format!("archive name {t} was taken; wrote {}", rec.archive.as_deref().unwrap_or("")));
                    }
                    job.add_failures(&o.failed);
                    let ok = o.failed.is_empty();
                    last_backup = Some(ok.then_some(o));
                    ok
                }
                Err(e) => {
                    rec.note = Some(e.to_string());
                    job.add_failures(&[super::Failure { item: format!("task {n}"), reason: e.to_string() }]);
                    last_backup = Some(None);
                    false
                }
            },
            Op::Purge => {
                let source = match &last_backup {
                    None => Some(Source::Filter),
                    Some(Some(b)) => Some(Source::Archived {
                        archive: b.archive.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                        items: b.archived.clone(),
                    }),
                    // Only reached when the failed backup said on_failure = "continue".
                    Some(None) => {
                        tracing::warn!(job = %job.id, "the backup failed and said on_failure = \"continue\": purging by filter");
                        rec.note = Some("backup failed; purged by filter because on_failure = \"continue\"".into());
                        Some(Source::Filter)
                    }
                };
                let who = Who { job: job.id.clone(), rule: job.rule.clone(), task: n };
                match source {
                    None => true,
                    Some(src) => match run_purge(ctx, task, started, src, &who, bar.clone()).await {
                        Ok(o) => {
                            rec.recordings = o.deleted;
                            rec.screens = o.screens;
                            rec.media = o.media;
                            rec.bytes = o.bytes;
                            rec.held = o.held;
                            rec.failed = o.failed.len() as u64;
                            job.add_failures(&o.failed);
                            o.failed.is_empty()
                        }
                        Err(e) => {
                            rec.note = Some(e.to_string());
                            job.add_failures(&[super::Failure { item: format!("task {n}"), reason: e.to_string() }]);
                            false
                        }
                    },
                }
            }
        };
        bar.finish();
        rec.state = if ok { "succeeded" } else { "failed" }.into();
        if !ok {
            all_ok = false;
            if task.on_failure == OnFailure::Stop {
                stop = Some(format!("task {n} failed and says on_failure = \"stop\""));
            }
        }
        job.tasks.push(rec);
        jobs::save(ctx, &job).await?;
    }
    job.state = if all_ok { JobState::Succeeded } else { JobState::Failed };
    job.finished = Some(ctx.clock.now());
    jobs::save(ctx, &job).await?;
    Ok(job)
}

/// GIR's completion line, with counts.
pub fn completion_line(job: &JobRecord, node_path: Option<&str>) -> String {
    let sum = |op: Op, f: fn(&TaskRecord) -> u64| -> u64 {
        job.tasks.iter().filter(|t| t.op == Some(op) && t.state != "skipped").map(f).sum()
    };
    format!(
        "Scheduled rule [{}] at location [{}] completed: {}; backed up {} recording(s) + {} screen(s), purged {} + {} screen(s), {} held left alone, {} failed (job {})",
        job.rule.as_deref().unwrap_or(&job.id),
        node_path.unwrap_or("/"),
        job.state,
        sum(Op::Backup, |t| t.recordings),
        sum(Op::Backup, |t| t.screens),
        sum(Op::Purge, |t| t.recordings),
        sum(Op::Purge, |t| t.screens),
        sum(Op::Purge, |t| t.held),
        job.failed_total,
        job.id,
    )
}
