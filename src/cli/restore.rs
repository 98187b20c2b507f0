//! `reclife restore ARCHIVE…`: re-ingest backups (zip or folder) into the catalog and the media
//! store, which GIR cannot do once it has purged.

use super::Cli;
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
    for p in &a.archives {
        anyhow::ensure!(p.exists(), "{}: no such archive", p.display());
    }
    super::ingest::ingest_and_report(cli, &a.archives, "restore", ["restored", "updated", "already present"]).await
}
