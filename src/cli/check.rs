//! `reclife check [--repair] [--json]`: verifies the lifecycle invariants after any run.

use super::Cli;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Exits 0 when nothing is wrong, 1 when something is (or stays, with --repair).

Examples:
  reclife check
  reclife check --repair
  reclife check --json")]
pub struct Args {
    /// Repair what is safe to repair: remove orphan media (older than orphan_grace_seconds,
    /// after confirming no live writer is storing it and nothing points at it), finish
    /// interrupted purges, mark dead jobs, break expired leases, remove temp files.
    #[arg(long)]
    pub repair: bool,
    /// The report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let ctx = cli.context()?;
    let rep = reclife::lifecycle::check::run(&ctx, a.repair).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
    } else {
        for f in &rep.findings {
            let fixed = if f.repaired { " (repaired)" } else { "" };
            println!("{}: {}: {}{fixed}", f.kind, f.item, f.detail);
        }
        let writing = match rep.in_flight {
            0 => String::new(),
            n => format!(" ({n} being written: left alone)"),
        };
        println!(
            "checked {} recording(s) and {} media file(s){writing}: {} problem(s), {} left",
            rep.recordings,
            rep.media_objects,
            rep.findings.len(),
            rep.unrepaired()
        );
    }
    Ok(if rep.unrepaired() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
