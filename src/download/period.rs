//! The download period, its slices and the checkpoint.
//!
//! The period is `[start, end)`:
//! - `end` = `minDate` if set, else now − `minAge`;
//! - `start` = `maxDate` if set (it overrides the checkpoint); else the earlier of now − `maxAge`
//!   (`maxAge = 0`: no limit, the epoch) and checkpoint − `overlap`, where the checkpoint is
//!   `last_recording_endtime.txt` (ignored with `skipLastRecordingCheck`). So a machine that was
//!   off for days catches up from where it stopped, and the last `overlap` before it is scanned
//!   again for media that arrived late.
//!
//! A date (`YYYY-MM-DD`) is midnight GMT: `minDate=2018-01-04, maxDate=2018-01-02` is
//! 2018-01-02 00:00 up to, not including, 2018-01-04 00:00.
//!
//! Slices are `shardBy` long, their edges at whole multiples of `shardBy` since the epoch (for
//! whole days: midnight UTC), cut to the period. A recording belongs to the slice holding its
//! start time, and is listed once the call has ended (before `end`): a call crossing midnight
//! is fetched with the slice it started in, once.
//!
//! The checkpoint holds epoch milliseconds: after each slice whose every recording is done, the
//! slice's end is written (atomically: temporary file, fsync, rename), but only while the run's
//! slices have been complete without a gap from an existing checkpoint, so it never claims a
//! stretch that was not downloaded, and it never moves back.

use super::options::Settings;
use super::DownloadError;
use chrono::{DateTime, TimeDelta, Utc};
use std::path::Path;

pub const CHECKPOINT_FILE: &str = "last_recording_endtime.txt";

/// `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Period {
    pub fn is_empty(&self) -> bool {
        self.start >= self.end
    }

    /// Whether `t` lies in `[start, end)`: a listed recording starting elsewhere is not the
    /// run's to download.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }

    /// Computes the period from the settings, now, and the checkpoint (if used).
    pub fn compute(s: &Settings, now: DateTime<Utc>, checkpoint: Option<DateTime<Utc>>) -> Period {
        let end = s.min_date.unwrap_or_else(|| s.min_age.before(now));
        let start = match s.max_date {
            Some(d) => d,
            None => {
                let by_age = if s.max_age.is_zero() { DateTime::<Utc>::UNIX_EPOCH } else { s.max_age.before(now) };
                match checkpoint.filter(|_| !s.skip_last_recording_check) {
                    Some(c) => by_age.min(s.overlap.before(c)),
                    None => by_age,
                }
            }
        };
        Period { start, end }
    }

    /// The slices of `shard` length, edges aligned to multiples of it since the epoch.
    pub fn slices(&self, shard: TimeDelta) -> Vec<Period> {
        let mut out = Vec::new();
        if self.is_empty() {
            return out;
        }
        let step = shard.num_milliseconds().max(60_000);
        let mut a = self.start;
        while a < self.end {
            let ms = a.timestamp_millis();
            let edge = (ms.div_euclid(step) + 1) * step;
            let b = DateTime::from_timestamp_millis(edge).unwrap_or(self.end).min(self.end);
            out.push(Period { start: a, end: b });
            a = b;
        }
        out
    }
}

