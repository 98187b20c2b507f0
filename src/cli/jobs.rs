//! `reclife jobs list` and `reclife jobs show ID`.

use super::Cli;
use anyhow::Result;
use reclife::lifecycle::jobs::{self, JobRecord};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Every job, oldest first.
    #[command(after_help = "Example:\n  reclife jobs list --json")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// One job: state, counts per task, failed items with their reasons.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn print_job(j: &JobRecord) {
    println!(
        "job {} ({}{}): {}",
        j.id,
        j.kind,
        j.rule.as_deref().map(|r| format!(" {r}")).unwrap_or_default(),
        j.state
    );
    println!("  created {}", j.created.to_rfc3339());
    if let Some(t) = j.started {
        println!("  started {}", t.to_rfc3339());
    }
    if let Some(t) = j.finished {
        println!("  finished {}", t.to_rfc3339());
    }
    for t in &j.tasks {
        let op = t.op.map(|o| format!("{o:?}").to_lowercase()).unwrap_or_default();
        println!(
            "  task {} {op}: {}: {} recording(s), {} screen(s), {} media, {} bytes, {} held, {} failed",
            t.task, t.state, t.recordings, t.screens, t.media, t.bytes, t.held, t.failed
        );
        if let Some(a) = &t.archive {
            println!("    archive {a}");
        }
        if let Some(n) = &t.note {
            println!("    {n}");
        }
    }
    for f in &j.failed {
        println!("  failed {}: {}", f.item, f.reason);
    }
    if j.failed_total > j.failed.len() as u64 {
        println!("  … {} failed in all", j.failed_total);
    }
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    let ctx = cli.context()?;
    match cmd {
        Cmd::List { json } => {
            for j in jobs::list(&ctx).await? {
                if *json {
                    println!("{}", serde_json::to_string(&j)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        j.id,
                        j.kind,
                        j.rule.as_deref().unwrap_or("-"),
                        j.state,
                        j.created.to_rfc3339()
                    );
                }
            }
        }
        Cmd::Show { id, json } => {
            let j = jobs::load(&ctx, id).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&j)?);
            } else {
                print_job(&j);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
