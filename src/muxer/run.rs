//! Passes and the polling loop: scan a window, claim each pair, mux it on the worker pool,
//! record the outcome. Catalog calls run on `spawn_blocking`, decryption and muxing on the
//! rayon pool, media transfers on tokio.

use super::process::{self, Env};
use super::scan::{self, Candidate, ScanCounts, ScanSpec};
use super::shard::Shard;
use super::state::{self, PairRecord};
use super::window::Window;
use super::MuxerError;
use crate::catalog::Query;
use crate::config::Context;
use crate::model::Recording;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use std::sync::Arc;

/// One muxed pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Muxed {
    pub call_id: String,
    pub screen_id: String,
    pub output: String,
    pub encrypted: bool,
    /// The stored output's size.
    pub bytes: u64,
}

/// One pair that failed this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed {
    pub call_id: String,
    pub screen_id: String,
    pub reason: String,
    pub attempts: u32,
}

/// What a pass did.
#[derive(Debug, Default, Clone)]
pub struct PassReport {
    pub windows: Vec<Window>,
    pub scan: ScanCounts,
    pub muxed: Vec<Muxed>,
    pub failed: Vec<Failed>,
    /// Claimed by another process at the time.
    pub busy: u64,
    /// Failed `max_retries` times already; left alone.
    pub given_up: u64,
}

impl PassReport {
    /// Bytes of muxed output stored by this pass.
    pub fn bytes(&self) -> u64 {
        self.muxed.iter().map(|m| m.bytes).sum()
    }
}

enum Outcome {
    Muxed(Muxed),
    Failed(Failed),
    Busy,
    AlreadyMuxed,
    GivenUp,
}

/// A configured muxer: the worker pool, keys and certificates, this process's holder id.
pub struct Muxer {
    env: Arc<Env>,
    shard: Option<Shard>,
    holder: String,
    /// `call_recording_query_string`: the calls of a batch pass.
    batch: Option<Query>,
    /// `call_recording_extra_query_string`: ANDed with every window.
    extra: Option<Query>,
}

impl Muxer {
    /// Checks the `[muxer]` section and loads what every pass needs.
    pub fn new(ctx: &Context) -> Result<Muxer, MuxerError> {
        let cfg = &ctx.config.muxer;
        cfg.validate().map_err(MuxerError::Config)?;
        let shard = Shard::from_config(cfg).map_err(MuxerError::Config)?;
        let batch = cfg.batch_query().map_err(MuxerError::Config)?;
        let extra = cfg.extra_query().map_err(MuxerError::Config)?;
        Ok(Muxer { env: Arc::new(Env::new(ctx)?), shard, holder: state::holder_id(), batch, extra })
    }

    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// The windows of a polling pass at the context's "now".
    pub fn polling_windows(&self, ctx: &Context) -> Vec<Window> {
        let cfg = &ctx.config.muxer;
        Window::polling(cfg, ctx.clock.now()).intervals(cfg)
    }

    /// One pass over `window` (its sub-intervals, oldest first).
    pub async fn pass(&self, ctx: &Context, window: Window) -> Result<PassReport, MuxerError> {
        self.pass_with(ctx, window, &crate::progress::NoProgress).await
    }

    /// [`Muxer::pass`], reporting to `progress`: the true totals first (a counting scan of the
    /// window: pairs, and seconds of media on the output timelines), then one item per pair
    /// handled, with the seconds of media done so far as the message, and the bytes of each
    /// output stored ([`crate::progress::Progress::bytes`]).
    pub async fn pass_with(
        &self,
        ctx: &Context,
        window: Window,
        progress: &dyn crate::progress::Progress,
    ) -> Result<PassReport, MuxerError> {
        let windows = window.intervals(&ctx.config.muxer);
        self.pass_windows(ctx, windows, self.extra.clone(), progress).await
    }

