//! A backup to S3 or WebDAV killed mid-way (at a failpoint, after some recordings went into the
//! archive) leaves nothing under the archive's name; the next backup publishes it whole, once.
//! Needs the `failpoints` feature and the servers of `deploy/servers.sh start`.

mod storage_support;

use reclife::storage::{Location, MediaStoreExt};
use std::path::Path;
use storage_support::{fresh_location, server_env};

fn reclife(data: &Path, args: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.arg("--data-dir").arg(data).args(["--now", "2026-06-01T00:00:00Z", "--quiet"]).args(args);
    c.env_remove("RECLIFE_CONFIG").env_remove("RECLIFE_FAILPOINT");
    if let Some(f) = failpoint {
        c.env("RECLIFE_FAILPOINT", f);
    }
    c.output().unwrap()
}

/// A recording older than the samples (so it goes first into the archive) with 20 MiB of
/// media: the upload is past its first part (multipart on S3, a temporary on WebDAV) when the
/// backup dies.
fn big_recording(root: &Path) {
    let id = "BIG0000000000000000000000000001";
    let dir = root.join(format!("cc1/Environment/2024/01/01/{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let media: Vec<u8> = (0..20u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(dir.join(format!("{id}.mp3")), media).unwrap();
    let doc = format!(
        r#"{{"recording":{{"id":"{id}","startTime":"2024-01-01T10:00:00.000+0000","stopTime":"2024-01-01T10:01:00.000+0000","callType":"Inbound","region":"us","mediaFiles":[{{"mediaId":"{id}.mp3","type":"audio/mp3","size":"{}"}}]}}}}"#,
        20u32 << 20
    );
    std::fs::write(dir.join("meta-data.json"), doc).unwrap();
}

async fn killed_backup_leaves_nothing(backups: Location) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/recordings");
    let big = tmp.path().join("big");
    big_recording(&big);
    let d = data.clone();
    let o = tokio::task::spawn_blocking(move || {
        reclife(&d, &["ingest", samples.to_str().unwrap(), big.to_str().unwrap()], None)
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let loc = backups.to_string();
    let args = ["backup", "--type", "voice", "--min-age", "1", "--include-screen", "--location", loc.as_str()]
        .map(str::to_string);
    let (d, a) = (data.clone(), args.clone());
    let o = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        reclife(&d, &a, Some("backup.after_entry:2"))
    })
    .await
    .unwrap();
    assert!(!o.status.success(), "the failpoint killed the backup");
    assert!(String::from_utf8_lossy(&o.stderr).contains("failpoint backup.after_entry:2: aborting"));
    let store = reclife::storage::open(&backups).unwrap();
    let listed = store.list(None).await.unwrap();
    assert!(listed.is_empty(), "a killed backup leaves nothing under any name: {listed:?}");
    if matches!(backups, Location::S3 { .. }) {
        // What it did leave, a multipart upload never completed, is swept.
        let swept = store.clean_up_abandoned(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(swept, 1, "the dead backup's multipart upload");
    }
    // The next run writes the archive whole, under its own name, once.
    let o = tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        reclife(&data, &a, None)
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = store.list(None).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].key.as_str(), "Environment-voice-0-1-20260601000000.zip");
    let bytes = store.get_bytes(&listed[0].key).await.unwrap();
    let za = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert!(za.len() > 4, "the archive holds the samples: {} entries", za.len());
    assert!(
        za.file_names().any(|n| n.is_ok_and(|n| n.ends_with("BIG0000000000000000000000000001.mp3"))),
        "and the big one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backup_to_s3_leaves_nothing_under_its_name() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    killed_backup_leaves_nothing(fresh_location(&base)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backup_to_webdav_leaves_nothing_under_its_name() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    killed_backup_leaves_nothing(fresh_location(&base)).await;
}

/// Every file under `root` (relative name → bytes).
fn files_under(root: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(root).unwrap().display().to_string(), std::fs::read(e.path()).unwrap()))
        .collect()
}

/// A folder backup (`--no-zip`) to S3 or WebDAV: killed mid-way it leaves its claimed, partial
/// folder, which `reclife check` reports; the next backup removes it and uploads the folder
/// whole, with the very files, names and bytes a folder backup to a local disk writes.
async fn folder_backup_killed_then_whole(backups: Location) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/recordings");
    let local = tmp.path().join("local");
    let run = |args: Vec<String>, fp: Option<&'static str>| {
        let d = data.clone();
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            reclife(&d, &a, fp)
        })
    };
    let o = run(vec!["ingest".into(), samples.display().to_string()], None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let backup = |loc: String| -> Vec<String> {
        ["backup", "--type", "voice", "--min-age", "1", "--include-screen", "--no-zip", "--location", loc.as_str()]
            .map(str::to_string)
            .to_vec()
    };
    let o = run(backup(format!("file://{}", local.display())), None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let name = "Environment-voice-0-1-20260601000000";
    let want = files_under(&local.join(name));
    assert!(want.len() > 6, "the local folder backup holds the samples: {:?}", want.keys());

    let o = run(backup(backups.to_string()), Some("backup.after_entry:2")).await.unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("failpoint backup.after_entry:2: aborting"));
    let store = reclife::storage::open(&backups).unwrap();
    let left: Vec<String> = store.list(None).await.unwrap().into_iter().map(|m| m.key.to_string()).collect();
    assert!(left.contains(&format!("{name}/.reclife.writing")), "the dead backup's claim stays: {left:?}");
    let o = run(vec!["check".into()], None).await.unwrap();
    assert!(!o.status.success(), "check reports the partial folder");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("open-remote-folder"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );

    let o = run(backup(backups.to_string()), None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut got = std::collections::BTreeMap::new();
    for m in store.list(None).await.unwrap() {
        let rel =
            m.key.as_str().strip_prefix(&format!("{name}/")).unwrap_or_else(|| panic!("{} outside {name}/", m.key));
        got.insert(rel.to_string(), store.get_bytes(&m.key).await.unwrap());
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same files as a local folder backup"
    );
    assert!(got == want, "byte for byte");
    // The killed job's leftovers (its job record, manifest) are the check's to put right.
    let o = run(vec!["check".into(), "--repair".into()], None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(vec!["check".into()], None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));

    // Purged, then restored from the remote folder: a new local folder backup is the same again.
    let purge = ["purge", "--type", "voice", "--min-age", "1", "--include-screen"].map(str::to_string).to_vec();
    let o = run(purge, None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(vec!["restore".into(), format!("{}/{name}", backups.to_string().trim_end_matches('/'))], None)
        .await
        .unwrap();
    assert!(o.status.success(), "restore from the remote folder: {}", String::from_utf8_lossy(&o.stderr));
    let again = tmp.path().join("again");
    let o = run(backup(format!("file://{}", again.display())), None).await.unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(files_under(&again.join(name)) == want, "restored whole: the same folder backup, byte for byte");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_folder_backup_to_s3_is_removed_then_written_whole() {
    let Some(base) = server_env("RECLIFE_TEST_S3") else { return };
    folder_backup_killed_then_whole(fresh_location(&base)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_folder_backup_to_webdav_is_removed_then_written_whole() {
    let Some(base) = server_env("RECLIFE_TEST_WEBDAV") else { return };
    folder_backup_killed_then_whole(fresh_location(&base)).await;
}
