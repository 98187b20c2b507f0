//! The lifecycle guarantees in the sequences where they used to break, run with the real
//! binary and several processes on one data directory: a crash, then a hold, then recovery;
//! edits and holds from another process in the middle of a rule run; two schedulers on one
//! catalog; and `reclife check` finding each planted fault.

mod lifecycle_util;

use lifecycle_util::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

struct Node {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    data: PathBuf,
    backups: PathBuf,
    cfg: PathBuf,
}

/// A node with `n` calls older than a year (every third with a screen) and two young ones.
fn node(n: usize) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let (data, backups, cfg) = backup_and_purge_node(&root, "lease_seconds = 5\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&data, &backups);
        for i in 0..n {
            add_call(&ctx, &format!("OLD{i:03}"), 400 + i as i64, false, i % 3 == 0, 300).await;
        }
        add_call(&ctx, "NEW1", 5, false, true, 300).await;
        add_call(&ctx, "NEW2", 9, false, false, 300).await;
    });
    Node { _tmp: tmp, root, data, backups, cfg }
}

fn cmd(n: &Node, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.args(["--data-dir", n.data.to_str().unwrap(), "--config", n.cfg.to_str().unwrap()])
        .args(["--now", "2025-06-25T03:00:00Z", "-q"])
        .args(args)
        .env_remove("RECLIFE_FAILPOINT")
        .stdin(Stdio::null());
    c
}

fn ok(n: &Node, args: &[&str]) -> String {
    let o = cmd(n, args).output().unwrap();
    assert!(o.status.success(), "reclife {args:?} failed: {}{}", text(&o.stdout), text(&o.stderr));
    text(&o.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn present(n: &Node, id: &str) -> bool {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&n.data, &n.backups);
        let there = ctx.catalog.get(id).unwrap().is_some();
        if there {
            assert!(media_present(&ctx, id).await.iter().all(|p| *p), "{id} is in the catalog but its media is not");
        } else {
            assert!(!any_media_left(&ctx, id).await, "{id} is gone but media is left");
        }
        there
    })
}

fn check_clean(n: &Node) {
    let o = cmd(n, &["check"]).output().unwrap();
    assert!(o.status.success(), "reclife check found problems:\n{}{}", text(&o.stdout), text(&o.stderr));
}

