//! The scheduler behind `reclife run`.
//!
//! It finishes any interrupted purge first (and again at every poll tick, with the other
//! [`housekeeping`]), applies the node's rules folder to the catalog's rules
//! ([`sync_rules_dir`]), loads this node's rules from the catalog (those with no node path,
//! or with the node's), and schedules them with tokio-cron-scheduler in UTC. A rule whose fire
//! time passed while the node was down (its persisted last run is older than its latest fire
//! time) runs once at start-up. At most `scheduler_threads` rules run at once, one run of a rule
//! at a time, and the [`OverlapGuard`] keeps purges apart from overlapping tasks. Every
//! `schedule_polling_interval` seconds the folder is applied again and the catalog's rules are
//! read again; when this node's rules changed (a rule applied or deleted on any node) they are
//! rescheduled. Each run ends with GIR's line
//! `Scheduled rule [<name>] on node path [<node path>] completed`, plus counts (GIR writes
//! "at location", which reads like a backup location).
//!
//! Nodes that share a catalog share the work: each fire of a rule runs on one node. A fire is
//! the rule's latest scheduled time at or before the real clock (never `--now`: which fire it
//! is, like a lease, is about real time). The node that takes the lease
//! `lifecycle/fire/<rule>` checks the rule's fire mark (state [`FIRES`]) under it, skips a fire
//! already done (or overtaken by a later one), marks the fire claimed with its job id, runs,
//! and marks it done. A node that dies mid-run leaves a claimed, unfinished mark whose lease
//! expires (at once when its pid is gone on the same host); at its next poll tick any node
//! finds that mark and runs the fire again, after recovery has finished the dead node's purge
//! batches.

use super::guard::OverlapGuard;
use super::jobs::{JobRecord, JobState};
use super::lease::Held;
use super::rules::CatchUp;
use super::runner::{completion_line, run_tasks, ProgressFactory};
use super::{blocking, journal, rule_store, rules, LifecycleError, Rule, RuleProblem};
use crate::config::Context;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// A rule's place in the set of rules running now; dropping it frees the place.
struct RunningMark {
    set: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Drop for RunningMark {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.name);
    }
}

/// Catalog state namespace of each rule's last run (RFC 3339).
pub const LAST_RUN: &str = crate::catalog::namespaces::LAST_RUN;

/// Catalog state namespace of each scheduler's last tick (key: node path, or `-` for a node
/// without one; value: RFC 3339, system clock), for the operators' health page.
pub const TICKS: &str = crate::catalog::namespaces::SCHEDULER_TICKS;

fn tick_key(ctx: &Context) -> String {
    ctx.config.node_path.clone().unwrap_or_else(|| "-".into())
}

/// Records that this node's scheduler is alive now. Uses the system clock even under `--now`:
/// it tells operators about the process, not about rule ages.
pub async fn record_tick(ctx: &Context) -> Result<(), LifecycleError> {
    let (catalog, key) = (ctx.catalog.clone(), tick_key(ctx));
    blocking(move || Ok(catalog.state_put(TICKS, &key, &Utc::now().to_rfc3339())?)).await
}

/// Every scheduler's last tick, by node path (`-`: a node without one), in node order.
pub async fn last_ticks(ctx: &Context) -> Result<Vec<(String, DateTime<Utc>)>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let all = blocking(move || Ok(catalog.state_list(TICKS)?)).await?;
    Ok(all
        .into_iter()
        .filter_map(|(k, v)| DateTime::parse_from_rfc3339(&v).ok().map(|t| (k, t.with_timezone(&Utc))))
        .collect())
}

/// Catalog state namespace of each rule's latest claimed fire (key: rule name).
pub const FIRES: &str = crate::catalog::namespaces::FIRES;
/// Prefix of the lease a node holds while it runs a fire of a rule.
pub const FIRE_LEASE: &str = "lifecycle/fire/";

/// The latest fire of a rule that a node claimed, and whether its run ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FireMark {
    pub fire: DateTime<Utc>,
    pub job: String,
    pub done: bool,
}

