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
    /// Copy no media: register each recording's media where its mediaDescriptor says it lives
    /// (an S3 bucket: data.bucket + path; a WebDAV server: data.storagePath + path, or a URL
    /// path), after checking it is there. It is then read and purged there.
    #[arg(long)]
    pub in_place: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let words = ["ingested", "updated", "unchanged"];
    Ok(ingest_with_report_opts(cli, &a.paths, "ingest", words, a.in_place).await?.0)
}

/// Ingests `paths`, prints each rejection and the counts (named by `words`: new, updated,
/// unchanged), and turns the outcome into an exit status, also returning what was ingested.
/// `ingest` and `restore` share it.
pub async fn ingest_with_report(
    cli: &Cli,
    paths: &[PathBuf],
    what: &str,
    words: [&str; 3],
) -> Result<(ExitCode, reclife::ingest::IngestReport)> {
    ingest_with_report_opts(cli, paths, what, words, false).await
}

async fn ingest_with_report_opts(
    cli: &Cli,
    paths: &[PathBuf],
    what: &str,
    words: [&str; 3],
    in_place: bool,
) -> Result<(ExitCode, reclife::ingest::IngestReport)> {
    let ctx = cli.context_create()?;
    let bar = Bar::new(cli.quiet, what);
    let report = reclife::ingest::ingest_paths_with(&ctx, paths, &bar, in_place).await?;
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
    if report.held > 0 {
        println!("held {}: the hold their metadata carries is in force", report.held);
    }
    Ok((if report.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTIAL) }, report))
}