    /// True when `call_recording_query_string` is set: the muxer runs [`Muxer::batch_pass`]
    /// once and stops, as GIR's script exits, instead of polling.
    pub fn is_batch(&self) -> bool {
        self.batch.is_some()
    }

    /// GIR's batch mode: one pass over the calls `call_recording_query_string` selects (its
    /// `startTime`/`endTime`, if any, bound them; no window, no splitting). `None` when the
    /// option is not set.
    pub async fn batch_pass(
        &self,
        ctx: &Context,
        progress: &dyn crate::progress::Progress,
    ) -> Result<Option<PassReport>, MuxerError> {
        let Some(q) = self.batch.clone() else { return Ok(None) };
        let w = Window { from: DateTime::<Utc>::MIN_UTC, to: q.stop_to.unwrap_or(DateTime::<Utc>::MAX_UTC) };
        self.pass_windows(ctx, vec![w], Some(q), progress).await.map(Some)
    }

    async fn pass_windows(
        &self,
        ctx: &Context,
        windows: Vec<Window>,
        filter: Option<Query>,
        progress: &dyn crate::progress::Progress,
    ) -> Result<PassReport, MuxerError> {
        let mut report = PassReport { windows, ..PassReport::default() };
        let (pairs, total_ms) = self.count(ctx, &report.windows, &filter).await?;
        progress.set_total(pairs);
        let total_s = total_ms / 1000;
        progress.message(&format!("0/{total_s} s of media"));
        let done = std::sync::atomic::AtomicU64::new(0);
        let tick = |ms: u64, bytes: u64| {
            let d = done.fetch_add(ms, std::sync::atomic::Ordering::Relaxed) + ms;
            progress.bytes(bytes);
            progress.inc(1);
            progress.message(&format!("{}/{total_s} s of media", d / 1000));
        };
        for w in report.windows.clone() {
            self.pass_interval(ctx, w, &filter, &mut report, &tick).await?;
        }
        progress.finish();
        Ok(report)
    }

    /// Pairs in `windows` that a pass would try, and their output timelines' total length (ms).
    async fn count(&self, ctx: &Context, windows: &[Window], filter: &Option<Query>) -> Result<(u64, u64), MuxerError> {
        let filter = filter.clone();
        let catalog = ctx.catalog.clone();
        let cfg = ctx.config.muxer.clone();
        let region = ctx.config.region.clone();
        let shard = self.shard;
        let windows = windows.to_vec();
        blocking(move || {
            let (mut pairs, mut ms) = (0u64, 0u64);
            for w in windows {
                let spec = ScanSpec {
                    window: w,
                    region: region.clone(),
                    shard,
                    check_username: cfg.check_matching_username,
                    page_size: cfg.pagination,
                    filter: filter.clone(),
                };
                let mut counts = ScanCounts::default();
                scan::scan(catalog.as_ref(), &spec, &mut counts, |batch| {
                    pairs += batch.len() as u64;
                    ms += batch.iter().map(timeline_ms).sum::<u64>();
                    Ok(())
                })?;
            }
            Ok((pairs, ms))
        })
        .await
    }