/// Ids of every recording audited as deleted, with how often.
fn audited(n: &Node) -> std::collections::HashMap<String, usize> {
    let mut out = std::collections::HashMap::new();
    if let Ok(t) = std::fs::read_to_string(n.data.join("audit/deletions.jsonl")) {
        for l in t.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            *out.entry(v["recording"].as_str().unwrap().to_string()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn a_hold_placed_after_a_crashed_purge_wins_over_recovery() {
    let n = node(12);
    let o = cmd(&n, &["purge", "--type", "voice", "--min-age", "365", "--include-screen"])
        .env("RECLIFE_FAILPOINT", "purge.after_journal:1")
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o.stderr).contains("aborting"), "{}", text(&o.stderr));
    // Legal hold on a recording the crashed batch had doomed, and on a screen of another.
    ok(&n, &["recordings", "hold", "OLD003", "--reason", "litigation 7"]);
    ok(&n, &["recordings", "hold", "OLD006_scr", "--reason", "review"]);
    let before = cmd(&n, &["check"]).output().unwrap();
    assert!(!before.status.success(), "check must report the open journal");
    assert!(text(&before.stdout).contains("open-journal"), "{}", text(&before.stdout));
    // The next purge finishes the journal first, re-checking holds.
    ok(&n, &["purge", "--type", "voice", "--min-age", "365", "--include-screen"]);
    assert!(present(&n, "OLD003"), "a held recording was purged by recovery");
    assert!(present(&n, "OLD006_scr"), "a held screen was purged by recovery");
    let a = audited(&n);
    assert!(!a.contains_key("OLD003") && !a.contains_key("OLD006_scr"), "a held recording was audited as deleted");
    for i in (0..12).filter(|i| *i != 3) {
        let id = format!("OLD{i:03}");
        assert!(!present(&n, &id), "{id} should be purged");
        assert_eq!(a.get(&id), Some(&1), "{id} audited exactly once");
    }
    assert!(present(&n, "NEW1") && present(&n, "NEW2"));
    check_clean(&n);
}

#[test]
fn edits_and_holds_from_another_process_during_a_rule_run_are_never_lost() {
    let n = node(10);
    let flag = n.root.join("go-purge");
    // Pause the rule between its backup (task 1) and its purge (task 2).
    let run = cmd(&n, &["run", "--once"])
        .env("RECLIFE_FAILPOINT", format!("task.start:2:pause={}", flag.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&flag);
    // Another process edits recordings the backup has archived.
    ok(&n, &["recordings", "label", "OLD001", "late-label"]);
    ok(&n, &["recordings", "hold", "OLD002", "--reason", "legal"]);
    ok(&n, &["recordings", "label", "OLD003_scr", "reviewed"]);
    std::fs::write(&flag, b"").unwrap();
    let o = run.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(present(&n, "OLD001"), "a recording labelled after its backup was purged");
    assert!(present(&n, "OLD002"), "a recording held after its backup was purged");
    assert!(present(&n, "OLD003_scr"), "a screen labelled after its backup was purged");
    assert!(!present(&n, "OLD003"), "its call was unchanged and is purged");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let labels = rt.block_on(async {
        let ctx = context(&n.data, &n.backups);
        ctx.catalog.get("OLD001").unwrap().unwrap().recording.labels
    });
    assert_eq!(labels, vec!["late-label"], "the label is kept");
    // Every purged recording's archive holds it with every label it had when it was deleted.
    let a = audited(&n);
    let line_of = |id: &str| -> serde_json::Value {
        let t = std::fs::read_to_string(n.data.join("audit/deletions.jsonl")).unwrap();
        t.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|v| v["recording"] == id).unwrap()
    };
    for (id, count) in &a {
        assert_eq!(*count, 1, "{id} audited {count} times");
        let archive = line_of(id)["archive"].as_str().unwrap().to_string();
        let mut za = zip::ZipArchive::new(std::fs::File::open(&archive).unwrap()).unwrap();
        let name = za
            .file_names()
            .find(|f| f.as_ref().unwrap().ends_with(&format!("/{id}/meta-data.json")))
            .map(|f| f.unwrap().to_string());
        let name = name.unwrap_or_else(|| panic!("{id} purged but not in {archive}"));
        let mut doc = String::new();
        std::io::Read::read_to_string(&mut za.by_name(&name).unwrap(), &mut doc).unwrap();
        assert!(!doc.contains("late-label") && !doc.contains("reviewed"), "{id}: an edited recording was purged");
    }
    // The job says what it left alone, and why.
    let jobs = ok(&n, &["jobs", "list"]);
    let id = jobs.lines().last().unwrap().split('\t').next().unwrap().to_string();
    let shown = ok(&n, &["jobs", "show", &id]);
    assert!(shown.contains("skipped: changed since backup OLD001"), "{shown}");
    assert!(shown.contains("skipped: held OLD002"), "{shown}");
    assert!(shown.contains("skipped: changed since backup OLD003_scr"), "{shown}");
    check_clean(&n);
}

#[test]
fn a_hold_between_the_journal_and_the_delete_stops_the_delete() {
    let n = node(6);
    let flag = n.root.join("go");
    let purge = cmd(&n, &["purge", "--type", "voice", "--min-age", "365"])
        .env("RECLIFE_FAILPOINT", format!("purge.after_journal:1:pause={}", flag.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&flag);
    ok(&n, &["recordings", "hold", "OLD004", "--reason", "subpoena"]);
    std::fs::write(&flag, b"").unwrap();
    let o = purge.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(present(&n, "OLD004"));
    assert!(!audited(&n).contains_key("OLD004"));
    assert!(!present(&n, "OLD005"));
    check_clean(&n);
}

#[test]
fn two_schedulers_on_one_data_dir_purge_and_audit_each_recording_once() {
    let n = node(150);
    let spawn = || cmd(&n, &["run", "--once"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (spawn(), spawn());
    for c in [a, b] {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let audit = audited(&n);
    let mut expected: HashSet<String> = (0..150).map(|i| format!("OLD{i:03}")).collect();
    expected.extend((0..150).filter(|i| i % 3 == 0).map(|i| format!("OLD{i:03}_scr")));
    for id in &expected {
        assert_eq!(audit.get(id), Some(&1), "{id} audited {:?} times", audit.get(id));
        assert!(!present(&n, id));
    }
    assert_eq!(audit.len(), expected.len(), "nothing else was audited");
    assert!(present(&n, "NEW1") && present(&n, "NEW1_scr") && present(&n, "NEW2"));
    check_clean(&n);
}

#[test]
fn a_dry_run_is_a_planned_job_that_starts_exactly_as_planned() {
    let n = node(5);
    let out = ok(&n, &["purge", "--type", "voice", "--min-age", "365", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = v["job"].as_str().unwrap().to_string();
    assert_eq!(v["plan"]["tasks"][0]["recordings"], 5);
    assert!(ok(&n, &["jobs", "show", &id]).contains("planned"));
    let items = ok(&n, &["jobs", "show", &id, "--items"]);
    assert_eq!(items.lines().filter(|l| l.contains("\"row\"")).count(), 5, "{items}");
    // A recording that appears after the plan is not in it; one edited after it is skipped.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&n.data, &n.backups);
        add_call(&ctx, "LATE1", 800, false, false, 100).await;
    });
    ok(&n, &["recordings", "label", "OLD002", "x"]);
    let o = cmd(&n, &["jobs", "start", &id]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(present(&n, "LATE1"), "a recording outside the plan was purged");
    assert!(present(&n, "OLD002"), "a recording edited after planning was purged");
    for i in [0, 1, 3, 4] {
        assert!(!present(&n, &format!("OLD{i:03}")));
    }
    assert!(ok(&n, &["jobs", "show", &id]).contains("skipped: changed since planned OLD002"));
    let again = cmd(&n, &["jobs", "start", &id]).output().unwrap();
    assert!(!again.status.success(), "a finished job cannot start again");
    // Cancel drops a planned job and its plan.
    let v: serde_json::Value =
        serde_json::from_str(&ok(&n, &["purge", "--type", "voice", "--min-age", "365", "--dry-run", "--json"]))
            .unwrap();
    let id2 = v["job"].as_str().unwrap().to_string();
    ok(&n, &["jobs", "cancel", &id2]);
    assert!(ok(&n, &["jobs", "show", &id2]).contains("cancelled"));
    assert!(!cmd(&n, &["jobs", "start", &id2]).output().unwrap().status.success());
    assert!(present(&n, "LATE1"));
    check_clean(&n);
}

#[test]
fn check_finds_each_planted_fault_and_repairs_what_is_safe() {
    let n = node(4);
    check_clean(&n);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use reclife::storage::{Key, MediaStoreExt};
        let ctx = context(&n.data, &n.backups);
        // Orphan media: a recording that is not in the catalog, and an unlisted file.
        ctx.media.put_bytes(&Key::media("GHOST", "g.mp3").unwrap(), vec![1u8; 10].into()).await.unwrap();
        ctx.media.put_bytes(&Key::media("NEW1", "extra-muxed.mp4").unwrap(), vec![2u8; 10].into()).await.unwrap();
        // Older than the repair's grace period (younger ones may be a writer's upload).
        age_file(&n.data.join("media/GHOST/g.mp3"), 7200);
        age_file(&n.data.join("media/NEW1/extra-muxed.mp4"), 7200);
        // A document pointing at missing media.
        ctx.media.delete(&Key::media("NEW2", "NEW2_0001.mp3").unwrap()).await.unwrap();
        // A stale lease.
        let past = chrono::Utc::now() - chrono::Duration::minutes(5);
        ctx.catalog.lease_acquire("lifecycle/job/j-dead", "gone:1:0", past, past).unwrap();
    });
    // A leftover temporary file of the media store, an hour old.
    let tmpdir = n.data.join("media/.reclife-tmp");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let leftover = tmpdir.join("put-leftover");
    std::fs::write(&leftover, b"x").unwrap();
    let old = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&leftover).unwrap().set_modified(old).unwrap();
    // A backup `.part` file of a process that no longer runs.
    std::fs::create_dir_all(&n.backups).unwrap();
    let part = n.backups.join(".Environment-voice-0-365-20250625030000.zip.999999999.part");
    std::fs::write(&part, b"partial").unwrap();
    // An open journal entry: a purge killed after its journal entry.
    let o = cmd(&n, &["purge", "--type", "voice", "--min-age", "365"])
        .env("RECLIFE_FAILPOINT", "purge.after_journal:1")
        .output()
        .unwrap();
    assert!(!o.status.success());

    let o = cmd(&n, &["check"]).output().unwrap();
    let report = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{report}");
    for kind in [
        "orphan-media: GHOST/g.mp3",
        "orphan-media: NEW1/extra-muxed.mp4",
        "missing-media: NEW2/NEW2_0001.mp3",
        "stale-lease: lifecycle/job/j-dead",
        "temp-file",
        "open-journal",
        "stale-job",
    ] {
        assert!(report.contains(kind), "check missed {kind}:\n{report}");
    }
    assert!(report.contains(".999999999.part"), "{report}");
    assert!(report.contains("put-leftover"), "{report}");

    let o = cmd(&n, &["check", "--repair"]).output().unwrap();
    let report = text(&o.stdout);
    assert!(!leftover.exists() && !part.exists(), "{report}");
    // Only what needs a person is left: the missing media.
    let o = cmd(&n, &["check"]).output().unwrap();
    let after = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1));
    let left: Vec<&str> = after.lines().filter(|l| !l.starts_with("checked")).collect();
    assert_eq!(left.len(), 1, "{after}");
    assert!(left[0].starts_with("missing-media: NEW2/NEW2_0001.mp3"), "{after}");
    let rt2 = tokio::runtime::Runtime::new().unwrap();
    rt2.block_on(async {
        let ctx = context(&n.data, &n.backups);
        assert_eq!(media_present(&ctx, "NEW1").await, vec![true], "repair never removes listed media");
    });
    assert!(!audited(&n).contains_key("NEW1"));
    rt.block_on(async {
        let ctx = context(&n.data, &n.backups);
        assert!(!any_media_left(&ctx, "GHOST").await);
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn job_and_pair_records_are_paged_and_pruned() {
    use reclife::lifecycle::jobs::{self, JobRecord, JobState};
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(&tmp.path().join("data"), &tmp.path().join("b"));
    let old = now() - chrono::Duration::days(400);
    for i in 0..250 {
        let mut j = JobRecord::new("purge", None, if i < 200 { old } else { now() });
        j.id = format!("j-{i:04}");
        j.state = if i == 3 { JobState::Planned } else { JobState::Succeeded };
        jobs::save(&ctx, &j).await.unwrap();
    }
    let page = jobs::page(&ctx, Some("j-0009"), 5).await.unwrap();
    assert_eq!(
        page.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
        ["j-0010", "j-0011", "j-0012", "j-0013", "j-0014"]
    );
    assert_eq!(jobs::prune(&ctx, 90).await.unwrap(), 199, "old ended jobs go; a planned one stays");
    let mut left = 0;
    jobs::for_each(&ctx, |_| left += 1).await.unwrap();
    assert_eq!(left, 51);
    // Muxer pair records: old ones, and those of screens no longer in the catalog, go.
    add_call(&ctx, "C1", 3, false, true, 10).await;
    let c = ctx.catalog.as_ref();
    reclife::muxer::state::mark_muxed(c, "C1", "C1_scr", "C1_scr-muxed.mp4", now()).unwrap();
    reclife::muxer::state::mark_muxed(c, "GONE", "GONE_scr", "x.mp4", now()).unwrap();
    reclife::muxer::state::mark_muxed(c, "C1", "OLD_scr", "y.mp4", old).unwrap();
    assert_eq!(reclife::muxer::state::prune(c, now() - chrono::Duration::days(90)).unwrap(), 2);
    assert!(reclife::muxer::state::get(c, "C1_scr").unwrap().is_some());
}

/// Ctrl-C during a backup stops it at the next recording: no archive is published, the
/// partial file is removed, the job says cancelled, and the exit status is 130.
#[test]
fn ctrl_c_during_a_backup_stops_it_and_publishes_nothing() {
    let n = node(8);
    let flag = n.root.join("go-on");
    let out = n.root.join("manual-backups");
    let loc = format!("file://{}", out.display());
    let child = cmd(&n, &["backup", "--type", "voice", "--min-age", "365", "--location", &loc])
        .env("RECLIFE_FAILPOINT", format!("backup.after_entry:2:pause={}", flag.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&flag);
    let st = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&flag, b"").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}{}", text(&o.stdout), text(&o.stderr));
    let left: Vec<_> =
        std::fs::read_dir(&out).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "a cancelled backup left {left:?}");
    let jobs = ok(&n, &["jobs", "list"]);
    assert!(jobs.lines().any(|l| l.contains("\tbackup\t") && l.contains("cancelled")), "{jobs}");
    check_clean(&n);
}

fn fails(n: &Node, args: &[&str]) -> String {
    let o = cmd(n, args).output().unwrap();
    assert!(!o.status.success(), "reclife {args:?} should have been refused: {}", text(&o.stdout));
    text(&o.stderr)
}

fn job_ids(n: &Node) -> Vec<String> {
    ok(n, &["jobs", "list"]).lines().map(|l| l.split('\t').next().unwrap_or("").to_string()).collect()
}

/// Issue 20, sequence 8 (and the `min_age = 0` half of 1): no face plans or starts a purge of
/// every age without the explicit confirmation. A dry run is checked like a run; a plan that
/// fails leaves no job; a planned job is checked again when it starts, so a plan stored by an
/// older build (or written by hand) that skipped the age rule cannot run.
#[test]
fn no_side_door_to_a_purge_of_every_age() {
    let n = node(3);
    for args in [
        &["purge", "--type", "voice", "--dry-run"][..],
        &["purge", "--type", "voice", "--all-ages", "--dry-run"],
        &["purge", "--type", "voice", "--min-age", "0"],
        &["purge", "--type", "voice", "--min-age", "0", "--dry-run"],
        &["purge", "--type", "screen", "--min-age", "0", "--dry-run", "--json"],
        &["purge", "--type", "voice", "--all-ages", "--yes", "--min-age", "30", "--dry-run"],
    ] {
        let err = fails(&n, args);
        assert!(err.contains("--all-ages") || err.contains("all_ages"), "{args:?}: {err}");
    }
    // A failed plan (a location this build cannot write to) leaves no job to start.
    fails(&n, &["backup", "--type", "voice", "--min-age", "1", "--location", "ftp://nowhere/x", "--dry-run"]);
    assert_eq!(job_ids(&n), Vec::<String>::new(), "a refused or failed plan left a job");
    for id in ["OLD000", "OLD001", "OLD002", "NEW1", "NEW2"] {
        assert!(present(&n, id), "{id} was purged by a refused command");
    }

    // A planned purge of every age without the confirmation, as an older build's dry run
    // stored it: `jobs start` refuses it and deletes nothing.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let old_id = rt.block_on(async {
        let ctx = context(&n.data, &n.backups);
        let task = reclife::lifecycle::Task {
            op: reclife::lifecycle::Op::Purge,
            filter: reclife::lifecycle::Filter::default(),
            include_screen: true,
            on_failure: reclife::lifecycle::OnFailure::Stop,
            location: None,
            zip: true,
            use_full_path: false,
            all_ages: false,
            source: None,
        };
        let mut job = reclife::lifecycle::jobs::JobRecord::for_tasks("purge", None, now(), &[task]);
        job.planned_tasks = vec![1];
        reclife::lifecycle::jobs::save(&ctx, &job).await.unwrap();
        job.id
    });
    let err = fails(&n, &["jobs", "start", &old_id]);
    assert!(err.contains("min_age") && err.contains("--all-ages --yes"), "{err}");
    assert!(ok(&n, &["jobs", "show", &old_id]).contains("planned"), "a refused start changed the job");
    for id in ["OLD000", "NEW1", "NEW2"] {
        assert!(present(&n, id), "{id} was purged by a job that skipped the age rule");
    }

    // Confirmed, the purge of every age is planned, shown and started as planned.
    let v: serde_json::Value = serde_json::from_str(&ok(
        &n,
        &["purge", "--type", "voice", "--all-ages", "--yes", "--include-screen", "--dry-run", "--json"],
    ))
    .unwrap();
    assert_eq!(v["plan"]["tasks"][0]["recordings"], 5, "{v}");
    let id = v["job"].as_str().unwrap().to_string();
    ok(&n, &["jobs", "start", &id]);
    for id in ["OLD000", "OLD001", "OLD002", "NEW1", "NEW2"] {
        assert!(!present(&n, id), "{id} was planned and confirmed but not purged");
    }
    // `check` names the plan that can never start; `check --repair` cancels it.
    let o = cmd(&n, &["check", "--json"]).output().unwrap();
    assert!(!o.status.success() && text(&o.stdout).contains("invalid-plan"), "{}", text(&o.stdout));
    ok(&n, &["check", "--repair"]);
    assert!(ok(&n, &["jobs", "show", &old_id]).contains("cancelled"));
    check_clean(&n);
}

