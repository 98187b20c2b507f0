//! The command line: a thin face over the library. One subcommand per file; each builds a
//! [`Context`](reclife::config::Context) and calls the same library functions the scheduler
//! and the API call.

mod backup;
mod catalog;
mod check;
mod config_cmd;
mod decrypt;
mod download;
mod encrypt;
mod file_batch;
mod import;
mod ingest;
mod init;
mod job_run;
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
use reclife::config::{Clock, Config, ConfigError, Context, DataDirMode};
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

Data directory: --data-dir, else RECLIFE_DATA_DIR, else the config's data_dir, else ./reclife-data
(relative to the current folder: give cron jobs and services an absolute path). Only ingest, run,
serve, import, restore, catalog migrate and init create it (0700); every other command refuses a
data directory with no catalog, naming it, with exit status 2.

Times: every time option (--now, --from, --to, --since, --until, …) takes RFC 3339
(2025-06-25T03:00:00Z) or a date (2025-06-25: midnight UTC).

Exit status: 0 success; 1 error; 2 usage error (bad arguments, also those found after parsing,
such as --from after --to or a data directory with no catalog); 3 finished, but some items were
set aside; 130 interrupted (Ctrl-C, SIGINT).";

/// A mistake in what the user asked for, found after the command line was parsed (a data
/// directory with no catalog, `--from` after `--to`, a missing config file): exit status 2,
/// like the errors clap finds itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Fails with a [`UsageError`] (exit status 2).
macro_rules! usage {
    ($($t:tt)*) => { return Err($crate::cli::UsageError(format!($($t)*)).into()) };
}
pub(crate) use usage;

/// The heading global options are listed under in every command's help.
const GLOBAL: &str = "Global options";

#[derive(Parser, Debug)]
#[command(name = "reclife", version, about = "Lifecycle engine for contact-center call and screen recordings", after_help = EXAMPLES)]
pub struct Cli {
    /// Data directory: catalog.db, media/, audit/ [default: the config's data_dir, else
    /// ./reclife-data].
    #[arg(long = "data-dir", global = true, env = "RECLIFE_DATA_DIR", value_name = "DIR", help_heading = GLOBAL)]
    pub data_dir_arg: Option<PathBuf>,
    /// Configuration file (TOML); see deploy/reclife.example.toml.
    #[arg(long, global = true, env = "RECLIFE_CONFIG", value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Fix "now" (RFC 3339 or YYYY-MM-DD, UTC) for every age and time computation.
    #[arg(long, global = true, env = "RECLIFE_NOW", value_parser = parse_time, value_name = "TIME", help_heading = GLOBAL)]
    pub now: Option<DateTime<Utc>>,
    /// More logging (-v info, -vv debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// No progress bars.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
    /// Log lines as text, or as one JSON object per line (for log shippers).
    #[arg(long, global = true, env = "RECLIFE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, help_heading = GLOBAL)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a data directory (0700) and its catalog; other commands then find it.
    Init(init::Args),
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
    /// The configuration file: check every section (unknown keys, bad values) with line numbers.
    #[command(subcommand)]
    Config(config_cmd::Cmd),
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

/// The one parser of every time option: RFC 3339, or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    reclife::model::parse_time_str(s).ok_or_else(|| format!("{s:?} is not a time (RFC 3339 or YYYY-MM-DD)"))
}

/// A time as the CLI prints it: RFC 3339 in UTC to the second.
pub fn show_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `--from` after (or at) `--to` selects nothing: a usage error, not an empty answer.
pub fn check_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, names: (&str, &str)) -> Result<()> {
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            usage!("{} {} is not before {} {}: the range is empty", names.0, show_time(f), names.1, show_time(t));
        }
    }
    Ok(())
}

impl Cli {
    /// Loads the configuration only (commands that need no data directory). A config file
    /// that does not exist is a usage error.
    pub fn load_config(&self) -> Result<Config> {
        Ok(match &self.config {
            Some(p) if !p.exists() => usage!("config file {} does not exist", p.display()),
            Some(p) => Config::load(p)?,
            None => Config::default(),
        })
    }

    /// The data directory: `--data-dir` (or `RECLIFE_DATA_DIR`), else the config's
    /// `data_dir`, else `./reclife-data`.
    pub fn data_dir(&self, config: &Config) -> PathBuf {
        self.data_dir_arg.clone().or_else(|| config.data_dir.clone()).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// Loads the configuration and opens an existing data directory (one with its catalog);
    /// nothing is created. A data directory with no catalog is a usage error naming it.
    pub fn context(&self) -> Result<Context> {
        self.open(DataDirMode::Existing)
    }

    /// Loads the configuration and opens the data directory, creating it (0700) and its
    /// catalog if missing: for the commands that bring data in.
    pub fn context_create(&self) -> Result<Context> {
        self.open(DataDirMode::Create)
    }

    fn open(&self, mode: DataDirMode) -> Result<Context> {
        let config = self.load_config()?;
        let dir = self.data_dir(&config);
        if mode == DataDirMode::Create && self.data_dir_arg.is_none() && config.data_dir.is_none() && !dir.exists() {
            eprintln!(
                "note: creating the data directory {DEFAULT_DATA_DIR} in the current folder (no --data-dir, RECLIFE_DATA_DIR or data_dir in the config)"
            );
        }
        let clock = self.now.map(Clock::fixed).unwrap_or_else(Clock::system);
        match Context::open_mode(&dir, config, clock, mode) {
            Ok(ctx) => Ok(ctx),
            Err(e @ ConfigError::NoCatalog { .. }) => Err(UsageError(e.to_string()).into()),
            Err(e) => Err(e).with_context(|| format!("opening data directory {}", dir.display())),
        }
    }
}

/// The data directory when nothing names one.
const DEFAULT_DATA_DIR: &str = "./reclife-data";

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
            eprintln!("error: {}", error_text(&e));
            if e.chain().any(|c| c.is::<UsageError>()) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// An error and its causes on one line, `outer: inner: …`, each text once: a cause whose
/// text the line already holds (an error that prints its source and also returns it from
/// `source()`, as io errors wrapped by libraries often do) is not repeated.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
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
        Command::Init(a) => init::run(&cli, a).await,
        Command::Config(c) => config_cmd::run(&cli, c).await,
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
    /// Every argument of every command says what it is for, and the global options are listed
    /// apart from each command's own.
    #[test]
    fn every_argument_has_help_and_global_options_are_apart() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}: no help text"));
                }
                if a.is_global_set() && a.get_help_heading() != Some(super::GLOBAL) {
                    missing.push(format!("{path} {id}: global, not under {:?}", super::GLOBAL));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut cmd = <super::Cli as clap::CommandFactory>::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "reclife", &mut missing);
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

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
