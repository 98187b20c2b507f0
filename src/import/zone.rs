//! "Recording Timezone": the zone an import source's times are shown in (they are stored in
//! UTC). A zone is `UTC`, a fixed offset (`+02:00`, `-0530`, `UTC+2`, `GMT-03:30`), or an IANA
//! name (`Europe/Paris`) read from the system's time zone database (`/usr/share/zoneinfo`, or
//! `$TZDIR`), TZif files whose transitions give the offset and abbreviation at each instant.
//!
//! Guarantees: a zone name never opens a file outside the database folder (only `A-Za-z0-9`,
//! `_`, `-`, `+` and `/` between non-empty parts); an unreadable or unknown zone is an error
//! naming it ([`check`]), and [`show`] then shows UTC only.
//!
//! A recording imported from a source carries the source's zone in its document
//! (`genesysCloud.timezone`): [`of_recording`] reads it, [`of_rows`] for a page of listed rows,
//! and [`show`] formats a time in it; the recordings listing (`reclife recordings list`), the
//! Recordings page and a recording's page show its times in that zone beside UTC.

use crate::catalog::{Catalog, CatalogError, Row};
use crate::model::Recording;
use chrono::{DateTime, FixedOffset, Utc};
use std::collections::HashMap;
use std::path::PathBuf;

/// A fixed offset in seconds east of UTC, from `+02:00`, `-0530`, `UTC+2`, `GMT-03:30`, `Z`.
fn fixed(zone: &str) -> Option<i32> {
    let z = zone.trim();
    let rest = z.strip_prefix("UTC").or_else(|| z.strip_prefix("GMT")).unwrap_or(z);
    if rest.is_empty() || rest == "Z" {
        return Some(0);
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (h, m) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() == 4 => digits.split_at(2),
        None => (digits, "0"),
    };
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) || digits.is_empty() {
        return None;
    }
    Some(sign * (h * 3600 + m * 60))
}

fn database() -> PathBuf {
    std::env::var_os("TZDIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/share/zoneinfo"))
}

/// The TZif file of an IANA name, if the name is safe to look up.
fn zone_file(name: &str) -> Option<PathBuf> {
    let ok = !name.is_empty()
        && name.split('/').all(|p| {
            !p.is_empty() && p != "." && p != ".." && p.chars().all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
        });
    ok.then(|| database().join(name))
}

/// The offset (seconds east) and abbreviation of an IANA zone at `t`, from its TZif file (the
/// version-1 block: 32-bit transition times).
fn tzif(name: &str, t: i64) -> Result<(i32, String), String> {
    let path = zone_file(name).ok_or_else(|| format!("time zone {name:?}: not a zone name"))?;
    let data = std::fs::read(&path).map_err(|e| format!("time zone {name:?}: {}: {e}", path.display()))?;
    let bad = || format!("time zone {name:?}: {} is not a TZif file", path.display());
    if data.len() < 44 || &data[..4] != b"TZif" {
        return Err(bad());
    }
    let count = |i: usize| {
        u32::from_be_bytes([data[20 + 4 * i], data[21 + 4 * i], data[22 + 4 * i], data[23 + 4 * i]]) as usize
    };
    let (timecnt, typecnt, charcnt) = (count(3), count(4), count(5));
    let times = 44;
    let idx = times + 4 * timecnt;
    let types = idx + timecnt;
    let chars = types + 6 * typecnt;
    if typecnt == 0 || data.len() < chars + charcnt {
        return Err(bad());
    }
    let at = |i: usize| i32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]) as i64;
    // The last transition at or before t; before the first, the first standard-time type.
    let mut kind = (0..typecnt).find(|&k| data[types + 6 * k + 4] == 0).unwrap_or(0);
    for i in 0..timecnt {
        if at(times + 4 * i) <= t {
            kind = data[idx + i] as usize;
        } else {
            break;
        }
    }
    if kind >= typecnt {
        return Err(bad());
    }
    let off = at(types + 6 * kind) as i32;
    let a = data[types + 6 * kind + 5] as usize;
    let abbr: String = data
        .get(chars + a..chars + charcnt)
        .unwrap_or_default()
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    Ok((off, abbr))
}

