//! The command line: a thin face over the library. One subcommand per file; each builds a
//! [`Context`](reclife::config::Context) and calls the same library functions the scheduler
//! and the API call.

mod backup;
mod catalog;
mod check;
mod decrypt;
mod download;
mod encrypt;
mod import;
mod ingest;
mod jobs;
mod mux;
mod progress;
mod purge;
mod recordings;
mod restore;
mod rules;
mod run;
mod serve;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use reclife::config::{Clock, Config, Context};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status of a run that finished but set some items aside (rejected, failed).
pub const EXIT_PARTIAL: u8 = 3;

const EXAMPLES: &str = "\
Examples:
  reclife ingest testdata/recordings            # load the sample recordings
  reclife recordings list --type voice --json   # one JSON object per line
  reclife recordings list --from 2025-01-01 --to 2025-02-01 --label vip
  reclife recordings hold REC_ID --reason \"litigation 2025-17\"
  reclife recordings export REC_ID --out /tmp/rec
  reclife rules validate rules/                 # every problem with file:line
  reclife run --once                            # every enabled rule of this node, now
  reclife backup --type voice --min-age 1 --max-age 2 --location file:///var/backups --dry-run
  reclife purge --type voice --min-age 365 --include-screen --json
  reclife jobs list | reclife jobs show JOB_ID
  reclife restore /var/backups/Environment-voice-0-365-20250625030000.zip
  RECLIFE_NOW=2026-01-01T00:00:00Z reclife recordings list   # fix \"now\" for reproducible runs
  reclife mux --once                            # mux screen recordings with their calls
  reclife download --properties config.properties   # RCBS: recordings to a local folder
  reclife import genesys-cloud --source gc --once   # Genesys Cloud recordings in

Exit status: 0 success; 1 error; 2 usage error; 3 finished, but some items were set aside.";

#[derive(Parser, Debug)]
#[command(name = "reclife", version, about = "Lifecycle engine for contact-center call and screen recordings", after_help = EXAMPLES)]
pub struct Cli {
    /// Data directory: catalog.db, media/, audit/.
    #[arg(long, global = true, env = "RECLIFE_DATA_DIR", default_value = "./reclife-data")]
    pub data_dir: PathBuf,
    /// Configuration file (TOML); see deploy/reclife.example.toml.
    #[arg(long, global = true, env = "RECLIFE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Fix "now" (RFC 3339) for every age and time computation.
    #[arg(long, global = true, env = "RECLIFE_NOW", value_parser = parse_now)]
    pub now: Option<DateTime<Utc>>,
    /// More logging (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// No progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log lines as text, or as one JSON object per line (for log shippers).
    #[arg(long, global = true, env = "RECLIFE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Ingest recordings from folders and GIR backup archives (zip).
    Ingest(ingest::Args),
    /// List, show, export, hold and label recordings.
    #[command(subcommand)]
    Recordings(Box<recordings::Cmd>),
    /// Mux screen recordings with their calls' voice (GIR's Recording Muxer).
    Mux(mux::Args),
    /// Decrypt CMS-enveloped media with the key store.
    Decrypt(decrypt::Args),
    /// Seal files in CMS envelopes for recipient certificates.
    Encrypt(encrypt::Args),
    /// Check and list lifecycle rules (one TOML file per rule).
    #[command(subcommand)]
    Rules(rules::Cmd),
    /// The lifecycle scheduler: cron rules in UTC (or --once: every rule now).
    Run(run::Args),
    /// An on-demand backup job in the GIR archive layout (--dry-run: plan only).
    Backup(Box<backup::Args>),
    /// An on-demand purge job; held recordings are never purged (--dry-run: plan only).
    Purge(Box<purge::Args>),
    /// Jobs: list, show, start a planned one, cancel.
    #[command(subcommand)]
    Jobs(jobs::Cmd),
    /// Re-ingest backup archives (zip or folder).
    Restore(restore::Args),
    /// Verify the catalog, media and lifecycle invariants (--repair: fix what is safe).
    Check(check::Args),
    /// Catalog administration: migrate (copy) a catalog into another, e.g. SQLite → PostgreSQL.
    #[command(subcommand)]
    Catalog(catalog::Cmd),
    /// The HTTP API (RWS-compatible recordings, jobs and rules, /metrics) and the operators' pages at /.
    Serve(serve::Args),
    /// The cloud backup downloader (GIR's RCBS): metadata from the API, encrypted media from S3.
    Download(Box<download::Args>),
    /// Import sources: Genesys Cloud voice recordings in (genesys-cloud), cursor, retry buffer, status.
    #[command(subcommand)]
    Import(import::Cmd),
}

