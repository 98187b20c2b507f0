//! Job records: every rule run and every on-demand backup or purge is a job with an id, a
//! state (planned → running → succeeded | failed | cancelled), counts per task and the items it
//! set aside with their reasons. Kept in the catalog's state (namespace [`NAMESPACE`]) so every
//! node sharing the catalog sees them; the plan itself is the job's manifest in the catalog.
//!
//! A job that runs holds the lease `lifecycle/job/<id>`, renewed while it runs. A job found
//! `running` whose lease has expired was interrupted (its process died): [`reap`] marks it
//! failed and drops its manifest (open purge journal entries are finished by recovery).
//! Listing is paged; [`prune`] forgets finished jobs older than `job_retention_days`.

use super::{blocking, Failure, LifecycleError, Op, Task};
use crate::config::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const NAMESPACE: &str = crate::catalog::namespaces::JOBS;
/// Failed items kept per job; the total is always counted.
pub const MAX_FAILED_KEPT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Planned,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Planned => "planned",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        })
    }
}

/// What one task of a job did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: usize,
    pub op: Option<Op>,
    /// `succeeded`, `failed` or `skipped`.
    pub state: String,
    pub archive: Option<String>,
    pub recordings: u64,
    pub screens: u64,
    pub media: u64,
    pub bytes: u64,
    pub held: u64,
    /// Left alone because they changed after they were archived or planned.
    #[serde(default)]
    pub changed: u64,
    pub failed: u64,
    pub note: Option<String>,
}

/// A job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    /// `rule`, `backup` or `purge`.
    pub kind: String,
    pub rule: Option<String>,
    pub state: JobState,
    pub created: DateTime<Utc>,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub tasks: Vec<TaskRecord>,
    pub failed: Vec<Failure>,
    pub failed_total: u64,
    /// Recordings a purge left alone, with why (`skipped: held`, `skipped: changed since
    /// backup`); up to [`MAX_FAILED_KEPT`] kept, all counted.
    #[serde(default)]
    pub skipped: Vec<Failure>,
    #[serde(default)]
    pub skipped_total: u64,
    /// The tasks this job executes, as planned.
    #[serde(default)]
    pub spec: Vec<Task>,
    /// The "now" its plan was made at (ages are computed from it).
    #[serde(default)]
    pub planned_at: Option<DateTime<Utc>>,
    /// Tasks whose manifest is written (a planned job has all of them).
    #[serde(default)]
    pub planned_tasks: Vec<usize>,
    /// Why the job ended as it did, when that is not obvious (cancelled, interrupted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// For a scheduled rule run: the fire time (real clock) it answers. Nodes sharing a
    /// catalog run each fire of a rule once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire: Option<DateTime<Utc>>,
}

impl JobRecord {
    pub fn new(kind: &str, rule: Option<&str>, now: DateTime<Utc>) -> JobRecord {
        JobRecord {
            id: new_id(now),
            kind: kind.to_string(),
            rule: rule.map(str::to_string),
            state: JobState::Planned,
            created: now,
            started: None,
            finished: None,
            tasks: Vec::new(),
            failed: Vec::new(),
            failed_total: 0,
            skipped: Vec::new(),
            skipped_total: 0,
            spec: Vec::new(),
            planned_at: None,
            planned_tasks: Vec::new(),
            note: None,
            fire: None,
        }
    }

    /// A new job that will run `tasks`, planned at `now`.
    pub fn for_tasks(kind: &str, rule: Option<&str>, now: DateTime<Utc>, tasks: &[Task]) -> JobRecord {
        let mut j = JobRecord::new(kind, rule, now);
        j.spec = tasks.to_vec();
        j.planned_at = Some(now);
        j
    }

    pub fn add_skipped(&mut self, f: &[Failure]) {
        self.skipped_total += f.len() as u64;
        let room = MAX_FAILED_KEPT.saturating_sub(self.skipped.len());
        self.skipped.extend(f.iter().take(room).cloned());
    }

