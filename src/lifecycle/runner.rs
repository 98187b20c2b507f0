//! Running tasks in order: the one code path behind scheduled rules, `run --once` and the
//! on-demand `backup` / `purge` jobs. An import task runs its source once
//! ([`crate::import::run_once`], which takes the source's own lease); it plans nothing.
//!
//! A job holds the lease `lifecycle/job/<id>` while it runs. Each task takes its place in the
//! [`OverlapGuard`] (across processes), finishes interrupted purges, plans itself into the
//! job's manifest unless it was planned already, then executes. A purge that follows a backup
//! consumes only the rows that backup archived and verified (so `on_failure = "continue"`
//! purges nothing that failed to archive); when the backup failed with `on_failure = "stop"`
//! (the default) the rest is skipped. The manifest is dropped when the job ends.

use super::backup::run_backup;
use super::guard::{Footprint, OverlapGuard};
use super::jobs::{self, JobRecord, JobState, TaskRecord};
use super::lease::Held;
use super::purge::{run_purge, Source, Who};
use super::{blocking, LifecycleError, OnFailure, Op};
use crate::catalog::RowState;
use crate::config::Context;
use crate::progress::Progress;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Makes one progress sink per task (the CLI draws a bar for each; others ignore them).
pub type ProgressFactory = dyn Fn(&str) -> Arc<dyn Progress> + Send + Sync;

/// No progress at all.
pub fn no_progress() -> Arc<ProgressFactory> {
    Arc::new(|_| Arc::new(crate::progress::NoProgress) as Arc<dyn Progress>)
}

/// Catalog state namespace of cancel requests (key: job id), so that `reclife jobs cancel`
/// in one process stops a job running in another.
pub const CANCEL: &str = crate::catalog::namespaces::CANCEL;

/// Asks a job to stop at its next safe point (a planned job is cancelled at once).
///
/// A planned job is cancelled under its lease (the one a start takes), after reading it again,
/// so a cancel and a start of one job never both win: a job being started is asked to stop
/// instead, and one that ended is left as it is.
pub async fn request_cancel(ctx: &Context, id: &str) -> Result<JobRecord, LifecycleError> {
    jobs::load(ctx, id).await?;
    let lease = Held::take(ctx.catalog.clone(), &jobs::lease_name(id), ctx.config.lease_seconds).await?;
    let mut job = jobs::load(ctx, id).await?;
    match (job.state, lease) {
        (JobState::Planned, Some(_lease)) => {
            job.state = JobState::Cancelled;
            job.finished = Some(ctx.clock.now());
            job.note = Some("cancelled before it started; its plan is dropped".into());
            jobs::save(ctx, &job).await?;
            let (catalog, id) = (ctx.catalog.clone(), id.to_string());
            blocking(move || Ok(catalog.manifest_drop(&id)?)).await?;
        }
        // Running, or being started right now (its lease is taken): ask it to stop.
        (JobState::Running, _) | (JobState::Planned, None) => {
            let (catalog, id) = (ctx.catalog.clone(), id.to_string());
            blocking(move || Ok(catalog.state_put(CANCEL, &id, "requested")?)).await?;
        }
        _ => {}
    }
    Ok(job)
}

/// Plans every task of a job that needs its own manifest (backups, and purges with no backup
/// before them) and saves the job as `planned`. Returns the plan for review. The tasks are
/// checked first ([`super::validate::check_tasks`]; `probe_locations` probes backup folders);
/// a plan that fails leaves no job behind.
pub async fn plan_job(
    ctx: &Context,
    job: &mut JobRecord,
    sample: usize,
    probe_locations: bool,
) -> Result<super::plan::Plan, LifecycleError> {
    check(ctx, &job.spec, probe_locations)?;
    let now = job.planned_at.unwrap_or_else(|| ctx.clock.now());
    job.planned_at = Some(now);
    jobs::save(ctx, job).await?;
    match plan_tasks(ctx, job, now, sample).await {
        Ok(plan) => Ok(plan),
        Err(e) => {
            // No half-planned job stays behind to be started.
            jobs::forget(ctx, &job.id).await?;
            Err(e)
        }
    }
}

/// The one task check of every face, with this node's default backup location.
pub fn check(ctx: &Context, tasks: &[super::Task], probe_locations: bool) -> Result<(), LifecycleError> {
    check_config(&ctx.config, tasks, probe_locations)
}

