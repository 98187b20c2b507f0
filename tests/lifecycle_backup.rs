//! Backup archives: the documented GIR layout and names, readable by unzip and Python's
//! zipfile, stored entries, documents and media byte for byte; folders; name collisions;
//! restore.

mod lifecycle_util;

use lifecycle_util::*;
use reclife::lifecycle::backup::plan_and_backup as run_backup;
use reclife::lifecycle::{Filter, OnFailure, Op, Task};
use reclife::model::Kind;
use reclife::progress::NoProgress;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn backup_task(zip: bool, use_full_path: bool) -> Task {
    Task {
        op: Op::Backup,
        filter: Filter { recording_type: Kind::Voice, min_age: Some(365), ..Filter::default() },
        include_screen: true,
        on_failure: OnFailure::Stop,
        location: None,
        zip,
        use_full_path,
        all_ages: false,
        source: None,
    }
}

async fn seed(ctx: &reclife::config::Context) {
    add_call(ctx, "OLD1", 400, false, true, 5000).await;
    add_call(ctx, "OLD2", 500, false, false, 7000).await;
    add_call(ctx, "OLD3", 366, true, true, 3000).await;
    add_call(ctx, "NEW1", 10, false, true, 4000).await;
}

fn expected_entries(use_full_path: bool) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let t = now();
    for (id, age, screen) in [("OLD1", 400, true), ("OLD2", 500, false), ("OLD3", 366, true)] {
        let start = t - chrono::Duration::days(age) - chrono::Duration::hours(1);
        let dir = format!("cc1/Environment/{}/{id}", start.format("%Y/%m/%d"));
        out.insert(format!("{dir}/meta-data.json"));
        if use_full_path {
            out.insert(format!("{dir}/recordings/{id}_0001.mp3"));
        } else {
            out.insert(format!("{dir}/{id}_0001.mp3"));
        }
        if screen {
            out.insert(format!("{dir}/screen/{id}_scr/meta-data.json"));
            out.insert(format!("{dir}/screen/{id}_scr/{id}_scr.mp4"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_archive_has_the_gir_layout_and_opens_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let ctx = context(&tmp.path().join("data"), &backups);
    seed(&ctx).await;
    let out = run_backup(&ctx, &backup_task(true, false), now(), Arc::new(NoProgress)).await.unwrap();
    let archive = out.archive.clone().unwrap();
    assert_eq!(archive, backups.join("Environment-voice-0-365-20250625030000.zip"));
    assert_eq!((out.recordings, out.screens, out.media), (3, 2, 5));
    assert!(out.failed.is_empty() && out.name_taken.is_none());
    // Owner-only, and every entry stamped with the backup time (UTC), not 1980-01-01.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777, 0o600);
    let data_dir = tmp.path().join("data");
    assert_eq!(std::fs::metadata(data_dir.join("catalog.db")).unwrap().permissions().mode() & 0o777, 0o600);
    let mut za = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
    for i in 0..za.len() {
        let e = za.by_index(i).unwrap();
        let t = e.last_modified().unwrap();
        assert_eq!((t.year(), t.month(), t.day(), t.hour(), t.minute()), (2025, 6, 25, 3, 0), "{:?}", e.name());
    }
    // Only the final name: no temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let st = Command::new("unzip").arg("-t").arg(&archive).output().unwrap();
    assert!(st.status.success(), "unzip -t: {}", String::from_utf8_lossy(&st.stdout));

    let py = r#"
import sys, zipfile, json
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
print(json.dumps({i.filename: [i.compress_type, i.file_size] for i in z.infolist()}))
"#;
    let o = Command::new("python3").arg("-c").arg(py).arg(&archive).output().unwrap();
    assert!(o.status.success(), "python zipfile: {}", String::from_utf8_lossy(&o.stderr));
    let listing: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let got: BTreeSet<String> = listing.keys().cloned().collect();
    assert_eq!(got, expected_entries(false));
    for (name, v) in &listing {
        assert_eq!(v[0], 0, "{name} is not stored");
    }

    // Documents equal the stored ones; media bytes equal the store's.
    let mut za = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
    for name in got {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut za.by_name(&name).unwrap(), &mut buf).unwrap();
        let parts: Vec<&str> = name.split('/').collect();
        let file = *parts.last().unwrap();
        let id = parts[parts.len() - 2];
        if file == "meta-data.json" {
            let e = ctx.catalog.get(id).unwrap().unwrap();
            assert_eq!(buf, e.recording.doc().as_bytes(), "{name}");
        } else {
            let key = reclife::storage::Key::media(id, file).unwrap();
            assert_eq!(buf, reclife::ingest::read_object(ctx.media.as_ref(), &key).await.unwrap(), "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn folder_archive_with_full_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let ctx = context(&tmp.path().join("data"), &backups);
    seed(&ctx).await;
    let out = run_backup(&ctx, &backup_task(false, true), now(), Arc::new(NoProgress)).await.unwrap();
    let root = out.archive.unwrap();
    assert_eq!(root, backups.join("Environment-voice-0-365-20250625030000"));
    let mut got = BTreeSet::new();
    for e in walkdir::WalkDir::new(&root) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            got.insert(e.path().strip_prefix(&root).unwrap().to_string_lossy().to_string());
        }
    }
    assert_eq!(got, expected_entries(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_archive_name_is_never_clobbered() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let ctx = context(&tmp.path().join("data"), &backups);
    seed(&ctx).await;
    let first = run_backup(&ctx, &backup_task(true, false), now(), Arc::new(NoProgress)).await.unwrap();
    let before = std::fs::read(first.archive.as_ref().unwrap()).unwrap();
    // A second rule with the same filter, location and time would write the same name.
    add_call(&ctx, "OLD4", 700, false, false, 100).await;
    let second = run_backup(&ctx, &backup_task(true, false), now(), Arc::new(NoProgress)).await.unwrap();
    assert_eq!(second.archive.as_ref().unwrap(), &backups.join("Environment-voice-0-365-20250625030000-2.zip"));
    assert_eq!(second.name_taken.as_deref(), Some("Environment-voice-0-365-20250625030000.zip"));
    assert_eq!(std::fs::read(first.archive.unwrap()).unwrap(), before);
    assert_eq!(second.recordings, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_media_is_reported_and_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let ctx = context(&tmp.path().join("data"), &backups);
    seed(&ctx).await;
    let key = reclife::storage::Key::media("OLD2", "OLD2_0001.mp3").unwrap();
    ctx.media.delete(&key).await.unwrap();
    let out = run_backup(&ctx, &backup_task(true, false), now(), Arc::new(NoProgress)).await.unwrap();
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].item, "OLD2");
    assert_eq!(out.recordings, 2);
    let za = zip::ZipArchive::new(std::fs::File::open(out.archive.unwrap()).unwrap()).unwrap();
    assert!(!za.file_names().any(|n| n.unwrap().contains("/OLD2/")), "OLD2 left out of the archive");
}

#[test]
fn restore_brings_back_purged_recordings() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, backups, cfg) = backup_and_purge_node(tmp.path(), "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let docs: Vec<String> = rt.block_on(async {
        let ctx = context(&data, &backups);
        seed(&ctx).await;
        ["OLD1", "OLD2"].iter().map(|id| ctx.catalog.get(id).unwrap().unwrap().recording.doc().to_string()).collect()
    });
    let bin = env!("CARGO_BIN_EXE_reclife");
    let run = |args: &[&str]| {
        Command::new(bin)
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--config",
                cfg.to_str().unwrap(),
                "--now",
                "2025-06-25T03:00:00Z",
                "-q",
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let o = run(&["run", "--once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("Scheduled rule [Backup and purge] on node path [/] completed"), "{stdout}");
    let ctx = context(&data, &backups);
    assert!(ctx.catalog.get("OLD1").unwrap().is_none());
    assert!(ctx.catalog.get("OLD3").unwrap().is_some(), "held recording purged");
    drop(ctx);
    let archive = backups.join("Environment-voice-0-365-20250625030000.zip");
    let o = run(&["restore", archive.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // OLD1 and OLD2 come back, and the enabled rule would purge them again: the user is told.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("2 restored recording(s) match the purge of the enabled rule [Backup and purge]"), "{err}");
    let ctx = context(&data, &backups);
    for (id, doc) in ["OLD1", "OLD2"].iter().zip(docs) {
        assert_eq!(ctx.catalog.get(id).unwrap().unwrap().recording.doc(), doc);
    }
    assert!(ctx.catalog.get("OLD1_scr").unwrap().is_some());
    rt.block_on(async {
        assert_eq!(media_present(&ctx, "OLD1").await, vec![true]);
    });
    let _ = Path::new("");
}

/// Issue 22: with `useFullPathInMediaFileBackup`, a stored path that is a URI keeps its
/// `http://` in the archive entry's name, as GIR's does ("the filename retains the path
/// value—for example, `http://...`"), instead of `http:/host/…`; and the archive reads back.
#[tokio::test(flavor = "multi_thread")]
async fn full_path_keeps_a_uri_whole_and_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let backups = tmp.path().join("backups");
    let ctx = context(&tmp.path().join("data"), &backups);
    let start = now() - chrono::Duration::days(400);
    let t = |d: chrono::Duration| (start + d).format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let (id, mid) = ("URI1", "func-test-gir-sched-6331c0e2.mp3");
    let body = media_bytes(id, 2500);
    let doc = format!(
        r#"{{"id":"{id}","startTime":"{}","stopTime":"{}","callType":"Inbound","mediaFiles":[{{"mediaId":"{mid}","type":"audio/mp3","startTime":"{}","stopTime":"{}","size":"{}","tenant":"Environment","originalMediaDescriptor":{{"storage":"WebDAV","path":"http://esx36-ip21-167.gws.genesys.com/recordings/{mid}"}}}}]}}"#,
        t(chrono::Duration::zero()),
        t(chrono::Duration::seconds(10)),
        t(chrono::Duration::zero()),
        t(chrono::Duration::seconds(10)),
        body.len()
    );
    use reclife::storage::MediaStoreExt as _;
    ctx.media.put_bytes(&reclife::storage::Key::media(id, mid).unwrap(), body.clone().into()).await.unwrap();
    ctx.catalog.upsert(&reclife::model::Recording::parse(&doc).unwrap()).unwrap();
    let out = run_backup(&ctx, &backup_task(true, true), now(), Arc::new(NoProgress)).await.unwrap();
    let archive = out.archive.unwrap();
    let mut za = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
    let names: Vec<String> = za.file_names().map(|n| n.unwrap().to_string()).collect();
    let dir = format!("cc1/Environment/{}/{id}", start.format("%Y/%m/%d"));
    let want = format!("{dir}/http://esx36-ip21-167.gws.genesys.com/recordings/{mid}");
    assert!(names.contains(&want), "{want} not in {names:?}");
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut za.by_name(&want).unwrap(), &mut buf).unwrap();
    assert_eq!(buf, body);
    // Read back into another node: the media is found under GIR's name.
    let other = context(&tmp.path().join("other"), &tmp.path().join("other-backups"));
    let r = reclife::ingest::ingest_paths(&other, &[archive], &reclife::progress::NoProgress).await.unwrap();
    assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    assert_eq!(r.ids, [id]);
    let key = reclife::storage::Key::media(id, mid).unwrap();
    assert_eq!(reclife::ingest::read_object(other.media.as_ref(), &key).await.unwrap(), body);
}