    /// True once the job can no longer change.
    pub fn ended(&self) -> bool {
        matches!(self.state, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }

    pub fn add_failures(&mut self, f: &[Failure]) {
        self.failed_total += f.len() as u64;
        let room = MAX_FAILED_KEPT.saturating_sub(self.failed.len());
        self.failed.extend(f.iter().take(room).cloned());
    }
}

/// `j-<yyyyMMddTHHmmss>-<13 hex><4 hex>`: sorts by creation. The first part is "now" (which
/// `--now` may fix); the suffix is the real time in microseconds, so ids taken in the same
/// second of "now" (by several processes, or with a fixed `--now`) still sort in the order
/// they were created, then 4 random hex digits keep ids taken in the same microsecond apart.
pub fn new_id(now: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(real.as_nanos());
    h.write_u32(std::process::id());
    format!(
        "j-{}-{:013x}{:04x}",
        now.format("%Y%m%dT%H%M%S"),
        real.as_micros() as u64 & 0xf_ffff_ffff_ffff,
        h.finish() as u16
    )
}

impl JobState {
    /// True once the job can no longer change (succeeded, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// A job and, for each of its tasks (in order), how many of the recordings it planned are in
/// each manifest state now (`planned`, `written`, `archived`, `deleted`, `skipped`, `failed`).
/// The counts move with every recording, and they are read from the catalog, so any process
/// can follow a job another one runs (`GET /api/v1/jobs/{id}/events`). A finished job's
/// manifest is dropped; its record then carries the totals.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    pub job: JobRecord,
    pub rows: Vec<std::collections::BTreeMap<&'static str, u64>>,
    /// The task running now, when this process runs it: recordings and bytes as they move
    /// ([`crate::progress::live`]); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<crate::progress::live::Snapshot>,
}

pub async fn progress(ctx: &Context, id: &str) -> Result<Progress, LifecycleError> {
    let job = load(ctx, id).await?;
    let tasks = job.spec.len().max(job.tasks.len());
    let (catalog, jid) = (ctx.catalog.clone(), job.id.clone());
    let rows = blocking(move || {
        let mut out = Vec::with_capacity(tasks);
        for t in 1..=tasks {
            let counts = catalog.manifest_counts(&jid, t as u32)?;
            out.push(counts.into_iter().map(|(s, n)| (s.as_str(), n)).collect());
        }
        Ok(out)
    })
    .await?;
    let live = crate::progress::live::follow(id).map(|rx| rx.borrow().clone());
    Ok(Progress { job, rows, live })
}

pub async fn save(ctx: &Context, job: &JobRecord) -> Result<(), LifecycleError> {
    let text = serde_json::to_string(job).map_err(|e| LifecycleError::Other(e.to_string()))?;
    let catalog = ctx.catalog.clone();
    let id = job.id.clone();
    blocking(move || Ok(catalog.state_put(NAMESPACE, &id, &text)?)).await
}

pub async fn load(ctx: &Context, id: &str) -> Result<JobRecord, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let id2 = id.to_string();
    let text = blocking(move || Ok(catalog.state_get(NAMESPACE, &id2)?)).await?;
    let text = text.ok_or_else(|| LifecycleError::NoJob(id.to_string()))?;
    serde_json::from_str(&text).map_err(|e| LifecycleError::Other(format!("job {id}: {e}")))
}

/// Removes a job that never ran (a plan that failed half-way): its record and its manifest.
pub async fn forget(ctx: &Context, id: &str) -> Result<(), LifecycleError> {
    let (catalog, id) = (ctx.catalog.clone(), id.to_string());
    blocking(move || {
        catalog.manifest_drop(&id)?;
        catalog.state_delete(NAMESPACE, &id)?;
        Ok(())
    })
    .await
}

/// Up to `limit` jobs with ids after `after`, oldest first (ids sort by creation time).
pub async fn page(ctx: &Context, after: Option<&str>, limit: usize) -> Result<Vec<JobRecord>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let after = after.map(str::to_string);
    let all = blocking(move || Ok(catalog.state_page(NAMESPACE, after.as_deref(), limit)?)).await?;
    let mut out = Vec::with_capacity(all.len());
    for (k, v) in all {
        match serde_json::from_str::<JobRecord>(&v) {
            Ok(j) => out.push(j),
            Err(e) => tracing::warn!(job = %k, error = %e, "unreadable job record skipped"),
        }
    }
    Ok(out)
}

