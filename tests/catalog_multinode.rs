//! Two `reclife run` daemons (separate data directories, the same rules, one media store)
//! sharing one PostgreSQL catalog: each fire of a rule runs on one node, a node killed with
//! SIGKILL in the middle of a purge is finished by the other, and every purged recording is
//! audited exactly once across both nodes' audit logs.
//!
//! Needs `RECLIFE_TEST_PG` (skipped without it, failing under `CI` / `RECLIFE_REQUIRE_SERVERS`)
//! and the `failpoints` feature (node A pauses in its purge so the kill lands mid-task).

mod catalog_support;
mod lifecycle_util;

use chrono::{DateTime, Utc};
use lifecycle_util::*;
use reclife::config::{Clock, Config, Context};
use reclife::lifecycle::jobs::{JobRecord, JobState};
use reclife::lifecycle::{jobs, journal, schedule};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OLD: usize = 30;
const RULE: &str = r#"name = "Backup and purge"
schedule = "*/3 * * * * *"
[[tasks]]
type = "backup"
filter = { recording_type = "voice", min_age = 365 }
include_screen = true
zip = true
[[tasks]]
type = "purge"
filter = { recording_type = "voice", min_age = 365 }
include_screen = true
"#;

struct Node {
    data: PathBuf,
    cfg: PathBuf,
}

fn node(root: &Path, name: &str, shared: &Path, server: &str, schema: &str) -> Node {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "contact_center_id = \"cc1\"\nrules_dir = \"{rules}\"\ndefault_backup_location = \"file://{backups}\"\n\
             media_location = \"file://{media}\"\nschedule_polling_interval = 1\nlease_seconds = 3\n\
             catalog = \"{server}\"\n[postgres]\nschema = \"{schema}\"\npool_size = 4\n",
            rules = shared.join("rules").display(),
            backups = shared.join("backups").display(),
            media = shared.join("media").display(),
        ),
    )
    .unwrap();
    Node { data: dir.join("data"), cfg }
}

fn context(n: &Node) -> Context {
    Context::open(&n.data, Config::load(&n.cfg).unwrap(), Clock::fixed(now())).unwrap()
}

fn start(n: &Node, failpoint: Option<String>) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.args(["--data-dir", n.data.to_str().unwrap(), "--config", n.cfg.to_str().unwrap()])
        .args(["--now", "2025-06-25T03:00:00Z", "-q", "run"])
        .env_remove("RECLIFE_FAILPOINT")
        .env_remove("RECLIFE_CATALOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(fp) = failpoint {
        c.env("RECLIFE_FAILPOINT", fp);
    }
    c.spawn().unwrap()
}

