//! `reclife import`: run an import source (`genesys-cloud --source NAME [--once]`), show or
//! set its cursor, list and edit its retry buffer, show its last batch and alerts.

use super::{Cli, EXIT_PARTIAL};
use anyhow::Result;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Import Genesys Cloud voice recordings from a configured source ([import.NAME]).
    #[command(
        after_help = "Examples:\n  reclife import genesys-cloud --source gc --once\n  reclife import genesys-cloud --source gc        # every interval_seconds until stopped"
    )]
    GenesysCloud(RunArgs),
    /// Show the cursor (id;yyyy.MM.dd HH:mm:ss.SSS), or set it with --set.
    Cursor {
        /// The source's name ([import.NAME] in the configuration).
        #[arg(long)]
        source: String,
        /// The new cursor, e.g. ";2023.02.02 07:00:00.000" (the id may be empty).
        #[arg(long)]
        set: Option<String>,
    },
    /// The retry buffer: list, add, remove.
    #[command(subcommand)]
    Retry(RetryCmd),
    /// The last batch's report and the source's alerts.
    Status {
        /// The source's name ([import.NAME] in the configuration).
        #[arg(long)]
        source: String,
        /// One JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The source's name ([import.NAME] in the configuration).
    #[arg(long)]
    pub source: String,
    /// One run, then exit (else a run every interval_seconds until SIGTERM / Ctrl-C).
    #[arg(long)]
    pub once: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum RetryCmd {
    List {
        /// The source's name ([import.NAME] in the configuration).
        #[arg(long)]
        source: String,
    },
    Add {
        /// The source's name ([import.NAME] in the configuration).
        #[arg(long)]
        source: String,
        /// The Genesys Cloud conversation id.
        conversation_id: String,
    },
    Remove {
        /// The source's name ([import.NAME] in the configuration).
        #[arg(long)]
        source: String,
        /// The Genesys Cloud conversation id.
        conversation_id: String,
    },
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    let ctx = cli.context_create()?;
    match cmd {
        Cmd::GenesysCloud(a) => {
            let mut code = ExitCode::SUCCESS;
            loop {
                let bar = super::progress::Bar::new(cli.quiet, "import");
                let report = reclife::import::run_once(&ctx, &a.source, &bar).await?;
                reclife::progress::Progress::finish(&bar);
                if a.json {
                    println!("{}", serde_json::to_string(&report)?);
                } else if let Some(h) = &report.skipped_held_by {
                    println!("import source {}: another process imports it now ({h}); nothing done", a.source);
                } else {
                    println!(
                        "import source {}: {} imported, {} already imported, {} to the retry buffer, {} retried ({} failed again), cursor {}{}",
                        a.source,
                        report.imported(),
                        report.conversations.iter().filter(|c| c.already_imported).count(),
                        report.buffered.len(),
                        report.retried,
                        report.failed,
                        report.cursor_after,
                        if report.more { " (more waiting)" } else { "" }
                    );
                }
                if !report.buffered.is_empty() || report.failed > 0 {
                    code = ExitCode::from(EXIT_PARTIAL);
                }
                if a.once {
                    return Ok(code);
                }
                let pause = ctx.config.import.get(&a.source).map(|c| c.interval()).unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(code),
                }
            }
        }
        Cmd::Cursor { source, set } => {
            let c = match set {
                Some(t) => reclife::import::set_cursor(&ctx, source, t).await?,
                None => reclife::import::cursor(&ctx, source).await?,
            };
            println!("{c}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Retry(RetryCmd::List { source }) => {
            for e in reclife::import::retry_list(&ctx, source).await? {
                println!("{}\t{}\t{}\t{}", e.conversation_id, super::show_time(e.added), e.attempts, e.reason);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Retry(RetryCmd::Add { source, conversation_id }) => {
            reclife::import::retry_add(&ctx, source, conversation_id).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Retry(RetryCmd::Remove { source, conversation_id }) => {
            reclife::import::retry_remove(&ctx, source, conversation_id).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { source, json } => {
            reclife::import::source(&ctx, source)?;
            let last = reclife::import::last_batch(&ctx, source).await?;
            let alerts = reclife::import::alerts(&ctx, source).await?;
            let cursor = reclife::import::cursor(&ctx, source).await?;
            if *json {
                let v = serde_json::json!({"cursor": cursor.to_string(), "last_batch": last, "alerts": alerts});
                println!("{v}");
            } else {
                println!("cursor {cursor}");
                match &last {
                    Some(b) => println!("last batch: {}", b.summary()),
                    None => println!("last batch: none yet"),
                }
                for a in alerts {
                    println!("{} {}: {}", super::show_time(a.at), a.message, a.detail);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
