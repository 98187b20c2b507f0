//! Purges: held recordings are never purged (property test over random holds and filters), a
//! failed backup blocks the purge, exactly the archived recordings are deleted and audited, an
//! unavailable backend is reported, and purged ids are posted downstream with retries.

mod lifecycle_util;

use lifecycle_util::*;
use proptest::prelude::*;
use reclife::config::Context;
use reclife::lifecycle::guard::OverlapGuard;
use reclife::lifecycle::jobs::{JobRecord, JobState};
use reclife::lifecycle::runner::{no_progress, run_tasks};
use reclife::lifecycle::{Filter, OnFailure, Op, Task};
use reclife::model::Kind;

fn task(op: Op, min: Option<u32>, max: Option<u32>, screens: bool) -> Task {
    Task {
        op,
        filter: Filter { recording_type: Kind::Voice, min_age: min, max_age: max, ..Filter::default() },
        include_screen: screens,
        on_failure: OnFailure::Stop,
        location: None,
        zip: true,
        use_full_path: false,
        all_ages: op == Op::Purge && min.is_none_or(|d| d == 0),
        source: None,
    }
}

async fn run(ctx: &Context, tasks: &[Task]) -> JobRecord {
    let job = JobRecord::for_tasks("rule", Some("test"), ctx.clock.now(), tasks);
    run_tasks(ctx, job, &OverlapGuard::new(), no_progress().as_ref(), Default::default()).await.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    #[test]
    fn held_recordings_are_never_purged(
        recs in proptest::collection::vec((0i64..800, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()), 1..14),
        min in proptest::option::of(0u32..700),
        span in proptest::option::of(1u32..400),
        screens in any::<bool>(),
        backup_first in any::<bool>(),
    ) {
        let max = match (min, span) { (Some(m), Some(s)) => Some(m + s), (None, s) => s, _ => None };
        let tmp = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let ctx = context(&tmp.path().join("data"), &tmp.path().join("backups"));
            for (i, (age, non_delete, hold, screen, hold_screen)) in recs.iter().enumerate() {
                let id = format!("R{i}");
                add_call(&ctx, &id, *age, *non_delete, *screen, 64).await;
                if *hold {
                    ctx.catalog.hold(&id, "litigation", "tester", now()).unwrap();
                }
                if *screen && *hold_screen {
                    ctx.catalog.hold(&format!("{id}_scr"), "review", "tester", now()).unwrap();
                }
            }
            let mut tasks = vec![];
            if backup_first {
                tasks.push(task(Op::Backup, min, max, screens));
            }
            tasks.push(task(Op::Purge, min, max, screens));
            let job = run(&ctx, &tasks).await;
            prop_assert_eq!(job.state, JobState::Succeeded);
            for (i, (age, non_delete, hold, screen, hold_screen)) in recs.iter().enumerate() {
                let id = format!("R{i}");
                let held = *non_delete || *hold;
                let selected = min.is_none_or(|m| *age >= i64::from(m)) && max.is_none_or(|m| *age < i64::from(m));
                let present = ctx.catalog.get(&id).unwrap().is_some();
                if held || !selected {
                    prop_assert!(present, "{} (held {}, selected {}) was purged", id, held, selected);
                    prop_assert_eq!(media_present(&ctx, &id).await, vec![true]);
                } else {
                    prop_assert!(!present, "{} should be purged", id);
                    prop_assert!(!any_media_left(&ctx, &id).await);
                    prop_assert_eq!(audit_lines(tmp.path().join("data").as_path(), &id).len(), 1);
                }
                if *screen {
                    let sid = format!("{id}_scr");
                    let gone = ctx.catalog.get(&sid).unwrap().is_none();
                    if *hold_screen {
                        prop_assert!(!gone, "held screen {} purged", sid);
                    } else {
                        prop_assert_eq!(gone, screens && selected && !held);
                    }
                }
            }
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_backup_blocks_the_purge() {
    let tmp = tempfile::tempdir().unwrap();
    // The backup location is a file, so no archive can be written there.
    let blocker = tmp.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let ctx = context(&tmp.path().join("data"), &blocker.join("sub"));
    add_call(&ctx, "OLD1", 400, false, true, 100).await;
    add_call(&ctx, "OLD2", 500, false, false, 100).await;
    let job = run(&ctx, &[task(Op::Backup, Some(365), None, true), task(Op::Purge, Some(365), None, true)]).await;
    assert_eq!(job.state, JobState::Failed);
    assert_eq!(job.tasks[0].state, "failed");
    assert_eq!(job.tasks[1].state, "skipped");
    for id in ["OLD1", "OLD1_scr", "OLD2"] {
        assert!(ctx.catalog.get(id).unwrap().is_some(), "{id} purged after a failed backup");
    }
    assert!(audit_lines(&tmp.path().join("data"), "OLD1").is_empty());

    // A backup that loses one recording (missing media) fails too: nothing is purged.
    let ok_dir = tmp.path().join("backups");
    let ctx2 = Context { config: config(&ok_dir), ..ctx.clone() };
    ctx2.media.delete(&reclife::storage::Key::media("OLD2", "OLD2_0001.mp3").unwrap()).await.unwrap();
    let job = run(&ctx2, &[task(Op::Backup, Some(365), None, true), task(Op::Purge, Some(365), None, true)]).await;
    assert_eq!(job.tasks[1].state, "skipped");
    assert!(ctx2.catalog.get("OLD1").unwrap().is_some());

    // on_failure = "continue" on the backup lets the purge run (GIR's "Next Task"), but it
    // purges only what the backup archived and verified: after a backup that wrote nothing,
    // nothing; after a partial one, exactly the archived part, never what failed to archive.
    let mut b = task(Op::Backup, Some(365), None, true);
    b.on_failure = OnFailure::Continue;
    let job = run(&ctx, &[b.clone(), task(Op::Purge, Some(365), None, true)]).await;
    assert_eq!(job.tasks[1].state, "succeeded");
    assert_eq!(job.tasks[1].recordings, 0);
    assert!(ctx.catalog.get("OLD1").unwrap().is_some(), "purged although no archive holds it");
    let job = run(&ctx2, &[b, task(Op::Purge, Some(365), None, true)]).await;
    assert_eq!(job.tasks[0].state, "failed");
    assert_eq!(job.tasks[1].state, "succeeded");
    assert!(ctx2.catalog.get("OLD1").unwrap().is_none(), "the archived recording is purged");
    assert!(ctx2.catalog.get("OLD1_scr").unwrap().is_none());
    assert!(ctx2.catalog.get("OLD2").unwrap().is_some(), "the recording that failed to archive is never purged");
    assert!(audit_lines(&tmp.path().join("data"), "OLD2").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_purge_deletes_only_what_the_backup_archived() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ctx = context(&data, &tmp.path().join("backups"));
    add_call(&ctx, "OLD1", 400, false, true, 100).await;
    add_call(&ctx, "NEW1", 3, false, false, 100).await;
    // A purge whose filter differs from its backup's (it would also take NEW1) is refused
    // before anything runs: its plan could not show what it deletes.
    let mismatched = [task(Op::Backup, Some(365), None, true), task(Op::Purge, None, None, true)];
    let job = JobRecord::for_tasks("rule", Some("test"), ctx.clock.now(), &mismatched);
    let err = run_tasks(&ctx, job, &OverlapGuard::new(), no_progress().as_ref(), Default::default()).await.unwrap_err();
    assert!(err.to_string().contains("must equal"), "{err}");
    assert!(ctx.catalog.get("OLD1").unwrap().is_some() && ctx.catalog.get("NEW1").unwrap().is_some());
    let job = run(&ctx, &[task(Op::Backup, Some(365), None, true), task(Op::Purge, Some(365), None, true)]).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert!(ctx.catalog.get("OLD1").unwrap().is_none());
    assert!(ctx.catalog.get("OLD1_scr").unwrap().is_none());
    assert!(ctx.catalog.get("NEW1").unwrap().is_some());
    let lines = audit_lines(&data, "OLD1");
    assert_eq!(lines.len(), 1);
    let archive = job.tasks[0].archive.clone().unwrap();
    assert_eq!(lines[0]["archive"], archive.as_str());
    assert_eq!(lines[0]["rule"], "test");
    assert_eq!(lines[0]["media"][0]["size"], 100);
    assert_eq!(audit_lines(&data, "OLD1_scr")[0]["call"], "OLD1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_backend_is_reported_not_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(&tmp.path().join("data"), &tmp.path().join("backups"));
    add_call(&ctx, "OLD1", 400, false, false, 100).await;
    let mut b = task(Op::Backup, Some(365), None, false);
    // Nothing listens on loopback port 9: every request is refused (and retried, then reported).
    b.location = Some("webdav://127.0.0.1:9/backups".into());
    let job = run(&ctx, &[b, task(Op::Purge, Some(365), None, false)]).await;
    assert_eq!(job.state, JobState::Failed);
    assert!(job.failed[0].reason.contains("webdav://127.0.0.1:9/backups"), "{:?}", job.failed);
    assert!(ctx.catalog.get("OLD1").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn purged_ids_are_posted_with_retries() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The first request gets a 503, the second a 200; the bodies are kept.
    let server = tokio::spawn(async move {
        let mut bodies = Vec::new();
        for status in ["503 Service Unavailable", "200 OK"] {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let n = s.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(h) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= h + 4 + len {
                        bodies.push(text[h + 4..].to_string());
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            let resp = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            s.write_all(resp.as_bytes()).await.unwrap();
        }
        bodies
    });
    let tmp = tempfile::tempdir().unwrap();
    let mut ctx = context(&tmp.path().join("data"), &tmp.path().join("backups"));
    ctx.config.notify = Some(reclife::lifecycle::notify::NotifyConfig {
        url: format!("http://{addr}/purged"),
        retries: 3,
        timeout_secs: 10,
        backoff_ms: 10,
    });
    add_call(&ctx, "OLD1", 400, false, false, 100).await;
    let job = run(&ctx, &[task(Op::Purge, Some(365), None, false)]).await;
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let bodies = server.await.unwrap();
    assert_eq!(bodies.len(), 2);
    let v: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(v["event"], "purged");
    assert_eq!(v["ids"], serde_json::json!(["OLD1"]));
}
