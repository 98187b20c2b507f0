//! `reclife recordings …`: list, show, export, hold, unhold, label, unlabel.

use super::parse_time;
use super::Cli;
use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use reclife::catalog::{CatalogExt, HoldOutcome, Query, Row};
use reclife::model::Kind;
use serde_json::json;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// List recordings matching filters, in start-time order.
    #[command(
        after_help = "Examples:\n  reclife recordings list --type voice --from 2025-01-01 --to 2025-01-02\n  reclife recordings list --held --json\n  reclife recordings list --attached CustomerSegment=gold --agent agent1000"
    )]
    List(ListArgs),
    /// Print the stored metadata document; a hold (who, when, why, its history) is added as the
    /// top-level `reclifeHold`, as backups archive it.
    Show {
        /// Recording id.
        id: String,
    },
    /// Write each recording's meta-data.json and media files, as stored, into its own folder
    /// `OUT/<recording id>/`; a folder that exists is refused, never overwritten.
    Export {
        /// Recording ids (one folder each).
        #[arg(required = true)]
        ids: Vec<String>,
        /// Folder to write the recordings' folders into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Protect a recording (and, for a call, its screen recordings) from every purge. The hold
    /// records who placed it (your OS user). A recording already held keeps its first hold; a
    /// second one is added to its history.
    Hold {
        /// Recording id.
        id: String,
        /// Why it is held (a case number, a ticket): kept in the hold's history.
        #[arg(long)]
        reason: String,
    },
    /// Remove a hold set with `hold` (a document's nonDelete stays).
    Unhold {
        /// Recording id.
        id: String,
    },
    /// Add a label.
    Label {
        /// Recording id.
        id: String,
        /// The label.
        name: String,
    },
    /// Remove a label.
    Unlabel {
        /// Recording id.
        id: String,
        /// The label.
        name: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// voice or screen.
    #[arg(long = "type")]
    pub kind: Option<Kind>,
    /// Started at or after (RFC 3339 or YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_time)]
    pub from: Option<DateTime<Utc>>,
    /// Started before.
    #[arg(long, value_parser = parse_time)]
    pub to: Option<DateTime<Utc>>,
    /// Ended at or after.
    #[arg(long, value_parser = parse_time)]
    pub ended_after: Option<DateTime<Utc>>,
    /// Ended before.
    #[arg(long, value_parser = parse_time)]
    pub ended_before: Option<DateTime<Utc>>,
    /// Recorded in this region.
    #[arg(long)]
    pub region: Option<String>,
    /// This call type (Inbound, Outbound, Internal, Consult, …).
    #[arg(long)]
    pub call_type: Option<String>,
    /// Has this label (repeatable: all of them).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Has not this label (repeatable).
    #[arg(long = "without-label")]
    pub without_labels: Vec<String>,
    /// Only held recordings.
    #[arg(long, conflicts_with = "not_held")]
    pub held: bool,
    /// Only recordings not held.
    #[arg(long)]
    pub not_held: bool,
    /// Attached data KEY=VALUE (repeatable).
    #[arg(long, value_parser = parse_kv)]
    pub attached: Vec<(String, String)>,
    /// An agent with this user name took part.
    #[arg(long)]
    pub agent: Option<String>,
    /// Only calls with screen recordings.
    #[arg(long, conflicts_with = "no_screen")]
    pub has_screen: bool,
    /// Only calls without screen recordings.
    #[arg(long)]
    pub no_screen: bool,
    /// Partition (repeatable: any of them).
    #[arg(long = "partition")]
    pub partitions: Vec<String>,
    /// Stop after this many.
    #[arg(long)]
    pub limit: Option<u64>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

fn flag(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

impl ListArgs {
    fn query(&self, intervals: u32) -> Query {
        Query {
            kind: self.kind,
            start_from: self.from,
            start_to: self.to,
            stop_from: self.ended_after,
            stop_to: self.ended_before,
            region: self.region.clone(),
            call_type: self.call_type.clone(),
            labels_include: self.labels.clone(),
            labels_exclude: self.without_labels.clone(),
            held: flag(self.held, self.not_held),
            attached: self.attached.clone(),
            agent_user: self.agent.clone(),
            has_screen: flag(self.has_screen, self.no_screen),
            partitions: self.partitions.clone(),
            call_recording_id: None,
            scan_intervals_per_day: intervals,
            ..Query::default()
        }
    }
}

/// A listed row as JSON; with its "Recording Timezone" (`zone`, see
/// [`reclife::import::zone::of_rows`]) its start and stop in that zone too.
fn row_json(r: &Row, zone: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "id": r.id,
        "type": r.kind,
        "startTime": r.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "stopTime": r.stop.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "region": r.region,
        "callType": r.call_type,
        "mediaCount": r.media_count,
        "bytes": r.bytes,
        "held": r.held,
        "labels": r.labels,
        "callRecordingId": r.call_recording_id,
    });
    if let Some(z) = zone {
        v["timezone"] = json!(z);
        v["startTimeLocal"] = json!(reclife::import::zone::show(r.start, z));
        v["stopTimeLocal"] = json!(reclife::import::zone::show(r.stop, z));
    }
    v
}

pub async fn run(cli: &Cli, cmd: &Cmd) -> Result<ExitCode> {
    let ctx = cli.context()?;
    let cat = ctx.catalog.clone();
    match cmd {
        Cmd::List(a) => {
            super::check_range(a.from, a.to, ("--from", "--to"))?;
            super::check_range(a.ended_after, a.ended_before, ("--ended-after", "--ended-before"))?;
            let q = a.query(ctx.config.scan_intervals_per_day);
            let json = a.json;
            let limit = a.limit.unwrap_or(u64::MAX);
            let config = ctx.config.clone();
            tokio::task::spawn_blocking(move || -> Result<()> {
                let stdout = std::io::stdout();
                let mut out = std::io::BufWriter::new(stdout.lock());
                if !json {
                    writeln!(
                        out,
                        "{:<44} {:<6} {:<20} {:<20} {:<6} {:<9} {:>5} {:>10} {:<4} labels",
                        "id", "type", "start (UTC)", "stop (UTC)", "region", "callType", "media", "bytes", "held"
                    )?;
                }
                let mut n = 0u64;
                'pages: for page in cat.scroll(&q, 1000) {
                    let rows = page?.rows;
                    let zones = reclife::import::zone::of_rows(&config, cat.as_ref(), &rows)?;
                    for r in rows {
                        if n >= limit {
                            break 'pages;
                        }
                        n += 1;
                        if json {
                            serde_json::to_writer(&mut out, &row_json(&r, zones.get(&r.id).map(String::as_str)))?;
                            writeln!(out)?;
                        } else {
                            writeln!(
                                out,
                                "{:<44} {:<6} {:<20} {:<20} {:<6} {:<9} {:>5} {:>10} {:<4} {}",
                                r.id,
                                r.kind,
                                r.start.format("%Y-%m-%d %H:%M:%S"),
                                r.stop.format("%Y-%m-%d %H:%M:%S"),
                                r.region.as_deref().unwrap_or("-"),
                                r.call_type.as_deref().unwrap_or("-"),
                                r.media_count,
                                r.bytes,
                                if r.held { "yes" } else { "no" },
                                r.labels.join(",")
                            )?;
                            // Its times in its "Recording Timezone", on a line of their own.
                            let local = zones.get(&r.id).and_then(|z| {
                                let (a, b) =
                                    (reclife::import::zone::show(r.start, z)?, reclife::import::zone::show(r.stop, z)?);
                                Some(format!("  in {z}: start {a}, stop {b}"))
                            });
                            if let Some(l) = local {
                                writeln!(out, "{l}")?;
                            }
                        }
                    }
                }
                out.flush()?;
                Ok(())
            })
            .await??;
        }
        Cmd::Show { id } => match cat.get(id)? {
            Some(e) => {
                println!("{}", reclife::catalog::hold::with_archive_field(e.recording.doc(), &e.hold_state()));
                if e.call_held && e.hold.is_none() && !e.recording.non_delete {
                    eprintln!("note: {id} is held by its call's hold or nonDelete");
                }
            }
            None => bail!("no recording {id}"),
        },
        Cmd::Export { ids, out } => {
            for id in ids {
                let files = reclife::ingest::export_recording(&ctx, id, out).await?;
                for f in files {
                    println!("{}", f.display());
                }
            }
        }
        Cmd::Hold { id, reason } => match cat.hold(id, reason, &os_user(), ctx.clock.now())? {
            HoldOutcome::Placed => println!("held {id}: {reason}"),
            HoldOutcome::AlreadyHeld(h) => println!(
                "{id} was already held since {} by {} ({}): that hold stays in force; this one is added to its history",
                super::show_time(h.at),
                h.by.as_deref().unwrap_or("an unknown user"),
                h.reason
            ),
        },
        Cmd::Unhold { id } => {
            let released = cat.unhold(id, &os_user(), ctx.clock.now())?;
            let e = cat.get(id)?;
            match (released, e) {
                (None, _) => println!("{id} had no hold to release"),
                (Some(_), Some(e)) if e.recording.non_delete => {
                    println!("unheld {id} (its document still says nonDelete: it stays protected)")
                }
                (Some(_), Some(e)) if e.call_held => {
                    println!("unheld {id} (its call is held: it stays protected)")
                }
                (Some(h), _) => println!("unheld {id} (was held for: {})", h.reason),
            }
        }
        Cmd::Label { id, name } => {
            cat.label(id, name)?;
            println!("labelled {id}: {name}");
        }
        Cmd::Unlabel { id, name } => match cat.get(id)? {
            None => bail!("no recording {id}"),
            Some(e) if !e.recording.labels.iter().any(|l| l == name) => {
                println!("{id} has no label {name:?}: nothing changed")
            }
            Some(_) => {
                cat.unlabel(id, name)?;
                println!("unlabelled {id}: {name}");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// Who runs this command, for the holds it places or releases: `$USER`, else `$LOGNAME`, else
/// the name of the process's user id in the password database, else `uid <n>`.
pub(crate) fn os_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() && !v.chars().any(char::is_control) {
                return v;
            }
        }
    }
    // SAFETY: getuid cannot fail; getpwuid_r writes into the buffers given, whose sizes are
    // passed, and `pw_name` points into `buf` only when it reports success.
    unsafe {
        let uid = libc::getuid();
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        if libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found) == 0
            && !found.is_null()
            && !pw.pw_name.is_null()
        {
            if let Ok(name) = std::ffi::CStr::from_ptr(pw.pw_name).to_str() {
                if !name.is_empty() {
                    return name.to_string();
                }
            }
        }
        format!("uid {uid}")
    }
}
