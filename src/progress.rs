//! Progress reporting: the library reports through [`Progress`] (per recording with
//! [`Progress::inc`], per byte with [`Progress::bytes`]); every face reads that one path:
//!
//! - the CLI draws it with indicatif (`cli::progress::Bar`);
//! - [`LogLines`] turns it into a log line every few seconds (the daemon's jobs, the
//!   scheduler's rules);
//! - [`live`] publishes the running tasks of this process by job id, which
//!   `GET /api/v1/jobs/{id}/events` (and through it the job's page) follows as it moves;
//! - [`Tee`] sends one report to several of them.
//!
//! Tests ignore it ([`NoProgress`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A sink for progress of one long operation.
pub trait Progress: Send + Sync {
    /// The true total, once known.
    fn set_total(&self, _total: u64) {}
    /// `n` more items done.
    fn inc(&self, _n: u64) {}
    /// `n` more bytes of media done (written, sent or deleted).
    fn bytes(&self, _n: u64) {}
    /// A short note on what is happening now.
    fn message(&self, _msg: &str) {}
    fn finish(&self) {}
}

/// Progress nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// One report sent to several sinks, in order.
pub struct Tee(pub Vec<Arc<dyn Progress>>);

impl Progress for Tee {
    fn set_total(&self, total: u64) {
        self.0.iter().for_each(|p| p.set_total(total));
    }
    fn inc(&self, n: u64) {
        self.0.iter().for_each(|p| p.inc(n));
    }
    fn bytes(&self, n: u64) {
        self.0.iter().for_each(|p| p.bytes(n));
    }
    fn message(&self, msg: &str) {
        self.0.iter().for_each(|p| p.message(msg));
    }
    fn finish(&self) {
        self.0.iter().for_each(|p| p.finish());
    }
}

/// Progress as log lines (`tracing` at info): one when the operation starts, then at most one
/// every `every`, and one at the end, each with recordings done of the total and bytes.
pub struct LogLines {
    what: String,
    every: Duration,
    total: AtomicU64,
    done: AtomicU64,
    bytes: AtomicU64,
    last: Mutex<Option<Instant>>,
}

impl LogLines {
    pub fn new(what: &str, every: Duration) -> LogLines {
        LogLines {
            what: what.to_string(),
            every,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            last: Mutex::new(None),
        }
    }

    fn maybe_log(&self, force: bool) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if !force && last.is_some_and(|t| t.elapsed() < self.every) {
            return;
        }
        *last = Some(Instant::now());
        tracing::info!(
            task = %self.what,
            recordings = self.done.load(Ordering::Relaxed),
            of = self.total.load(Ordering::Relaxed),
            bytes = self.bytes.load(Ordering::Relaxed),
            "progress"
        );
    }
}

impl Progress for LogLines {
    fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    fn inc(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
        self.maybe_log(false);
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.maybe_log(false);
    }
    fn finish(&self) {
        self.maybe_log(true);
    }
}

/// The live progress of the tasks this process runs, by job id.
pub mod live {
    use super::Progress;
    use serde::Serialize;
    use std::collections::HashMap;
    use std::sync::{Arc, LazyLock, Mutex};
    use tokio::sync::watch;

    /// Where one running task is: recordings done of `total`, media bytes done.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
    pub struct Snapshot {
        /// The task's number in its job (from 1).
        pub task: u32,
        pub recordings: u64,
        pub total: u64,
        pub bytes: u64,
        /// The last note (the muxer's seconds of media, say); empty when none.
        pub message: String,
        pub finished: bool,
    }

    static JOBS: LazyLock<Mutex<HashMap<String, watch::Receiver<Snapshot>>>> = LazyLock::new(Default::default);

    /// The sink of task `task` of job `job`; [`follow`] sees it until the sink is dropped.
    pub struct Live {
        job: String,
        tx: watch::Sender<Snapshot>,
    }

    /// Publishes task `task` of job `job` (replacing its previous task).
    pub fn start(job: &str, task: u32) -> Arc<Live> {
        let (tx, rx) = watch::channel(Snapshot { task, ..Snapshot::default() });
        JOBS.lock().unwrap_or_else(|e| e.into_inner()).insert(job.to_string(), rx);
        Arc::new(Live { job: job.to_string(), tx })
    }

    /// The live progress of job `job` if this process runs one of its tasks now.
    pub fn follow(job: &str) -> Option<watch::Receiver<Snapshot>> {
        JOBS.lock().unwrap_or_else(|e| e.into_inner()).get(job).cloned()
    }

    impl Drop for Live {
        fn drop(&mut self) {
            let mut jobs = JOBS.lock().unwrap_or_else(|e| e.into_inner());
            // Only if it is still this task's (the next task may have replaced it).
            if jobs.get(&self.job).is_some_and(|rx| rx.same_channel(&self.tx.subscribe())) {
                jobs.remove(&self.job);
            }
        }
    }

    impl Progress for Live {
        fn set_total(&self, total: u64) {
            self.tx.send_modify(|s| s.total = total);
        }
        fn inc(&self, n: u64) {
            self.tx.send_modify(|s| s.recordings += n);
        }
        fn bytes(&self, n: u64) {
            if n > 0 {
                self.tx.send_modify(|s| s.bytes += n);
            }
        }
        fn message(&self, msg: &str) {
            self.tx.send_modify(|s| s.message = msg.to_string());
        }
        fn finish(&self) {
            self.tx.send_modify(|s| s.finished = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_task_is_followed_until_its_sink_is_dropped() {
        let live = live::start("j-1", 1);
        let tee = Tee(vec![live.clone(), Arc::new(NoProgress)]);
        tee.set_total(3);
        tee.inc(1);
        tee.bytes(100);
        tee.bytes(0);
        let rx = live::follow("j-1").expect("published");
        assert_eq!(*rx.borrow(), live::Snapshot { task: 1, recordings: 1, total: 3, bytes: 100, ..Default::default() });
        // The next task replaces it; dropping the first one keeps the second published.
        let second = live::start("j-1", 2);
        drop(tee);
        drop(live);
        assert_eq!(live::follow("j-1").unwrap().borrow().task, 2);
        drop(second);
        assert!(live::follow("j-1").is_none());
    }
}
