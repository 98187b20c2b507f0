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
    let (code, report) =
        super::ingest::ingest_with_report(cli, &a.archives, "restore", ["restored", "updated", "already present"])
            .await?;
    // Restored recordings that an enabled purge rule selects would be purged again at its
    // next fire: say so, so that the operator can hold them.
    let ctx = cli.context()?;
    let ids: std::collections::HashSet<String> = report.ids.into_iter().collect();
    for (rule, n) in reclife::lifecycle::plan::purge_rules_matching(&ctx, &ids).await? {
        eprintln!(
            "warning: {n} restored recording(s) match the purge of the enabled rule [{rule}] and will be purged again at its next run unless held (reclife recordings hold ID --reason …)"
        );
    }
    Ok(code)
}