/// The fire a rule answers now: its latest scheduled time at or before the real clock.
/// Whole seconds: cron has no finer unit, and every node must name a fire alike (croner keeps
/// the clock's fraction of a second in the occurrence it finds).
pub fn current_fire(rule: &Rule) -> DateTime<Utc> {
    let now = Utc::now();
    let t =
        rules::parse_cron(&rule.schedule).ok().and_then(|c| c.find_previous_occurrence(&now, true).ok()).unwrap_or(now);
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

pub async fn fire_mark(ctx: &Context, rule: &str) -> Result<Option<FireMark>, LifecycleError> {
    let (catalog, r) = (ctx.catalog.clone(), rule.to_string());
    let v = blocking(move || Ok(catalog.state_get(FIRES, &r)?)).await?;
    Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
}

async fn set_fire_mark(ctx: &Context, rule: &str, m: &FireMark) -> Result<(), LifecycleError> {
    let text = serde_json::to_string(m).map_err(|e| LifecycleError::Other(e.to_string()))?;
    let (catalog, r) = (ctx.catalog.clone(), rule.to_string());
    blocking(move || Ok(catalog.state_put(FIRES, &r, &text)?)).await
}

/// Rules whose claimed fire never finished and whose claim is no longer held: the node that
/// ran them stopped. Returns them with the fire to run again.
pub async fn orphaned_fires(ctx: &Context, rules: &[Rule]) -> Result<Vec<(Rule, DateTime<Utc>)>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let leases = blocking(move || Ok(catalog.lease_list(FIRE_LEASE)?)).await?;
    let now = Utc::now();
    let mut out = Vec::new();
    for r in rules {
        let Some(m) = fire_mark(ctx, &r.name).await? else { continue };
        let name = format!("{FIRE_LEASE}{}", r.name);
        let held = leases.iter().any(|l| l.name == name && super::lease::is_live(l, now));
        if !m.done && !held {
            out.push((r.clone(), m.fire));
        }
    }
    Ok(out)
}

/// Runs `rule` for `fire` (default: its current fire) unless another node runs or ran that
/// fire; see the module doc. `None` when it was not this node's to run.
pub async fn run_fire(
    ctx: &Context,
    rule: &Rule,
    fire: Option<DateTime<Utc>>,
    guard: &OverlapGuard,
    progress: &ProgressFactory,
    on_done: &OnDone,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<JobRecord>, LifecycleError> {
    let fire = fire.unwrap_or_else(|| current_fire(rule));
    let lease = format!("{FIRE_LEASE}{}", rule.name);
    let Some(_claim) = Held::take(ctx.catalog.clone(), &lease, ctx.config.lease_seconds).await? else {
        tracing::info!(rule = %rule.name, fire = %fire, "another node runs this rule now: skipped here");
        return Ok(None);
    };
    if let Some(m) = fire_mark(ctx, &rule.name).await? {
        if m.fire > fire || (m.fire == fire && m.done) {
            tracing::info!(rule = %rule.name, fire = %fire, "this fire already ran (here or on another node): skipped");
            return Ok(None);
        }
    }
    let started = ctx.clock.now();
    let mut job = JobRecord::new("rule", Some(&rule.name), started);
    job.fire = Some(fire);
    let claim = FireMark { fire, job: job.id.clone(), done: false };
    set_fire_mark(ctx, &rule.name, &claim).await?;
    let r = run_job(ctx, rule, job, guard, progress, on_done, shutdown).await;
    // A run stopped by a shutdown is not done: another node (or this one, restarted) runs
    // the fire again. One that ended otherwise, even failed, is this fire's run. The mark is
    // only ended if it is still this run's (a lease lost to a long outage lets another node
    // claim a later fire meanwhile; its claim must stand).
    let stopped = matches!(&r, Ok(j) if j.state == JobState::Cancelled && shutdown.is_cancelled());
    if !stopped && fire_mark(ctx, &rule.name).await?.as_ref() == Some(&claim) {
        set_fire_mark(ctx, &rule.name, &FireMark { done: true, ..claim }).await?;
    }
    r.map(Some)
}

/// Called with each finished run and its completion line.
pub type OnDone = dyn Fn(&JobRecord, &str) + Send + Sync;

/// This node's enabled rules, read from the catalog ([`rule_store::load`], the rules every
/// node shares, with the operators' overrides applied), and the problems of stored rules that
/// no longer validate.
pub fn node_rules(ctx: &Context) -> Result<(Vec<Rule>, Vec<RuleProblem>), LifecycleError> {
    let (stored, problems) = rule_store::load(ctx.catalog.as_ref(), ctx.config.default_backup_location.as_deref())?;
    let mut rules: Vec<Rule> = stored.into_iter().map(|(r, _)| r).collect();
    if let Err(e) = rules::apply_overrides(ctx.catalog.as_ref(), &mut rules) {
        tracing::error!(error = %e, "rule overrides unreadable: using the rules' enabled flags");
    }
    let mine = rules.into_iter().filter(|r| r.enabled && r.runs_on(ctx.config.node_path.as_deref())).collect();
    Ok((mine, problems))
}

/// Applies this node's rules folder (`rules_dir`) to the catalog's rules
/// ([`rule_store::sync_dir`]: a file's rule is stored when its text is new for that rule), logs
/// what changed, and answers the files left out. Called by every daemon at start and poll, and
/// by `reclife run --once`.
pub async fn sync_rules_dir(ctx: &Context) -> Result<Vec<RuleProblem>, LifecycleError> {
    let (catalog, cfg, at) = (ctx.catalog.clone(), ctx.config.clone(), ctx.clock.now());
    let by = format!("file:{}", cfg.node_path.as_deref().unwrap_or("-"));
    let (synced, live) = blocking(move || {
        let s =
            rule_store::sync_dir(catalog.as_ref(), &cfg.rules_dir, cfg.default_backup_location.as_deref(), &by, at)?;
        let live = rule_store::heads(catalog.as_ref())?.iter().filter(|v| !v.deleted()).count();
        Ok((s, live))
    })
    .await?;
    for a in &synced.applied {
        tracing::info!(rule = %a.rule.name, version = a.version.version, file = %a.version.source,
            "rule file applied to the catalog's rules");
    }
    let dir = &ctx.config.rules_dir;
    if live == 0 && synced.problems.is_empty() {
        // A daemon started with the wrong folder would otherwise run nothing, silently.
        if dir.is_dir() {
            tracing::warn!(rules_dir = %dir.display(), "the rules folder holds no rules and the catalog none: nothing is scheduled");
        } else {
            tracing::warn!(rules_dir = %dir.display(), "the rules folder does not exist and the catalog holds no rules: nothing is scheduled");
        }
    }
    Ok(synced.problems)
}

/// [`node_rules`] off the async runtime.
pub async fn node_rules_async(ctx: &Context) -> Result<(Vec<Rule>, Vec<RuleProblem>), LifecycleError> {
    let ctx2 = ctx.clone();
    blocking(move || node_rules(&ctx2)).await
}

pub async fn last_run(ctx: &Context, rule: &str) -> Result<Option<DateTime<Utc>>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let r = rule.to_string();
    let v = blocking(move || Ok(catalog.state_get(LAST_RUN, &r)?)).await?;
    Ok(v.and_then(|s| DateTime::parse_from_rfc3339(&s).ok()).map(|t| t.with_timezone(&Utc)))
}

