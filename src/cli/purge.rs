//! `reclife purge`: an on-demand purge job (plan, then execute); held recordings are never
//! touched and every deletion is journaled and audited.

use super::backup::FilterArgs;
use super::{usage, Cli, EXIT_PARTIAL};
use anyhow::Result;
use reclife::lifecycle::{guard::OverlapGuard, jobs, runner, Op, Task};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife purge --type voice --min-age 365 --include-screen --dry-run
  reclife purge --type voice --min-age 365 --include-screen --json")]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Select every age (no --min-age, or --min-age 0). Needs --yes, with --dry-run too.
    #[arg(long)]
    pub all_ages: bool,
    /// Confirms --all-ages.
    #[arg(long, requires = "all_ages")]
    pub yes: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    if a.all_ages && !a.yes {
        usage!("--all-ages purges every non-held {} recording, the newest too: confirm it with --yes", a.filter.kind);
    }
    let task = a.filter.task(Op::Purge, a.all_ages && a.yes)?;
    run_job(cli, "purge", task, &a.filter).await
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
    let progress: Arc<runner::ProgressFactory> =
        Arc::new(move |what: &str| Arc::new(super::backup::bar(quiet, what)) as Arc<dyn reclife::progress::Progress>);
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
        super::jobs::print_job(&job);
    }
    Ok(match job.state {
        jobs::JobState::Succeeded => ExitCode::SUCCESS,
        jobs::JobState::Cancelled => ExitCode::from(130),
        // Failed outright (no task did anything): an error, not "some items set aside".
        _ if job.tasks.iter().all(|t| t.state != "succeeded" && t.recordings == 0) => ExitCode::from(1),
        _ => ExitCode::from(EXIT_PARTIAL),
    })
}