fn stop(mut c: Child) {
    let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if c.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

fn audit(data: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(data.join("audit/deletions.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("whole audit lines")).collect()
}

fn rule_jobs(ctx: &Context) -> Vec<JobRecord> {
    ctx.catalog
        .state_list(jobs::NAMESPACE)
        .unwrap()
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_str::<JobRecord>(&v).ok())
        .filter(|j| j.kind == "rule")
        .collect()
}

/// A is killed after its purge deleted from the catalog, before media and audit: B deletes
/// the media and audits, in its own log.
#[test]
fn a_node_killed_after_the_catalog_delete_is_finished_by_the_other() {
    two_nodes("purge.after_catalog_delete");
}

/// A is killed after it appended the audit lines, before the journal entry ended: B finishes
/// the entry without auditing those recordings again in its own log.
#[test]
fn a_node_killed_after_its_audit_is_finished_without_auditing_twice() {
    two_nodes("purge.after_audit");
}

fn two_nodes(point: &str) {
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    let seed = schemas.fresh();
    let schema = seed.schema().to_string();
    drop(seed);
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    write_rule(&shared.join("rules"), "bp.toml", RULE);
    let a = node(tmp.path(), "a", &shared, &server, &schema);
    let b = node(tmp.path(), "b", &shared, &server, &schema);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ctx = context(&a);
        for i in 0..OLD {
            add_call(&ctx, &format!("OLD{i:03}"), 400 + i as i64, i % 7 == 3, i % 3 == 0, 2_000).await;
        }
        add_call(&ctx, "NEW1", 5, false, true, 1000).await;
    });
    let ctx = context(&b);

    // Node A takes the first fire and stops in its purge at `point`.
    let flag = tmp.path().join("go");
    let node_a = start(&a, Some(format!("{point}:1:pause={}", flag.display())));
    wait_reached(&flag);
    let node_b = start(&b, None);
    // B sees the fire taken and the journal entry claimed: nothing may happen meanwhile.
    std::thread::sleep(Duration::from_secs(4));
    assert!(audit(&b.data).is_empty(), "node B acted on a fire node A holds");
    let killed = Instant::now();
    let mut node_a = node_a;
    node_a.kill().unwrap();
    node_a.wait().unwrap();

    // B recovers A's purge batch and runs A's fire again.
    let purged: Vec<String> = (0..OLD)
        .filter(|i| i % 7 != 3)
        .flat_map(|i| {
            let id = format!("OLD{i:03}");
            if i % 3 == 0 {
                vec![id.clone(), format!("{id}_scr")]
            } else {
                vec![id]
            }
        })
        .collect();
    loop {
        let open = ctx.catalog.state_list(journal::NAMESPACE).unwrap();
        let mark = rt.block_on(schedule::fire_mark(&ctx, "Backup and purge")).unwrap();
        let audited: usize = audit(&a.data).len() + audit(&b.data).len();
        if open.is_empty() && mark.is_some_and(|m| m.done) && audited >= purged.len() {
            break;
        }
        assert!(killed.elapsed() < Duration::from_secs(90), "node B did not finish node A's work: {open:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A comes back; both run the next fires side by side.
    let node_a = start(&a, None);
    std::thread::sleep(Duration::from_secs(8));
    stop(node_a);
    stop(node_b);

    // Every purged recording: gone, its media gone, audited exactly once across both nodes.
    let mut lines: HashMap<String, usize> = HashMap::new();
    for l in audit(&a.data).into_iter().chain(audit(&b.data)) {
        *lines.entry(l["recording"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for id in &purged {
        assert!(ctx.catalog.get(id).unwrap().is_none(), "{id} not purged");
        assert_eq!(lines.get(id), Some(&1), "{id} audited {:?} times across both nodes", lines.get(id));
        assert!(!rt.block_on(any_media_left(&ctx, id)), "{id} purged but its media is left");
    }
    assert_eq!(lines.len(), purged.len(), "only purged recordings are audited: {lines:?}");
    for i in (0..OLD).filter(|i| i % 7 == 3) {
        let id = format!("OLD{i:03}");
        assert!(ctx.catalog.get(&id).unwrap().is_some(), "held {id} purged");
    }
    assert!(ctx.catalog.get("NEW1").unwrap().is_some());

    // Each fire ran once: one job per fire, except the fire A was killed in, which has A's
    // interrupted job and the run that finished it.
    let jobs = rule_jobs(&ctx);
    let mut by_fire: HashMap<DateTime<Utc>, Vec<&JobRecord>> = HashMap::new();
    for j in &jobs {
        by_fire.entry(j.fire.expect("scheduled runs carry their fire")).or_default().push(j);
    }
    assert!(by_fire.len() >= 3, "several fires ran: {}", by_fire.len());
    let mut retried = 0;
    for (fire, js) in &by_fire {
        match js.len() {
            1 => assert_eq!(js[0].state, JobState::Succeeded, "fire {fire}: {:?}", js[0]),
            2 => {
                retried += 1;
                let states: Vec<JobState> = js.iter().map(|j| j.state).collect();
                assert!(
                    states.contains(&JobState::Failed) && states.contains(&JobState::Succeeded),
                    "fire {fire}: the killed run and its retry, got {states:?}"
                );
            }
            n => panic!("fire {fire} ran {n} times"),
        }
    }
    assert_eq!(retried, 1, "only the killed fire ran twice");
}
