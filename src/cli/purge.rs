//! `reclife purge`: an on-demand purge job (plan, then execute); held recordings are never
//! touched and every deletion is journaled and audited.

use super::job_run::{run_job, FilterArgs};
use super::{usage, Cli};
use anyhow::Result;
use reclife::lifecycle::Op;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife purge --type voice --min-age 365 --include-screen --dry-run
  reclife purge --type voice --min-age 365 --include-screen --json")]
pub struct Args {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Select every age (no --min-age, or --min-age 0). Needs --yes, with --dry-run too.
    #[arg(long)]
    pub all_ages: bool,
    /// Confirms --all-ages.
    #[arg(long, requires = "all_ages")]
    pub yes: bool,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    if a.all_ages && !a.yes {
        usage!("--all-ages purges every non-held {} recording, the newest too: confirm it with --yes", a.filter.kind);
    }
    let task = a.filter.task(Op::Purge, a.all_ages && a.yes)?;
    run_job(cli, "purge", task, &a.filter).await
}
