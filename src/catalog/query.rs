//! Query filters, shared by every catalog.

use crate::model::Kind;
use chrono::{DateTime, Utc};

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
