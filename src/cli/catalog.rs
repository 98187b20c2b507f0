//! `reclife catalog migrate --from CATALOG --to CATALOG`: copies a catalog (e.g. a node's
//! SQLite file into a shared PostgreSQL database), streaming, resumable, checked at the end.

use super::Cli;
use anyhow::{Context as _, Result};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Copy every recording (document, hold, version) and the durable state into another
    /// catalog; a rerun continues where an interrupted one stopped. Stop every node first.
    #[command(after_help = "Catalogs: sqlite:PATH (or a path) or postgres://user@host:port/db; the password comes
from PGPASSWORD or [postgres] password_file in --config, never from the URL.

Examples:
  reclife catalog migrate --from sqlite:/var/lib/reclife/catalog.db --to postgres://reclife@db:5432/reclife
  PGPASSWORD=… reclife --config node.toml catalog migrate --from sqlite:catalog.db --to postgres://reclife@127.0.0.1/reclife")]
    Migrate(MigrateArgs),
}

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The catalog to copy from.
    #[arg(long)]
    pub from: String,
    /// The catalog to copy into.
    #[arg(long)]
    pub to: String,
    /// Recordings per page (memory holds one page).
    #[arg(long, default_value_t = 1000)]
    pub page: usize,
}

pub async fn run(cli: &Cli, c: &Cmd) -> Result<ExitCode> {
    match c {
        Cmd::Migrate(a) => migrate(cli, a).await,
    }
}

async fn migrate(cli: &Cli, a: &MigrateArgs) -> Result<ExitCode> {
    let config = cli.load_config()?;
    let (from_spec, to_spec, page, quiet) = (a.from.clone(), a.to.clone(), a.page, cli.quiet);
    let data_dir = cli.data_dir(&config);
    let report = tokio::task::spawn_blocking(move || -> Result<_> {
        let open = |spec: &str| {
            reclife::config::open_catalog(Some(spec), &config.postgres, &data_dir)
                .with_context(|| format!("opening catalog {spec}"))
        };
        let from = open(&from_spec)?;
        let to = open(&to_spec)?;
        let spec = reclife::catalog::copy::CopySpec { page };
        let step = std::cell::Cell::new(0u64);
        let progress = |n: u64| {
            if !quiet && n / 100_000 > step.get() {
                step.set(n / 100_000);
                eprintln!("{n} recordings copied");
            }
        };
        Ok(reclife::catalog::copy::copy(from.as_ref(), to.as_ref(), &from_spec, &spec, &progress)?)
    })
    .await??;
    println!(
        "copied {} recording(s) ({} already there{}), {} state key(s); verified {} recording(s) at the same versions",
        report.written,
        report.unchanged,
        if report.resumed { ", resumed" } else { "" },
        report.state_keys,
        report.verified
    );
    Ok(ExitCode::SUCCESS)
}
