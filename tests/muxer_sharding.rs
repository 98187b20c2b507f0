//! Many muxers, one catalog: shards cover every pair exactly once (the pure function over
//! many ids, and N instances of `reclife mux` on real pairs), a backup covers the next
//! shard, two processes started at once never mux a pair twice, and overlapping windows
//! never mux a pair twice.

#[path = "muxer_support/mod.rs"]
mod support;

use reclife::muxer::shard::{shard_of, Shard};
use reclife::muxer::{MuxerConfig, MuxerType};
use std::collections::BTreeSet;
use support::*;

fn pairs(prefix: &str, n: usize, start: &str) -> Vec<Pair> {
    let start = t(start);
    (0..n).map(|i| Pair::new(&format!("{prefix}{i:03}"), start + chrono::Duration::minutes(i as i64 * 10))).collect()
}

const DAY: [&str; 4] = ["--since", "2025-05-01T00:00:00Z", "--until", "2025-05-02T00:00:00Z"];

#[test]
fn shard_function_partitions_ids() {
    for total in 1..=8u32 {
        for i in 0..2000 {
            let id = format!("{i:032X}");
            let owners: Vec<u32> = (0..total)
                .filter(|m| {
                    let cfg =
                        MuxerConfig { muxer_id: i64::from(*m), total_muxers: Some(total), ..MuxerConfig::default() };
                    Shard::from_config(&cfg).unwrap().unwrap().owns(&id)
                })
                .collect();
            assert_eq!(owners, [shard_of(&id, total)]);
        }
    }
}

#[test]
fn n_instances_mux_every_pair_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "");
    let all = pairs("SHARD", 12, "2025-05-01T08:00:00Z");
    ingest(tmp.path(), &data, &cfg, &all);
    let total = 3;
    let mut seen = BTreeSet::new();
    for id in 0..total {
        let (i, n) = (id.to_string(), total.to_string());
        let r = mux_json(&data, &cfg, &[&DAY[..], &["--muxer-id", &i, "--total-muxers", &n]].concat(), 0);
        for s in muxed_screens(&r) {
            let call = s.trim_end_matches("_S");
            assert_eq!(shard_of(call, total), id, "{s} muxed by instance {id}");
            assert!(seen.insert(s.clone()), "{s} muxed twice");
        }
        assert_eq!(r["otherShard"].as_u64().unwrap() + r["muxed"].as_array().unwrap().len() as u64, 12);
    }
    let want: BTreeSet<String> = all.iter().map(Pair::screen_id).collect();
    assert_eq!(seen, want);
    // A backup configured as instance 2 covers shard 0, already done by primary 0.
    let r = mux_json(
        &data,
        &cfg,
        &[&DAY[..], &["--muxer-id", "2", "--total-muxers", "3", "--muxer-type", "backup"]].concat(),
        0,
    );
    let owned = all.iter().filter(|p| shard_of(&p.call_id, 3) == 0).count() as u64;
    assert_eq!((r["alreadyMuxed"].as_u64(), r["muxed"].as_array().unwrap().len()), (Some(owned), 0), "{r}");
    let b = Shard::from_config(&MuxerConfig {
        muxer_id: 2,
        total_muxers: Some(3),
        muxer_type: MuxerType::Backup,
        ..MuxerConfig::default()
    })
    .unwrap()
    .unwrap();
    assert_eq!(b.id, 0);
}

#[test]
fn two_processes_at_once_mux_each_pair_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "worker_threads = 2\npagination = 3");
    let all = pairs("RACE", 16, "2025-05-01T06:00:00Z");
    ingest(tmp.path(), &data, &cfg, &all);
    let args: Vec<&str> = [&["mux", "--json"][..], &DAY[..]].concat();
    let a = command(&data, &cfg, &args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let b = command(&data, &cfg, &args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ra: serde_json::Value = serde_json::from_str(expect(&a, 0).trim()).unwrap();
    let rb: serde_json::Value = serde_json::from_str(expect(&b, 0).trim()).unwrap();
    let (ma, mb) = (muxed_screens(&ra), muxed_screens(&rb));
    let union: BTreeSet<String> = ma.iter().chain(mb.iter()).cloned().collect();
    assert_eq!(ma.len() + mb.len(), 16, "each pair muxed exactly once: {ma:?} {mb:?}");
    assert_eq!(union, all.iter().map(Pair::screen_id).collect::<BTreeSet<_>>());
    for p in &all {
        assert_eq!(muxed_entries(&data, &cfg, &p.screen_id()).len(), 1, "{}", p.screen_id());
    }
    let st = expect(&run(&data, &cfg, &["mux", "--status"]), 0);
    assert!(st.starts_with("muxed 16, failed 0"), "{st}");
}

#[test]
fn overlapping_windows_never_mux_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "");
    // Calls ending 08:00:06, 08:10:06, … 09:50:06.
    let all = pairs("OVER", 12, "2025-05-01T08:00:00Z");
    ingest(tmp.path(), &data, &cfg, &all);
    let first = mux_json(&data, &cfg, &["--since", "2025-05-01T08:00:00Z", "--until", "2025-05-01T09:00:00Z"], 0);
    assert_eq!(muxed_screens(&first).len(), 6);
    let second = mux_json(&data, &cfg, &["--since", "2025-05-01T08:30:00Z", "--until", "2025-05-01T10:00:00Z"], 0);
    assert_eq!(muxed_screens(&second).len(), 6, "{second}");
    assert_eq!(second["alreadyMuxed"], 3);
    let polled = mux_json(&data, &cfg, &["--once", "--now", "2025-05-01T12:00:00Z"], 0);
    assert!(muxed_screens(&polled).is_empty());
    assert_eq!(polled["alreadyMuxed"], 12);
    for p in &all {
        assert_eq!(muxed_entries(&data, &cfg, &p.screen_id()).len(), 1);
    }
}

#[test]
fn a_pair_claimed_by_another_process_is_left_alone() {
    use reclife::catalog::{Catalog, SqliteCatalog};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let cfg = config(tmp.path(), "");
    let all = pairs("CLAIM", 2, "2025-05-01T08:00:00Z");
    ingest(tmp.path(), &data, &cfg, &all);
    // Another process is working on the first pair: it holds the pair's lease.
    let other = SqliteCatalog::open(&data.join("catalog.db")).unwrap();
    let now = chrono::Utc::now();
    let lease = format!("muxer/pair/{}", all[0].screen_id());
    assert!(other.lease_acquire(&lease, "other-host:1:1", now, now + chrono::Duration::hours(1)).unwrap());
    let r = mux_json(&data, &cfg, &DAY, 0);
    assert_eq!(muxed_screens(&r), [all[1].screen_id()], "{r}");
    assert_eq!(r["busy"], 1);
    assert!(muxed_entries(&data, &cfg, &all[0].screen_id()).is_empty());
    // Once it lets go (finished or crashed and expired), the pair is muxed.
    other.lease_release(&lease, "other-host:1:1").unwrap();
    let r = mux_json(&data, &cfg, &DAY, 0);
    assert_eq!(muxed_screens(&r), [all[0].screen_id()], "{r}");
}