fn parse_now(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

impl Cli {
    /// Loads the configuration only (commands that need no data directory).
    pub fn load_config(&self) -> Result<Config> {
        Ok(match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        })
    }

    /// Loads the configuration and opens the data directory.
    pub fn context(&self) -> Result<Context> {
        let config = self.load_config()?;
        let clock = self.now.map(Clock::fixed).unwrap_or_else(Clock::system);
        Context::open(&self.data_dir, config, clock)
            .with_context(|| format!("opening data directory {}", self.data_dir.display()))
    }
}

/// How log lines are written (`--log-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

fn init_logging(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    // symphonia reports skipped junk bytes (ID3 padding and the like) at WARN for every file:
    // the user's business only when debugging.
    let default = format!("{default},symphonia_core=error,symphonia_bundle_mp3=error,symphonia=error");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colours only on a terminal: log files and journald get plain text.
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        LogFormat::Text => fmt.with_ansi(ansi).try_init(),
        // One object per line: timestamp, level, message and the event's fields at the top level.
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).try_init(),
    };
}

/// Runs the command line; returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse_from(rcbs_spellings(std::env::args_os()));
    init_logging(cli.verbose, cli.log_format);
    reclife::storage::tune_allocator();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// RCBS's own command line (`java -jar rp_clouddownload.jar -config config.properties -verify
/// s3`) after `reclife download`: `-config` is `--properties` and `-verify` is `--verify`, so
/// cron lines written for RCBS need only their program changed.
fn rcbs_spellings(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut seen_download = false;
    args.into_iter()
        .map(|a| {
            if seen_download {
                match a.to_str() {
                    Some("-config") => return "--properties".into(),
                    Some("-verify") => return "--verify".into(),
                    _ => {}
                }
            }
            seen_download |= a == "download";
            a
        })
        .collect()
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Ingest(a) => ingest::run(&cli, a).await,
        Command::Recordings(c) => recordings::run(&cli, c).await,
        Command::Mux(a) => mux::run(&cli, a).await,
        Command::Decrypt(a) => decrypt::run(&cli, a).await,
        Command::Encrypt(a) => encrypt::run(&cli, a).await,
        Command::Rules(c) => rules::run(&cli, c).await,
        Command::Run(a) => run::run(&cli, a).await,
        Command::Backup(a) => backup::run(&cli, a).await,
        Command::Purge(a) => purge::run(&cli, a).await,
        Command::Jobs(c) => jobs::run(&cli, c).await,
        Command::Restore(a) => restore::run(&cli, a).await,
        Command::Check(a) => check::run(&cli, a).await,
        Command::Catalog(c) => catalog::run(&cli, c).await,
        Command::Serve(a) => serve::run(&cli, a).await,
        Command::Download(a) => download::run(&cli, a).await,
        Command::Import(c) => import::run(&cli, c).await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rcbs_spellings_follow_download_only() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            super::rcbs_spellings(args(&["reclife", "download", "-config", "c.properties", "-verify", "s3"])),
            args(&["reclife", "download", "--properties", "c.properties", "--verify", "s3"])
        );
        assert_eq!(super::rcbs_spellings(args(&["reclife", "-config", "x"])), args(&["reclife", "-config", "x"]));
    }
}
