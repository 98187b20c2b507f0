//! `reclife rules …`: the rules every node shares, kept in the catalog
//! (`lifecycle::rule_store`): `apply FILE…`, `export [NAME] [--out DIR]`, `delete NAME`,
//! `list`, `show NAME`, the operators' `enable|disable|reset NAME` overrides; and
//! `validate [DIR]`, which checks rule files without storing them.

use super::Cli;
use anyhow::{bail, Context as _, Result};
use reclife::lifecycle::rule_store::{self, Outcome};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Check every rule file; report each problem with its file and line. Stores nothing.
    #[command(after_help = "Example:\n  reclife rules validate rules/")]
    Validate {
        /// Rules folder (default: config rules_dir).
        dir: Option<PathBuf>,
        /// The rule count and problems as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Store rule files in the catalog, shared by every node on it. Every file is validated
    /// first (backup locations probed); if any has a problem, none is stored. A rule whose text
    /// changed becomes its next version (the old one is kept); the same text is a no-op.
    #[command(after_help = "Examples:\n  reclife rules apply rules/daily-backup.toml\n  \
                            reclife rules apply            # every file of rules_dir")]
    Apply {
        /// Rule files (default: every *.toml of config rules_dir).
        files: Vec<PathBuf>,
    },
    /// Write the catalog's rules as rule files that `apply` accepts back (without --out: their
    /// text on stdout).
    #[command(after_help = "Example:\n  reclife rules export --out /tmp/rules")]
    Export {
        /// One rule (default: every rule).
        name: Option<String>,
        /// Folder to write `<rule-name>.toml` files into (created if missing; files of the same
        /// name are replaced).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Delete a rule from the catalog: every node stops it at its next poll. Its versions are
    /// kept, and a tombstone names who deleted it and when.
    Delete {
        /// The rule's name.
        name: String,
    },
    /// Run a rule on the nodes it names, whatever its text says (until reset). Refused when the
    /// rule does not validate with its backup locations probed.
    Enable {
        /// The rule's name.
        name: String,
    },
    /// Skip a rule's fires on every node sharing the catalog (until reset).
    Disable {
        /// The rule's name.
        name: String,
    },
    /// Drop the enable/disable override: the rule's own `enabled` rules again.
    Reset {
        /// The rule's name.
        name: String,
    },
    /// List the catalog's rules (with operators' overrides applied), their versions, and
    /// whether this node runs them.
    List {
        /// One JSON object per rule.
        #[arg(long)]
        json: bool,
    },
    /// One rule: its text and every version (who, when, from where), tombstones included.
    Show {
        /// The rule's name.
        name: String,
        /// The rule and its versions as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    // Validating rule files reads no data: it needs no data directory.
    if let Cmd::Validate { dir, json } = cmd {
        return validate(&cli.load_config()?, dir, *json);
    }
    let ctx = cli.context()?;
    let cfg = &ctx.config;
    let catalog = ctx.catalog.as_ref();
    let by = || format!("cli:{}", super::recordings::os_user());
    match cmd {
        Cmd::Validate { .. } => unreachable!("handled above"),
        Cmd::Apply { files } => {
            let files = if files.is_empty() {
                let (found, problems) =
                    reclife::lifecycle::rules::load_dir(&cfg.rules_dir, cfg.default_backup_location.as_deref(), false);
                if !problems.is_empty() {
                    for p in &problems {
                        eprintln!("{p}");
                    }
                    eprintln!("nothing stored: {} problem(s) in {}", problems.len(), cfg.rules_dir.display());
                    return Ok(ExitCode::FAILURE);
                }
                found.into_iter().filter_map(|r| r.file).collect()
            } else {
                files.clone()
            };
            // Every file is read and validated before any is stored.
            let mut texts = Vec::new();
            let mut problems = Vec::new();
            let mut names: std::collections::BTreeMap<String, PathBuf> = Default::default();
            for f in &files {
                let text = std::fs::read_to_string(f).with_context(|| format!("{}: cannot read", f.display()))?;
                match reclife::lifecycle::rules::parse_rule(f, &text, cfg.default_backup_location.as_deref(), true) {
                    Ok(r) => {
                        if let Some(other) = names.insert(r.name.clone(), f.clone()) {
                            bail!("{}: rule name {:?} is also used by {}", f.display(), r.name, other.display());
                        }
                        for w in r.warnings() {
                            eprintln!("{w}");
                        }
                        texts.push((f.clone(), text));
                    }
                    Err(mut p) => problems.append(&mut p),
                }
            }
            if !problems.is_empty() {
                for p in &problems {
                    eprintln!("{p}");
                }
                eprintln!("nothing stored: {} problem(s)", problems.len());
                return Ok(ExitCode::FAILURE);
            }
            for (f, text) in texts {
                let a = rule_store::apply(
                    catalog,
                    &f,
                    &text,
                    cfg.default_backup_location.as_deref(),
                    false,
                    &by(),
                    ctx.clock.now(),
                )?;
                let what = match a.outcome {
                    Outcome::Created => "created",
                    Outcome::Updated => "updated",
                    Outcome::Unchanged => "unchanged",
                };
                println!("rule {}: {what}, version {} ({})", a.rule.name, a.version.version, f.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Export { name, out } => {
            let mut live: Vec<rule_store::Version> =
                rule_store::heads(catalog)?.into_iter().filter(|v| !v.deleted()).collect();
            if let Some(n) = name {
                live.retain(|v| &v.name == n);
                if live.is_empty() {
                    bail!("no rule named {n} in the catalog");
                }
            }
            match out {
                None => {
                    for (i, v) in live.iter().enumerate() {
                        if i > 0 {
                            println!();
                        }
                        print!("{}", v.text.as_deref().unwrap_or_default());
                    }
                }
                Some(dir) => {
                    std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
                    let mut used = std::collections::BTreeSet::new();
                    for v in &live {
                        let mut file = rule_store::file_name(&v.name);
                        let mut n = 2;
                        while !used.insert(file.clone()) {
                            file = rule_store::file_name(&format!("{} {n}", v.name));
                            n += 1;
                        }
                        let path = dir.join(&file);
                        write_atomic(&path, v.text.as_deref().unwrap_or_default())?;
                        println!("{}\tversion {}\t{}", v.name, v.version, path.display());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Delete { name } => {
            let v = rule_store::delete(catalog, name, &by(), ctx.clock.now())?;
            println!("rule {name}: deleted (version {} is its tombstone, by {})", v.version, v.by);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::List { json } => {
            let (stored, problems) = rule_store::load(catalog, cfg.default_backup_location.as_deref())?;
            let (mut rules, versions): (Vec<_>, Vec<_>) = stored.into_iter().unzip();
            reclife::lifecycle::rules::apply_overrides(catalog, &mut rules)?;
            for p in &problems {
                eprintln!("{p}");
            }
            if rules.is_empty() && !*json {
                eprintln!("no rules in the catalog (reclife rules apply FILE… stores some)");
            }
            for (r, v) in rules.iter().zip(&versions) {
                let here = r.runs_on(cfg.node_path.as_deref());
                if *json {
                    println!(
                        "{}",
                        serde_json::json!({ "rule": r, "version": v.version, "by": v.by, "at": v.at, "runs_here": here })
                    );
                } else {
                    let tasks: Vec<String> = r
                        .tasks
                        .iter()
                        .map(|t| format!("{:?} {}", t.op, t.filter.recording_type).to_lowercase())
                        .collect();
                    println!(
                        "{}\tv{}\t{}\t{}\t{}\t{}",
                        r.name,
                        v.version,
                        if r.enabled { "enabled" } else { "disabled" },
                        r.schedule,
                        if here { "runs here" } else { "other node" },
                        tasks.join(", ")
                    );
                }
            }
            Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Show { name, json } => {
            let history = rule_store::history(catalog, name)?;
            if history.is_empty() {
                bail!("no rule named {name} in the catalog");
            }
            if *json {
                println!("{}", serde_json::json!({ "name": name, "versions": history }));
            } else {
                for v in &history {
                    let what = if v.deleted() { "deleted" } else { "stored" };
                    println!("# version {}: {what} by {} at {} from {}", v.version, v.by, v.at.to_rfc3339(), v.source);
                }
                match history.last().and_then(|v| v.text.as_deref()) {
                    Some(t) => print!("{t}"),
                    None => println!("# the rule is deleted"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Enable { name } | Cmd::Disable { name } | Cmd::Reset { name } => {
            let on = match cmd {
                Cmd::Enable { .. } => Some(true),
                Cmd::Disable { .. } => Some(false),
                _ => None,
            };
            let r = reclife::lifecycle::rules::set_enabled(&ctx, name, on).await?;
            let how = if on.is_some() { "override" } else { "as the rule says" };
            println!("rule {}: {} ({how})", r.name, if r.enabled { "enabled" } else { "disabled" });
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `text` to `path` through a temporary file in its folder, fsynced, then renamed.
fn write_atomic(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".reclife-rule-")
        .tempfile_in(dir)
        .with_context(|| format!("{}: cannot write", dir.display()))?;
    tmp.write_all(text.as_bytes()).and_then(|_| tmp.as_file().sync_all())?;
    tmp.persist(path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

fn validate(cfg: &reclife::config::Config, dir: &Option<PathBuf>, json: bool) -> Result<ExitCode> {
    let dir = dir.clone().unwrap_or_else(|| cfg.rules_dir.clone());
    let (mut rules, mut problems) =
        reclife::lifecycle::rules::load_dir(&dir, cfg.default_backup_location.as_deref(), true);
    // What the file alone cannot tell: the import sources its tasks name are this node's.
    rules.retain(|r| match reclife::lifecycle::runner::check_config(cfg, &r.tasks, false) {
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
    if json {
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
