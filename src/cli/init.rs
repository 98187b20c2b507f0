//! `reclife init`: creates a data directory (0700) and its catalog, so that the commands that
//! only read or change data (every command but those that bring data in) find it.

use super::Cli;
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife --data-dir /var/lib/reclife init
  reclife --config /etc/reclife/reclife.toml init     # the config's data_dir")]
pub struct Args {}

pub async fn run(cli: &Cli, _a: &Args) -> Result<ExitCode> {
    let ctx = cli.context_create()?;
    ctx.data_subdir("audit")?;
    println!("data directory {} is ready", ctx.data_dir.display());
    Ok(ExitCode::SUCCESS)
}
