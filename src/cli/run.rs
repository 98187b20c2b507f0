//! `reclife run [--once]`: the daemon — the rule scheduler, plus the muxer when `[muxer] enabled`
//! and the API when `[api] listen` is set, stopped together by SIGTERM — or every enabled rule
//! of this node once, now.

use super::{progress::Bar, Cli, EXIT_PARTIAL};
use anyhow::Result;
use reclife::lifecycle::{jobs::JobState, schedule};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife run                 # the daemon: cron rules from rules_dir, UTC, until Ctrl-C / SIGTERM
  reclife run --once          # run every enabled rule of this node once, now, and exit
  RECLIFE_NOW=2025-06-25T03:00:00Z reclife run --once   # ages and archive names at a fixed time")]
pub struct Args {
    /// Run every enabled rule of this node once, now, and exit.
    #[arg(long)]
    pub once: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let ctx = cli.context_create()?;
    // Before the API or the muxer start: a scheduler with no rules folder is one clear error.
    schedule::require_rules_dir(&ctx)?;
    let quiet = cli.quiet;
    let progress: Arc<reclife::lifecycle::runner::ProgressFactory> =
        Arc::new(move |what: &str| Arc::new(Bar::new(quiet, what)) as Arc<dyn reclife::progress::Progress>);
    let on_done: Arc<schedule::OnDone> = Arc::new(|job, line| {
        println!("{line}");
        for t in &job.tasks {
            if let Some(a) = &t.archive {
                println!("  task {}: archive {a}", t.task);
            }
            if let Some(n) = &t.note {
                println!("  task {}: {n}", t.task);
            }
        }
        for f in &job.failed {
            eprintln!("  failed {}: {}", f.item, f.reason);
        }
    });
    if a.once {
        let (results, problems) = schedule::run_once(&ctx, progress, on_done).await?;
        for p in &problems {
            eprintln!("rule left out: {p}");
        }
        let mut bad = !problems.is_empty();
        for r in results {
            match r {
                Ok(j) => bad |= j.state != JobState::Succeeded,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    bad = true;
                }
            }
        }
        return Ok(if bad { ExitCode::from(EXIT_PARTIAL) } else { ExitCode::SUCCESS });
    }
    // One signal stops both the scheduler and, when `[api] listen` is set, the API.
    let stop = tokio_util::sync::CancellationToken::new();
    let api = match ctx.config.api.listen.clone() {
        Some(listen) => {
            let bound = reclife::api::bind(ctx.clone(), &listen).await?;
            println!("API listening on {}://{}", bound.scheme(), bound.addr);
            let stop = stop.clone();
            Some(tokio::spawn(bound.serve(async move { stop.cancelled().await })))
        }
        None => None,
    };
    let muxer = if ctx.config.muxer.enabled {
        let m = reclife::muxer::Muxer::new(&ctx)?;
        let (ctx, stop) = (ctx.clone(), stop.clone());
        if m.is_batch() {
            println!("muxer: one batch pass over call_recording_query_string, then it stops");
        } else {
            println!("muxer polling every {} s", ctx.config.muxer.min_poll_interval.max(1));
        }
        // At shutdown the muxer finishes the pass it is in (its safe point) and stops.
        Some(tokio::spawn(async move { m.serve(&ctx, stop.cancelled()).await }))
    } else {
        None
    };
    let shutdown = {
        let stop = stop.clone();
        async move {
            super::serve::shutdown_signal().await;
            stop.cancel();
        }
    };
    let ran = schedule::run_daemon(&ctx, progress, on_done, shutdown).await;
    stop.cancel();
    if let Some(api) = api {
        api.await??;
    }
    if let Some(m) = muxer {
        m.await??;
    }
    ran?;
    Ok(ExitCode::SUCCESS)
}
