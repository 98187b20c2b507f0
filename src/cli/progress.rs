//! indicatif drawing of the library's progress reports.

use indicatif::{ProgressBar, ProgressStyle};
use reclife::progress::Progress;

/// A progress bar on stderr (hidden with `--quiet` or when stderr is not a terminal).
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(quiet: bool, what: &str) -> Bar {
        let pb = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
        pb.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        pb.set_prefix(what.to_string());
        Bar(pb)
    }
}

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, msg: &str) {
        self.0.set_message(msg.to_string());
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
