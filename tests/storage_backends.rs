//! The media store conformance suite against real servers: SeaweedFS (S3) and Apache mod_dav
//! (WebDAV), started by `deploy/servers.sh start`, whose printed environment these tests read:
//! `RECLIFE_TEST_S3`, `RECLIFE_TEST_WEBDAV`, the AWS variables, `WEBDAV_USERNAME`/`WEBDAV_PASSWORD`.
//! Without that environment the tests are skipped, unless `CI` or `RECLIFE_REQUIRE_SERVERS` is
//! set: then they fail, so CI can never pass without the servers.

mod storage_support;

use reclife::storage::{conformance, Key, Location, MediaStore, MediaStoreExt, StorageError};
use storage_support::{fresh_location, server_env};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_store_passes_the_suite() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let loc = fresh_location(&base);
    let store = reclife::storage::open(&loc).expect("open s3");
    conformance::run(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webdav_store_passes_the_suite() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    let loc = fresh_location(&base);
    let store = reclife::storage::open(&loc).expect("open webdav");
    conformance::run(store.as_ref()).await;
    conformance::create_only_race_in_parts(store.as_ref(), 4).await;
}

#[tokio::test]
async fn s3_wrong_secret_fails_at_once_naming_the_location_not_the_secret() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let loc = fresh_location(&base);
    let Location::S3 { bucket, prefix } = &loc else { panic!("{loc} is not s3://") };
    let secret = "wrong-secret-0123456789abcdef";
    let creds = reclife::storage::S3Credentials {
        key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
        secret: secret.into(),
        session_token: None,
    };
    let store = reclife::storage::S3Store::open_with_credentials(bucket, prefix, &Default::default(), Some(creds))
        .expect("open");
    refused_at_once(&store, &loc, secret, "AWS_SECRET_ACCESS_KEY").await;
}

#[tokio::test]
async fn webdav_wrong_password_fails_at_once_naming_the_location_not_the_password() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    let loc = fresh_location(&base);
    let Location::WebDav { url } = &loc else { panic!("{loc} is not webdav://") };
    let dir = tempfile::tempdir().unwrap();
    let secret = "wrong-password-0123456789";
    std::fs::write(dir.path().join("pw"), format!("{secret}\n")).unwrap();
    let cfg = reclife::storage::WebDavConfig {
        username: std::env::var("WEBDAV_USERNAME").ok(),
        password_file: Some(dir.path().join("pw")),
        ..Default::default()
    };
    let store = reclife::storage::WebDavStore::open(url, &loc, &cfg).expect("open");
    refused_at_once(&store, &loc, secret, "WEBDAV_PASSWORD").await;
}