/// Reads the checkpoint; missing is `None`, unreadable is an error naming the file.
pub fn read_checkpoint(dir: &Path) -> Result<Option<DateTime<Utc>>, DownloadError> {
    let p = dir.join(CHECKPOINT_FILE);
    match std::fs::read_to_string(&p) {
        Ok(s) => parse_checkpoint(s.trim()).map(Some).ok_or_else(|| {
            DownloadError::Config(format!(
                "{}: expected epoch milliseconds or an ISO 8601 time, found {:?}",
                p.display(),
                s.trim()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DownloadError::io(&p, e)),
    }
}

/// A checkpoint as reclife writes it (epoch milliseconds) or as another tool may have written it:
/// RFC 3339 / ISO 8601 (`2025-03-10T00:00:00Z`, `…+01:00`, GIR's `…T00:00:00.000+0000`) or a
/// date (`2025-03-10`, midnight UTC). The next checkpoint written is epoch milliseconds.
pub fn parse_checkpoint(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)).map(|t| t.and_utc())
}

/// Writes the checkpoint atomically (0600 temporary, fsync, rename, fsync of the folder).
pub fn write_checkpoint(dir: &Path, t: DateTime<Utc>) -> Result<(), DownloadError> {
    super::fsio::write_atomic(&dir.join(CHECKPOINT_FILE), format!("{}\n", t.timestamp_millis()).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::options::Span;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn periods() {
        let now = t("2018-01-09T10:00:00Z");
        let mut s = Settings::default();
        s.set("maxAge", "3").unwrap();
        let p = Period::compute(&s, now, None);
        assert_eq!((p.start, p.end), (t("2018-01-06T10:00:00Z"), now));
        // A checkpoint older than the window: catch up from it, minus the overlap (6 h).
        let p = Period::compute(&s, now, Some(t("2018-01-01T00:00:00Z")));
        assert_eq!(p.start, t("2017-12-31T18:00:00Z"));
        // Newer: the age window wins.
        let p = Period::compute(&s, now, Some(t("2018-01-09T09:00:00Z")));
        assert_eq!(p.start, t("2018-01-06T10:00:00Z"));
        s.set("skipLastRecordingCheck", "true").unwrap();
        assert_eq!(Period::compute(&s, now, Some(t("2018-01-01T00:00:00Z"))).start, t("2018-01-06T10:00:00Z"));
        let mut s = Settings::default();
        s.set("minDate", "2018-01-04").unwrap();
        s.set("maxDate", "2018-01-02").unwrap();
        let p = Period::compute(&s, now, Some(t("2017-01-01T00:00:00Z")));
        assert_eq!((p.start, p.end), (t("2018-01-02T00:00:00Z"), t("2018-01-04T00:00:00Z")));
        let mut s = Settings::default();
        s.set("maxAge", "0").unwrap();
        s.set("minAge", "PT30M").unwrap();
        let p = Period::compute(&s, now, None);
        assert_eq!((p.start, p.end), (DateTime::<Utc>::UNIX_EPOCH, t("2018-01-09T09:30:00Z")));
    }

    #[test]
    fn slices_align_to_midnight() {
        let p = Period { start: t("2018-01-06T10:00:00Z"), end: t("2018-01-08T03:00:00Z") };
        let s = p.slices(Span::days(1).approx());
        let edges: Vec<_> = s.iter().map(|x| (x.start, x.end)).collect();
        assert_eq!(
            edges,
            vec![
                (t("2018-01-06T10:00:00Z"), t("2018-01-07T00:00:00Z")),
                (t("2018-01-07T00:00:00Z"), t("2018-01-08T00:00:00Z")),
                (t("2018-01-08T00:00:00Z"), t("2018-01-08T03:00:00Z")),
            ]
        );
        assert!(Period { start: p.end, end: p.start }.slices(TimeDelta::days(1)).is_empty());
    }

    #[test]
    fn checkpoints_of_other_tools_are_read() {
        let want = t("2025-03-10T00:00:00Z");
        for text in [
            "1741564800000",
            "2025-03-10T00:00:00Z",
            "2025-03-10T01:00:00+01:00",
            "2025-03-10T00:00:00.000+0000",
            "2025-03-10",
        ] {
            assert_eq!(parse_checkpoint(text), Some(want), "{text}");
        }
        for bad in ["", "yesterday", "2025-13-01", "99999999999999999999"] {
            assert_eq!(parse_checkpoint(bad), None, "{bad}");
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(CHECKPOINT_FILE), "2025-03-10T00:00:00.000+0000\n").unwrap();
        assert_eq!(read_checkpoint(d.path()).unwrap(), Some(want));
    }

    #[test]
    fn checkpoint_round_trip() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(d.path()).unwrap(), None);
        write_checkpoint(d.path(), t("2018-01-07T00:00:00Z")).unwrap();
        assert_eq!(read_checkpoint(d.path()).unwrap(), Some(t("2018-01-07T00:00:00Z")));
        assert_eq!(std::fs::read_to_string(d.path().join(CHECKPOINT_FILE)).unwrap(), "1515283200000\n");
        std::fs::write(d.path().join(CHECKPOINT_FILE), "yesterday").unwrap();
        assert!(read_checkpoint(d.path()).is_err());
    }
}
