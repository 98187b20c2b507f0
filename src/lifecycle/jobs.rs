//! Job records: every rule run and every on-demand backup or purge is a job with an id, a
//! state (planned → running → succeeded | failed | cancelled), counts per task and the items it
//! set aside with their reasons. Kept in the catalog's state (namespace [`NAMESPACE`]) so every
//! node sharing the catalog sees them.

use super::{blocking, Failure, LifecycleError, Op};
use crate::config::Context;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const NAMESPACE: &str = "lifecycle.jobs";
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
        }
    }

    pub fn add_failures(&mut self, f: &[Failure]) {
        self.failed_total += f.len() as u64;
        let room = MAX_FAILED_KEPT.saturating_sub(self.failed.len());
        self.failed.extend(f.iter().take(room).cloned());
    }
}

/// `j-<yyyyMMddTHHmmss>-<8 hex>`: sorts by creation time; the suffix keeps ids taken in the same
/// second (by several processes, or with a fixed `--now`) apart.
pub fn new_id(now: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
    h.write_u32(std::process::id());
    format!("j-{}-{:08x}", now.format("%Y%m%dT%H%M%S"), h.finish() as u32)
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

/// Every job, oldest first.
pub async fn list(ctx: &Context) -> Result<Vec<JobRecord>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let all = blocking(move || Ok(catalog.state_list(NAMESPACE)?)).await?;
    let mut out = Vec::new();
    for (k, v) in all {
        match serde_json::from_str::<JobRecord>(&v) {
            Ok(j) => out.push(j),
            Err(e) => tracing::warn!(job = %k, error = %e, "unreadable job record skipped"),
        }
    }
    Ok(out)
}
