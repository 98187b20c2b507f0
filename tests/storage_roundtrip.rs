//! The media store on S3 and on WebDAV, end to end on the built binary: `media_store` in the
//! config; the sample recordings are ingested, backed up, purged and restored, and the media in
//! the store is byte-identical to the samples. Then the same through a fault-injecting proxy
//! (10% of connections faulted: latency, resets, stalls, 503 and 429): nothing lost, nothing
//! duplicated. Reads the environment `deploy/servers.sh start` prints; see storage_backends.rs.

mod storage_support;

use reclife::storage::{Location, MediaStoreExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;
use storage_support::faults::{Fault, Plan, Proxy};
use storage_support::{fresh_location, server_env};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/recordings")
}

/// sha256 → count of every media file of the samples (everything but the documents).
fn sample_media() -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(testdata()) {
        let e = e.unwrap();
        if e.file_type().is_file() && e.file_name() != "meta-data.json" {
            *out.entry(hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()))).or_insert(0) += 1;
        }
    }
    out
}

/// sha256 → count of every object in the store.
async fn stored_media(loc: &Location) -> BTreeMap<String, usize> {
    let store = reclife::storage::open(loc).unwrap();
    let mut out = BTreeMap::new();
    for m in store.list(None).await.unwrap() {
        let bytes = store.get_bytes(&m.key).await.unwrap();
        assert_eq!(bytes.len() as u64, m.size, "{}: listed size", m.key);
        *out.entry(hex::encode(Sha256::digest(&bytes))).or_insert(0) += 1;
    }
    out
}

struct Node {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    config: PathBuf,
    backups: PathBuf,
}

fn node(media: &Location, extra: &str) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backups = tmp.path().join("backups");
    let config = tmp.path().join("reclife.toml");
    std::fs::write(
        &config,
        format!("media_store = \"{media}\"\ncontact_center_id = \"cc1\"\nrules_dir = \"rules\"\n{extra}"),
    )
    .unwrap();
    std::fs::create_dir_all(tmp.path().join("rules")).unwrap();
    Node { _tmp: tmp, data, config, backups }
}

async fn reclife(n: &Node, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_reclife"));
    cmd.arg("--data-dir")
        .arg(&n.data)
        .arg("--config")
        .arg(&n.config)
        .args(["--now", "2026-06-01T00:00:00Z", "--quiet"])
        .args(args)
        .env_remove("RECLIFE_CONFIG")
        .env_remove("RECLIFE_NOW");
    tokio::task::spawn_blocking(move || cmd.output().unwrap()).await.unwrap()
}

