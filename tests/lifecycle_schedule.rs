//! The scheduler: catch-up of runs missed while the node was down (with `--now` and the
//! persisted last run), rules re-read while running, and the overlap guard.

mod lifecycle_util;

use futures::FutureExt;
use lifecycle_util::*;
use reclife::lifecycle::guard::{Footprint, OverlapGuard};
use reclife::lifecycle::rules::parse_rule;
use reclife::lifecycle::schedule::{catch_up_list, last_run, missed, set_last_run};
use reclife::lifecycle::{Filter, OnFailure, Op, Task};
use reclife::model::Kind;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

fn t(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_fire_times_are_found_from_the_persisted_last_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(&tmp.path().join("data"), &tmp.path().join("b"));
    let rule = parse_rule(Path::new("r.toml"), BACKUP_AND_PURGE, Some("file:///tmp/x"), false).unwrap();
    // Fires daily at 02:00 UTC.
    assert!(missed(&rule, t("2025-06-24T02:30:00Z"), t("2025-06-25T03:00:00Z")));
    assert!(!missed(&rule, t("2025-06-25T02:00:00Z"), t("2025-06-25T03:00:00Z")));
    assert!(!missed(&rule, t("2025-06-25T02:10:00Z"), t("2025-06-25T03:00:00Z")));
    // Never run: no catch-up, but a first mark so later downtime is noticed.
    assert!(catch_up_list(&ctx, std::slice::from_ref(&rule)).await.unwrap().is_empty());
    assert_eq!(last_run(&ctx, &rule.name).await.unwrap(), Some(now()));
    set_last_run(&ctx, &rule.name, t("2025-06-20T02:00:00Z")).await.unwrap();
    assert_eq!(catch_up_list(&ctx, std::slice::from_ref(&rule)).await.unwrap().len(), 1);
}

/// `catch_up`: the node's default (`backups`) runs a missed fire's backups only, `none` skips
/// it (marking it passed), `all` runs it whole; a rule's own `catch_up` wins over the node's.
#[tokio::test(flavor = "multi_thread")]
async fn catch_up_runs_backups_only_by_default_and_follows_rule_and_node() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ctx = context(&tmp.path().join("data"), &tmp.path().join("b"));
    let parse = |extra: &str| {
        parse_rule(Path::new("r.toml"), &format!("{extra}{BACKUP_AND_PURGE}"), Some("file:///tmp/x"), false).unwrap()
    };
    let rule = parse("");
    let missed_since = |ctx: &reclife::config::Context, r: &reclife::lifecycle::Rule| {
        let (ctx, name) = (ctx.clone(), r.name.clone());
        async move { set_last_run(&ctx, &name, t("2025-06-20T02:00:00Z")).await.unwrap() }
    };
    missed_since(&ctx, &rule).await;
    let list = catch_up_list(&ctx, std::slice::from_ref(&rule)).await.unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].tasks.iter().all(|t| t.op == Op::Backup) && list[0].tasks.len() == 1, "{list:?}");
    // Node: none. The missed fire is marked passed, so it is not caught up later either.
    ctx.config.catch_up = reclife::lifecycle::rules::CatchUp::None;
    missed_since(&ctx, &rule).await;
    assert!(catch_up_list(&ctx, std::slice::from_ref(&rule)).await.unwrap().is_empty());
    assert_eq!(last_run(&ctx, &rule.name).await.unwrap(), Some(now()));
    // The rule's own catch_up wins.
    let all = parse("catch_up = \"all\"\n");
    missed_since(&ctx, &all).await;
    let list = catch_up_list(&ctx, std::slice::from_ref(&all)).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].tasks, all.tasks);
    // A rule with no backup task catches up nothing under `backups`.
    ctx.config.catch_up = reclife::lifecycle::rules::CatchUp::Backups;
    let purge_only = parse_rule(
        Path::new("p.toml"),
        "name = \"P\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 365 }\n",
        None,
        false,
    )
    .unwrap();
    missed_since(&ctx, &purge_only).await;
    assert!(catch_up_list(&ctx, std::slice::from_ref(&purge_only)).await.unwrap().is_empty());
    assert!(parse_rule(Path::new("x.toml"), &format!("catch_up = \"some\"\n{BACKUP_AND_PURGE}"), None, false).is_err());
}