pub async fn set_last_run(ctx: &Context, rule: &str, at: DateTime<Utc>) -> Result<(), LifecycleError> {
    let catalog = ctx.catalog.clone();
    let r = rule.to_string();
    blocking(move || Ok(catalog.state_put(LAST_RUN, &r, &at.to_rfc3339())?)).await
}

/// True when the rule should have fired after `last` and at or before `now`.
pub fn missed(rule: &Rule, last: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    match rules::parse_cron(&rule.schedule)
        .and_then(|c| c.find_previous_occurrence(&now, true).map_err(|e| e.to_string()))
    {
        Ok(prev) => prev > last,
        Err(_) => false,
    }
}

/// Runs one rule now, as a job; persists its last run and reports its completion line.
pub async fn run_rule(
    ctx: &Context,
    rule: &Rule,
    guard: &OverlapGuard,
    progress: &ProgressFactory,
    on_done: &OnDone,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<JobRecord, LifecycleError> {
    let job = JobRecord::new("rule", Some(&rule.name), ctx.clock.now());
    run_job(ctx, rule, job, guard, progress, on_done, shutdown).await
}

async fn run_job(
    ctx: &Context,
    rule: &Rule,
    mut job: JobRecord,
    guard: &OverlapGuard,
    progress: &ProgressFactory,
    on_done: &OnDone,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<JobRecord, LifecycleError> {
    let started = job.created;
    job.spec = rule.tasks.clone();
    job.planned_at = Some(started);
    // A child token: `reclife jobs cancel` stops this run only; a shutdown stops every run.
    let job = run_tasks(ctx, job, guard, progress, shutdown.child_token()).await?;
    // A run stopped by a shutdown does not count as this fire's run: the next start catches it
    // up. One an operator cancelled does count.
    if !(job.state == JobState::Cancelled && shutdown.is_cancelled()) {
        set_last_run(ctx, &rule.name, started).await?;
    }
    let line = completion_line(&job, ctx.config.node_path.as_deref());
    tracing::info!("{line}");
    on_done(&job, &line);
    Ok(job)
}

/// Runs `rules` at once, at most `scheduler_threads` together.
async fn run_many(
    ctx: &Context,
    rules: Vec<Rule>,
    guard: &OverlapGuard,
    progress: Arc<ProgressFactory>,
    on_done: Arc<OnDone>,
) -> Vec<Result<JobRecord, LifecycleError>> {
    let sem = Arc::new(Semaphore::new(ctx.config.scheduler_threads.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for (i, rule) in rules.into_iter().enumerate() {
        let (ctx, guard, progress, on_done, sem) =
            (ctx.clone(), guard.clone(), progress.clone(), on_done.clone(), sem.clone());
        set.spawn(async move {
            let _p = sem.acquire_owned().await;
            (i, run_rule(&ctx, &rule, &guard, progress.as_ref(), on_done.as_ref(), &Default::default()).await)
        });
    }
    let mut out: Vec<(usize, Result<JobRecord, LifecycleError>)> = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => out.push((usize::MAX, Err(LifecycleError::Other(format!("rule run failed: {e}"))))),
        }
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// A scheduler with no rules folder would run nothing, and say so at every reload: it is one
/// error at start instead, naming the folder (a folder with no rules is only a warning).
pub fn require_rules_dir(ctx: &Context) -> Result<(), LifecycleError> {
    let dir = &ctx.config.rules_dir;
    if dir.is_dir() {
        return Ok(());
    }
    Err(LifecycleError::Other(format!(
        "the rules folder {} does not exist: create it (under systemd, ConfigurationDirectory= in the unit \
         creates /etc/reclife/rules) or set rules_dir in the config (relative to the config file)",
        dir.display()
    )))
}

/// `reclife run --once`: finish interrupted purges, then run every enabled rule of this node now.
pub async fn run_once(
    ctx: &Context,
    progress: Arc<ProgressFactory>,
    on_done: Arc<OnDone>,
) -> Result<(Vec<Result<JobRecord, LifecycleError>>, Vec<RuleProblem>), LifecycleError> {
    require_rules_dir(ctx)?;
    housekeeping(ctx).await?;
    let mut problems = sync_rules_dir(ctx).await?;
    let (rules, mut stored) = node_rules_async(ctx).await?;
    problems.append(&mut stored);
    for p in &problems {
        tracing::error!("rule left out: {p}");
    }
    let guard = OverlapGuard::new();
    Ok((run_many(ctx, rules, &guard, progress, on_done).await, problems))
}

/// What every start and every poll tick does: finish interrupted purges, mark jobs whose
/// process died, release the leases of dead processes, deliver queued notifications, forget old jobs and old muxer pair records.
pub async fn housekeeping(ctx: &Context) -> Result<(), LifecycleError> {
    journal::recover(ctx).await?;
    super::jobs::reap(ctx).await?;
    let catalog = ctx.catalog.clone();
    blocking(move || Ok(super::lease::sweep_dead(catalog.as_ref())?)).await?;
    super::jobs::prune(ctx, ctx.config.job_retention_days).await?;
    let (catalog, before) = (ctx.catalog.clone(), rules::days_before(ctx.clock.now(), ctx.config.job_retention_days));
    blocking(move || Ok(crate::muxer::state::prune(catalog.as_ref(), before)?)).await?;
    Ok(())
}

/// Rules that missed a fire time while the node was down, as they are to run now by their
/// `catch_up` (the rule's, else the node's): whole (`all`), with their backup tasks only
/// (`backups`; a rule with none is left out), or not at all (`none`: the missed fire is
/// marked as passed). A rule never run before gets its first last-run mark now, so later
/// downtime is noticed.
pub async fn catch_up_list(ctx: &Context, rules: &[Rule]) -> Result<Vec<Rule>, LifecycleError> {
    let now = ctx.clock.now();
    let mut out = Vec::new();
    for r in rules {
        match last_run(ctx, &r.name).await? {
            Some(last) if missed(r, last, now) => {
                let how = r.catch_up.unwrap_or(ctx.config.catch_up);
                let backups: Vec<_> = r.tasks.iter().filter(|t| t.op == super::Op::Backup).cloned().collect();
                match how {
                    CatchUp::All => {
                        tracing::warn!(rule = %r.name, last_run = %last, "a fire time passed while the node was down: running now (catch_up = all)");
                        out.push(r.clone());
                    }
                    CatchUp::Backups if !backups.is_empty() => {
                        tracing::warn!(rule = %r.name, last_run = %last,
                            "a fire time passed while the node was down: running its backups now, its purges at the next fire (catch_up = backups)");
                        out.push(Rule { tasks: backups, ..r.clone() });
                    }
                    CatchUp::Backups | CatchUp::None => {
                        tracing::warn!(rule = %r.name, last_run = %last, catch_up = ?how,
                            "a fire time passed while the node was down: skipped; the rule runs at its next fire");
                        set_last_run(ctx, &r.name, now).await?;
                    }
                }
            }
            Some(_) => {}
            None => set_last_run(ctx, &r.name, now).await?,
        }
    }
    Ok(out)
}

/// The daemon: runs until `shutdown` resolves.
pub async fn run_daemon(
    ctx: &Context,
    progress: Arc<ProgressFactory>,
    on_done: Arc<OnDone>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), LifecycleError> {
    use tokio_cron_scheduler::JobScheduler;
    let sched_err = |e: tokio_cron_scheduler::JobSchedulerError| LifecycleError::Other(format!("scheduler: {e}"));
    require_rules_dir(ctx)?;
    housekeeping(ctx).await?;
    let guard = OverlapGuard::new();
    let sem = Arc::new(Semaphore::new(ctx.config.scheduler_threads.max(1)));
    let running: Arc<Mutex<HashSet<String>>> = Arc::default();
    // At shutdown, running rules stop at their next safe point and are waited for.
    let stop = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Rule, Option<DateTime<Utc>>)>();

    let mut problems = sync_rules_dir(ctx).await?;
    let (mut rules, mut stored) = node_rules_async(ctx).await?;
    problems.append(&mut stored);
    for p in &problems {
        tracing::error!("rule left out: {p}");
    }
    let mut last_problems = problems;
    for r in catch_up_list(ctx, &rules).await? {
        let _ = tx.send((r, None));
    }
    for (r, fire) in orphaned_fires(ctx, &rules).await? {
        let _ = tx.send((r, Some(fire)));
    }
    let sched = JobScheduler::new().await.map_err(sched_err)?;
    let mut ids = schedule_all(&sched, &tx, &rules).await;
    sched.start().await.map_err(sched_err)?;
    tracing::info!(rules = rules.len(), "scheduler started");
    if let Err(e) = record_tick(ctx).await {
        tracing::warn!(error = %e, "scheduler tick not recorded");
    }

    let poll = std::time::Duration::from_secs(ctx.config.schedule_polling_interval.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + poll, poll);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some((rule, fire)) = rx.recv() => {
                let name = rule.name.clone();
                // An operator's disable takes effect at once, not at the next rules reload.
                if let Ok(o) = rules::overrides(ctx.catalog.as_ref()) {
                    if o.get(&name) == Some(&false) {
                        tracing::info!(rule = %name, "fire time reached but an operator disabled the rule: skipped");
                        continue;
                    }
                }
                if !running.lock().unwrap_or_else(|p| p.into_inner()).insert(name.clone()) {
                    tracing::warn!(rule = %name, "fire time reached while the previous run is still going: skipped");
                    continue;
                }
                let (ctx, guard, progress, on_done, sem, running) =
                    (ctx.clone(), guard.clone(), progress.clone(), on_done.clone(), sem.clone(), running.clone());
                let stop = stop.clone();
                tracker.spawn(async move {
                    // Released however the run ends (an error, or a panic that unwinds this
                    // task), so one bad run never blocks every later fire of the rule.
                    let _mark = RunningMark { set: running, name: rule.name.clone() };
                    let _p = sem.acquire_owned().await;
                    if stop.is_cancelled() {
                        return;
                    }
                    let r = run_fire(&ctx, &rule, fire, &guard, progress.as_ref(), on_done.as_ref(), &stop).await;
                    if let Err(e) = r {
                        tracing::error!(rule = %rule.name, error = %e, "rule run failed");
                    }
                });
            }
            _ = tick.tick() => {
                if let Err(e) = record_tick(ctx).await {
                    tracing::warn!(error = %e, "scheduler tick not recorded");
                }
                // A long-running daemon retries what it left open, not only at start-up.
                if let Err(e) = housekeeping(ctx).await {
                    tracing::warn!(error = %e, "housekeeping failed; retrying at the next tick");
                }
                // Fires claimed by a node that stopped mid-run (this one before a restart, or
                // another node): run them again here.
                match orphaned_fires(ctx, &rules).await {
                    Ok(list) => {
                        for (r, fire) in list {
                            let busy = running.lock().unwrap_or_else(|p| p.into_inner()).contains(&r.name);
                            if !busy {
                                tracing::warn!(rule = %r.name, fire = %fire,
                                    "a fire claimed by a node that stopped mid-run: running it here");
                                let _ = tx.send((r, Some(fire)));
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read the rules' fire marks; retrying at the next tick"),
                }
                // The rules every node shares: the folder applied as a source, then the
                // catalog's rules read again.
                let fresh = match sync_rules_dir(ctx).await {
                    Ok(mut problems) => match node_rules_async(ctx).await {
                        Ok((fresh, mut stored)) => {
                            problems.append(&mut stored);
                            Some((fresh, problems))
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read the catalog's rules; keeping the schedule until the next tick");
                            None
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot apply the rules folder; keeping the schedule until the next tick");
                        None
                    }
                };
                let Some((fresh, problems)) = fresh else { continue };
                if problems != last_problems {
                    for p in &problems {
                        tracing::error!("rule left out: {p}");
                    }
                    last_problems = problems;
                }
                if fresh != rules {
                    tracing::info!(rules = fresh.len(), "the catalog's rules changed: rescheduling");
                    for id in ids.values() {
                        let _ = sched.remove(id).await;
                    }
                    ids = schedule_all(&sched, &tx, &fresh).await;
                    rules = fresh;
                }
            }
        }
    }
    let mut sched = sched;
    let _ = sched.shutdown().await;
    stop.cancel();
    tracker.close();
    if !tracker.is_empty() {
        tracing::warn!(runs = tracker.len(), "shutting down: running rules stop at their next safe point");
    }
    tracker.wait().await;
    Ok(())
}

async fn schedule_all(
    sched: &tokio_cron_scheduler::JobScheduler,
    tx: &tokio::sync::mpsc::UnboundedSender<(Rule, Option<DateTime<Utc>>)>,
    rules: &[Rule],
) -> HashMap<String, uuid::Uuid> {
    let mut ids = HashMap::new();
    for r in rules {
        let tx = tx.clone();
        let rule = r.clone();
        let job = tokio_cron_scheduler::Job::new_async(r.schedule.as_str(), move |_, _| {
            let _ = tx.send((rule.clone(), None));
            Box::pin(async {})
        });
        match job {
            Ok(j) => match sched.add(j).await {
                Ok(id) => {
                    ids.insert(r.name.clone(), id);
                }
                Err(e) => tracing::error!(rule = %r.name, error = %e, "cannot schedule rule"),
            },
            Err(e) => tracing::error!(rule = %r.name, error = %e, "cannot schedule rule"),
        }
    }
    ids
}

#[cfg(test)]
mod mark_tests {
    use super::*;

    #[test]
    fn every_node_names_a_fire_alike() {
        let text =
            "name = \"r\"\nschedule = \"*/3 * * * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 1 }\n";
        let rule = rules::parse_rule(std::path::Path::new("r.toml"), text, None, false).expect("parses");
        let a = current_fire(&rule);
        std::thread::sleep(std::time::Duration::from_millis(30));
        let b = current_fire(&rule);
        assert_eq!(a.timestamp_subsec_nanos(), 0, "{a}");
        assert!(a.timestamp() % 3 == 0 && (b - a).num_seconds() <= 3, "{a} {b}");
        assert!(a <= Utc::now());
    }

    #[test]
    fn the_running_mark_is_released_even_when_the_run_panics() {
        let set: Arc<Mutex<HashSet<String>>> = Arc::default();
        set.lock().unwrap().insert("r".into());
        let s2 = set.clone();
        let r = std::panic::catch_unwind(move || {
            let _m = RunningMark { set: s2, name: "r".into() };
            panic!("a run that panics");
        });
        assert!(r.is_err());
        assert!(set.lock().unwrap_or_else(|p| p.into_inner()).is_empty());
    }
}