/// [`check`] with a node's configuration alone (its default location and import sources), for
/// faces that have no catalog open (`reclife rules validate`).
pub fn check_config(
    cfg: &crate::config::Config,
    tasks: &[super::Task],
    probe_locations: bool,
) -> Result<(), LifecycleError> {
    let sources: Vec<String> = cfg.import.keys().cloned().collect();
    let how = super::validate::Checking {
        default_location: cfg.default_backup_location.as_deref(),
        probe_locations,
        sources: Some(&sources),
    };
    super::validate::check_tasks(tasks, how).map_err(LifecycleError::Invalid)
}

async fn plan_tasks(
    ctx: &Context,
    job: &mut JobRecord,
    now: chrono::DateTime<chrono::Utc>,
    sample: usize,
) -> Result<super::plan::Plan, LifecycleError> {
    let mut tasks = Vec::new();
    let mut last_backup = None;
    for (i, t) in job.spec.clone().iter().enumerate() {
        let n = i + 1;
        let after = if t.op == Op::Purge { last_backup } else { None };
        let own = after.is_none();
        let manifest = own.then_some(job.id.as_str());
        let tp = super::plan::plan_task(ctx, n, t, now, after, sample, Arc::new(crate::progress::NoProgress), manifest)
            .await?;
        if own {
            job.planned_tasks.push(n);
        }
        tasks.push(tp);
        if t.op == Op::Backup {
            last_backup = Some(n);
        }
    }
    jobs::save(ctx, job).await?;
    Ok(super::plan::Plan {
        name: job.rule.clone().unwrap_or_else(|| format!("{} job {}", job.kind, job.id)),
        now,
        tasks,
    })
}

/// A planned job, claimed for execution: its lease is held, its record was read again under
/// the lease and is `planned`, and its tasks pass the task check. Only [`claim`] makes one.
pub struct Claimed {
    job: JobRecord,
    lease: Held,
}

impl Claimed {
    pub fn job(&self) -> &JobRecord {
        &self.job
    }
}

/// Claims job `job` for execution: takes its lease, reads its stored record again (a job
/// never saved, such as a rule's fresh run, is taken as given), and refuses
/// ([`LifecycleError::Conflict`]) unless it is `planned`; then checks its tasks again, so a
/// plan made by any face (an old dry run too) cannot skip the age or order rules
/// ([`LifecycleError::Invalid`]). Two starts of one job: one claims it, the other is refused.
pub async fn claim(ctx: &Context, job: JobRecord) -> Result<Claimed, LifecycleError> {
    let lease =
        Held::take(ctx.catalog.clone(), &jobs::lease_name(&job.id), ctx.config.lease_seconds).await?.ok_or_else(
            || LifecycleError::Conflict(format!("job {} is being started or run by another process", job.id)),
        )?;
    let job = match jobs::load(ctx, &job.id).await {
        Ok(stored) => stored,
        Err(LifecycleError::NoJob(_)) => job,
        Err(e) => return Err(e),
    };
    if job.state != JobState::Planned {
        return Err(LifecycleError::Conflict(format!(
            "job {} is {}: only a planned job can be started",
            job.id, job.state
        )));
    }
    check(ctx, &job.spec, false)?;
    Ok(Claimed { job, lease })
}

/// Runs the tasks of `job` (its `spec`) in order: [`claim`], then [`run_claimed`].
pub async fn run_tasks(
    ctx: &Context,
    job: JobRecord,
    guard: &OverlapGuard,
    progress: &ProgressFactory,
    cancel: CancellationToken,
) -> Result<JobRecord, LifecycleError> {
    let claimed = claim(ctx, job).await?;
    run_claimed(ctx, claimed, guard, progress, cancel).await
}

