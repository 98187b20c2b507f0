//! indicatif drawing of the library's progress reports.

use indicatif::{ProgressBar, ProgressStyle};
use reclife::progress::Progress;

/// A progress bar on stderr (hidden with `--quiet` or when stderr is not a terminal): items,
/// and the media bytes done as its message (unless the task gives a message of its own).
pub struct Bar(ProgressBar, std::sync::atomic::AtomicU64, std::sync::atomic::AtomicBool);

impl Bar {
    pub fn new(quiet: bool, what: &str) -> Bar {
        let pb = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        pb.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_prefix(what.to_string());
        Bar(pb, Default::default(), Default::default())
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn bytes(&self, n: u64) {
        use std::sync::atomic::Ordering;
        let total = self.1.fetch_add(n, Ordering::Relaxed) + n;
        if !self.2.load(Ordering::Relaxed) {
            self.0.set_message(indicatif::HumanBytes(total).to_string());
        }
    }
    fn message(&self, msg: &str) {
        self.2.store(true, std::sync::atomic::Ordering::Relaxed);
        self.0.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