/// The real daemon, started after downtime: by default the missed fire's backup runs at once
/// and its purge does not (the recording stays until the next fire); with `catch_up = "none"`
/// nothing runs and the log says why.
#[test]
fn a_daemon_after_downtime_catches_up_backups_only_or_nothing() {
    for (extra, want) in [("", "backups"), ("catch_up = \"none\"\n", "none")] {
        let tmp = tempfile::tempdir().unwrap();
        let (data, backups, cfg) =
            backup_and_purge_node(tmp.path(), &format!("schedule_polling_interval = 1\n{extra}"));
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let ctx = context(&data, &backups);
            add_call(&ctx, "OLD1", 400, false, true, 100).await;
        });
        let base = |now: &str| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
            c.args(["--data-dir", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--now", now, "run"]);
            c
        };
        let o = base("2024-06-20T03:00:00Z").arg("--once").output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let log = tmp.path().join("daemon.log");
        let mut child = base("2025-06-25T03:00:00Z")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let pid = child.id();
        let done = Arc::new(Mutex::new(false));
        let d2 = done.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(120));
            if !*d2.lock().unwrap() {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        });
        if want == "backups" {
            let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
            let line = wait_for(&mut lines, "Scheduled rule [Backup and purge]");
            assert!(line.contains("backed up 1 recording(s) + 1 screen(s), purged 0 + 0 screen(s)"), "{line}");
        } else {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !std::fs::read_to_string(&log).unwrap().contains("skipped; the rule runs at its next fire") {
                assert!(std::time::Instant::now() < deadline, "{}", std::fs::read_to_string(&log).unwrap());
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            // Give a wrongly scheduled catch-up the time to show itself.
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
        *done.lock().unwrap() = true;
        let _ = child.kill();
        let _ = child.wait();
        let ctx = context(&data, &backups);
        assert!(ctx.catalog.get("OLD1").unwrap().is_some(), "{want}: no purge at an unscheduled hour");
        let archives = std::fs::read_dir(&backups).map(|d| d.count()).unwrap_or(0);
        assert_eq!(archives > 0, want == "backups", "{want}: backups caught up or not");
    }
}

/// Reads the daemon's stdout until a line contains `needle`.
fn wait_for(lines: &mut impl Iterator<Item = std::io::Result<String>>, needle: &str) -> String {
    for l in lines.by_ref() {
        let l = l.unwrap();
        if l.contains(needle) {
            return l;
        }
    }
    panic!("the daemon ended without printing {needle:?}");
}

#[test]
fn the_daemon_catches_up_and_rereads_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, backups, cfg) = backup_and_purge_node(tmp.path(), "schedule_polling_interval = 1\ncatch_up = \"all\"\n");
    let rules = tmp.path().join("rules");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&data, &backups);
        add_call(&ctx, "OLD1", 400, false, true, 100).await;
    });
    let bin = env!("CARGO_BIN_EXE_reclife");
    let base = |now: &str| {
        let mut c = Command::new(bin);
        c.args(["--data-dir", data.to_str().unwrap(), "--config", cfg.to_str().unwrap(), "--now", now, "-q", "run"]);
        c
    };
    // The last run, five days before: nothing old enough yet at that time.
    let o = base("2024-06-20T03:00:00Z").arg("--once").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The node was down since; at start-up the missed 02:00 run happens once.
    let mut child = base("2025-06-25T03:00:00Z").stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let pid = child.id();
    // A watchdog so a broken daemon fails the test instead of hanging it.
    let done = Arc::new(Mutex::new(false));
    let d2 = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(180));
        if !*d2.lock().unwrap() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = wait_for(&mut lines, "Scheduled rule [Backup and purge]");
    assert!(line.contains("purged 1 + 1 screen(s)"), "{line}");
    // A rule added while it runs is picked up at the next poll and fires on its schedule.
    write_rule(
        &rules,
        "tick.toml",
        "name = \"Tick\"\nschedule = \"* * * * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 36000 }\n",
    );
    let line = wait_for(&mut lines, "Scheduled rule [Tick]");
    assert!(line.contains("completed: succeeded"), "{line}");
    *done.lock().unwrap() = true;
    let _ = child.kill();
    let _ = child.wait();
    let ctx = context(&data, &backups);
    assert!(ctx.catalog.get("OLD1").unwrap().is_none());
}

fn task(op: Op, min: Option<u32>, max: Option<u32>) -> Task {
    Task {
        op,
        filter: Filter { recording_type: Kind::Voice, min_age: min, max_age: max, ..Filter::default() },
        include_screen: true,
        on_failure: OnFailure::Stop,
        location: None,
        zip: true,
        use_full_path: false,
        all_ages: op == Op::Purge && min.is_none_or(|d| d == 0),
        source: None,
    }
}