/// Runs the tasks of a claimed job in order. The record is saved as it moves from planned
/// to running to its end state. Tasks not planned yet are planned at their start (a rule);
/// planned ones execute exactly their manifest (a reviewed job). `cancel` stops the job at
/// its next safe point; so does `reclife jobs cancel` from any process.
pub async fn run_claimed(
    ctx: &Context,
    claimed: Claimed,
    guard: &OverlapGuard,
    progress: &ProgressFactory,
    cancel: CancellationToken,
) -> Result<JobRecord, LifecycleError> {
    let Claimed { mut job, lease: _claim } = claimed;
    let (catalog, id) = (ctx.catalog.clone(), job.id.clone());
    blocking(move || Ok(catalog.state_put(jobs::RUNNING, &id, "")?)).await?;
    let watcher = watch_cancel(ctx, &job.id, cancel.clone());
    let r = run_inner(ctx, &mut job, guard, progress, &cancel).await;
    watcher.abort();
    let (catalog, id) = (ctx.catalog.clone(), job.id.clone());
    blocking(move || {
        catalog.manifest_drop(&id)?;
        catalog.state_delete(CANCEL, &id)?;
        catalog.state_delete(jobs::RUNNING, &id)?;
        Ok(())
    })
    .await?;
    match r {
        Ok(()) => Ok(job),
        Err(e) => {
            job.state = JobState::Failed;
            job.note = Some(e.to_string());
            job.finished = Some(ctx.clock.now());
            jobs::save(ctx, &job).await?;
            Err(e)
        }
    }
}

/// Polls the catalog for a cancel request of job `id`.
fn watch_cancel(ctx: &Context, id: &str, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    let (catalog, id) = (ctx.catalog.clone(), id.to_string());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            let (c, i) = (catalog.clone(), id.clone());
            if let Ok(Ok(Some(_))) = tokio::task::spawn_blocking(move || c.state_get(CANCEL, &i)).await {
                cancel.cancel();
                return;
            }
        }
    })
}

