//! The conformance suite every [`MediaStore`] backend must pass. Integration tests call
//! [`run`] with a fresh, empty store of each backend (local disk, and real servers for the
//! remote ones).

use super::{Key, MediaStore, MediaStoreExt, StorageError};
use bytes::Bytes;
use futures::StreamExt;

/// Runs every check; panics with the name of the first that fails.
pub async fn run(store: &dyn MediaStore) {
    put_get_round_trip(store).await;
    put_replaces_whole(store).await;
    large_streamed_object(store).await;
    head_and_not_found(store).await;
    delete_semantics(store).await;
    list_by_prefix(store).await;
    failed_put_leaves_nothing(store).await;
    create_only(store).await;
    create_only_race(store).await;
    awkward_names(store).await;
    ranged_reads(store).await;
    listing_past_a_thousand(store).await;
    very_large_object(store).await;
}

/// The object of `len` bytes the large checks write: byte `i` is `(i * 7 + i / 4093) % 256`,
/// generated chunk by chunk so that nothing holds it whole.
fn pattern(len: u64, chunk: usize) -> crate::storage::ByteStream {
    let chunks = len.div_ceil(chunk as u64);
    Box::pin(futures::stream::iter(0..chunks).map(move |c| {
        let start = c * chunk as u64;
        let end = (start + chunk as u64).min(len);
        Ok::<Bytes, StorageError>((start..end).map(|i| ((i * 7 + i / 4093) % 256) as u8).collect::<Vec<u8>>().into())
    }))
}

fn k(s: &str) -> Key {
    Key::parse(s).expect("test keys are valid")
}

async fn put_get_round_trip(store: &dyn MediaStore) {
    let key = k("conf-rt/a.mp3");
    let meta = store.put_bytes(&key, Bytes::from_static(b"hello media")).await.expect("put");
    assert_eq!(meta.size, 11, "put reports the size written");
    assert_eq!(store.get_bytes(&key).await.expect("get"), b"hello media");
    // Empty objects are objects too.
    let empty = k("conf-rt/empty");
    store.put_bytes(&empty, Bytes::new()).await.expect("put empty");
    assert_eq!(store.head(&empty).await.expect("head empty").size, 0);
}

async fn put_replaces_whole(store: &dyn MediaStore) {
    let key = k("conf-replace/x");
    store.put_bytes(&key, Bytes::from(vec![1u8; 5000])).await.expect("put 1");
    store.put_bytes(&key, Bytes::from(vec![2u8; 10])).await.expect("put 2");
    assert_eq!(store.get_bytes(&key).await.expect("get"), vec![2u8; 10], "second put replaces the first whole");
}

async fn large_streamed_object(store: &dyn MediaStore) {
    let key = k("conf-large/video.mp4");
    let chunk: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let chunks: Vec<Result<Bytes, StorageError>> = (0..12).map(|_| Ok(Bytes::from(chunk.clone()))).collect();
    let meta = store.put(&key, Box::pin(futures::stream::iter(chunks))).await.expect("put large");
    assert_eq!(meta.size, 12 * 1024 * 1024);
    let mut s = store.get(&key).await.expect("get large");
    let mut n = 0usize;
    let mut pieces = 0;
    while let Some(c) = s.next().await {
        let c = c.expect("read chunk");
        for (j, b) in c.iter().enumerate() {
            assert_eq!(*b, ((n + j) % (1024 * 1024) % 251) as u8, "byte {} differs", n + j);
        }
        n += c.len();
        pieces += 1;
    }
    assert_eq!(n, 12 * 1024 * 1024);
    assert!(pieces > 1, "get streams in more than one piece");
}

async fn head_and_not_found(store: &dyn MediaStore) {
    let key = k("conf-head/m");
    store.put_bytes(&key, Bytes::from_static(b"12345")).await.expect("put");
    assert_eq!(store.head(&key).await.expect("head").size, 5);
    let missing = k("conf-head/missing");
    assert!(matches!(store.head(&missing).await, Err(StorageError::NotFound { .. })), "head of a missing key");
    assert!(matches!(store.get(&missing).await, Err(StorageError::NotFound { .. })), "get of a missing key");
}

