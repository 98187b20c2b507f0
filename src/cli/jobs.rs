//! `reclife jobs list | show | start | cancel`: job records, and the planned jobs that a dry
//! run keeps for review.

use super::Cli;
use anyhow::Result;
use reclife::lifecycle::jobs;
use reclife::lifecycle::runner;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Jobs, oldest first, a page at a time.
    #[command(
        after_help = "Example:\n  reclife jobs list --json\n  reclife jobs list --after j-20250625T180000-1a2b3c4d --limit 50"
    )]
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Only jobs after this id (the last id of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// Jobs per page (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One job: state, counts per task, failed and skipped items with their reasons.
    Show {
        /// Job id (`reclife jobs list`).
        id: String,
        /// The job record as JSON.
        #[arg(long)]
        json: bool,
        /// Also list its plan (manifest rows), one JSON line each, streamed.
        #[arg(long)]
        items: bool,
    },
    /// Executes a planned job (from `--dry-run`) exactly as planned.
    Start {
        /// Id of a planned job (from --dry-run).
        id: String,
        /// The finished job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drops a planned job, or stops a running one at its next safe point.
    Cancel {
        /// Job id.
        id: String,
    },
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    let ctx = cli.context()?;
    match cmd {
        Cmd::List { json, after, limit } => {
            for j in jobs::page(&ctx, after.as_deref(), (*limit).clamp(1, 10_000)).await? {
                if *json {
                    println!("{}", serde_json::to_string(&j)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        j.id,
                        j.kind,
                        j.rule.as_deref().unwrap_or("-"),
                        j.state,
                        super::show_time(j.created)
                    );
                }
            }
        }
        Cmd::Show { id, json, items } => {
            let j = jobs::load(&ctx, id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                super::job_run::print_job(&j);
            }
            if *items {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                for n in &j.planned_tasks {
                    let mut after = 0;
                    loop {
                        let rows = ctx.catalog.manifest_page(id, *n as u32, None, after, 1000)?;
                        let Some(last) = rows.last() else { break };
                        after = last.seq;
                        for r in rows {
                            writeln!(out, "{}", serde_json::json!({ "task": n, "row": r }))?;
                        }
                    }
                }
            }
        }
        Cmd::Start { id, json } => {
            // `execute` claims the job (lease, fresh read, planned, the task check again).
            let j = jobs::load(&ctx, id).await?;
            return super::job_run::execute(cli, &ctx, j, *json).await;
        }
        Cmd::Cancel { id } => {
            let j = runner::request_cancel(&ctx, id).await?;
            match j.state {
                jobs::JobState::Cancelled => println!("job {id} cancelled; its plan is dropped"),
                jobs::JobState::Running => println!("job {id}: asked to stop at its next safe point"),
                s => println!("job {id} is {s}; nothing to cancel"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