/// A write with wrong credentials fails at once (no retries) with an auth error naming the
/// location; neither the wrong secret nor the real one (`real_env`) shows in errors or Debug.
async fn refused_at_once<S: MediaStore + std::fmt::Debug>(store: &S, loc: &Location, secret: &str, real_env: &str) {
    let started = std::time::Instant::now();
    let err = store.put_bytes(&Key::parse("a/b").unwrap(), bytes::Bytes::from_static(b"x")).await.unwrap_err();
    assert!(matches!(err, StorageError::Auth { .. }), "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "auth errors are not retried");
    let shown = format!("{err} {err:?} {store:?}");
    assert!(shown.contains(&loc.to_string()), "the error names the location: {shown}");
    assert!(!shown.contains(secret), "no secret in errors or Debug: {shown}");
    let real = std::env::var(real_env).unwrap();
    let good = reclife::storage::open(loc).unwrap();
    assert!(!format!("{good:?}").contains(&real), "no secret in Debug");
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    // Nothing listens on port 9 of loopback: every attempt is refused, the store retries
    // (briefly, with this policy) and then names the location.
    let loc = Location::parse("webdav://127.0.0.1:9/dav").unwrap();
    let Location::WebDav { url } = &loc else { unreachable!() };
    let mut cfg = reclife::storage::WebDavConfig::default();
    cfg.net.max_attempts = 3;
    cfg.net.backoff_ms = 10;
    let store = reclife::storage::WebDavStore::open(url, &loc, &cfg).unwrap();
    let err = store.head(&Key::parse("x").unwrap()).await.unwrap_err();
    assert!(matches!(err, StorageError::Backend { .. }), "{err:?}");
    assert!(err.to_string().contains("webdav://127.0.0.1:9/dav"), "{err}");
}

/// A blocking writer dropped mid-way (a failed or cancelled backup) leaves no object and no
/// temporary behind; finished, the object is whole. Run on a blocking thread, as backups do.
async fn abandoned_upload_leaves_nothing(loc: Location) {
    use std::io::Write;
    let store = reclife::storage::open(&loc).unwrap();
    let handle = tokio::runtime::Handle::current();
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        let key = Key::parse("archive.zip").unwrap();
        let mut w = reclife::storage::UploadWriter::start(&handle, s.clone(), key.clone(), true);
        for _ in 0..20 {
            w.write_all(&[7u8; 1 << 20]).unwrap();
        }
        drop(w);
        let head = handle.block_on(s.head(&key));
        assert!(matches!(head, Err(StorageError::NotFound { .. })), "{head:?}");
        assert!(handle.block_on(s.list(None)).unwrap().is_empty(), "nothing left behind");
        let mut w = reclife::storage::UploadWriter::start(&handle, s.clone(), key.clone(), true);
        for _ in 0..20 {
            w.write_all(&[7u8; 1 << 20]).unwrap();
        }
        assert_eq!(w.finish().unwrap().size, 20 << 20);
        assert_eq!(handle.block_on(s.head(&key)).unwrap().size, 20 << 20);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_abandoned_upload_leaves_nothing() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    abandoned_upload_leaves_nothing(fresh_location(&base)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn webdav_abandoned_upload_leaves_nothing() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    abandoned_upload_leaves_nothing(fresh_location(&base)).await;
}

/// A create-only write whose answer is lost (the connection reset as the answer starts)
/// succeeded on the server: the retry must recognise its own object, not report it taken.
async fn lost_answer_of_a_create_only_write_is_recognised(store: std::sync::Arc<dyn MediaStore>) {
    let key = Key::parse("lost/answer.bin").unwrap();
    let started = std::time::Instant::now();
    let meta = store
        .put_new(&key, Box::pin(futures::stream::once(async { Ok(bytes::Bytes::from_static(b"only once")) })))
        .await
        .expect("a create-only write whose answer was lost is ours");
    assert_eq!(meta.size, 9);
    assert_eq!(store.get_bytes(&key).await.unwrap(), b"only once");
    let again =
        store.put_new(&key, Box::pin(futures::stream::once(async { Ok(bytes::Bytes::from_static(b"x")) }))).await;
    assert!(matches!(again, Err(StorageError::AlreadyExists { .. })), "{again:?}");
    eprintln!("{}: recovered in {:.1} s", store.describe(), started.elapsed().as_secs_f64());
}

fn lose_first(only: &'static str) -> storage_support::faults::Plan {
    use storage_support::faults::{Fault, Plan};
    Plan { only: Some(only), max_faults: Some(1), ..Plan::share(1.0, vec![Fault::ResetAfter(0)], 7) }
}

fn net(cfg: &mut reclife::storage::NetConfig) {
    cfg.backoff_ms = 20;
    cfg.max_backoff_ms = 200;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_lost_answer_of_a_create_only_put_is_recognised() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let loc = fresh_location(&base);
    let Location::S3 { bucket, prefix } = &loc else { panic!() };
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let up = url::Url::parse(&endpoint).unwrap();
    let upstream = format!("{}:{}", up.host_str().unwrap(), up.port().unwrap()).parse().unwrap();
    let proxy = storage_support::faults::Proxy::start(upstream, lose_first("PUT ")).await;
    let mut cfg = reclife::storage::S3Config { endpoint: Some(format!("http://{}", proxy.addr)), ..Default::default() };
    net(&mut cfg.net);
    let store = reclife::storage::S3Store::open(bucket, prefix, &cfg).unwrap();
    lost_answer_of_a_create_only_write_is_recognised(std::sync::Arc::new(store)).await;
    assert_eq!(proxy.faulted(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn webdav_lost_answer_of_a_claim_is_recognised() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    let loc = fresh_location(&base);
    let Location::WebDav { url } = &loc else { panic!() };
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap()).parse().unwrap();
    let proxy = storage_support::faults::Proxy::start(upstream, lose_first(".reclife-claim")).await;
    let mut via = url.clone();
    via.set_port(Some(proxy.addr.port())).unwrap();
    let via_loc = Location::parse(&format!("webdav{}", &via.as_str()[4..])).unwrap();
    let mut cfg = reclife::storage::WebDavConfig::default();
    net(&mut cfg.net);
    let store = reclife::storage::WebDavStore::open(&via, &via_loc, &cfg).unwrap();
    lost_answer_of_a_create_only_write_is_recognised(std::sync::Arc::new(store)).await;
    assert_eq!(proxy.faulted(), 1);
}

#[tokio::test]
async fn s3_abandoned_multipart_uploads_are_aborted() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let loc = fresh_location(&base);
    let Location::S3 { bucket, prefix } = &loc else { panic!() };
    // A writer that died mid-upload: a multipart upload begun and never completed.
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(std::env::var("AWS_ENDPOINT_URL").unwrap())
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            std::env::var("AWS_ACCESS_KEY_ID").unwrap(),
            std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
            None,
            None,
            "test",
        ))
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let key = format!("{prefix}/dead.zip");
    client.create_multipart_upload().bucket(bucket).key(&key).send().await.unwrap();
    let store = reclife::storage::open(&loc).unwrap();
    assert_eq!(store.clean_up_abandoned(std::time::Duration::from_secs(3600)).await.unwrap(), 0, "young ones stay");
    assert_eq!(store.clean_up_abandoned(std::time::Duration::ZERO).await.unwrap(), 1);
    let left = client.list_multipart_uploads().bucket(bucket).prefix(format!("{prefix}/")).send().await.unwrap();
    assert!(left.uploads().is_empty(), "{:?}", left.uploads());
}