async fn delete_semantics(store: &dyn MediaStore) {
    let key = k("conf-del/m");
    store.put_bytes(&key, Bytes::from_static(b"x")).await.expect("put");
    store.delete(&key).await.expect("delete");
    assert!(matches!(store.head(&key).await, Err(StorageError::NotFound { .. })), "deleted object is gone");
    assert!(matches!(store.delete(&key).await, Err(StorageError::NotFound { .. })), "second delete is NotFound");
}

async fn list_by_prefix(store: &dyn MediaStore) {
    for name in ["conf-list/r1/a", "conf-list/r1/b", "conf-list/r2/a", "conf-list2/a"] {
        store.put_bytes(&k(name), Bytes::from_static(b"..")).await.expect("put");
    }
    let mut r1: Vec<String> =
        store.list(Some(&k("conf-list/r1"))).await.expect("list").into_iter().map(|m| m.key.to_string()).collect();
    r1.sort();
    assert_eq!(r1, vec!["conf-list/r1/a", "conf-list/r1/b"]);
    let all = store.list(Some(&k("conf-list"))).await.expect("list");
    assert_eq!(all.len(), 3, "prefix is by whole segments: conf-list does not match conf-list2");
    assert!(all.iter().all(|m| m.size == 2));
    // `reclife check` leaves orphans younger than its grace period: listings say when.
    for m in &all {
        let age = m.age().unwrap_or_else(|| panic!("the listing says when {} was written", m.key));
        assert!(age < std::time::Duration::from_secs(600), "{} was written just now, not {age:?} ago", m.key);
    }
    assert!(store.list(Some(&k("conf-nothing"))).await.expect("list empty").is_empty());
}

async fn failed_put_leaves_nothing(store: &dyn MediaStore) {
    let key = k("conf-fail/x");
    let body: Vec<Result<Bytes, StorageError>> = vec![
        Ok(Bytes::from_static(b"partial")),
        Err(StorageError::Backend {
            store: "test".into(),
            op: "read",
            key: "x".into(),
            message: "source broke".into(),
        }),
    ];
    assert!(store.put(&key, Box::pin(futures::stream::iter(body))).await.is_err(), "a failing body fails the put");
    assert!(matches!(store.head(&key).await, Err(StorageError::NotFound { .. })), "a failed put leaves no object");
    let listed = store.list(Some(&k("conf-fail"))).await.expect("list");
    assert!(listed.is_empty(), "a failed put leaves nothing listed: {listed:?}");
}

async fn create_only(store: &dyn MediaStore) {
    let key = k("conf-new/a");
    let one = || Box::pin(futures::stream::once(async { Ok(Bytes::from_static(b"first")) }));
    let two = || Box::pin(futures::stream::once(async { Ok(Bytes::from_static(b"second")) }));
    store.put_new(&key, one()).await.expect("put_new of a free name");
    let again = store.put_new(&key, two()).await;
    assert!(matches!(again, Err(StorageError::AlreadyExists { .. })), "put_new over an object: {again:?}");
    assert_eq!(store.get_bytes(&key).await.expect("get"), b"first", "a refused put_new leaves the object alone");
    // A big body too (multipart or parts on the remote backends).
    let big = k("conf-new/big");
    store.put_new(&big, pattern(11 * 1024 * 1024, 1 << 20)).await.expect("big put_new");
    let again = store.put_new(&big, pattern(3, 3)).await;
    assert!(matches!(again, Err(StorageError::AlreadyExists { .. })), "big put_new over an object: {again:?}");
    assert_eq!(store.head(&big).await.expect("head").size, 11 * 1024 * 1024);
}