#[test]
fn footprints_conflict_only_when_a_purge_may_touch_the_same_recordings() {
    let fp = |op, min, max| Footprint::of("x".into(), &task(op, min, max));
    assert!(fp(Op::Purge, Some(365), None).conflicts(&fp(Op::Backup, Some(365), None)));
    assert!(fp(Op::Purge, Some(30), None).conflicts(&fp(Op::Backup, Some(1), Some(400))));
    assert!(!fp(Op::Purge, Some(365), None).conflicts(&fp(Op::Backup, Some(1), Some(2))));
    assert!(!fp(Op::Backup, Some(365), None).conflicts(&fp(Op::Backup, Some(365), None)));
    let mut screen = task(Op::Backup, Some(365), None);
    screen.filter.recording_type = Kind::Screen;
    screen.include_screen = false;
    assert!(fp(Op::Purge, Some(365), None).conflicts(&Footprint::of("s".into(), &screen)));
    let mut voice_only = task(Op::Purge, Some(365), None);
    voice_only.include_screen = false;
    assert!(!Footprint::of("v".into(), &voice_only).conflicts(&Footprint::of("s".into(), &screen)));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_overlapping_task_waits_for_the_purge() {
    let guard = OverlapGuard::new();
    let purge = Footprint::of("rule A / task 2".into(), &task(Op::Purge, Some(365), None));
    let backup = Footprint::of("rule B / task 1".into(), &task(Op::Backup, Some(300), None));
    let other = Footprint::of("rule C / task 1".into(), &task(Op::Backup, Some(1), Some(2)));
    let p = guard.try_acquire(&purge).unwrap();
    assert_eq!(guard.try_acquire(&backup).unwrap_err(), "rule A / task 2");
    // A task that cannot touch the purge's recordings goes ahead.
    let c = guard.try_acquire(&other).unwrap();
    let g2 = guard.clone();
    let b2 = backup.clone();
    let mut waiting = tokio::spawn(async move { g2.acquire(&b2).await });
    tokio::task::yield_now().await;
    assert!((&mut waiting).now_or_never().is_none(), "the backup did not wait");
    drop(c);
    assert_eq!(guard.running(), vec!["rule A / task 2".to_string()]);
    drop(p);
    let permit = waiting.await.unwrap();
    assert_eq!(guard.running(), vec!["rule B / task 1".to_string()]);
    drop(permit);
    assert!(guard.running().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn overlapping_rules_never_run_together() {
    use reclife::lifecycle::jobs::JobRecord;
    use reclife::lifecycle::runner::{run_tasks, ProgressFactory};
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(&tmp.path().join("data"), &tmp.path().join("b"));
    for i in 0..30 {
        add_call(&ctx, &format!("OLD{i}"), 400 + i, false, false, 2000).await;
    }
    let guard = OverlapGuard::new();
    // Every progress report checks what runs at that moment.
    let seen = Arc::new(Mutex::new(0usize));
    struct Watch(OverlapGuard, Arc<Mutex<usize>>);
    impl reclife::progress::Progress for Watch {
        fn inc(&self, _: u64) {
            let mut m = self.1.lock().unwrap();
            *m = (*m).max(self.0.running().len());
        }
    }
    let (g, s) = (guard.clone(), seen.clone());
    let factory: Arc<ProgressFactory> = Arc::new(move |_: &str| Arc::new(Watch(g.clone(), s.clone())) as _);
    let purge = [task(Op::Purge, Some(365), None)];
    let backup = [task(Op::Backup, Some(300), None)];
    let (a, b) = tokio::join!(
        run_tasks(
            &ctx,
            JobRecord::for_tasks("rule", Some("A"), now(), &purge),
            &guard,
            factory.as_ref(),
            Default::default()
        ),
        run_tasks(
            &ctx,
            JobRecord::for_tasks("rule", Some("B"), now(), &backup),
            &guard,
            factory.as_ref(),
            Default::default()
        ),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(*seen.lock().unwrap(), 1, "a purge ran alongside an overlapping backup");
}

/// Relative paths in a config file are relative to the file's folder, not to the working
/// directory; a daemon pointed at an empty or missing rules folder says so.
#[test]
fn config_paths_are_relative_to_the_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = tmp.path().join("etc");
    write_rule(&conf.join("myrules"), "bp.toml", BACKUP_AND_PURGE);
    std::fs::write(
        conf.join("node.toml"),
        format!("rules_dir = \"myrules\"\ndefault_backup_location = \"file://{}/b\"\n", tmp.path().display()),
    )
    .unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let run = |cfg: &str, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_reclife"))
            .current_dir(&elsewhere)
            .args(["--data-dir", "data", "--config", cfg])
            .args(args)
            .env_remove("RECLIFE_CONFIG")
            .output()
            .unwrap()
    };
    let o = run("../etc/node.toml", &["rules", "validate"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 rule(s) valid"), "{}", String::from_utf8_lossy(&o.stdout));
    std::fs::write(conf.join("empty.toml"), "rules_dir = \"nothing-here\"\n").unwrap();
    let o = run("../etc/empty.toml", &["run", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("the rules folder") && err.contains("etc/nothing-here does not exist"), "{err}");
    assert_eq!(err.lines().count(), 1, "one clear error, not a rule left out: {err}");
    assert!(!err.contains('\u{1b}'), "no colour codes when stderr is not a terminal: {err:?}");
    std::fs::create_dir_all(conf.join("nothing-here")).unwrap();
    let o = run("../etc/empty.toml", &["run", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("the rules folder holds no rules"), "{err}");
}

/// The example config and unit as the unit's install steps place them: the config read from
/// /etc/reclife/reclife.toml names absolute folders that the unit creates (StateDirectory=,
/// ConfigurationDirectory=); a daemon whose rules folder is missing stops at start with one
/// error naming it; `systemd-analyze verify` (when installed) finds nothing to say about the
/// unit.
#[test]
fn the_example_config_and_unit_work_as_installed() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc/reclife");
    std::fs::create_dir_all(&etc).unwrap();
    let installed = etc.join("reclife.toml");
    std::fs::copy(repo.join("deploy/reclife.example.toml"), &installed).unwrap();
    let c = reclife::config::Config::load(&installed).unwrap();
    assert_eq!(c.data_dir.as_deref(), Some(Path::new("/var/lib/reclife")));
    assert_eq!(c.rules_dir, Path::new("/etc/reclife/rules"), "not relative to wherever the file sits");
    assert_eq!(c.catch_up, reclife::lifecycle::rules::CatchUp::Backups);

    let unit = std::fs::read_to_string(repo.join("deploy/reclife.service")).unwrap();
    let value = |key: &str| -> Vec<String> {
        unit.lines().filter_map(|l| l.strip_prefix(&format!("{key}="))).map(str::to_string).collect()
    };
    let exec = value("ExecStart").concat();
    assert!(exec.contains("--config /etc/reclife/reclife.toml") && exec.ends_with(" run"), "{exec}");
    // Every folder the config names is one the unit creates.
    let state: Vec<String> =
        value("StateDirectory").iter().flat_map(|v| v.split_whitespace()).map(|d| format!("/var/lib/{d}")).collect();
    let conf: Vec<String> = value("ConfigurationDirectory")
        .iter()
        .flat_map(|v| v.split_whitespace())
        .map(|d| format!("/etc/{d}"))
        .collect();
    assert!(state.contains(&"/var/lib/reclife".to_string()), "{state:?}");
    assert!(conf.contains(&"/etc/reclife/rules".to_string()) && conf.contains(&"/etc/reclife".to_string()), "{conf:?}");
    assert!(value("ReadWritePaths").concat().contains("/var/lib/reclife"));

    // Started with that config where /etc/reclife/rules does not exist: one clear error.
    if !Path::new("/etc/reclife/rules").exists() {
        let o = Command::new(env!("CARGO_BIN_EXE_reclife"))
            .args(["--config", installed.to_str().unwrap(), "--data-dir", tmp.path().join("data").to_str().unwrap()])
            .args(["run"])
            .env_remove("RECLIFE_CONFIG")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("the rules folder /etc/reclife/rules does not exist"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }

    // systemd's own check of the unit, with the binary where the install step puts it.
    if Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let u = tmp.path().join("reclife.service");
        std::fs::write(&u, unit.replace("/usr/local/bin/reclife", env!("CARGO_BIN_EXE_reclife"))).unwrap();
        let o = Command::new("systemd-analyze").arg("verify").arg(&u).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success() && said.trim().is_empty(), "systemd-analyze verify: {said}");
    }
}
