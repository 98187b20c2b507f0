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