/// Rounds of the create-only race, and how many of them run at once.
const RACE_ROUNDS: usize = 100;
const RACE_AT_ONCE: usize = 10;
/// Writers racing in each round.
const RACE_WRITERS: u8 = 3;

/// Keeps every core busy until dropped: a loaded machine is where servers answer the losers
/// of a race in odd ways (Apache answers the loser of two MKCOLs 403 when the disk is slow).
struct CpuLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    fn start() -> CpuLoad {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        }
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        CpuLoad { stop, threads }
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// [`RACE_ROUNDS`] rounds of [`RACE_WRITERS`] writers racing `put_new` for one name,
/// [`RACE_AT_ONCE`] rounds at a time, with every core kept busy: in every round exactly one
/// wins, every loser is told `AlreadyExists` (never an error of its own, such as a
/// credentials problem) and the winner's bytes are what is stored.
async fn create_only_race(store: &dyn MediaStore) {
    let _load = CpuLoad::start();
    futures::stream::iter(0..RACE_ROUNDS)
        .map(|round| race_round(store, "conf-race", round, 64 * 1024))
        .buffer_unordered(RACE_AT_ONCE)
        .collect::<Vec<()>>()
        .await;
}

/// The race of [`create_only_race`] with bodies bigger than a part (the remote backends'
/// multipart upload and MOVE of a temporary), `rounds` rounds, two at a time. Not part of
/// [`run`]: SeaweedFS lets two racing CompleteMultipartUpload with `If-None-Match: *` both
/// succeed, so the S3 suite cannot pass it against the test server.
pub async fn create_only_race_in_parts(store: &dyn MediaStore, rounds: usize) {
    let _load = CpuLoad::start();
    futures::stream::iter(0..rounds)
        .map(|round| race_round(store, "conf-race-parts", round, 9 * 1024 * 1024))
        .buffer_unordered(2)
        .collect::<Vec<()>>()
        .await;
}

async fn race_round(store: &dyn MediaStore, folder: &str, round: usize, base: usize) {
    let key = k(&format!("{folder}/r{round}"));
    let len = |w: u8| base + w as usize;
    let writers = (0..RACE_WRITERS).map(|w| {
        let key = key.clone();
        async move {
            let body = Bytes::from(vec![w; len(w)]);
            (w, store.put_new(&key, Box::pin(futures::stream::once(async move { Ok(body) }))).await)
        }
    });
    let results = futures::future::join_all(writers).await;
    let winners: Vec<u8> = results.iter().filter(|(_, r)| r.is_ok()).map(|(w, _)| *w).collect();
    let shown: Vec<String> = results
        .iter()
        .map(|(w, r)| match r {
            Ok(m) => format!("writer {w}: stored {} bytes", m.size),
            Err(e) => format!("writer {w}: {e}"),
        })
        .collect();
    assert_eq!(winners.len(), 1, "round {round}: exactly one of three racing writers wins: {shown:?}");
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(matches!(e, StorageError::AlreadyExists { .. }), "round {round}: a loser sees AlreadyExists: {e}");
        }
    }
    let w = winners[0];
    assert!(store.get_bytes(&key).await.expect("get") == vec![w; len(w)], "round {round}: the winner's bytes");
    store.delete(&key).await.expect("delete a raced object");
}

async fn awkward_names(store: &dyn MediaStore) {
    let names = [
        "conf-names/a+b",
        "conf-names/with space/x y.mp3",
        "conf-names/ünï cödé/日本.wav",
        "conf-names/100%/a&b=c?d#e",
    ];
    for (i, n) in names.iter().enumerate() {
        store.put_bytes(&k(n), Bytes::from(vec![i as u8; 10 + i])).await.unwrap_or_else(|e| panic!("put {n}: {e}"));
    }
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            store.get_bytes(&k(n)).await.unwrap_or_else(|e| panic!("get {n}: {e}")),
            vec![i as u8; 10 + i],
            "{n}"
        );
        assert_eq!(store.head(&k(n)).await.expect("head").size, 10 + i as u64, "{n}");
    }
    let mut listed: Vec<String> =
        store.list(Some(&k("conf-names"))).await.expect("list").into_iter().map(|m| m.key.to_string()).collect();
    listed.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listed, want, "listing gives the names back unchanged");
    // `a+b` is not `a b`.
    assert!(matches!(store.head(&k("conf-names/a b")).await, Err(StorageError::NotFound { .. })), "+ is not a space");
    for n in names {
        store.delete(&k(n)).await.unwrap_or_else(|e| panic!("delete {n}: {e}"));
    }
}