/// Up to `limit` jobs with ids before `before` (all when `None`), newest first: the history as
/// operators read it. The catalog pages ids forward only, so this reads every job record once
/// (a few hundred bytes each, bounded by `job_retention_days`), keeping `limit` in memory.
pub async fn page_before(ctx: &Context, before: Option<&str>, limit: usize) -> Result<Vec<JobRecord>, LifecycleError> {
    let mut last = std::collections::VecDeque::with_capacity(limit + 1);
    for_each(ctx, |j| {
        if before.is_none_or(|b| j.id.as_str() < b) {
            last.push_back(j);
            if last.len() > limit {
                last.pop_front();
            }
        }
    })
    .await?;
    Ok(last.into_iter().rev().collect())
}

/// Every job, oldest first, one page at a time through `f`.
pub async fn for_each(ctx: &Context, mut f: impl FnMut(JobRecord)) -> Result<(), LifecycleError> {
    let mut after: Option<String> = None;
    loop {
        let p = page(ctx, after.as_deref(), 200).await?;
        let n = p.len();
        for j in p {
            after = Some(j.id.clone());
            f(j);
        }
        if n < 200 {
            return Ok(());
        }
    }
}

/// Catalog state namespace indexing the jobs that are running (key: job id).
pub const RUNNING: &str = crate::catalog::namespaces::RUNNING_JOBS;

/// The lease a running job holds.
pub fn lease_name(id: &str) -> String {
    format!("lifecycle/job/{id}")
}

/// Jobs marked running whose process is gone (lease expired or never taken): marked failed
/// with a note, their manifests dropped. Returns their ids.
pub async fn reap(ctx: &Context) -> Result<Vec<String>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let running = blocking(move || Ok(catalog.state_list(RUNNING)?)).await?;
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for (id, _) in running {
        let catalog = ctx.catalog.clone();
        let name = lease_name(&id);
        let live = blocking(move || {
            Ok(catalog.lease_list(&name)?.iter().any(|l| l.name == name && super::lease::is_live(l, now)))
        })
        .await?;
        if live {
            continue;
        }
        // Take the lease so that two reapers do not both act.
        let Some(_claim) = super::lease::Held::take(ctx.catalog.clone(), &lease_name(&id), 60).await? else {
            continue;
        };
        match load(ctx, &id).await {
            Ok(mut j) if j.state == JobState::Running => {
                j.state = JobState::Failed;
                j.finished = Some(ctx.clock.now());
                j.note = Some("interrupted: the process running it stopped; the next run redoes the work".into());
                save(ctx, &j).await?;
                tracing::warn!(job = %id, "a job was interrupted (its process stopped); marked failed");
            }
            _ => {}
        }
        let catalog = ctx.catalog.clone();
        let id2 = id.clone();
        blocking(move || {
            catalog.manifest_drop(&id2)?;
            catalog.state_delete(RUNNING, &id2)?;
            Ok(())
        })
        .await?;
        out.push(id);
    }
    Ok(out)
}

/// Forgets ended jobs created more than `days` days before now, with their manifests.
/// Returns how many.
pub async fn prune(ctx: &Context, days: u32) -> Result<u64, LifecycleError> {
    let cutoff = super::rules::days_before(ctx.clock.now(), days);
    let mut doomed = Vec::new();
    for_each(ctx, |j| {
        if j.ended() && j.created < cutoff {
            doomed.push(j.id);
        }
    })
    .await?;
    let n = doomed.len() as u64;
    let catalog = ctx.catalog.clone();
    blocking(move || {
        for id in doomed {
            catalog.manifest_drop(&id)?;
            catalog.state_delete(NAMESPACE, &id)?;
        }
        Ok(())
    })
    .await?;
    Ok(n)
}