async fn ok(n: &Node, args: &[&str]) -> String {
    let o = reclife(n, args).await;
    assert!(
        o.status.success(),
        "reclife {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// ingest → backup → purge → restore, checking the store at each step. Backups go to a local
/// folder, or to `backup_to` (seen directly at `backup_check`).
async fn round_trip(media: &Location, extra: &str, check_with: &Location) {
    round_trip_via(media, extra, check_with, None).await
}

async fn round_trip_via(
    media: &Location,
    extra: &str,
    check_with: &Location,
    backup_to: Option<(&Location, &Location)>,
) {
    let n = node(media, extra);
    let want = sample_media();
    let out = ok(&n, &["ingest", testdata().to_str().unwrap()]).await;
    assert!(out.contains("ingested 6, updated 0, unchanged 0, rejected 0"), "{out}");
    assert_eq!(stored_media(check_with).await, want, "ingest stores every media file, byte for byte");

    let backups = match backup_to {
        Some((via, _)) => via.to_string(),
        None => format!("file://{}", n.backups.display()),
    };
    let filter = ["--type", "voice", "--min-age", "1", "--include-screen"];
    let mut args = vec!["backup", "--location", backups.as_str()];
    args.extend(filter);
    ok(&n, &args).await;
    let archive = match backup_to {
        None => {
            let archives: Vec<PathBuf> = std::fs::read_dir(&n.backups).unwrap().map(|e| e.unwrap().path()).collect();
            assert_eq!(archives.len(), 1, "{archives:?}");
            archives[0].display().to_string()
        }
        Some((via, direct)) => {
            let store = reclife::storage::open(direct).unwrap();
            let listed = store.list(None).await.unwrap();
            assert_eq!(listed.len(), 1, "one archive in the backup store, nothing else: {listed:?}");
            let key = &listed[0].key;
            assert_eq!(key.as_str(), "Environment-voice-0-1-20260601000000.zip", "the local archive name");
            // An external oracle: Python's zipfile reads the archive and checks every CRC.
            let local = n.data.parent().unwrap().join(key.as_str());
            store.get_to_file(key, &local).await.unwrap();
            let py = std::process::Command::new("python3")
                .args(["-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))"])
                .arg(&local)
                .output()
                .unwrap();
            assert!(py.status.success(), "python zipfile: {}", String::from_utf8_lossy(&py.stderr));
            std::fs::remove_file(&local).unwrap();
            format!("{}/{}", via.to_string().trim_end_matches('/'), key)
        }
    };

    let mut args = vec!["purge"];
    args.extend(filter);
    ok(&n, &args).await;
    let left = stored_media(check_with).await;
    assert!(left.values().sum::<usize>() < want.values().sum::<usize>(), "the purge deleted media: {left:?}");

    ok(&n, &["restore", &archive]).await;
    assert_eq!(stored_media(check_with).await, want, "restore brings back every media file, byte for byte, once");
    // export reads through the store too.
    let c = "CALLC0000000000000000000000000003";
    let out = n.data.parent().unwrap().join("export");
    ok(&n, &["recordings", "export", c, "--out", out.to_str().unwrap()]).await;
    let exported = std::fs::read(out.join(c).join(format!("{c}_0001.mp3"))).unwrap();
    let sample = std::fs::read(testdata().join(format!("cc1/Environment/2025/06/24/{c}/{c}_0001.mp3"))).unwrap();
    assert_eq!(exported, sample, "export gives the stored bytes");
    let check = reclife(&n, &["check"]).await;
    assert!(check.status.success(), "reclife check: {}", String::from_utf8_lossy(&check.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn media_on_s3_round_trips_ingest_backup_purge_restore() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let loc = fresh_location(&base);
    round_trip(&loc, "", &loc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn media_on_webdav_round_trips_ingest_backup_purge_restore() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    let loc = fresh_location(&base);
    round_trip(&loc, "", &loc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_to_webdav_of_media_on_s3_round_trip() {
    let (Some(s3), Some(dav)) = (server_env("RECLIFE_TEST_S3"), server_env("RECLIFE_TEST_WEBDAV")) else { return };
    let media = fresh_location(&s3);
    let backups = fresh_location(&dav);
    round_trip_via(&media, "", &media, Some((&backups, &backups))).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_to_s3_of_media_on_webdav_round_trip() {
    let (Some(s3), Some(dav)) = (server_env("RECLIFE_TEST_S3"), server_env("RECLIFE_TEST_WEBDAV")) else { return };
    let media = fresh_location(&dav);
    let backups = fresh_location(&s3);
    round_trip_via(&media, "", &media, Some((&backups, &backups))).await;
}

fn faults() -> Plan {
    Plan::share(
        0.10,
        vec![
            Fault::Latency(Duration::from_millis(150)),
            Fault::Bandwidth(2_000_000),
            Fault::ResetAfter(700),
            Fault::StallAfter(300),
            Fault::Status(503),
            Fault::Status(429),
        ],
        0x5eed_0010,
    )
}

/// Short timeouts so that stalls are noticed quickly; enough attempts for a 10% fault rate.
const NET: &str = "connect_timeout_secs = 2\nrequest_timeout_secs = 5\nread_timeout_secs = 2\nmax_attempts = 10\nbackoff_ms = 20\nmax_backoff_ms = 500\n";

fn upstream(url: &str) -> std::net::SocketAddr {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port_or_known_default().unwrap()).parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_round_trip_survives_faults_between_reclife_and_s3() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let loc = fresh_location(&base);
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let proxy = Proxy::start(upstream(&endpoint), faults()).await;
    let extra = format!("[s3]\nendpoint = \"http://{}\"\n{NET}", proxy.addr);
    let backups = fresh_location(&base);
    let started = std::time::Instant::now();
    round_trip_via(&loc, &extra, &loc, Some((&backups, &backups))).await;
    eprintln!(
        "s3 through the proxy: {} connections, {} requests, {} faulted, {:.1} s",
        proxy.connections(),
        proxy.requests(),
        proxy.faulted(),
        started.elapsed().as_secs_f64()
    );
    assert!(proxy.faulted() > 0, "the proxy injected faults");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_round_trip_survives_faults_between_reclife_and_webdav() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    let loc = fresh_location(&base);
    let Location::WebDav { url } = &loc else { panic!() };
    let proxy = Proxy::start(upstream(url.as_str()), faults()).await;
    let through = |l: &Location| {
        let Location::WebDav { url } = l else { panic!() };
        let mut via = url.clone();
        via.set_port(Some(proxy.addr.port())).unwrap();
        Location::parse(&format!("webdav{}", &via.as_str()[4..])).unwrap()
    };
    let backups = fresh_location(&base);
    let extra = format!("[webdav]\n{NET}");
    let started = std::time::Instant::now();
    round_trip_via(&through(&loc), &extra, &loc, Some((&through(&backups), &backups))).await;
    eprintln!(
        "webdav through the proxy: {} connections, {} requests, {} faulted, {:.1} s",
        proxy.connections(),
        proxy.requests(),
        proxy.faulted(),
        started.elapsed().as_secs_f64()
    );
    assert!(proxy.faulted() > 0, "the proxy injected faults");
}

/// The muxer reads the call's voice and the screen video from the remote store and stores its
/// output there: ffprobe reads the muxed file fetched back from the store.
async fn mux_through(media: &Location) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys");
    let config = tmp.path().join("reclife.toml");
    std::fs::write(
        &config,
        format!(
            "media_store = \"{media}\"\nkeys_dir = {:?}\n[muxer]\ntemp_dir = {:?}\nscreen_certs = [{:?}]\n",
            keys.display().to_string(),
            tmp.path().join("mux-tmp").display().to_string(),
            keys.join("recording-cert.pem").display().to_string()
        ),
    )
    .unwrap();
    let run = |args: Vec<String>| {
        let (data, config) = (data.clone(), config.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_reclife"))
                .arg("--data-dir")
                .arg(&data)
                .arg("--config")
                .arg(&config)
                .arg("--quiet")
                .args(&args)
                .env_remove("RECLIFE_CONFIG")
                .env_remove("RECLIFE_NOW")
                .output()
                .unwrap()
        })
    };
    let o = run(vec!["ingest".into(), testdata().display().to_string()]).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(["mux", "--json", "--once", "--now", "2024-03-10T12:00:00Z"].map(String::from).to_vec()).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let screen = "CALLA0000000000000000000000000001_2024-03-10_09-15-02";
    assert_eq!(report["muxed"][0]["screenId"], screen, "{report}");
    let store = reclife::storage::open(media).unwrap();
    let prefix = reclife::storage::Key::parse(screen).unwrap();
    let objects = store.list(Some(&prefix)).await.unwrap();
    assert_eq!(objects.len(), 2, "the screen video and the muxed file: {objects:?}");
    let sample_video = "Jz0Vt5zQ55mcnS8ibDzFsA_CALLA0000000000000000000000000001_2024-03-10_09-15-02.mp4";
    let muxed = objects.iter().find(|m| !m.key.as_str().ends_with(sample_video)).unwrap();
    let local = tmp.path().join("muxed.mp4");
    store.get_to_file(&muxed.key, &local).await.unwrap();
    let probe = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(&local)
        .output()
        .unwrap();
    let codecs = String::from_utf8_lossy(&probe.stdout).to_string();
    assert!(probe.status.success() && codecs.contains("h264") && codecs.lines().count() == 2, "{codecs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_muxer_works_with_media_on_s3() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    mux_through(&fresh_location(&base)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_muxer_works_with_media_on_webdav() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    mux_through(&fresh_location(&base)).await;
}

/// The samples as metadata only, each media file's `mediaDescriptor` naming where it was put in
/// `remote` (`descriptor(recording, media)` gives it), and the media uploaded there.
async fn samples_in_place(remote: &Location, out: &Path, descriptor: impl Fn(&str, &str) -> serde_json::Value) {
    let store = reclife::storage::open(remote).unwrap();
    for e in walkdir::WalkDir::new(testdata()) {
        let e = e.unwrap();
        if e.file_name() != "meta-data.json" {
            continue;
        }
        let dir = e.path().parent().unwrap();
        let rel = dir.strip_prefix(testdata()).unwrap();
        let mut whole: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
        // Some documents are an RWS answer: `{"statusCode": 0, "recording": {…}}`.
        let doc = if whole.get("recording").is_some() { &mut whole["recording"] } else { &mut whole };
        let id = doc["id"].as_str().unwrap().to_string();
        for m in doc["mediaFiles"].as_array_mut().unwrap() {
            let media_id = m["mediaId"].as_str().unwrap().to_string();
            let bytes = std::fs::read(dir.join(&media_id)).unwrap();
            let key = reclife::storage::Key::media(&id, &media_id).unwrap();
            store.put_bytes(&key, bytes.into()).await.unwrap();
            m["mediaDescriptor"] = descriptor(&id, &media_id);
        }
        std::fs::create_dir_all(out.join(rel)).unwrap();
        std::fs::write(out.join(rel).join("meta-data.json"), serde_json::to_vec_pretty(&whole).unwrap()).unwrap();
    }
}

/// `ingest --in-place`: no media copied; export, backup and check read it where it is; the
/// purge deletes it there; a restore brings it into the node's own store, byte for byte.
async fn in_place_round_trip(remote: &Location, descriptor: impl Fn(&str, &str) -> serde_json::Value) {
    let n = node(&Location::File(PathBuf::from("/nonexistent")), "");
    // The node keeps its own media on its local disk (the default).
    std::fs::write(&n.config, "contact_center_id = \"cc1\"\nrules_dir = \"rules\"\n").unwrap();
    let meta = n.data.parent().unwrap().join("meta");
    samples_in_place(remote, &meta, descriptor).await;
    let want = sample_media();
    let out = ok(&n, &["ingest", "--in-place", meta.to_str().unwrap()]).await;
    assert!(out.contains("ingested 6, updated 0, unchanged 0, rejected 0 (0 media bytes copied)"), "{out}");
    let own = Location::File(n.data.join("media"));
    assert!(stored_media(&own).await.is_empty(), "nothing copied into the node's store");
    assert_eq!(stored_media(remote).await, want, "the media stays where it was");
    let out = ok(&n, &["ingest", "--in-place", meta.to_str().unwrap()]).await;
    assert!(out.contains("ingested 0, updated 0, unchanged 6"), "a second run changes nothing: {out}");

    let c = "CALLC0000000000000000000000000003";
    let exp = n.data.parent().unwrap().join("export");
    ok(&n, &["recordings", "export", c, "--out", exp.to_str().unwrap()]).await;
    let sample = std::fs::read(testdata().join(format!("cc1/Environment/2025/06/24/{c}/{c}_0001.mp3"))).unwrap();
    assert_eq!(std::fs::read(exp.join(c).join(format!("{c}_0001.mp3"))).unwrap(), sample, "export reads it in place");
    let check = reclife(&n, &["check"]).await;
    assert!(check.status.success(), "reclife check: {}", String::from_utf8_lossy(&check.stdout));

    let backups = format!("file://{}", n.backups.display());
    let filter = ["--type", "voice", "--min-age", "1", "--include-screen"];
    let mut args = vec!["backup", "--location", backups.as_str()];
    args.extend(filter);
    ok(&n, &args).await;
    let mut args = vec!["purge"];
    args.extend(filter);
    ok(&n, &args).await;
    let left = stored_media(remote).await;
    assert!(left.values().sum::<usize>() < want.values().sum::<usize>(), "the purge deleted media in place: {left:?}");
    let check = reclife(&n, &["check"]).await;
    assert!(check.status.success(), "reclife check after the purge: {}", String::from_utf8_lossy(&check.stdout));

    let archive = std::fs::read_dir(&n.backups).unwrap().next().unwrap().unwrap().path();
    ok(&n, &["restore", archive.to_str().unwrap()]).await;
    let mut both = stored_media(&own).await;
    for (h, k) in left {
        *both.entry(h).or_insert(0) += k;
    }
    assert_eq!(both, want, "restored into the node's store, the rest still in place: every file once");
    let check = reclife(&n, &["check"]).await;
    assert!(check.status.success(), "reclife check after the restore: {}", String::from_utf8_lossy(&check.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn recordings_registered_in_place_on_s3_are_read_and_purged_there() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    let remote = fresh_location(&base);
    let Location::S3 { bucket, prefix } = remote.clone() else { unreachable!() };
    in_place_round_trip(&remote, move |id, media| {
        serde_json::json!({"storage": "s3-recordings", "path": format!("{prefix}/{id}/{media}"), "data": {"bucket": bucket}})
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn recordings_registered_in_place_on_webdav_are_read_and_purged_there() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    let remote = fresh_location(&base);
    let http = remote.to_string().replacen("webdav://", "http://", 1);
    in_place_round_trip(&remote, move |id, media| {
        serde_json::json!({"storage": "WebDAV", "path": format!("/{id}/{media}"), "data": {"storagePath": http}})
    })
    .await;
}
