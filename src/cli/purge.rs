//! `reclife purge`: an on-demand purge job (plan, then execute); held recordings are never
//! touched and every deletion is journaled and audited.

use super::backup::FilterArgs;
use super::{Cli, EXIT_PARTIAL};
use anyhow::Result;
use reclife::lifecycle::{guard::OverlapGuard, jobs, journal, plan, runner, Op, Task};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife purge --type voice --min-age 365 --include-screen --dry-run
  reclife purge --type voice --min-age 365 --include-screen --json")]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let task = a.filter.task(Op::Purge)?;
    run_job(cli, "purge", task, &a.filter).await
}

/// Plans a one-task job; with --dry-run prints the plan, else runs it as a recorded job.
pub async fn run_job(cli: &Cli, kind: &str, task: Task, f: &FilterArgs) -> Result<ExitCode> {
    let ctx = cli.context()?;
    let now = ctx.clock.now();
    if f.dry_run {
        let tp = plan::plan_task(&ctx, 1, &task, now, None, 20, Arc::new(reclife::progress::NoProgress)).await?;
        let p = plan::Plan { name: format!("{kind} job (dry run)"), now, tasks: vec![tp] };
        if f.json {
            println!("{}", serde_json::to_string_pretty(&p)?);
        } else {
            print!("{p}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if kind == "backup" {
        if let Some(uri) = task.location.as_deref().or(ctx.config.default_backup_location.as_deref()) {
            reclife::lifecycle::rules::check_location(uri, true)
                .map_err(|why| anyhow::anyhow!("location {uri}: {why}"))?;
        }
    }
    journal::recover(&ctx).await?;
    let job = jobs::JobRecord::new(kind, None, now);
    let id = job.id.clone();
    let quiet = cli.quiet || f.json;
    let progress: Arc<runner::ProgressFactory> =
        Arc::new(move |what: &str| Arc::new(super::backup::bar(quiet, what)) as Arc<dyn reclife::progress::Progress>);
    let guard = OverlapGuard::new();
    let tasks = [task];
    let job = tokio::select! {
        r = runner::run_tasks(&ctx, job, &tasks, &guard, progress.as_ref()) => r?,
        _ = tokio::signal::ctrl_c() => {
            let mut j = jobs::load(&ctx, &id).await?;
            j.state = jobs::JobState::Cancelled;
            j.finished = Some(ctx.clock.now());
            jobs::save(&ctx, &j).await?;
            eprintln!("job {id} cancelled; interrupted deletions finish on the next run");
            return Ok(ExitCode::from(130));
        }
    };
    if f.json {
        println!("{}", serde_json::to_string_pretty(&job)?);
    } else {
        super::jobs::print_job(&job);
    }
    Ok(if job.state == jobs::JobState::Succeeded { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) })
}
