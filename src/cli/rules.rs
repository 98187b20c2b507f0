//! `reclife rules validate [DIR]` and `reclife rules list [DIR]`.

use super::Cli;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Check every rule file; report each problem with its file and line.
    #[command(after_help = "Example:\n  reclife rules validate rules/")]
    Validate {
        /// Rules folder (default: config rules_dir).
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Run a rule on every node sharing the catalog, whatever its file says (until reset).
    /// Refused when the file does not validate with its backup locations probed.
    Enable { name: String },
    /// Skip a rule's fires on every node sharing the catalog (until reset).
    Disable { name: String },
    /// Drop the enable/disable override: the file's `enabled` rules again.
    Reset { name: String },
    /// List the rules (with operators' overrides applied), and whether this node runs them.
    List {
        dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    let ctx = cli.context()?;
    let cfg = &ctx.config;
    match cmd {
        Cmd::Validate { dir, json } => {
            let dir = dir.clone().unwrap_or_else(|| cfg.rules_dir.clone());
            let (mut rules, mut problems) =
                reclife::lifecycle::rules::load_dir(&dir, cfg.default_backup_location.as_deref(), true);
            // What the file alone cannot tell: the import sources its tasks name are this node's.
            rules.retain(|r| match reclife::lifecycle::runner::check(&ctx, &r.tasks, false) {
                Ok(()) => true,
                Err(e) => {
                    problems.push(reclife::lifecycle::rules::RuleProblem {
                        file: r.file.clone().unwrap_or_default(),
                        line: None,
                        message: format!("rule [{}]: {e}", r.name),
                    });
                    false
                }
            });
            if *json {
                println!("{}", serde_json::json!({ "rules": rules.len(), "problems": problems }));
            } else {
                for p in &problems {
                    eprintln!("{p}");
                }
                for w in rules.iter().flat_map(|r| r.warnings()) {
                    eprintln!("{w}");
                }
                println!("{} rule(s) valid, {} problem(s) in {}", rules.len(), problems.len(), dir.display());
            }
            Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::List { dir, json } => {
            let dir = dir.clone().unwrap_or_else(|| cfg.rules_dir.clone());
            let (mut rules, problems) =
                reclife::lifecycle::rules::load_dir(&dir, cfg.default_backup_location.as_deref(), false);
            reclife::lifecycle::rules::apply_overrides(ctx.catalog.as_ref(), &mut rules)?;
            for p in &problems {
                eprintln!("{p}");
            }
            for r in &rules {
                let here = r.runs_on(cfg.node_path.as_deref());
                if *json {
                    println!("{}", serde_json::json!({ "rule": r, "runs_here": here }));
                } else {
                    let tasks: Vec<String> = r
                        .tasks
                        .iter()
                        .map(|t| format!("{:?} {}", t.op, t.filter.recording_type).to_lowercase())
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        r.name,
                        if r.enabled { "enabled" } else { "disabled" },
                        r.schedule,
                        if here { "runs here" } else { "other node" },
                        tasks.join(", ")
                    );
                }
            }
            Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Enable { name } | Cmd::Disable { name } | Cmd::Reset { name } => {
            let on = match cmd {
                Cmd::Enable { .. } => Some(true),
                Cmd::Disable { .. } => Some(false),
                _ => None,
            };
            let r = reclife::lifecycle::rules::set_enabled(&ctx, name, on).await?;
            let how = if on.is_some() { "override" } else { "as its file says" };
            println!("rule {}: {} ({how})", r.name, if r.enabled { "enabled" } else { "disabled" });
            Ok(ExitCode::SUCCESS)
        }
    }
}
