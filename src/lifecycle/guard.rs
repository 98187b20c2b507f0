//! The overlap guard: no two tasks whose filters may select the same recordings run at once
//! when one of them purges (GIR's docs leave that to the operator). A task waits for its turn,
//! and says why.
//!
//! The guard holds across processes and nodes on one catalog: a running task's footprint is a
//! catalog lease `lifecycle/footprint/<job>/<task>` (renewed while it runs, expiring after a
//! crash) with the footprint itself in state `lifecycle.footprints`. Taking a place happens
//! under the short lease `lifecycle/guard`, so two processes never both see "no conflict".

use super::lease::Held;
use super::{blocking, LifecycleError, Op, Task};
use crate::config::Context;
use crate::model::Kind;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Catalog state namespace of running footprints (key: their lease name).
pub const FOOTPRINTS: &str = crate::catalog::namespaces::FOOTPRINTS;
/// Prefix of footprint leases.
pub const FOOTPRINT_LEASE: &str = "lifecycle/footprint/";

/// What a running task may touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footprint {
    /// `rule name / task n`, for the log.
    pub label: String,
    pub purge: bool,
    pub kinds: Vec<Kind>,
    /// Age range in days, `[min, max)`; `None` is unbounded.
    pub min_age: u32,
    pub max_age: Option<u32>,
    pub call_type: Option<String>,
}

impl Footprint {
    pub fn of(label: String, task: &Task) -> Footprint {
        let mut kinds = vec![task.filter.recording_type];
        if task.include_screen && task.filter.recording_type == Kind::Voice {
            kinds.push(Kind::Screen);
        }
        Footprint {
            label,
            purge: task.op == Op::Purge,
            kinds,
            min_age: task.filter.min_age.unwrap_or(0),
            max_age: task.filter.max_age,
            call_type: task.filter.call_type.as_ref().map(|c| c.to_ascii_lowercase()),
        }
    }

    /// True when the two may touch the same recordings and one of them deletes. Filters other
    /// than type, ages and call type are not compared: the guard errs on the side of waiting.
    pub fn conflicts(&self, o: &Footprint) -> bool {
        if !(self.purge || o.purge) || !self.kinds.iter().any(|k| o.kinds.contains(k)) {
            return false;
        }
        let below = |min: u32, max: Option<u32>| max.is_none_or(|m| min < m);
        if !(below(self.min_age, o.max_age) && below(o.min_age, self.max_age)) {
            return false;
        }
        match (&self.call_type, &o.call_type) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }
}

/// The running tasks, the wake-up for waiters, the next permit id.
type Shared = (Mutex<Vec<(u64, Footprint)>>, Notify, std::sync::atomic::AtomicU64);

/// Tasks running now, shared by every rule of a scheduler.
#[derive(Debug, Default, Clone)]
pub struct OverlapGuard {
    inner: Arc<Shared>,
}

/// A running task's place in the guard; dropping it lets waiting tasks go.
#[derive(Debug)]
pub struct Permit {
    guard: OverlapGuard,
    id: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let (running, notify, _) = &*self.guard.inner;
        running.lock().unwrap_or_else(|p| p.into_inner()).retain(|(i, _)| *i != self.id);
        notify.notify_waiters();
    }
}

/// A place in the guard across processes; dropping it frees the place.
#[derive(Debug)]
pub struct SharedPermit {
    _permit: Permit,
    held: Option<Held>,
    catalog: std::sync::Arc<dyn crate::catalog::Catalog>,
    name: String,
}

impl Drop for SharedPermit {
    fn drop(&mut self) {
        if let Err(e) = self.catalog.state_delete(FOOTPRINTS, &self.name) {
            tracing::warn!(footprint = %self.name, error = %e, "cannot clear a footprint; its lease expires by itself");
        }
        self.held.take();
    }
}

impl OverlapGuard {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a place if nothing running conflicts; else names the conflicting task.
    pub fn try_acquire(&self, fp: &Footprint) -> Result<Permit, String> {
        let (running, _, next) = &*self.inner;
        let mut r = running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, other)) = r.iter().find(|(_, o)| o.conflicts(fp)) {
            return Err(other.label.clone());
        }
        let id = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        r.push((id, fp.clone()));
        Ok(Permit { guard: self.clone(), id })
    }

    /// Waits until nothing running conflicts, logging why it waits, then takes a place.
    pub async fn acquire(&self, fp: &Footprint) -> Permit {
        let mut logged = false;
        loop {
            let notified = self.inner.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_acquire(fp) {
                Ok(p) => return p,
                Err(other) => {
                    if !logged {
                        tracing::warn!(task = %fp.label, running = %other,
                            "waiting: this task's filter overlaps a running task and one of them purges");
                        logged = true;
                    }
                }
            }
            notified.await;
        }
    }

    /// Takes a place in this process, then across every process on the catalog; waits (and
    /// says why, once) while a conflicting task runs anywhere. `key` names the task
    /// (`<job>/<task>`).
    pub async fn acquire_shared(
        &self,
        ctx: &Context,
        key: &str,
        fp: &Footprint,
    ) -> Result<SharedPermit, LifecycleError> {
        let permit = self.acquire(fp).await;
        let secs = ctx.config.lease_seconds;
        let name = format!("{FOOTPRINT_LEASE}{key}");
        let mut logged = false;
        loop {
            let lock = Held::wait(ctx.catalog.clone(), "lifecycle/guard", 10).await?;
            let catalog = ctx.catalog.clone();
            let mine = fp.clone();
            let conflict = blocking(move || {
                let now = chrono::Utc::now();
                for l in catalog.lease_list(FOOTPRINT_LEASE)? {
                    if !super::lease::is_live(&l, now) {
                        // A crashed holder's footprint: it no longer runs.
                        catalog.state_delete(FOOTPRINTS, &l.name)?;
                        super::lease::break_expired(catalog.as_ref(), &l.name)?;
                        continue;
                    }
                    let Some(text) = catalog.state_get(FOOTPRINTS, &l.name)? else { continue };
                    if let Ok(other) = serde_json::from_str::<Footprint>(&text) {
                        if other.conflicts(&mine) {
                            return Ok(Some(other.label));
                        }
                    }
                }
                Ok(None)
            })
            .await?;
            match conflict {
                None => {
                    let held = Held::take(ctx.catalog.clone(), &name, secs)
                        .await?
                        .ok_or_else(|| LifecycleError::Other(format!("lease {name} is taken")))?;
                    let (catalog, n, text) = (
                        ctx.catalog.clone(),
                        name.clone(),
                        serde_json::to_string(fp).map_err(|e| LifecycleError::Other(e.to_string()))?,
                    );
                    blocking(move || Ok(catalog.state_put(FOOTPRINTS, &n, &text)?)).await?;
                    drop(lock);
                    return Ok(SharedPermit { _permit: permit, held: Some(held), catalog: ctx.catalog.clone(), name });
                }
                Some(other) => {
                    drop(lock);
                    if !logged {
                        tracing::warn!(task = %fp.label, running = %other,
                            "waiting: a task in another process overlaps this one and one of them purges");
                        logged = true;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Labels of the tasks running now.
    pub fn running(&self) -> Vec<String> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, f)| f.label.clone()).collect()
    }
}
