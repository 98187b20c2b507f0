//! The disk budget (`diskBudget`, reclife's own key: RCBS has none and only asks the operator
//! to "ensure that the required space is available"): the most bytes one run may add to the
//! disk, counting media written below `targetDir` (received in this run; a `.part` left by an
//! earlier run is not counted again), metadata files written, and plaintext written with
//! `--decrypt`.
//!
//! How it holds: a recording is admitted only when what is already charged plus its stated
//! need (its matching media's stated sizes, twice with `--decrypt` unless `--plain-only`, and
//! its metadata) fits; when it ends, its charge becomes what it really wrote. A file whose size
//! the metadata does not state is charged chunk by chunk as it arrives and stops at the
//! budget. When a recording does not fit while others are under way, the run waits for them
//! (their unused charge comes back); when it still does not fit with nothing under way, the
//! run stops there: that recording and every one after it are left for a later run, slices
//! already complete keep their checkpoint, and the stop names the recording.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// How the failure of a file stopped by the budget begins.
pub const OVER: &str = "disk budget reached";

/// `diskBudget` values: bytes, or a number with `k`, `M`, `G` or `T` (powers of 1024, an
/// optional `B` or `iB` after them); `0` or empty: no budget.
pub fn parse_size(s: &str) -> Result<Option<u64>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let bad = || format!("{t:?} is not a size such as 500G, 20GiB or 1048576 (bytes)");
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = t[..digits].parse().map_err(|_| bad())?;
    let unit = t[digits..].trim();
    let lower = unit.to_ascii_lowercase();
    let shift = match lower.trim_end_matches("ib").trim_end_matches('b') {
        "" if lower.is_empty() || lower == "b" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return Err(bad()),
    };
    let v = n.checked_mul(1u64 << shift).ok_or_else(bad)?;
    Ok((v > 0).then_some(v))
}

/// One run's budget, shared by every transfer.
#[derive(Debug, Default)]
pub struct Budget {
    limit: Option<u64>,
    /// Bytes written in this run plus the unused part of admitted recordings' needs.
    charged: AtomicU64,
    /// Why the run stopped, once it must.
    stop: Mutex<Option<String>>,
}

impl Budget {
    pub fn new(limit: Option<u64>) -> Budget {
        Budget { limit, ..Budget::default() }
    }

    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Bytes charged now (written, or held for recordings under way).
    pub fn charged(&self) -> u64 {
        self.charged.load(Ordering::SeqCst)
    }

    /// Charges `need` if it fits; `false` (nothing charged) if it does not.
    pub fn admit(&self, need: u64) -> bool {
        let Some(limit) = self.limit else { return true };
        self.charged
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_add(need).filter(|&t| t <= limit))
            .is_ok()
    }

    /// A recording admitted with `need` has ended having written `written` bytes of what its
    /// need covered (bytes charged chunk by chunk are not in `written`).
    pub fn settle(&self, need: u64, written: u64) {
        if self.limit.is_none() {
            return;
        }
        let _ = self
            .charged
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| Some(c.saturating_sub(need).saturating_add(written)));
    }

    /// Charges `n` bytes of a file of unstated size as they arrive; `false` past the budget.
    pub fn charge(&self, n: u64) -> bool {
        self.admit(n)
    }

    /// Records why the run must stop (the first reason wins).
    pub fn stop(&self, why: String) {
        let mut g = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(why);
        }
    }

    pub fn stopped(&self) -> Option<String> {
        self.stop.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), Some(1 << 20));
        assert_eq!(parse_size("20GiB").unwrap(), Some(20 << 30));
        assert_eq!(parse_size("500G").unwrap(), Some(500 << 30));
        assert_eq!(parse_size("3 MB").unwrap(), Some(3 << 20));
        assert_eq!(parse_size("2k").unwrap(), Some(2048));
        assert_eq!(parse_size("0").unwrap(), None);
        assert_eq!(parse_size("").unwrap(), None);
        for bad in ["G", "1.5G", "-1", "10X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn admits_settles_and_charges() {
        let b = Budget::new(Some(100));
        assert!(b.admit(60));
        assert!(!b.admit(50), "60 + 50 > 100");
        b.settle(60, 10);
        assert!(b.admit(50));
        assert!(b.charge(40));
        assert!(!b.charge(1));
        assert_eq!(b.charged(), 100);
        let free = Budget::new(None);
        assert!(free.admit(u64::MAX) && free.charge(u64::MAX));
    }
}