async fn run_inner(
    ctx: &Context,
    job: &mut JobRecord,
    guard: &OverlapGuard,
    progress: &ProgressFactory,
    cancel: &CancellationToken,
) -> Result<(), LifecycleError> {
    let started = job.planned_at.unwrap_or_else(|| ctx.clock.now());
    job.planned_at = Some(started);
    job.state = JobState::Running;
    job.started = Some(ctx.clock.now());
    jobs::save(ctx, job).await?;
    let label = job.rule.clone().unwrap_or_else(|| job.id.clone());
    // The last backup of this job: its task number, archive, and whether it succeeded.
    let mut last_backup: Option<(usize, Option<String>, bool)> = None;
    let mut stop: Option<String> = None;
    let mut all_ok = true;
    let tasks = job.spec.clone();
    for (i, task) in tasks.iter().enumerate() {
        let n = i + 1;
        let mut rec = TaskRecord { task: n, op: Some(task.op), ..TaskRecord::default() };
        if cancel.is_cancelled() && stop.is_none() {
            stop = Some("the job was cancelled".into());
        }
        if let Some(why) = &stop {
            rec.state = "skipped".into();
            rec.note = Some(why.clone());
            job.tasks.push(rec);
            continue;
        }
        let fp = Footprint::of(format!("{label} / task {n}"), task);
        let _permit = guard.acquire_shared(ctx, &format!("{}/{n}", job.id), &fp).await?;
        // Recovery runs at the start of every task, on every process, not only at start-up.
        let recovered = super::journal::recover(ctx).await?;
        jobs::reap(ctx).await?;
        let catalog = ctx.catalog.clone();
        super::blocking(move || Ok(super::lease::sweep_dead(catalog.as_ref())?)).await?;
        if !recovered.deleted.is_empty() {
            tracing::warn!(recordings = recovered.deleted.len(), "finished interrupted purges before this task");
        }
        if task.op == Op::Import {
            super::failpoint::hit("task.start");
            // The same progress path as the other tasks (no total: a run finds its
            // conversations as it goes).
            let what = format!("{label} task {n} import").to_lowercase();
            let bar = crate::progress::Tee(vec![
                progress(&what),
                crate::progress::live::start(&job.id, n as u32),
                Arc::new(crate::progress::LogLines::new(&what, std::time::Duration::from_secs(10))),
            ]);
            let ok = run_import(ctx, task, &mut rec, &bar).await;
            bar.finish();
            rec.state = if ok { "succeeded" } else { "failed" }.into();
            if !ok {
                all_ok = false;
                job.add_failures(&[super::Failure {
                    item: format!("task {n}"),
                    reason: rec.note.clone().unwrap_or_default(),
                }]);
                if task.on_failure == OnFailure::Stop && stop.is_none() {
                    stop = Some(format!("task {n} failed and says on_failure = \"stop\""));
                }
            }
            job.tasks.push(rec);
            jobs::save(ctx, job).await?;
            continue;
        }
        let purge_source = match task.op {
            Op::Purge => last_backup.as_ref().map(|(b, a, _)| (*b, a.clone())),
            Op::Backup | Op::Import => None,
        };
        if purge_source.is_none() && !job.planned_tasks.contains(&n) {
            let noop = Arc::new(crate::progress::NoProgress);
            if let Err(e) = super::plan::plan_task(ctx, n, task, started, None, 0, noop, Some(&job.id)).await {
                // A task that cannot be planned (a bad location, say) fails; the job goes on
                // as its on_failure says.
                rec.note = Some(e.to_string());
                rec.state = "failed".into();
                job.add_failures(&[super::Failure { item: format!("task {n}"), reason: e.to_string() }]);
                if task.op == Op::Backup {
                    last_backup = Some((n, None, false));
                }
                all_ok = false;
                if task.on_failure == OnFailure::Stop {
                    stop = Some(format!("task {n} failed and says on_failure = \"stop\""));
                }
                job.tasks.push(rec);
                jobs::save(ctx, job).await?;
                continue;
            }
            job.planned_tasks.push(n);
            jobs::save(ctx, job).await?;
        }
        let (catalog, jid) = (ctx.catalog.clone(), job.id.clone());
        let src_task = purge_source.as_ref().map_or(n, |(b, _)| *b) as u32;
        let total: u64 = blocking(move || Ok(catalog.manifest_counts(&jid, src_task)?))
            .await?
            .into_iter()
            .filter(|(s, _)| match task.op {
                Op::Backup => *s == RowState::Planned,
                Op::Purge if purge_source.is_some() => *s == RowState::Archived,
                Op::Purge => *s == RowState::Planned,
                Op::Import => false,
            })
            .map(|(_, c)| c)
            .sum();
        super::failpoint::hit("task.start");
        // One progress path: the face's sink (the CLI's bar), log lines, and the live
        // progress that the job's events and page follow.
        let what = format!("{label} task {n} {:?}", task.op).to_lowercase();
        let bar: Arc<dyn Progress> = Arc::new(crate::progress::Tee(vec![
            progress(&what),
            crate::progress::live::start(&job.id, n as u32),
            Arc::new(crate::progress::LogLines::new(&what, std::time::Duration::from_secs(10))),
        ]));
        bar.set_total(total);
        let ok = match task.op {
            Op::Backup => match run_backup(ctx, task, started, &job.id, n as u32, cancel, bar.clone()).await {
                Ok(o) => {
                    rec.archive = o.archive.as_ref().map(|p| p.display().to_string());
                    rec.recordings = o.recordings;
                    rec.screens = o.screens;
                    rec.media = o.media;
                    rec.bytes = o.bytes;
                    rec.failed = o.failed_total;
                    if let Some(t) = &o.name_taken {
                        rec.note =
                            Some(format!("archive name {t} was taken; wrote {}", rec.archive.as_deref().unwrap_or("")));
                    }
                    job.add_failures(&o.failed);
                    job.failed_total += o.failed_total - o.failed.len() as u64;
                    let ok = o.failed_total == 0;
                    last_backup = Some((n, rec.archive.clone(), ok));
                    ok
                }
                Err(LifecycleError::Cancelled) => {
                    rec.note = Some("cancelled: stopped before publishing; no archive was written".into());
                    last_backup = Some((n, None, false));
                    stop = Some("the job was cancelled".into());
                    false
                }
                Err(e) => {
                    rec.note = Some(e.to_string());
                    job.add_failures(&[super::Failure { item: format!("task {n}"), reason: e.to_string() }]);
                    last_backup = Some((n, None, false));
                    false
                }
            },
            // Run above; never reached.
            Op::Import => false,
            Op::Purge => {
                let (source, archive) = match &purge_source {
                    None => (Source { job: job.id.clone(), task: n as u32, state: RowState::Planned }, None),
                    Some((b, archive)) => {
                        if !last_backup.as_ref().is_some_and(|(_, _, ok)| *ok) {
                            // Only reached when the failed backup said on_failure = "continue".
                            rec.note = Some(format!(
                                "task {b} did not archive everything; purging only what it archived and verified"
                            ));
                        }
                        (Source { job: job.id.clone(), task: *b as u32, state: RowState::Archived }, archive.clone())
                    }
                };
                let who = Who { job: job.id.clone(), rule: job.rule.clone(), task: n };
                let exposed = archive
                    .as_deref()
                    .and_then(|a| std::path::Path::new(a).parent().map(std::path::Path::to_path_buf))
                    .filter(|d| super::rules::world_writable(d));
                if let Some(d) = exposed {
                    let why = format!(
                        "the archive is in {}, which every local user can write: not purging what it holds",
                        d.display()
                    );
                    rec.note = Some(why.clone());
                    job.add_failures(&[super::Failure { item: format!("task {n}"), reason: why }]);
                    rec.state = "failed".into();
                    all_ok = false;
                    job.tasks.push(rec);
                    jobs::save(ctx, job).await?;
                    continue;
                }
                match run_purge(ctx, task, source, archive, &who, cancel, bar.clone()).await {
                    Ok(o) => {
                        rec.recordings = o.deleted;
                        rec.screens = o.screens;
                        rec.media = o.media;
                        rec.bytes = o.bytes;
                        rec.held = o.held;
                        rec.changed = o.changed;
                        rec.failed = o.failed.len() as u64;
                        job.add_failures(&o.failed);
                        job.skipped_total += o.skipped_total - o.skipped.len() as u64;
                        job.add_skipped(&o.skipped);
                        o.failed.is_empty()
                    }
                    Err(LifecycleError::Cancelled) => {
                        rec.note = Some("cancelled between batches; every batch begun was finished".into());
                        stop = Some("the job was cancelled".into());
                        false
                    }
                    Err(e) => {
                        rec.note = Some(e.to_string());
                        job.add_failures(&[super::Failure { item: format!("task {n}"), reason: e.to_string() }]);
                        false
                    }
                }
            }
        };
        bar.finish();
        rec.state = if ok { "succeeded" } else { "failed" }.into();
        if !ok {
            all_ok = false;
            if task.on_failure == OnFailure::Stop && stop.is_none() {
                stop = Some(format!("task {n} failed and says on_failure = \"stop\""));
            }
        }
        job.tasks.push(rec);
        jobs::save(ctx, job).await?;
    }
    job.state = if cancel.is_cancelled() {
        job.note = Some("cancelled at a safe point; what was done is listed per task".into());
        JobState::Cancelled
    } else if all_ok {
        JobState::Succeeded
    } else {
        JobState::Failed
    };
    job.finished = Some(ctx.clock.now());
    jobs::save(ctx, job).await?;
    Ok(())
}

