//! `reclife backup`: an on-demand backup job (plan, then execute), through the same code as
//! scheduled rules.

use super::job_run::{run_job, FilterArgs};
use super::Cli;
use anyhow::Result;
use reclife::lifecycle::Op;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife backup --type voice --min-age 1 --max-age 2 --include-screen --location file:///var/backups --dry-run
  reclife backup --type voice --min-age 365 --location file:///var/backups --no-zip --json")]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Where the archive goes (file:///…); default: config default_backup_location.
    #[arg(long)]
    pub location: Option<String>,
    /// Write a zip (the default).
    #[arg(long, overrides_with = "no_zip")]
    pub zip: bool,
    /// Write a folder instead of a zip.
    #[arg(long)]
    pub no_zip: bool,
    /// Name media by their stored path (GIR useFullPathInMediaFileBackup).
    #[arg(long)]
    pub use_full_path: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let mut task = a.filter.task(Op::Backup, false)?;
    task.location = a.location.clone();
    task.zip = !a.no_zip;
    task.use_full_path = a.use_full_path;
    run_job(cli, "backup", task, &a.filter).await
}