    async fn pass_interval(
        &self,
        ctx: &Context,
        w: Window,
        filter: &Option<Query>,
        report: &mut PassReport,
        tick: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<(), MuxerError> {
        let filter = filter.clone();
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Candidate>>(1);
        let catalog = ctx.catalog.clone();
        let cfg = ctx.config.muxer.clone();
        let region = ctx.config.region.clone();
        let shard = self.shard;
        let scanner = tokio::task::spawn_blocking(move || {
            let mut counts = ScanCounts::default();
            let spec = ScanSpec {
                window: w,
                region,
                shard,
                check_username: cfg.check_matching_username,
                page_size: cfg.pagination,
                filter,
            };
            scan::scan(catalog.as_ref(), &spec, &mut counts, |batch| {
                // The receiver only goes away when the pass is abandoned.
                let _ = tx.blocking_send(batch);
                Ok(())
            })
            .map(|()| counts)
        });
        let workers = ctx.config.muxer.worker_threads;
        // Pages flow into one stream, so the pool stays busy across page boundaries.
        let candidates =
            futures::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|b| (futures::stream::iter(b), rx)) },
            )
            .flatten();
        let outcomes = candidates
            .map(|c| {
                let ms = timeline_ms(&c);
                self.handle(ctx, c).map(move |o| (o, ms))
            })
            .buffer_unordered(workers);
        futures::pin_mut!(outcomes);
        while let Some((o, ms)) = outcomes.next().await {
            let o = o?;
            tick(ms, if let Outcome::Muxed(m) = &o { m.bytes } else { 0 });
            match o {
                Outcome::Muxed(m) => report.muxed.push(m),
                Outcome::Failed(f) => report.failed.push(f),
                Outcome::Busy => report.busy += 1,
                Outcome::AlreadyMuxed => report.scan.already_muxed += 1,
                Outcome::GivenUp => report.given_up += 1,
            }
        }
        let counts = scanner.await.map_err(|e| MuxerError::Task(e.to_string()))??;
        let s = &mut report.scan;
        s.calls += counts.calls;
        s.other_shard += counts.other_shard;
        s.already_muxed += counts.already_muxed;
        s.user_mismatch += counts.user_mismatch;
        s.unusable += counts.unusable;
        Ok(())
    }

    /// Claims, re-checks, muxes and records one pair.
    async fn handle(&self, ctx: &Context, c: Candidate) -> Result<Outcome, MuxerError> {
        let catalog = ctx.catalog.clone();
        let holder = self.holder.clone();
        let max_retries = ctx.config.muxer.max_retries;
        let lease = ctx.config.muxer.lease_seconds;
        let screen_id = c.screen.id.clone();
        // Claim, then re-read: a pair another process finished between our scan and our
        // claim is seen as muxed here, so it is never muxed twice.
        let claimed = blocking(move || -> Result<Option<Option<Recording>>, MuxerError> {
            if state::get(catalog.as_ref(), &screen_id)?.is_some_and(|r: PairRecord| r.given_up(max_retries)) {
                return Err(MuxerError::GivenUp);
            }
            if !state::claim(catalog.as_ref(), &screen_id, &holder, lease)? {
                return Ok(None);
            }
            Ok(Some(catalog.get(&screen_id)?.map(|e| e.recording)))
        })
        .await;
        let fresh = match claimed {
            Err(MuxerError::GivenUp) => return Ok(Outcome::GivenUp),
            Err(e) => return Err(e),
            Ok(None) => return Ok(Outcome::Busy),
            Ok(Some(None)) => {
                self.release(ctx, &c.screen.id).await?;
                return Ok(Outcome::AlreadyMuxed);
            }
            Ok(Some(Some(s))) => s,
        };
        if super::pairing::is_current(&c.call, &fresh) {
            self.release(ctx, &c.screen.id).await?;
            return Ok(Outcome::AlreadyMuxed);
        }
        let result = process::mux_pair(ctx, &self.env, &c.call, &fresh).await;
        let recorded = self.record(ctx, &c.call.id, &fresh.id, result).await;
        // Released whatever happened; a claim left behind would only expire after lease_seconds.
        let released = self.release(ctx, &c.screen.id).await;
        let outcome = recorded?;
        released?;
        Ok(outcome)
    }

    /// Persists a pair's result: the muxed record, or the failure with its reason.
    async fn record(
        &self,
        ctx: &Context,
        call_id: &str,
        screen_id: &str,
        result: Result<process::Done, String>,
    ) -> Result<Outcome, MuxerError> {
        let max_retries = ctx.config.muxer.max_retries;
        let now = ctx.clock.now();
        let catalog = ctx.catalog.clone();
        let (call_id, screen_id) = (call_id.to_string(), screen_id.to_string());
        Ok(match result {
            Ok(done) => {
                tracing::info!(call = %call_id, screen = %screen_id, output = %done.media_id, encrypted = done.encrypted, "pair muxed");
                let (out, sources) = (done.media_id.clone(), done.sources.clone());
                let (ci, si) = (call_id.clone(), screen_id.clone());
                blocking(move || {
                    state::mark_muxed_from(catalog.as_ref(), &ci, &si, &out, &sources, now).map_err(MuxerError::from)
                })
                .await?;
                Outcome::Muxed(Muxed {
                    call_id,
                    screen_id,
                    output: done.media_id,
                    encrypted: done.encrypted,
                    bytes: done.bytes,
                })
            }
            Err(reason) => {
                let (ci, si, r) = (call_id.clone(), screen_id.clone(), reason.clone());
                let rec =
                    blocking(move || state::mark_failed(catalog.as_ref(), &ci, &si, &r, now).map_err(MuxerError::from))
                        .await?;
                tracing::warn!(call = %call_id, screen = %screen_id, attempt = rec.attempts, max = max_retries, %reason, "pair failed");
                Outcome::Failed(Failed { call_id, screen_id, reason, attempts: rec.attempts })
            }
        })
    }

    async fn release(&self, ctx: &Context, screen_id: &str) -> Result<(), MuxerError> {
        let catalog = ctx.catalog.clone();
        let (id, holder) = (screen_id.to_string(), self.holder.clone());
        blocking(move || state::unclaim(catalog.as_ref(), &id, &holder).map_err(MuxerError::from)).await
    }

    /// Polls for ever: a pass over the polling window every `min_poll_interval` seconds,
    /// until `stop` resolves. A failed pass is logged and the loop goes on.
    /// With `call_recording_query_string` set, one batch pass instead, then it returns (GIR's
    /// script exits once the query's records are processed).
    pub async fn serve(&self, ctx: &Context, stop: impl std::future::Future<Output = ()>) -> Result<(), MuxerError> {
        if self.is_batch() {
            let r = self.batch_pass(ctx, &crate::progress::NoProgress).await?.unwrap_or_default();
            tracing::info!(
                muxed = r.muxed.len(),
                bytes = r.bytes(),
                failed = r.failed.len(),
                busy = r.busy,
                "call_recording_query_string: batch pass done; the muxer stops"
            );
            return Ok(());
        }
        tokio::pin!(stop);
        let every = std::time::Duration::from_secs(ctx.config.muxer.min_poll_interval.max(1));
        loop {
            let now = ctx.clock.now();
            let w = Window::polling(&ctx.config.muxer, now);
            match self.pass(ctx, w).await {
                Ok(r) => {
                    tracing::info!(window = %w, muxed = r.muxed.len(), bytes = r.bytes(), failed = r.failed.len(), busy = r.busy, "pass done")
                }
                Err(e) => tracing::error!(window = %w, error = %e, "pass failed"),
            }
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// The length of a pair's output timeline, from the metadata: first start to last stop.
fn timeline_ms(c: &Candidate) -> u64 {
    let start = c.call.start.min(c.screen.start);
    let stop = c.call.stop.max(c.screen.stop);
    (stop - start).num_milliseconds().max(0) as u64
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MuxerError> + Send + 'static,
) -> Result<T, MuxerError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| MuxerError::Task(e.to_string()))?
}

/// The muxer's view of every pair it has worked on, for `reclife mux --status`.
#[derive(Debug, Clone)]
pub struct Status {
    pub muxed: u64,
    pub failed: Vec<PairRecord>,
    pub max_retries: u32,
    pub at: DateTime<Utc>,
}

pub fn status(ctx: &Context) -> Result<Status, MuxerError> {
    let all = state::list(ctx.catalog.as_ref())?;
    let muxed = all.iter().filter(|r| r.status == state::PairStatus::Muxed).count() as u64;
    let failed = all.into_iter().filter(|r| r.status == state::PairStatus::Failed).collect();
    Ok(Status { muxed, failed, max_retries: ctx.config.muxer.max_retries, at: ctx.clock.now() })
}
