//! Query filters, shared by every catalog, and the parser of RWS's recording search
//! parameters ([`parse_rws`]): the API's listings, the operators' search form and the muxer's
//! GIR query strings (`call_recording_query_string`, `call_recording_extra_query_string`) all
//! read them through it, so a query string means the same on every face.

use super::Cursor;
use crate::model::Kind;
use chrono::{DateTime, TimeDelta, Utc};

/// What to scroll. Every filter is optional; set ones are combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub kind: Option<Kind>,
    /// Start time at or after.
    pub start_from: Option<DateTime<Utc>>,
    /// Start time before.
    pub start_to: Option<DateTime<Utc>>,
    /// End (stop) time at or after.
    pub stop_from: Option<DateTime<Utc>>,
    /// End (stop) time before.
    pub stop_to: Option<DateTime<Utc>>,
    /// Exactly this region.
    pub region: Option<String>,
    /// callType, compared without case.
    pub call_type: Option<String>,
    /// Has every one of these labels.
    pub labels_include: Vec<String>,
    /// Has none of these labels.
    pub labels_exclude: Vec<String>,
    /// Held (nonDelete or a hold), or not.
    pub held: Option<bool>,
    /// Attached data: has every one of these key = value pairs (the key's current value).
    pub attached: Vec<(String, String)>,
    /// Attached data: none of these keys has this value now (a missing key matches).
    pub attached_not: Vec<(String, String)>,
    /// An agent of this user name took part.
    pub agent_user: Option<String>,
    /// Has screen recordings in the catalog, or not.
    pub has_screen: Option<bool>,
    /// Belongs to any of these partitions (empty: no filter).
    pub partitions: Vec<String>,
    /// Screen recordings of this call.
    pub call_recording_id: Option<String>,
    /// Slices per day for the scan (GIR `scanIntervalsPerDay`); 0 is taken as 1.
    pub scan_intervals_per_day: u32,

    // RWS search parameters (used by api/rws). Patterns: `*` matches any run of characters;
    // every other character is literal.
    /// RWS `callerPhoneNumber`: the document's `callerPhoneNumber`, with punctuation and spaces
    /// removed, matches this pattern (case-sensitive).
    pub caller_phone: Option<String>,
    /// RWS `dialedPhoneNumber`: the same, on `dialedPhoneNumber`.
    pub dialed_phone: Option<String>,
    /// RWS `userData`: some attached-data value matches any of these patterns (case-sensitive).
    pub attached_value_any: Vec<String>,
    /// RWS `userName`: for every group, some agent user name matches one of the group's
    /// patterns, compared without (ASCII) case. Terms are OR within a group, groups are AND.
    pub agent_user_any: Vec<Vec<String>>,
}

impl Query {
    /// Length of one scan slice in milliseconds.
    pub fn slice_ms(&self) -> i64 {
        86_400_000 / i64::from(self.scan_intervals_per_day.clamp(1, 86_400))
    }

    /// The slice that contains `t_ms`, aligned to UTC midnight.
    pub fn slice_of(&self, t_ms: i64) -> i64 {
        let len = self.slice_ms();
        t_ms.div_euclid(len) * len
    }
}

/// Page size when a search names none, and the largest served.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;
/// The longest value of any search parameter, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024;
/// The most terms `userName` or `userData` may hold.
pub const MAX_TERMS: usize = 32;

/// RWS's recording search parameters.
pub const RWS_PARAMS: &[&str] = &[
    "startTime",
    "endTime",
    "limit",
    "cursor",
    "region",
    "userName",
    "userData",
    "callerPhoneNumber",
    "dialedPhoneNumber",
    "scanAndScroll",
];

/// A parsed RWS search: the catalog query, where to resume, the page size, and the filter
/// parameters as given (to repeat in a `nextUri`).
#[derive(Debug, Clone)]
pub struct RwsSearch {
    pub query: Query,
    pub cursor: Cursor,
    pub limit: usize,
    pub echo: Vec<(String, String)>,
}

fn epoch_ms(name: &str, v: &str) -> Result<DateTime<Utc>, String> {
    v.parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .ok_or_else(|| format!("{name}={v:?}: expected milliseconds since 1970-01-01 UTC"))
}

