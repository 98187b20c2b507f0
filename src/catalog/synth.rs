//! Synthetic catalogs for benchmarks and load tests: metadata only, GIR-shaped documents,
//! deterministic for a given seed.

use super::{Catalog, CatalogError};
use crate::model::Recording;
use chrono::{DateTime, Duration, Utc};

/// A small deterministic generator (SplitMix64): no dependency, same output everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

const CALL_TYPES: [&str; 5] = ["Inbound", "Outbound", "Internal", "Consult", "Unknown"];
const REGIONS: [&str; 3] = ["us", "eu", "apac"];

/// The `i`-th synthetic call recording, started within `days` days before `end`.
pub fn call(i: u64, end: DateTime<Utc>, days: u32, rng: &mut Rng) -> Recording {
    let span_ms = i64::from(days.max(1)) * 86_400_000;
    let start = end - Duration::milliseconds(1 + rng.below(span_ms as u64) as i64);
    let secs = 30 + rng.below(570) as i64;
    let stop = start + Duration::seconds(secs);
    let id = format!("SYN{i:012}{:08X}", rng.below(u32::MAX as u64));
    let agent = format!("agent{}", rng.below(500));
    let segment = ["gold", "silver", "bronze"][rng.below(3) as usize];
    let fmt = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let doc = serde_json::json!({
        "id": id,
        "callerPhoneNumber": format!("{}", 1000 + rng.below(9000)),
        "dialedPhoneNumber": format!("{}", 1000 + rng.below(9000)),
        "startTime": fmt(start),
        "stopTime": fmt(stop),
        "callType": CALL_TYPES[rng.below(5) as usize],
        "mediaFiles": [{
            "mediaId": format!("{id}_0001.mp3"),
            "type": "audio/mp3",
            "startTime": fmt(start),
            "stopTime": fmt(stop),
            "duration": (secs * 1000).to_string(),
            "size": (secs * 4000).to_string(),
            "channels": 1,
            "tenant": "Environment",
            "parameters": {"agentId": agent.trim_start_matches("agent"), "username": agent, "callUuid": id},
            "partitions": [if rng.below(2) == 0 { "sales" } else { "support" }],
            "accessgroups": ["/team1"]
        }],
        "eventHistory": [{"occurredAt": fmt(start), "event": "Data",
                          "data": {"added": {"CustomerSegment": segment}}}],
        "screenRecording": false,
        "region": REGIONS[rng.below(3) as usize],
    });
    Recording::parse(&doc.to_string()).expect("synthetic documents are valid")
}

/// Fills `catalog` with `n` synthetic calls spread over `days` days before `end`, in
/// transactions of `batch`. Returns the number written.
pub fn fill(
    catalog: &dyn Catalog,
    n: u64,
    end: DateTime<Utc>,
    days: u32,
    seed: u64,
    batch: usize,
) -> Result<u64, CatalogError> {
    let mut rng = Rng::new(seed);
    let mut buf = Vec::with_capacity(batch);
    let mut done = 0;
    for i in 0..n {
        buf.push(call(i, end, days, &mut rng));
        if buf.len() == batch {
            catalog.upsert_many(&buf)?;
            done += buf.len() as u64;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        catalog.upsert_many(&buf)?;
        done += buf.len() as u64;
    }
    Ok(done)
}