/// The offset and a label of `zone` at `t`.
fn offset(t: DateTime<Utc>, zone: &str) -> Result<(FixedOffset, String), String> {
    let (secs, label) = match fixed(zone) {
        Some(s) => (s, String::new()),
        None => tzif(zone.trim(), t.timestamp())?,
    };
    let off = FixedOffset::east_opt(secs).ok_or_else(|| format!("time zone {zone:?}: offset {secs} s out of range"))?;
    Ok((off, label))
}

/// Checks that `zone` can be shown (the configuration's `timezone`).
pub fn check(zone: &str) -> Result<(), String> {
    offset(Utc::now(), zone).map(|_| ())
}

/// `t` in `zone` (`2024-03-10 03:30:00 EDT -04:00`), or `None` when the zone is UTC or
/// cannot be read (then only UTC is shown).
pub fn show(t: DateTime<Utc>, zone: &str) -> Option<String> {
    if fixed(zone) == Some(0) {
        return None;
    }
    let (off, label) = offset(t, zone).ok()?;
    let local = t.with_timezone(&off);
    Some(if label.is_empty() || label.starts_with(['+', '-']) {
        format!("{} {}", local.format("%Y-%m-%d %H:%M:%S"), local.format("%:z"))
    } else {
        format!("{} {label} {}", local.format("%Y-%m-%d %H:%M:%S"), local.format("%:z"))
    })
}

/// A recording's "Recording Timezone": the zone its import source named in its document
/// (`genesysCloud.timezone`), when its times are shown in one (not UTC, not empty).
pub fn of_recording(rec: &Recording) -> Option<String> {
    let doc = rec.doc_value();
    let zone = doc.get("genesysCloud")?.get("timezone")?.as_str()?.trim();
    (!zone.is_empty() && fixed(zone) != Some(0)).then(|| zone.to_string())
}

/// The Recording Timezones of listed rows, by id (rows without one are absent). Documents are
/// read (one `get_many` for the rows) only when some configured import source shows times in a
/// zone other than UTC, so a catalog without such imports pays nothing for it.
pub fn of_rows(
    config: &crate::config::Config,
    catalog: &dyn Catalog,
    rows: &[Row],
) -> Result<HashMap<String, String>, CatalogError> {
    let zoned = config.import.values().any(|s| !s.timezone.trim().is_empty() && fixed(&s.timezone) != Some(0));
    if !zoned || rows.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    Ok(catalog
        .get_many(&ids)?
        .into_iter()
        .filter_map(|e| of_recording(&e.recording).map(|z| (e.recording.id.clone(), z)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn fixed_offsets_and_names() {
        assert_eq!(fixed("UTC"), Some(0));
        assert_eq!(fixed("+02:00"), Some(7200));
        assert_eq!(fixed("-0530"), Some(-19800));
        assert_eq!(fixed("UTC+2"), Some(7200));
        assert_eq!(fixed("GMT-03:30"), Some(-12600));
        assert_eq!(fixed("Europe/Paris"), None);
        assert_eq!(show(t("2024-01-01T12:00:00Z"), "UTC"), None);
        assert_eq!(show(t("2024-01-01T12:00:00Z"), "+02:00").as_deref(), Some("2024-01-01 14:00:00 +02:00"));
        assert!(zone_file("../etc/passwd").is_none() && zone_file("/etc/passwd").is_none());
        assert!(check("Nowhere/Atlantis").unwrap_err().contains("Nowhere/Atlantis"));
        let rec = |gc: &str| {
            Recording::parse(&format!(
                r#"{{"id":"r1","startTime":"2024-01-01T12:00:00.000+0000","stopTime":"2024-01-01T12:03:00.000+0000","mediaFiles":[]{gc}}}"#
            ))
            .unwrap()
        };
        assert_eq!(of_recording(&rec(r#","genesysCloud":{"timezone":"+02:00"}"#)).as_deref(), Some("+02:00"));
        assert_eq!(of_recording(&rec(r#","genesysCloud":{"timezone":"UTC"}"#)), None);
        assert_eq!(of_recording(&rec("")), None);
        if database().join("America/New_York").is_file() {
            // Summer and winter time, from the system's database.
            assert_eq!(
                show(t("2024-07-01T16:00:00Z"), "America/New_York").as_deref(),
                Some("2024-07-01 12:00:00 EDT -04:00")
            );
            assert_eq!(
                show(t("2024-01-15T16:00:00Z"), "America/New_York").as_deref(),
                Some("2024-01-15 11:00:00 EST -05:00")
            );
        }
    }
}