/// Only `*` is a wildcard; other characters are literal. Phone numbers compare alphanumerics.
fn phone_pattern(name: &str, v: &str) -> Result<String, String> {
    let p: String = v.chars().filter(|c| c.is_alphanumeric() || *c == '*').collect();
    if p.is_empty() {
        return Err(format!("{name}={v:?}: no digits or letters"));
    }
    Ok(p)
}

/// The space-separated terms of `name`: at least one, at most [`MAX_TERMS`].
fn terms(name: &str, v: &str) -> Result<Vec<String>, String> {
    let t: Vec<String> = v.split_whitespace().map(str::to_string).collect();
    if t.is_empty() {
        return Err(format!("{name} is empty"));
    }
    if t.len() > MAX_TERMS {
        return Err(format!("{name} has {} terms; at most {MAX_TERMS} are allowed", t.len()));
    }
    Ok(t)
}

/// Parses RWS search parameters (`userName=alice%20AND%20bob&userData=tom*&…`, as a URL's query
/// or GIR's muxer writes them) for recordings of `kind`. `Err` explains the first bad parameter.
/// GIR's meanings: `startTime` started at or after, `endTime` ended at or before (epoch ms);
/// phone numbers compare alphanumerics, `*` matching any run; `userName` terms match any agent
/// user name (case-insensitive), all of them with the keyword `AND`; `userData` terms match any
/// attached-data value.
pub fn parse_rws(raw: &str, kind: Kind, intervals: u32) -> Result<RwsSearch, String> {
    let mut q = Query { kind: Some(kind), scan_intervals_per_day: intervals, ..Query::default() };
    let mut cursor = Cursor::start();
    let mut limit = DEFAULT_LIMIT;
    let mut echo = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let (k, v) = (k.into_owned(), v.into_owned());
        if !RWS_PARAMS.contains(&k.as_str()) {
            return Err(format!("unknown parameter {k:?}; known: {}", RWS_PARAMS.join(", ")));
        }
        if !seen.insert(k.clone()) {
            return Err(format!("parameter {k} given twice"));
        }
        if v.len() > MAX_VALUE_BYTES {
            return Err(format!("{k} is {} bytes long; at most {MAX_VALUE_BYTES} are allowed", v.len()));
        }
        match k.as_str() {
            // GIR: startTime matches recordings that started at or after it.
            "startTime" => q.start_from = Some(epoch_ms(&k, &v)?),
            // GIR: endTime matches recordings that ended at or before it (the catalog's bound is
            // exclusive, hence one millisecond more).
            "endTime" => {
                let t = epoch_ms(&k, &v)?.checked_add_signed(TimeDelta::milliseconds(1));
                q.stop_to = Some(t.ok_or_else(|| format!("{k}={v:?}: past the latest time this server can search"))?)
            }
            "limit" => {
                limit = match v.parse::<i64>() {
                    Ok(n) if n >= 1 => usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
                    _ => return Err(format!("limit={v:?}: expected a whole number from 1 to {MAX_LIMIT}")),
                }
            }
            "cursor" => {
                cursor = Cursor::from_token(&v).map_err(|_| format!("cursor={v:?}: not a cursor this server issued"))?
            }
            "region" => q.region = Some(v.clone()),
            "scanAndScroll" => {
                // Every listing is a keyset scroll already; the flag is accepted for RWS clients.
                if v != "true" && v != "false" {
                    return Err(format!("scanAndScroll={v:?}: expected true or false"));
                }
            }
            "callerPhoneNumber" => q.caller_phone = Some(phone_pattern(&k, &v)?),
            "dialedPhoneNumber" => q.dialed_phone = Some(phone_pattern(&k, &v)?),
            "userData" => q.attached_value_any = terms(&k, &v)?,
            "userName" => {
                // GIR: terms separated by spaces match any; with the keyword AND, all.
                let t = terms(&k, &v)?;
                let all = t.iter().any(|x| x == "AND");
                let t: Vec<String> = t.into_iter().filter(|x| x != "AND").collect();
                if t.is_empty() {
                    return Err("userName is empty".into());
                }
                q.agent_user_any = if all { t.into_iter().map(|x| vec![x]).collect() } else { vec![t] };
            }
            _ => unreachable!("every known parameter is handled"),
        }
        if k != "cursor" {
            echo.push((k, v));
        }
    }
    Ok(RwsSearch { query: q, cursor, limit, echo })
}
