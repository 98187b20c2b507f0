//! `reclife backup`: an on-demand backup job (plan, then execute), through the same code as
//! scheduled rules.

use super::{progress::Bar, Cli};
use anyhow::Result;
use reclife::lifecycle::{Filter, OnFailure, Op, Task};
use reclife::model::Kind;
use std::process::ExitCode;

/// The filter options shared by `backup` and `purge`.
#[derive(clap::Args, Debug)]
pub struct FilterArgs {
    /// voice or screen.
    #[arg(long = "type", default_value = "voice")]
    pub kind: Kind,
    /// Only recordings at least this many days old.
    #[arg(long)]
    pub min_age: Option<u32>,
    /// Only recordings less than this many days old.
    #[arg(long)]
    pub max_age: Option<u32>,
    /// Only calls of this call type (Inbound, Outbound, Internal, Consult, …).
    #[arg(long)]
    pub call_type: Option<String>,
    /// Take the calls' screen recordings too (GIR executeOnScreenRecording).
    #[arg(long)]
    pub include_screen: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

impl FilterArgs {
    /// The task these flags describe (`all_ages`: purge's confirmed `--all-ages --yes`).
    /// Whether it may run (ages, the every-age confirmation) is decided by the one task check
    /// of every face (`lifecycle::validate`), not here.
    pub fn task(&self, op: Op, all_ages: bool) -> Result<Task> {
        Ok(Task {
            op,
            filter: Filter {
                recording_type: self.kind,
                min_age: self.min_age,
                max_age: self.max_age,
                call_type: self.call_type.clone(),
                ..Filter::default()
            },
            include_screen: self.include_screen,
            on_failure: OnFailure::Stop,
            location: None,
            zip: true,
            use_full_path: false,
            all_ages,
            source: None,
        })
    }
}

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
    super::purge::run_job(cli, "backup", task, &a.filter).await
}

pub fn bar(quiet: bool, what: &str) -> Bar {
    Bar::new(quiet, what)
}
