//! The media store conformance suite, run against every backend available here.

use reclife::storage::{conformance, Key, LocalStore, MediaStore, MediaStoreExt};

#[tokio::test]
async fn local_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("media"));
    conformance::run(&store).await;
    conformance::create_only_race_in_parts(&store, 4).await;
}

#[tokio::test]
async fn local_store_leaves_no_temporary_files_and_stays_in_its_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("media");
    let store = LocalStore::new(&root);
    store.put_bytes(&Key::media("r1", "a.mp3").unwrap(), bytes::Bytes::from_static(b"abc")).await.unwrap();
    let tmp = root.join(".reclife-tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "temporary files are renamed away");
    assert!(store.path_of(&Key::parse(".reclife-tmp/x").unwrap()).is_err(), "the temporary folder is not a key");
    // Whatever keys exist, every file is beneath the root.
    for m in store.list(None).await.unwrap() {
        assert!(store.path_of(&m.key).unwrap().starts_with(&root));
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| e.unwrap().file_name() == "media"));
}
