//! `reclife restore ARCHIVE…`: re-ingest backups (zip or folder) into the catalog and the media
//! store, which GIR cannot do once it has purged.

use super::{progress::Bar, Cli, EXIT_PARTIAL};
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:\n  reclife restore /var/backups/Environment-voice-0-365-20250625030000.zip")]
pub struct Args {
    /// Backup archives: GIR MLM zips or unzipped backup folders.
    #[arg(required = true)]
    pub archives: Vec<PathBuf>,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let ctx = cli.context()?;
    for p in &a.archives {
        anyhow::ensure!(p.exists(), "{}: no such archive", p.display());
    }
    let bar = Bar::new(cli.quiet, "restore");
    let report = reclife::ingest::ingest_paths(&ctx, &a.archives, &bar).await?;
    for r in &report.rejected {
        eprintln!("{r}");
    }
    println!(
        "restored {}, updated {}, already present {}, rejected {} ({} media bytes)",
        report.ingested,
        report.updated,
        report.unchanged,
        report.rejected.len(),
        report.media_bytes
    );
    Ok(if report.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) })
}