async fn ranged_reads(store: &dyn MediaStore) {
    let key = k("conf-range/m");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    store.put_bytes(&key, Bytes::from(data.clone())).await.expect("put");
    let read = |r: std::ops::Range<u64>| {
        let key = key.clone();
        async move {
            let mut s = store.get_range(&key, r.clone()).await.unwrap_or_else(|e| panic!("get_range {r:?}: {e}"));
            let mut out = Vec::new();
            while let Some(c) = s.next().await {
                out.extend_from_slice(&c.expect("chunk"));
            }
            out
        }
    };
    assert_eq!(read(0..10).await, data[0..10]);
    assert_eq!(read(99_990..100_000).await, data[99_990..]);
    assert_eq!(read(5_000..70_001).await, data[5_000..70_001]);
    assert_eq!(read(99_990..200_000).await, data[99_990..], "a range past the end is clamped");
    assert!(read(100_000..100_100).await.is_empty(), "a range beyond the end is empty");
    assert!(read(7..7).await.is_empty(), "an empty range");
    let missing = k("conf-range/missing");
    assert!(
        matches!(store.get_range(&missing, 0..5).await, Err(StorageError::NotFound { .. })),
        "range of a missing key"
    );
}

async fn listing_past_a_thousand(store: &dyn MediaStore) {
    const N: usize = 1_030;
    futures::stream::iter(0..N)
        .map(|i| async move {
            store.put_bytes(&k(&format!("conf-many/o{i:05}")), Bytes::from_static(b"m")).await.expect("put many")
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let listed = store.list(Some(&k("conf-many"))).await.expect("list many");
    let mut names: Vec<String> = listed.iter().map(|m| m.key.to_string()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N, "every key listed once, past the 1,000 of one page");
    assert_eq!(listed.len(), N, "no key listed twice");
}

async fn very_large_object(store: &dyn MediaStore) {
    use sha2::{Digest, Sha256};
    const LEN: u64 = 100 * 1024 * 1024 + 12_345;
    let key = k("conf-huge/video.mp4");
    let mut want = Sha256::new();
    let mut src = pattern(LEN, 4 << 20);
    while let Some(c) = src.next().await {
        want.update(c.expect("pattern"));
    }
    let meta = store.put(&key, pattern(LEN, 1 << 20)).await.expect("put 100 MiB");
    assert_eq!(meta.size, LEN);
    assert_eq!(store.head(&key).await.expect("head").size, LEN);
    let mut got = Sha256::new();
    let mut n = 0u64;
    let mut s = store.get(&key).await.expect("get 100 MiB");
    while let Some(c) = s.next().await {
        let c = c.expect("chunk");
        n += c.len() as u64;
        got.update(&c);
    }
    assert_eq!(n, LEN);
    assert_eq!(got.finalize(), want.finalize(), "the 100 MiB object reads back byte for byte");
    let tail = {
        let mut s = store.get_range(&key, LEN - 100..LEN).await.expect("range");
        let mut out = Vec::new();
        while let Some(c) = s.next().await {
            out.extend_from_slice(&c.expect("chunk"));
        }
        out
    };
    let expect: Vec<u8> = (LEN - 100..LEN).map(|i| ((i * 7 + i / 4093) % 256) as u8).collect();
    assert_eq!(tail, expect, "a range at the end of a multipart object");
    store.delete(&key).await.expect("delete huge");
}
