//! `reclife config check`: reads the configuration file as every command does (unknown keys in
//! any section, `[download]` included, are errors with their line), then checks what the
//! commands that use a section check only when they run: `[download]` values, each
//! `[import.NAME]` source, the media location, the rules folder and its rules, the users
//! file (and its mode), the keys folder. Each problem is printed as `FILE:LINE: message`.

use super::{usage, Cli};
use anyhow::Result;
use reclife::config::{key_line, Config};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Check every section of the configuration file (--config or RECLIFE_CONFIG); problems
    /// are printed as FILE:LINE: message.
    #[command(after_help = "Exits 0 when the file is good (warnings included), 1 when something is wrong.

Example:
  reclife --config /etc/reclife/reclife.toml config check")]
    Check,
}

/// One finding: where (a line of the config file, or another file) and what.
struct Finding {
    file: PathBuf,
    line: Option<usize>,
    message: String,
    warning: bool,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        write!(f, ": {}{}", if self.warning { "warning: " } else { "" }, self.message)
    }
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Check => check(cli),
    }
}

fn check(cli: &Cli) -> Result<ExitCode> {
    let Some(path) = &cli.config else { usage!("config check needs a file: give --config FILE (or RECLIFE_CONFIG)") };
    let cfg = cli.load_config()?;
    let text = std::fs::read_to_string(path)?;
    let mut found = Vec::new();
    let mut add = |at: &[&str], message: String, warning: bool| {
        found.push(Finding { file: path.clone(), line: key_line(&text, at), message, warning })
    };
    check_sections(&cfg, &mut add);
    // The rules folder: one problem per rule file, with the rule file's own line.
    let mut rule_problems = Vec::new();
    if cfg.rules_dir.is_dir() {
        let (_, problems) =
            reclife::lifecycle::rules::load_dir(&cfg.rules_dir, cfg.default_backup_location.as_deref(), false);
        rule_problems = problems;
    } else {
        add(&["rules_dir"], format!("rules_dir {} is not a folder", cfg.rules_dir.display()), false);
    }
    let errors = found.iter().filter(|f| !f.warning).count() + rule_problems.len();
    for f in &found {
        println!("{f}");
    }
    for p in &rule_problems {
        println!("{p}");
    }
    println!("{}: {} problem(s)", path.display(), errors);
    Ok(if errors == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The checks each section's own command makes when it runs.
fn check_sections(cfg: &Config, add: &mut impl FnMut(&[&str], String, bool)) {
    if !cfg.download.0.is_empty() {
        let mut s = reclife::download::options::Settings::default();
        let res = s.apply_toml(&cfg.download).and_then(|()| s.finish());
        if let Err(e) = res {
            // The message names the key; point at it when it is one.
            let msg = e.to_string();
            let key = cfg.download.0.keys().find(|k| msg.contains(&format!("[download] {k}:")));
            match key {
                Some(k) => add(&["download", k], msg, false),
                None => add(&["download"], msg, false),
            }
        }
    }
    for (name, src) in &cfg.import {
        if let Err(e) = src.validate(name) {
            add(&["import", name], e.to_string(), false);
        }
    }
    if let Some(uri) = &cfg.media_location {
        if let Err(e) = reclife::storage::Location::parse(uri) {
            add(&["media_location"], e.to_string(), false);
        }
    }
    if let Some(uri) = &cfg.default_backup_location {
        if let Err(e) = reclife::storage::Location::parse(uri) {
            add(&["default_backup_location"], e.to_string(), false);
        }
    }
    if let Some(dir) = &cfg.keys_dir {
        if !dir.is_dir() {
            add(&["keys_dir"], format!("keys_dir {} is not a folder", dir.display()), false);
        }
    }
    if let Some(users) = &cfg.api.users_file {
        match reclife::api::auth::Users::load(users, &cfg.api.ops_users) {
            Ok(_) => {
                if let Some(w) = reclife::api::auth::users_file_mode_warning(users) {
                    add(&["api", "users_file"], w, true);
                }
            }
            Err(e) => add(&["api", "users_file"], e.to_string(), false),
        }
    }
    if let Some(dir) = &cfg.data_dir {
        if !dir.join("catalog.db").is_file() && cfg.catalog.is_none() {
            add(
                &["data_dir"],
                format!("data_dir {} holds no catalog yet (reclife init creates it)", dir.display()),
                true,
            );
        }
    }
}
