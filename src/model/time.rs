//! The time and duration spellings found in real GIR metadata.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;

/// Parses a GIR timestamp into a UTC instant. Accepts RFC 3339 (`…Z`, `…+00:00`), the
/// Java style with a colon-less offset (`2015-06-24T20:18:31.000+0000`), no offset at all
/// (taken as UTC), and epoch milliseconds as a number or a string of digits.
pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => n.as_i64().and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        Value::String(s) => parse_time_str(s),
        _ => None,
    }
}

/// [`parse_time`] for a string.
pub fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<i64>().ok().and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::<FixedOffset>::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    None
}

/// Parses a size in bytes given as a number or a string of digits.
pub fn parse_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parses a duration into milliseconds. GIR writes `"32662"` (ms) for voice and
/// `"0:01:51"` (h:mm:ss, optionally with `.fff`) for screen recordings.
pub fn parse_duration_ms(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => {
            let s = s.trim();
            if !s.contains(':') {
                return s.parse().ok();
            }
            let mut total_ms: f64 = 0.0;
            let parts: Vec<&str> = s.split(':').collect();
            if parts.len() > 3 {
                return None;
            }
            for p in &parts {
                let x: f64 = p.parse().ok()?;
                if x < 0.0 {
                    return None;
                }
                total_ms = total_ms * 60.0 + x;
            }
            Some((total_ms * 1000.0).round() as u64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_seed_style() {
        let want = Utc.with_ymd_and_hms(2015, 6, 24, 20, 18, 31).unwrap();
        for s in [
            "2015-06-24T20:18:31.000+0000",
            "2015-06-24T20:18:31Z",
            "2015-06-24T20:18:31+00:00",
            "2015-06-24T22:18:31.000+0200",
            "2015-06-24T20:18:31.000",
        ] {
            assert_eq!(parse_time(&json!(s)), Some(want), "{s}");
        }
        assert_eq!(parse_time(&json!(1435177111000i64)), Some(want));
        assert_eq!(parse_time(&json!("yesterday")), None);
        assert_eq!(parse_time(&json!("2015-13-24T20:18:31Z")), None);
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration_ms(&json!("32662")), Some(32662));
        assert_eq!(parse_duration_ms(&json!("0:01:51")), Some(111_000));
        assert_eq!(parse_duration_ms(&json!("1:51.5")), Some(111_500));
        assert_eq!(parse_duration_ms(&json!(11300)), Some(11300));
        assert_eq!(parse_duration_ms(&json!("x")), None);
        assert_eq!(parse_u64(&json!("129888")), Some(129888));
        assert_eq!(parse_u64(&json!(44928)), Some(44928));
        assert_eq!(parse_u64(&json!("-1")), None);
    }
}
