//! `reclife mux`: the recording muxer (GIR's Recording Muxer Script).

use super::{Cli, EXIT_PARTIAL};
use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use reclife::muxer::{self, Muxer, MuxerType, PassReport, Window};
use serde_json::json;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  reclife mux                                   # poll every min_poll_interval seconds, for ever
  reclife mux --once                            # one pass over the window, then exit
  reclife mux --since 2025-06-01T00:00:00Z --until 2025-06-02T00:00:00Z   # batch: calls that ended then
  reclife mux --once --muxer-id 0 --total-muxers 2 --muxer-type primary
  reclife mux --gir-config /opt/genesys/muxer/muxer.cfg   # GIR's own muxer.cfg, as it is
  reclife mux --status                          # muxed count and failed pairs with reasons
  reclife mux --retry SCREEN_ID                 # forget a pair's failures so it is tried again

Exit status: 0 success; 1 error; 3 the pass finished, but some pairs failed.

With muxer.call_recording_query_string set (GIR's batch mode, e.g. \"userName=agent1&userData=
SRSScreenRecordingStateStarted\"), `reclife mux` makes one pass over the calls it selects and
exits; muxer.call_recording_extra_query_string narrows every window.")]
pub struct Args {
    /// Run one pass over the polling window, then exit.
    #[arg(long, conflicts_with_all = ["status", "retry"])]
    pub once: bool,
    /// Batch mode: calls that ended at or after this time (RFC 3339 or YYYY-MM-DD); needs --until.
    #[arg(long, value_parser = super::parse_time, requires = "until", conflicts_with_all = ["status", "retry"])]
    pub since: Option<DateTime<Utc>>,
    /// Batch mode: calls that ended before this time.
    #[arg(long, value_parser = super::parse_time, requires = "since")]
    pub until: Option<DateTime<Utc>>,
    /// Print what the muxer has done and which pairs failed, then exit.
    #[arg(long)]
    pub status: bool,
    /// With --status: list muxed pairs (default: failed ones).
    #[arg(long, requires = "status")]
    pub muxed: bool,
    /// With --status: pairs per page.
    #[arg(long, requires = "status", default_value_t = 50)]
    pub limit: usize,
    /// With --status: the page after this screen recording id (printed as the next page's key).
    #[arg(long, requires = "status", value_name = "SCREEN_ID")]
    pub after: Option<String>,
    /// Forget the failures of this screen recording's pair (repeatable).
    #[arg(long, value_name = "SCREEN_ID")]
    pub retry: Vec<String>,
    /// JSON output (one object).
    #[arg(long)]
    pub json: bool,
    /// GIR's Recording Muxer Script configuration (muxer.cfg, INI) as it is: its options override
    /// the node's [muxer] section; options that do not apply here are listed with the reason.
    #[arg(long, value_name = "MUXER_CFG")]
    pub gir_config: Option<std::path::PathBuf>,
    /// Overrides muxer.muxer_id (GIR --muxer-id).
    #[arg(long, allow_negative_numbers = true)]
    pub muxer_id: Option<i64>,
    /// Overrides muxer.total_muxers (GIR --total-muxers).
    #[arg(long)]
    pub total_muxers: Option<u32>,
    /// Overrides muxer.muxer_type: primary or backup (GIR --muxer-type).
    #[arg(long, value_parser = parse_type)]
    pub muxer_type: Option<MuxerType>,
}

fn parse_type(s: &str) -> Result<MuxerType, String> {
    match s.to_ascii_lowercase().as_str() {
        "primary" => Ok(MuxerType::Primary),
        "backup" => Ok(MuxerType::Backup),
        _ => Err(format!("{s:?} is not primary or backup")),
    }
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let mut ctx = cli.context()?;
    let m = &mut ctx.config.muxer;
    if let Some(path) = &a.gir_config {
        let mapped = muxer::gir_config::apply(path, m)?;
        if !cli.quiet {
            let applied = mapped.iter().filter(|o| o.ignored.is_none()).count();
            eprintln!("{}: {applied} option(s) applied", path.display());
            for o in mapped.iter().filter(|o| o.ignored.is_some()) {
                eprintln!("  {} not applied: {}", o.option, o.ignored.unwrap_or_default());
            }
        }
    }
    if let Some(id) = a.muxer_id {
        m.muxer_id = id;
    }
    if let Some(t) = a.total_muxers {
        m.total_muxers = Some(t);
    }
    if let Some(t) = a.muxer_type {
        m.muxer_type = t;
    }
    if a.status || !a.retry.is_empty() {
        for id in &a.retry {
            let catalog = ctx.catalog.clone();
            let id2 = id.clone();
            let existed = tokio::task::spawn_blocking(move || muxer::state::reset(catalog.as_ref(), &id2)).await??;
            println!("{id}: {}", if existed { "failures forgotten; it will be tried again" } else { "no record" });
        }
        if a.status {
            print_status(&ctx, a)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mx = Muxer::new(&ctx)?;
    if mx.is_batch() {
        // GIR's batch mode: the query string selects the calls; one pass, then exit.
        if a.since.is_some() {
            super::usage!("muxer.call_recording_query_string is set and selects the calls itself: drop --since/--until (or put startTime/endTime in the query string)");
        }
        let bar = pass_progress(cli.quiet);
        let r = mx.batch_pass(&ctx, &bar).await.context("muxer batch pass")?.unwrap_or_default();
        return Ok(print_report(&r, a.json));
    }
    if let (Some(since), Some(until)) = (a.since, a.until) {
        super::check_range(Some(since), Some(until), ("--since", "--until"))?;
        let bar = pass_progress(cli.quiet);
        let r = mx.pass_with(&ctx, Window { from: since, to: until }, &bar).await.context("muxer pass")?;
        return Ok(print_report(&r, a.json));
    }
    if a.once {
        let w = Window::polling(&ctx.config.muxer, ctx.clock.now());
        let bar = pass_progress(cli.quiet);
        let r = mx.pass_with(&ctx, w, &bar).await.context("muxer pass")?;
        return Ok(print_report(&r, a.json));
    }
    eprintln!("muxer polling every {} s; Ctrl-C stops it", ctx.config.muxer.min_poll_interval.max(1));
    mx.serve(&ctx, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// A pass's progress: the bar (pairs, seconds of media) and log lines (pairs and the bytes
/// written, with `-v`).
fn pass_progress(quiet: bool) -> reclife::progress::Tee {
    use std::sync::Arc;
    reclife::progress::Tee(vec![
        Arc::new(super::progress::Bar::new(quiet, "mux")),
        Arc::new(reclife::progress::LogLines::new("mux pass", std::time::Duration::from_secs(10))),
    ])
}

fn print_report(r: &PassReport, as_json: bool) -> ExitCode {
    for f in &r.failed {
        eprintln!("failed {} (call {}, attempt {}): {}", f.screen_id, f.call_id, f.attempts, f.reason);
    }
    let s = &r.scan;
    if as_json {
        let v = json!({
            "windows": r.windows.iter().map(|w| json!({"from": w.from.to_rfc3339(), "to": w.to.to_rfc3339()})).collect::<Vec<_>>(),
            "calls": s.calls, "otherShard": s.other_shard, "alreadyMuxed": s.already_muxed,
            "userMismatch": s.user_mismatch, "unusable": s.unusable, "busy": r.busy, "givenUp": r.given_up,
            "bytes": r.bytes(),
            "muxed": r.muxed.iter().map(|m| json!({"callId": m.call_id, "screenId": m.screen_id, "output": m.output, "encrypted": m.encrypted, "bytes": m.bytes})).collect::<Vec<_>>(),
            "failed": r.failed.iter().map(|f| json!({"callId": f.call_id, "screenId": f.screen_id, "reason": f.reason, "attempts": f.attempts})).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        for m in &r.muxed {
            println!(
                "muxed {} (call {}) -> {} ({} bytes){}",
                m.screen_id,
                m.call_id,
                m.output,
                m.bytes,
                if m.encrypted { " [sealed]" } else { "" }
            );
        }
        println!(
            "muxed {}, failed {}, already muxed {}, busy elsewhere {}, given up {}, user mismatch {}, other shard {}, calls {}, bytes written {}",
            r.muxed.len(),
            r.failed.len(),
            s.already_muxed,
            r.busy,
            r.given_up,
            s.user_mismatch,
            s.other_shard,
            s.calls,
            r.bytes()
        );
        // Which calls were looked at: a pass that finds nothing says where it looked.
        let windows: Vec<String> =
            r.windows.iter().map(|w| format!("{} to {}", super::show_time(w.from), super::show_time(w.to))).collect();
        println!(
            "searched calls that ended from {} ([muxer] window_past and window_past_older_than, or --since/--until)",
            if windows.is_empty() { "nowhere".to_string() } else { windows.join(", and from ") }
        );
    }
    if r.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PARTIAL)
    }
}

fn print_status(ctx: &reclife::config::Context, a: &Args) -> Result<()> {
    use muxer::state::{self, PairStatus};
    let st = muxer::status(ctx)?;
    let only = if a.muxed { PairStatus::Muxed } else { PairStatus::Failed };
    let (page, next) = state::page(ctx.catalog.as_ref(), a.after.as_deref(), a.limit, Some(only))?;
    if a.json {
        let pairs: Vec<_> = page
            .iter()
            .map(|r| {
                json!({"screenId": r.screen_id, "callId": r.call_id, "status": r.status, "attempts": r.attempts,
                       "givenUp": r.given_up(st.max_retries), "reason": r.reason, "output": r.output,
                       "at": r.at.to_rfc3339()})
            })
            .collect();
        let key = if a.muxed { "muxedPairs" } else { "failed" };
        println!(
            "{}",
            json!({"muxed": st.muxed, "failedTotal": st.failed.len(), "maxRetries": st.max_retries, key: pairs, "next": next})
        );
        return Ok(());
    }
    println!("muxed {}, failed {}", st.muxed, st.failed.len());
    for r in &page {
        match r.status {
            PairStatus::Muxed => println!(
                "muxed {} (call {}) -> {} at {}",
                r.screen_id,
                r.call_id,
                r.output.as_deref().unwrap_or(""),
                super::show_time(r.at)
            ),
            PairStatus::Failed => println!(
                "failed {} (call {}): attempt {}/{}{}: {}",
                r.screen_id,
                r.call_id,
                r.attempts,
                st.max_retries,
                if r.given_up(st.max_retries) { ", given up" } else { "" },
                r.reason.as_deref().unwrap_or("")
            ),
        }
    }
    if let Some(n) = next {
        println!("more: reclife mux --status{} --after {n}", if a.muxed { " --muxed" } else { "" });
    }
    Ok(())
}
