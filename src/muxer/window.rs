//! Which call end times a pass looks at: GIR's `window_past` … `window_past_older_than`
//! minutes before now, or an explicit `--since`/`--until` range, optionally cut into
//! sub-intervals of `max_interval_minutes` (GIR `split_window_enabled`).

use super::MuxerConfig;
use chrono::{DateTime, Duration, Utc};

/// A half-open range of call end (stop) times: `from <= stop < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Window {
    /// The polling window at `now`.
    pub fn polling(cfg: &MuxerConfig, now: DateTime<Utc>) -> Window {
        // Any window, however large, saturates at the earliest time instead of overflowing.
        let back = |m: u64| {
            let m = i64::try_from(m).unwrap_or(i64::MAX).min(i64::MAX / 120_000);
            now.checked_sub_signed(Duration::minutes(m)).unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Window { from: back(cfg.window_past), to: back(cfg.window_past_older_than) }
    }

    /// The sub-intervals a pass queries one after the other, oldest first. Without
    /// splitting (or with `max_interval_minutes = 0`) this is the window itself.
    pub fn intervals(&self, cfg: &MuxerConfig) -> Vec<Window> {
        if self.to <= self.from {
            return Vec::new();
        }
        if !cfg.split_window_enabled || cfg.max_interval_minutes == 0 {
            return vec![*self];
        }
        let step = Duration::minutes(i64::try_from(cfg.max_interval_minutes).unwrap_or(i64::MAX / 120_000));
        let mut out = Vec::new();
        let mut from = self.from;
        while from < self.to {
            let to = (from + step).min(self.to);
            out.push(Window { from, to });
            from = to;
        }
        out
    }

    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.to
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} .. {}", self.from.to_rfc3339(), self.to.to_rfc3339())
    }
}

#[cfg(test)]
mod overflow_tests {
    use super::*;
    #[test]
    fn a_huge_window_saturates_instead_of_panicking() {
        let cfg = MuxerConfig { window_past: u64::MAX, window_past_older_than: u64::MAX - 1, ..MuxerConfig::default() };
        let now = chrono::Utc::now();
        let w = Window::polling(&cfg, now);
        assert_eq!(w.from, DateTime::<Utc>::MIN_UTC);
        let _ = w.intervals(&cfg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn polling_window_defaults() {
        let cfg = MuxerConfig::default();
        let w = Window::polling(&cfg, t("2025-06-24T12:00:00Z"));
        assert_eq!(w.from, t("2025-06-24T00:00:00Z"));
        assert_eq!(w.to, t("2025-06-24T11:55:00Z"));
        assert!(w.contains(t("2025-06-24T00:00:00Z")));
        assert!(!w.contains(t("2025-06-24T11:55:00Z")), "half open");
        assert_eq!(w.intervals(&cfg), vec![w], "no split unless enabled");
    }

    #[test]
    fn split_covers_exactly_once() {
        let cfg = MuxerConfig { split_window_enabled: true, max_interval_minutes: 50, ..MuxerConfig::default() };
        let w = Window::polling(&cfg, t("2025-06-24T12:00:00Z"));
        let parts = w.intervals(&cfg);
        assert_eq!(parts.len(), 15, "715 minutes in 50-minute slices");
        assert_eq!(parts[0].from, w.from);
        assert_eq!(parts.last().unwrap().to, w.to);
        for p in parts.windows(2) {
            assert_eq!(p[0].to, p[1].from, "adjacent, no gap or overlap");
        }
        assert_eq!(parts.last().unwrap().to - parts.last().unwrap().from, Duration::minutes(15));
        let empty = Window { from: w.to, to: w.from };
        assert!(empty.intervals(&cfg).is_empty());
    }
}
