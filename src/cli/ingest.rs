//! `reclife ingest PATH…`

use super::{progress::Bar, Cli, EXIT_PARTIAL};
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Example:\n  reclife ingest testdata/recordings backups/Environment-voice-0-365-20250101020000.zip"
)]
pub struct Args {
    /// Folders (trees of meta-data.json files beside their media) and GIR backup zip files.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let ctx = cli.context()?;
    let bar = Bar::new(cli.quiet, "ingest");
    let report = reclife::ingest::ingest_paths(&ctx, &a.paths, &bar).await?;
    for r in &report.rejected {
        eprintln!("{r}");
    }
    println!(
        "ingested {}, updated {}, unchanged {}, rejected {} ({} media bytes copied)",
        report.ingested,
        report.updated,
        report.unchanged,
        report.rejected.len(),
        report.media_bytes
    );
    Ok(if report.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) })
}
