//! What the on-demand job commands share (`backup`, `purge`, `jobs start`): the filter flags,
//! planning a one-task job (or keeping it as planned with `--dry-run`), running a job to its end
//! with a progress bar and Ctrl-C, and printing a job record. Below the three commands, so none
//! of them imports another.

use super::{Cli, EXIT_PARTIAL};
use anyhow::Result;
use reclife::lifecycle::jobs::{self, JobRecord};
use reclife::lifecycle::{guard::OverlapGuard, runner, Filter, OnFailure, Op, Task};
use reclife::model::Kind;
use std::process::ExitCode;
use std::sync::Arc;

/// The filter options shared by `backup` and `purge`.
#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    /// voice or screen.
    #[arg(long = "type", default_value = "voice")]
    pub kind: Kind,
    /// Only recordings at least this many days old.
    #[arg(long)]
    pub min_age: Option<u32>,
    /// Only recordings less than this many days old.
    #[arg(long)]
    pub max_age: Option<u32>,
    /// Only calls of this call type (Inbound, Outbound, Internal, Consult, …).
    #[arg(long)]
    pub call_type: Option<String>,
    /// Take the calls' screen recordings too (GIR executeOnScreenRecording).
    #[arg(long)]
    pub include_screen: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

impl FilterArgs {
    /// The task these flags describe (`all_ages`: purge's confirmed `--all-ages --yes`).
    /// Whether it may run (ages, the every-age confirmation) is decided by the one task check
    /// of every face (`lifecycle::validate`), not here.
    pub fn task(&self, op: Op, all_ages: bool) -> Result<Task> {
        Ok(Task {
            op,
            filter: Filter {
                recording_type: self.kind,
                min_age: self.min_age,
                max_age: self.max_age,
                call_type: self.call_type.clone(),
                ..Filter::default()
            },
            include_screen: self.include_screen,
            on_failure: OnFailure::Stop,
            location: None,
            zip: true,
            use_full_path: false,
            all_ages,
            source: None,
        })
    }
}

/// Plans a one-task job. With --dry-run prints the plan and keeps the job as `planned` (its
/// manifest in the catalog) for `reclife jobs start ID`; else runs it at once as a recorded job.
pub async fn run_job(cli: &Cli, kind: &str, task: Task, f: &FilterArgs) -> Result<ExitCode> {
    let ctx = cli.context()?;
    let now = ctx.clock.now();
    let mut job = jobs::JobRecord::new(kind, None, now);
    job.spec = vec![task];
    // The one task check of every face: a dry run's in plan_job; a run's here, probing the
    // backup location before anything starts (and again, without probing, when it is claimed).
    if !f.dry_run {
        runner::check(&ctx, &job.spec, true).map_err(usage_if_invalid)?;
    }
    if f.dry_run {
        let p = runner::plan_job(&ctx, &mut job, 20, false).await.map_err(usage_if_invalid)?;
        if f.json {
            println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "job": job.id, "plan": p }))?);
        } else {
            print!("{p}");
            println!("planned as job {} (nothing changed): `reclife jobs start {}` runs exactly this plan, `reclife jobs cancel {}` drops it; `reclife jobs show {} --items` lists it", job.id, job.id, job.id, job.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    job.planned_at = Some(now);
    execute(cli, &ctx, job, f.json).await
}

/// A task the one task check refuses (bad ages, a missing location) is a usage error.
fn usage_if_invalid(e: reclife::lifecycle::LifecycleError) -> anyhow::Error {
    match e {
        e @ reclife::lifecycle::LifecycleError::Invalid(_) => super::UsageError(e.to_string()).into(),
        e => e.into(),
    }
}

/// Runs a job to its end (Ctrl-C stops it at a safe point) and prints it.
pub async fn execute(cli: &Cli, ctx: &reclife::config::Context, job: jobs::JobRecord, json: bool) -> Result<ExitCode> {
    let quiet = cli.quiet || json;
    let progress: Arc<runner::ProgressFactory> = Arc::new(move |what: &str| {
        Arc::new(super::progress::Bar::new(quiet, what)) as Arc<dyn reclife::progress::Progress>
    });
    let guard = OverlapGuard::new();
    let cancel = tokio_util::sync::CancellationToken::new();
    let c2 = cancel.clone();
    let id = job.id.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("stopping job {id} at the next safe point (nothing half-done is published)…");
            c2.cancel();
        }
    });
    let r = runner::run_tasks(ctx, job, &guard, progress.as_ref(), cancel.clone()).await;
    ctrl_c.abort();
    let job = r?;
    if json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        print_job(&job);
    }
    Ok(match job.state {
        jobs::JobState::Succeeded => ExitCode::SUCCESS,
        jobs::JobState::Cancelled => ExitCode::from(130),
        // Failed outright (no task did anything): an error, not "some items set aside".
        _ if job.tasks.iter().all(|t| t.state != "succeeded" && t.recordings == 0) => ExitCode::from(1),
        _ => ExitCode::from(EXIT_PARTIAL),
    })
}

/// A job record as text: state, times, each task's counts, failed and skipped items.
pub fn print_job(j: &JobRecord) {
    println!(
        "job {} ({}{}): {}",
        j.id,
        j.kind,
        j.rule.as_deref().map(|r| format!(" {r}")).unwrap_or_default(),
        j.state
    );
    println!("  created {}", super::show_time(j.created));
    if let Some(t) = j.started {
        println!("  started {}", super::show_time(t));
    }
    if let Some(t) = j.finished {
        println!("  finished {}", super::show_time(t));
    }
    for t in &j.tasks {
        let op = t.op.map(|o| format!("{o:?}").to_lowercase()).unwrap_or_default();
        println!(
            "  task {} {op}: {}: {} recording(s), {} screen(s), {} media, {} bytes, {} held, {} changed, {} failed",
            t.task, t.state, t.recordings, t.screens, t.media, t.bytes, t.held, t.changed, t.failed
        );
        if let Some(a) = &t.archive {
            println!("    archive {a}");
        }
        if let Some(n) = &t.note {
            println!("    {n}");
        }
    }
    if let Some(n) = &j.note {
        println!("  {n}");
    }
    for f in &j.failed {
        println!("  failed {}: {}", f.item, f.reason);
    }
    for f in &j.skipped {
        println!("  {} {}", f.reason, f.item);
    }
    if j.skipped_total > j.skipped.len() as u64 {
        println!("  … {} skipped in all", j.skipped_total);
    }
    if j.failed_total > j.failed.len() as u64 {
        println!("  … {} failed in all", j.failed_total);
    }
}