/// An import task: one run of its source ([`crate::import::run_once`], the entry
/// `reclife import genesys-cloud --once` calls too). True when the run finished; conversations
/// it put in the retry buffer are counted as failed and named in the note, not a task failure
/// (the next run takes them again).
async fn run_import(ctx: &Context, task: &super::Task, rec: &mut TaskRecord, progress: &dyn Progress) -> bool {
    let source = task.source.as_deref().unwrap_or_default();
    match crate::import::run_once(ctx, source, progress).await {
        Ok(report) => {
            rec.recordings = report.imported() as u64;
            rec.bytes = report.media_bytes;
            rec.media = report.conversations.iter().filter(|c| c.media_downloaded).count() as u64;
            rec.failed = (report.buffered.len() + report.failed) as u64;
            rec.note = Some(match &report.skipped_held_by {
                Some(h) => format!("import source {source}: another process imports it now ({h}); nothing done"),
                None => format!(
                    "import source {source}: {} imported, {} already imported, {} to the retry buffer, {} retried ({} failed again), cursor {}",
                    report.imported(),
                    report.conversations.iter().filter(|c| c.already_imported).count(),
                    report.buffered.len(),
                    report.retried,
                    report.failed,
                    report.cursor_after
                ),
            });
            true
        }
        Err(e) => {
            rec.note = Some(e.to_string());
            false
        }
    }
}

/// GIR's completion line, with counts; the node path (GIR says "location") is named as such.
pub fn completion_line(job: &JobRecord, node_path: Option<&str>) -> String {
    let sum = |op: Op, f: fn(&TaskRecord) -> u64| -> u64 {
        job.tasks.iter().filter(|t| t.op == Some(op) && t.state != "skipped").map(f).sum()
    };
    let imported = if job.tasks.iter().any(|t| t.op == Some(Op::Import)) {
        format!("imported {} recording(s), ", sum(Op::Import, |t| t.recordings))
    } else {
        String::new()
    };
    format!(
        "Scheduled rule [{}] on node path [{}] completed: {}; {imported}backed up {} recording(s) + {} screen(s), purged {} + {} screen(s), {} held left alone, {} failed (job {})",
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
