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
    ingest_and_report(cli, &a.paths, "ingest", ["ingested", "updated", "unchanged"]).await
}

/// Ingests `paths`, prints each rejection and the counts (named by `words`: new, updated,
/// unchanged), and turns the outcome into an exit status. `ingest` and `restore` share it.
pub async fn ingest_and_report(cli: &Cli, paths: &[PathBuf], what: &str, words: [&str; 3]) -> Result<ExitCode> {
    Ok(ingest_with_report(cli, paths, what, words).await?.0)
}

/// Like [`ingest_and_report`], also returning what was ingested.
pub async fn ingest_with_report(
    cli: &Cli,
    paths: &[PathBuf],
    what: &str,
    words: [&str; 3],
) -> Result<(ExitCode, reclife::ingest::IngestReport)> {
    let ctx = cli.context()?;
    let bar = Bar::new(cli.quiet, what);
    let report = reclife::ingest::ingest_paths(&ctx, paths, &bar).await?;
    for r in &report.rejected {
        eprintln!("{r}");
    }
    let [new, updated, unchanged] = words;
    println!(
        "{new} {}, {updated} {}, {unchanged} {}, rejected {} ({} media bytes copied)",
        report.ingested,
        report.updated,
        report.unchanged,
        report.rejected.len(),
        report.media_bytes
    );
    Ok((if report.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) }, report))
}
