//! The overlap guard: no two tasks whose filters may select the same recordings run at once
//! when one of them purges (GIR's docs leave that to the operator). A task waits for its turn,
//! and says why.

use super::{Op, Task};
use crate::model::Kind;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What a running task may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// Labels of the tasks running now.
    pub fn running(&self) -> Vec<String> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(_, f)| f.label.clone()).collect()
    }
}