/// Issue 20, sequence 7: GIR's selective recording. `keep_recording = "no"` is attached to every
/// call and an agent changes it to "yes" to keep one; the shipped rule (rules/
/// selective-recording.toml, enabled) purges the calls whose value is "no" now, and a rule with
/// `attached_data_not = { keep_recording = "yes" }` purges every call unless it says "yes" now.
#[test]
fn attached_data_filters_read_the_value_the_key_has_now() {
    let n = node(0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let add = |id: &str, events: &str| {
        rt.block_on(async {
            let ctx = context(&n.data, &n.backups);
            add_call(&ctx, id, 30, false, false, 100).await;
            let e = ctx.catalog.get(id).unwrap().unwrap();
            let mut doc = e.recording.doc_value();
            doc["eventHistory"] = serde_json::from_str(events).unwrap();
            let rec = reclife::model::Recording::parse(&doc.to_string()).unwrap();
            ctx.catalog.upsert(&rec).unwrap();
        })
    };
    let ev = |part: &str, v: &str| format!(r#"{{"event":"Data","data":{{"{part}":{{"keep_recording":"{v}"}}}}}}"#);
    add("DROP1", &format!("[{}]", ev("added", "no")));
    add("KEPT1", &format!("[{},{}]", ev("added", "no"), ev("updated", "yes")));
    add("DROP2", &format!("[{},{}]", ev("added", "yes"), ev("updated", "no")));
    add("NOKEY", "[]");
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/rules/selective-recording.toml"))
        .unwrap()
        .replace("enabled = false", "enabled = true");
    let rules = n.root.join("rules");
    std::fs::remove_file(rules.join("bp.toml")).unwrap();
    write_rule(&rules, "selective.toml", &shipped);
    ok(&n, &["rules", "validate"]);
    ok(&n, &["run", "--once"]);
    let gone: Vec<&str> = ["DROP1", "KEPT1", "DROP2", "NOKEY"].into_iter().filter(|id| !present(&n, id)).collect();
    assert_eq!(gone, ["DROP1", "DROP2"], "the shipped selective-recording rule");
    // Purge unless "yes" now: calls without the key go too; the kept call stays.
    let unless = shipped
        .replace("name = \"Selective recording\"", "name = \"Unless kept\"")
        .replace("attached_data = { keep_recording = \"no\" }", "attached_data_not = { keep_recording = \"yes\" }");
    assert!(unless.contains("attached_data_not"), "{unless}");
    std::fs::remove_file(rules.join("selective.toml")).unwrap();
    write_rule(&rules, "unless.toml", &unless);
    ok(&n, &["run", "--once"]);
    assert!(present(&n, "KEPT1"), "the call the agent asked to keep was purged");
    assert!(!present(&n, "NOKEY"));
    check_clean(&n);
}

/// `reclife ingest` of a two-media recording, paused (failpoint) once the first file is
/// stored; returns the process, the flag that lets it go on, and the folder ingested.
fn ingest_paused_after_first_media(n: &Node) -> (std::process::Child, PathBuf, PathBuf) {
    let folder = two_media_folder(&n.root);
    let flag = n.root.join("go-ingest");
    let ingest = cmd(n, &["ingest", folder.to_str().unwrap()])
        .env("RECLIFE_FAILPOINT", format!("ingest.after_media:1:pause={}", flag.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_reached(&flag);
    (ingest, flag, folder)
}

/// Sets a file's modification time `secs` seconds back.
fn age_file(path: &std::path::Path, secs: u64) {
    let t = std::time::SystemTime::now() - Duration::from_secs(secs);
    std::fs::File::options().write(true).open(path).unwrap().set_modified(t).unwrap();
}

const INFLIGHT: &str = "INFLIGHT000000000000000000000001";

/// A folder holding one recording with two media files, the second big.
fn two_media_folder(root: &std::path::Path) -> PathBuf {
    let dir = root.join("incoming").join(INFLIGHT);
    std::fs::create_dir_all(&dir).unwrap();
    let small = media_bytes("small", 5_000);
    let big = media_bytes("big", 3 * 1024 * 1024);
    std::fs::write(dir.join("a.mp3"), &small).unwrap();
    std::fs::write(dir.join("b.mp4"), &big).unwrap();
    let doc = format!(
        r#"{{"id":"{INFLIGHT}","startTime":"2025-06-20T10:00:00.000+0000","stopTime":"2025-06-20T10:05:00.000+0000","callType":"Inbound","region":"us","mediaFiles":[{{"mediaId":"a.mp3","type":"audio/mp3","size":"{}"}},{{"mediaId":"b.mp4","type":"video/mp4","size":"{}"}}]}}"#,
        small.len(),
        big.len()
    );
    std::fs::write(dir.join("meta-data.json"), doc).unwrap();
    dir
}

/// `reclife ingest` of a recording with two media files, paused after storing the first (as
/// if the second took hours to copy): `check` counts the first as being written, not as a
/// problem, and `check --repair` leaves it alone even when it is older than the grace period
/// (the writer's intent protects it); the ingest then succeeds and the node is clean.
#[test]
fn repair_never_removes_media_a_running_ingest_stored() {
    let n = node(1);
    let (ingest, flag, _folder) = ingest_paused_after_first_media(&n);
    let first = n.data.join(format!("media/{INFLIGHT}/a.mp3"));
    assert!(first.exists(), "the first media file is stored before the pause");
    age_file(&first, 7200);

    let o = cmd(&n, &["check"]).output().unwrap();
    let report = text(&o.stdout);
    assert!(o.status.success(), "media being written is not a problem:\n{report}{}", text(&o.stderr));
    assert!(report.contains("(1 being written: left alone)"), "{report}");
    let o = cmd(&n, &["check", "--repair", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["in_flight"], 1, "{v}");
    assert!(first.exists(), "check --repair removed media a running ingest had stored: {v}");

    std::fs::write(&flag, b"").unwrap();
    let o = ingest.wait_with_output().unwrap();
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("ingested 1"), "{}", text(&o.stdout));
    assert!(present(&n, INFLIGHT), "the ingested recording has all its media");
    check_clean(&n);
    let o = cmd(&n, &["check"]).output().unwrap();
    assert!(!text(&o.stdout).contains("being written"), "{}", text(&o.stdout));
}

/// A writer that dies leaves its intent; once the writer is known dead (same host) or its
/// lease has expired (another host), and the media is older than the grace period, repair
/// removes the orphan. Younger orphans wait for the grace period.
#[test]
fn a_dead_writers_intent_does_not_block_repair() {
    let n = node(1);
    let folder = two_media_folder(&n.root);
    let flag = n.root.join("never");
    let mut ingest = cmd(&n, &["ingest", folder.to_str().unwrap()])
        .env("RECLIFE_FAILPOINT", format!("ingest.after_media:1:pause={}", flag.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_reached(&flag);
    ingest.kill().unwrap();
    ingest.wait().unwrap();
    let first = n.data.join(format!("media/{INFLIGHT}/a.mp3"));
    assert!(first.exists());
    // Its intent outlives it (dead at once to this host's eyes); let it expire too
    // (lease_seconds = 5), so what check reports below does not depend on the timing.
    std::thread::sleep(Duration::from_secs(6));

    // Young: within the grace period, left alone.
    let o = cmd(&n, &["check", "--repair"]).output().unwrap();
    assert!(first.exists(), "an orphan younger than the grace period was removed: {}", text(&o.stdout));
    // Old, and its writer dead: an orphan.
    age_file(&first, 7200);
    let o = cmd(&n, &["check"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains(&format!("orphan-media: {INFLIGHT}/a.mp3")), "{}", text(&o.stdout));
    ok(&n, &["check", "--repair"]);
    assert!(!first.exists(), "a dead writer's intent kept an old orphan forever");
    check_clean(&n);

    // A writer on another host (its pid cannot be looked at): its intent holds until it expires.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ghost = n.data.join("media/GHOST1/g.mp3");
    rt.block_on(async {
        use reclife::storage::{Key, MediaStoreExt};
        let ctx = context(&n.data, &n.backups);
        ctx.media.put_bytes(&Key::media("GHOST1", "g.mp3").unwrap(), vec![1u8; 10].into()).await.unwrap();
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::seconds(3);
        assert!(ctx.catalog.lease_acquire("media/intent/GHOST1", "elsewhere:4242:0", now, until).unwrap());
    });
    age_file(&ghost, 7200);
    let o = cmd(&n, &["check", "--repair"]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stdout));
    assert!(ghost.exists(), "media under a live intent was removed");
    std::thread::sleep(Duration::from_millis(3500));
    let o = cmd(&n, &["check", "--repair"]).output().unwrap();
    assert!(!ghost.exists(), "an expired intent kept an old orphan: {}", text(&o.stdout));
    check_clean(&n);
}

/// A media file an ingest stored vanishes before the document is written (something that does
/// not look at intents removed it): the ingest refuses the recording, naming the file, instead
/// of writing a document that points at missing media; a second ingest puts it in whole.
#[test]
fn an_ingest_whose_stored_media_vanished_records_nothing() {
    let n = node(1);
    let (ingest, flag, folder) = ingest_paused_after_first_media(&n);
    let first = n.data.join(format!("media/{INFLIGHT}/a.mp3"));
    std::fs::remove_file(&first).unwrap();
    std::fs::write(&flag, b"").unwrap();
    let o = ingest.wait_with_output().unwrap();
    let out = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(out.contains("rejected 1"), "{out}");
    assert!(out.contains(&format!("media {INFLIGHT}/a.mp3 vanished")), "the reason names the file: {out}");
    // No document; what it did store is left to `check --repair` once the grace period is over.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listed = rt.block_on(async { context(&n.data, &n.backups).catalog.get(INFLIGHT).unwrap().is_some() });
    assert!(!listed, "a document was written for a recording whose media is gone");
    let o = cmd(&n, &["check", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f["kind"].as_str().unwrap()).collect();
    assert!(!kinds.contains(&"missing-media"), "{v}");
    let out = ok(&n, &["ingest", folder.to_str().unwrap()]);
    assert!(out.contains("ingested 1"), "{out}");
    assert!(present(&n, INFLIGHT));
}

/// Issue 20 (2): a hold on a call protects its screen recordings everywhere. A screen purge plans
/// the held call's screen as held, leaves it and audits nothing for it; a crashed screen purge's
/// recovery leaves the screen of a call held after the crash.
#[test]
fn a_held_calls_screens_are_left_by_a_screen_purge_and_its_recovery() {
    let n = node(7);
    ok(&n, &["recordings", "hold", "OLD003", "--reason", "litigation 9"]);
    let plan = ok(&n, &["purge", "--type", "screen", "--min-age", "365", "--dry-run", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(
        (v["plan"]["tasks"][0]["recordings"].as_u64(), v["plan"]["tasks"][0]["held"].as_u64()),
        (Some(2), Some(1)),
        "{plan}"
    );
    ok(&n, &["jobs", "cancel", v["job"].as_str().unwrap()]);
    let listed = ok(&n, &["recordings", "list", "--type", "screen", "--held", "--json"]);
    assert!(listed.contains("\"OLD003_scr\"") && listed.lines().count() == 1, "{listed}");
    // The purge crashes after its journal names OLD000_scr and OLD006_scr; OLD006 is held then.
    let o = cmd(&n, &["purge", "--type", "screen", "--min-age", "365"])
        .env("RECLIFE_FAILPOINT", "purge.after_journal:1")
        .output()
        .unwrap();
    assert!(!o.status.success() && text(&o.stderr).contains("aborting"), "{}", text(&o.stderr));
    ok(&n, &["recordings", "hold", "OLD006", "--reason", "subpoena 4"]);
    ok(&n, &["purge", "--type", "screen", "--min-age", "365"]);
    let a = audited(&n);
    for kept in ["OLD003_scr", "OLD006_scr"] {
        assert!(present(&n, kept), "{kept}: its call is held, yet it was purged");
        assert!(!a.contains_key(kept), "{kept} audited as deleted");
    }
    assert!(!present(&n, "OLD000_scr"));
    assert_eq!(a.get("OLD000_scr"), Some(&1));
    assert!(present(&n, "NEW1_scr"));
    check_clean(&n);
}

/// Issue 20 (9): a hold travels with the recording. Who placed it and its history are kept; a
/// second hold keeps the first; the backup archives it inside meta-data.json (the file list
/// stays GIR's); after the node is wiped, a restore brings the call back held, so a purge leaves
/// it and its screen.
#[test]
fn a_hold_survives_backup_wipe_and_restore() {
    let n = node(4);
    let as_user = |user: &str, args: &[&str]| {
        let o = cmd(&n, args).env("USER", user).output().unwrap();
        assert!(o.status.success(), "reclife {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    as_user("alice", &["recordings", "hold", "OLD000", "--reason", "case 11"]);
    let second = as_user("bob", &["recordings", "hold", "OLD000", "--reason", "case 12"]);
    assert!(second.contains("already held") && second.contains("by alice") && second.contains("case 11"), "{second}");
    let shown = |n: &Node| -> serde_json::Value {
        serde_json::from_str(&ok(n, &["recordings", "show", "OLD000"])).expect("show prints JSON")
    };
    let h = shown(&n)["reclifeHold"].clone();
    assert_eq!((h["reason"].as_str(), h["by"].as_str()), (Some("case 11"), Some("alice")), "{h}");
    let who: Vec<&str> = h["history"].as_array().unwrap().iter().map(|e| e["by"].as_str().unwrap()).collect();
    assert_eq!(who, ["alice", "bob"], "{h}");
    ok(&n, &["backup", "--type", "voice", "--min-age", "365", "--include-screen"]);
    let zip_path = std::fs::read_dir(&n.backups)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "zip"))
        .expect("an archive");
    let mut za = zip::ZipArchive::new(std::fs::File::open(&zip_path).unwrap()).unwrap();
    let names: Vec<String> = za.file_names().map(|f| f.unwrap().to_string()).collect();
    for name in &names {
        let file = name.rsplit('/').next().unwrap();
        assert!(file == "meta-data.json" || file.ends_with(".mp3") || file.ends_with(".mp4"), "not GIR's: {name}");
    }
    assert_eq!(names.len(), 4 * 2 + 2 * 2, "4 calls and 2 screens, each a meta-data.json and one media file");
    let meta = names.iter().find(|f| f.ends_with("/OLD000/meta-data.json")).unwrap().clone();
    let mut doc = String::new();
    std::io::Read::read_to_string(&mut za.by_name(&meta).unwrap(), &mut doc).unwrap();
    let archived: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(archived["reclifeHold"]["by"], "alice", "{doc}");
    assert_eq!(archived["id"], "OLD000");
    // A folder backup: the same files, the same hold in the same meta-data.json.
    let folders = n.root.join("folders");
    ok(
        &n,
        &["backup", "--type", "voice", "--min-age", "365", "--include-screen", "--no-zip"]
            .iter()
            .copied()
            .chain(["--location", &format!("file://{}", folders.display())])
            .collect::<Vec<_>>(),
    );
    let folder = std::fs::read_dir(&folders).unwrap().next().unwrap().unwrap().path();
    let mut files: Vec<String> = walkdir::WalkDir::new(&folder)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(&folder).unwrap().display().to_string())
        .collect();
    files.sort();
    let mut zipped = names.clone();
    zipped.sort();
    assert_eq!(files, zipped, "a folder backup holds the zip's files");
    let folder_doc: serde_json::Value = serde_json::from_slice(&std::fs::read(folder.join(&meta)).unwrap()).unwrap();
    assert_eq!(folder_doc, archived);
    // Disaster: the node's data dir is gone. The restore brings the hold back.
    std::fs::remove_dir_all(&n.data).unwrap();
    let restored = ok(&n, &["restore", zip_path.to_str().unwrap()]);
    assert!(restored.contains("restored 6") && restored.contains("held 1"), "{restored}");
    let again = shown(&n);
    assert_eq!(again["reclifeHold"], h, "the hold, who placed it and its history are back");
    ok(&n, &["purge", "--type", "voice", "--min-age", "365", "--include-screen"]);
    ok(&n, &["purge", "--type", "screen", "--min-age", "365"]);
    assert!(present(&n, "OLD000") && present(&n, "OLD000_scr"), "the restored hold protects the call and its screen");
    for gone in ["OLD001", "OLD002", "OLD003", "OLD003_scr"] {
        assert!(!present(&n, gone), "{gone} should be purged");
    }
    // Restoring again never releases: unhold, and the archive's older hold stays released.
    as_user("carol", &["recordings", "unhold", "OLD000"]);
    ok(&n, &["restore", zip_path.to_str().unwrap()]);
    let last = shown(&n)["reclifeHold"].clone();
    assert!(last.get("reason").is_none(), "a hold released here is not brought back: {last}");
    assert_eq!(last["history"].as_array().unwrap().last().unwrap()["by"], "carol");
    check_clean(&n);
}
