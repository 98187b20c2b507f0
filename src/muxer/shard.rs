//! Sharding many muxer instances over the calls, as GIR does: instance `muxer_id` of
//! `total_muxers` handles the calls whose shard is its id; a backup instance configured with
//! `muxer_id = m` covers shard `(m + 1) % total_muxers`, so a primary and a backup on one
//! machine never cover the same shard.
//!
//! A call's shard is `fnv1a_64(call recording id as UTF-8) % total_muxers`. FNV-1a 64
//! (offset basis 0xcbf29ce484222325, prime 0x100000001b3) is fixed by its definition, so every
//! process, machine and reclife version agrees on it; std's `RandomState` would not.

use super::MuxerConfig;
use super::MuxerType;

/// FNV-1a, 64 bits.
pub fn fnv1a_64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The shard of a call recording id among `total` shards (`total` ≥ 1).
pub fn shard_of(call_id: &str, total: u32) -> u32 {
    (fnv1a_64(call_id.as_bytes()) % u64::from(total.max(1))) as u32
}

/// The shard this instance covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// The effective id: `muxer_id` for a primary, `(muxer_id + 1) % total` for a backup.
    pub id: u32,
    pub total: u32,
}

impl Shard {
    /// `None` when sharding is off (`muxer_id` < 0, GIR's "empty or -1").
    pub fn from_config(cfg: &MuxerConfig) -> Result<Option<Shard>, String> {
        if cfg.muxer_id < 0 {
            return Ok(None);
        }
        let total = cfg.total_muxers.ok_or("muxer.muxer_id is set, so muxer.total_muxers is required")?;
        if total == 0 {
            return Err("muxer.total_muxers must be at least 1".into());
        }
        let id = u32::try_from(cfg.muxer_id).map_err(|_| "muxer.muxer_id is too large".to_string())?;
        if id >= total {
            return Err(format!("muxer.muxer_id ({id}) must be less than muxer.total_muxers ({total})"));
        }
        let id = match cfg.muxer_type {
            MuxerType::Primary => id,
            MuxerType::Backup => (id + 1) % total,
        };
        Ok(Some(Shard { id, total }))
    }

    pub fn owns(&self, call_id: &str) -> bool {
        shard_of(call_id, self.total) == self.id
    }
}

/// Whether an instance with this sharding (or none) handles the call.
pub fn owns(shard: Option<Shard>, call_id: &str) -> bool {
    shard.is_none_or(|s| s.owns(call_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(id: i64, total: u32, t: MuxerType) -> MuxerConfig {
        MuxerConfig { muxer_id: id, total_muxers: Some(total), muxer_type: t, ..MuxerConfig::default() }
    }

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors: the hash must never change between versions.
        assert_eq!(fnv1a_64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a_64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a_64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_call_exactly_once_across_n_primaries() {
        let ids: Vec<String> = (0..5000).map(|i| format!("0{i:05}A7C3F{}", i * 7919 % 1000)).collect();
        for total in 1..=7u32 {
            let shards: Vec<Shard> = (0..total)
                .map(|i| Shard::from_config(&cfg(i as i64, total, MuxerType::Primary)).unwrap().unwrap())
                .collect();
            let mut per = vec![0usize; total as usize];
            for id in &ids {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.owns(id)).collect();
                assert_eq!(owners.len(), 1, "{id} with {total} muxers");
                per[owners[0].id as usize] += 1;
            }
            // A hash that spreads: no shard gets less than half its fair share.
            assert!(per.iter().all(|&n| n * 2 * total as usize >= ids.len()), "{total}: {per:?}");
        }
    }

    #[test]
    fn backups_cover_the_next_shard() {
        let total = 4;
        let b = Shard::from_config(&cfg(2, total, MuxerType::Backup)).unwrap().unwrap();
        assert_eq!(b.id, 3, "GIR's example: muxer_id 2 of 4 as backup uses 3");
        let b = Shard::from_config(&cfg(3, total, MuxerType::Backup)).unwrap().unwrap();
        assert_eq!(b.id, 0, "wraps around");
        // Backups configured with every id also cover every call exactly once, and a machine
        // with primary m and backup m never covers one shard twice.
        for id in ["CALLA0000000000000000000000000001", "x", "0001KQ7", "CALLC0000000000000000000000000003"] {
            let owners = (0..total as i64)
                .filter(|m| Shard::from_config(&cfg(*m, total, MuxerType::Backup)).unwrap().unwrap().owns(id))
                .count();
            assert_eq!(owners, 1);
            for m in 0..total as i64 {
                let p = Shard::from_config(&cfg(m, total, MuxerType::Primary)).unwrap().unwrap();
                let b = Shard::from_config(&cfg(m, total, MuxerType::Backup)).unwrap().unwrap();
                assert!(!(p.owns(id) && b.owns(id)));
            }
        }
    }

    #[test]
    fn sharding_off_and_bad_config() {
        assert_eq!(Shard::from_config(&MuxerConfig::default()).unwrap(), None);
        assert!(owns(None, "anything"));
        let no_total = MuxerConfig { muxer_id: 0, ..MuxerConfig::default() };
        assert!(Shard::from_config(&no_total).unwrap_err().contains("total_muxers"));
        assert!(Shard::from_config(&cfg(4, 4, MuxerType::Primary)).is_err());
        assert!(Shard::from_config(&cfg(0, 0, MuxerType::Primary)).is_err());
    }
}
