//! Two `reclife run` daemons (separate data directories, the same rules, one media store)
//! sharing one PostgreSQL catalog: each fire of a rule runs on one node, a node killed with
//! SIGKILL in the middle of a purge is finished by the other, and every purged recording is
//! audited exactly once across both nodes' audit logs. Rules kept in the catalog (issue 22):
//! applied on one node (CLI or API), run on the node their path names, deleted on both.
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

/// One node of the shared-rules test: its own rules folder, backups and node path; the media
/// store and the PostgreSQL catalog shared.
struct RuleNode {
    data: PathBuf,
    cfg: PathBuf,
    rules: PathBuf,
    backups: PathBuf,
}

fn rule_node(root: &Path, name: &str, shared: &Path, server: &str, schema: &str, api: &str) -> RuleNode {
    let dir = root.join(name);
    let (rules, backups) = (dir.join("rules"), dir.join("backups"));
    std::fs::create_dir_all(&rules).unwrap();
    let cfg = dir.join("node.toml");
    std::fs::write(
        &cfg,
        format!(
            "contact_center_id = \"cc1\"\nnode_path = \"/sites/{name}\"\nrules_dir = \"{}\"\n\
             default_backup_location = \"file://{}\"\nmedia_location = \"file://{}\"\n\
             schedule_polling_interval = 1\nlease_seconds = 3\ncatalog = \"{server}\"\n\
             [postgres]\nschema = \"{schema}\"\npool_size = 4\n{api}",
            rules.display(),
            backups.display(),
            shared.join("media").display(),
        ),
    )
    .unwrap();
    RuleNode { data: dir.join("data"), cfg, rules, backups }
}

fn rule_cli(n: &RuleNode, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reclife"))
        .args(["--data-dir", n.data.to_str().unwrap(), "--config", n.cfg.to_str().unwrap()])
        .args(["--now", "2025-06-25T03:00:00Z"])
        .args(args)
        .env_remove("RECLIFE_CATALOG")
        .output()
        .unwrap()
}

fn jobs_of(ctx: &Context, rule: &str) -> Vec<JobRecord> {
    rule_jobs(ctx).into_iter().filter(|j| j.rule.as_deref() == Some(rule)).collect()
}

fn wait_until(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < Duration::from_secs(secs), "waited {secs} s for: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn files_under(dir: &Path) -> usize {
    walkdir(dir).len()
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walkdir(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Issue 22: rules live in the catalog, shared by every node on it. Two daemons on one
/// PostgreSQL catalog, each with an empty rules folder: a rule applied with the CLI on node A
/// is picked up by node B at its next poll and runs on B only (its node path), once per fire;
/// a rule PUT through A's API likewise; a rule for every node is deleted through the API and
/// stops on both; export → apply round-trips unchanged; a bad file is refused naming its file
/// and line, and nothing of that apply is stored.
#[test]
fn rules_in_the_catalog_are_shared_by_every_node() {
    use base64::Engine as _;
    use sha1::Digest as _;
    use std::io::BufRead as _;
    let Some(server) = catalog_support::pg_server() else { return };
    let schemas = catalog_support::Schemas::new(&server);
    let seed = schemas.fresh();
    let schema = seed.schema().to_string();
    drop(seed);
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    let users = tmp.path().join("users");
    let sha = base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(b"ops-pw-1"));
    std::fs::write(&users, format!("ops:{{SHA}}{sha}\n")).unwrap();
    let api = format!("[api]\nlisten = \"127.0.0.1:0\"\nusers_file = \"{}\"\nops_users = [\"ops\"]\n", users.display());
    let a = rule_node(tmp.path(), "a", &shared, &server, &schema, &api);
    let b = rule_node(tmp.path(), "b", &shared, &server, &schema, "");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ctx = Context::open(&a.data, Config::load(&a.cfg).unwrap(), Clock::fixed(now())).unwrap();
    rt.block_on(async {
        for i in 0..6 {
            add_call(&ctx, &format!("OLD{i:03}"), 400 + i as i64, false, i % 2 == 0, 1_000).await;
        }
        add_call(&ctx, "NEW1", 5, false, false, 1000).await;
    });

    // A bad rule among good ones: refused, naming the file and line; nothing stored.
    let files = tmp.path().join("files");
    let purge_b = "name = \"Purge on B\"\nnode_path = \"/sites/b\"\nschedule = \"*/2 * * * * *\"\n\
                   [[tasks]]\ntype = \"purge\"\nfilter = { recording_type = \"voice\", min_age = 365 }\ninclude_screen = true\n";
    write_rule(&files, "purge-b.toml", purge_b);
    write_rule(&files, "bad.toml", "name = \"Bad\"\nschedule = \"0 0 2 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 3, max_age = 2 }\n");
    let o = rule_cli(
        &a,
        &["rules", "apply", files.join("purge-b.toml").to_str().unwrap(), files.join("bad.toml").to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{}:5: ", files.join("bad.toml").display())), "{err}");
    assert!(err.contains("nothing stored"), "{err}");
    assert!(
        ctx.catalog.state_list(reclife::lifecycle::rule_store::VERSIONS).unwrap().is_empty(),
        "a refused apply stored something"
    );

    // Node B's folder holds a rule file: B applies it at start, for every node.
    let folder_rule = "name = \"From B's folder\"\nschedule = \"* * * * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 36001 }\n";
    write_rule(&b.rules, "folder.toml", folder_rule);
    let (mut node_a, node_b) = (start_rule_daemon(&a, true), start_rule_daemon(&b, false));
    let url = {
        let mut line = String::new();
        let out = node_a.stdout.as_mut().unwrap();
        let mut r = std::io::BufReader::new(out);
        loop {
            line.clear();
            assert!(r.read_line(&mut line).unwrap() > 0, "node A ended before its API listened");
            if let Some(u) = line.trim().strip_prefix("API listening on ") {
                break u.to_string();
            }
        }
    };
    // Drain the daemon's stdout so it never blocks on a full pipe.
    let out_a = node_a.stdout.take().unwrap();
    std::thread::spawn(move || for _ in std::io::BufReader::new(out_a).lines() {});

    // 1. The CLI on node A stores the rule for node B: B runs it at its next poll, A never.
    let o = rule_cli(&a, &["rules", "apply", files.join("purge-b.toml").to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("rule Purge on B: created, version 1"), "{o:?}");
    let purged: Vec<String> = (0..6)
        .flat_map(|i| {
            if i % 2 == 0 {
                vec![format!("OLD{i:03}"), format!("OLD{i:03}_scr")]
            } else {
                vec![format!("OLD{i:03}")]
            }
        })
        .collect();
    wait_until("node B purges what the rule selects", 60, || {
        purged.iter().all(|id| ctx.catalog.get(id).unwrap().is_none())
    });
    assert!(audit(&a.data).is_empty(), "node A ran a rule whose node path names node B");
    wait_until("every purge audited", 30, || audit(&b.data).len() >= purged.len());
    let mut lines: HashMap<String, usize> = HashMap::new();
    for l in audit(&b.data) {
        *lines.entry(l["recording"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for id in &purged {
        assert_eq!(lines.get(id), Some(&1), "{id} audited {:?} times", lines.get(id));
    }
    assert!(ctx.catalog.get("NEW1").unwrap().is_some());

    // 2. Through node A's API (PUT, JSON as every /api write): a backup for node B, into B's
    // default backup location only; and a rule for every node.
    let client = reqwest::blocking::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let r = client.request(method, format!("{url}{path}")).basic_auth("ops", Some("ops-pw-1"));
        let r = match body {
            Some(b) => r.header("content-type", "application/json").body(b.to_string()),
            None => r.header("content-type", "application/json"),
        };
        let r = r.send().unwrap();
        let st = r.status().as_u16();
        (st, r.json::<serde_json::Value>().unwrap())
    };
    let backup_b = serde_json::json!({ "rule": {
        "name": "Backup on B", "node_path": "/sites/b", "schedule": "*/2 * * * * *",
        "tasks": [{ "type": "backup", "filter": { "recording_type": "voice", "max_age": 30 } }] } });
    let (st, v) = send(reqwest::Method::PUT, "/api/v1/rules/Backup%20on%20B", Some(backup_b.clone()));
    assert_eq!(st, 200, "{v}");
    assert_eq!((v["outcome"].as_str(), v["version"]["version"].as_u64()), (Some("created"), Some(1)), "{v}");
    assert_eq!(v["version"]["by"], "api:ops");
    let (st, v) = send(reqwest::Method::PUT, "/api/v1/rules/Backup%20on%20B", Some(backup_b));
    assert_eq!((st, v["outcome"].as_str()), (200, Some("unchanged")), "{v}");
    let tick =
        "name = \"Tick\"\nschedule = \"* * * * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { min_age = 36000 }\n";
    let (st, v) = send(reqwest::Method::PUT, "/api/v1/rules/Tick", Some(serde_json::json!({ "text": tick })));
    assert_eq!(st, 200, "{v}");
    // A bad text: 400 naming the line; nothing stored.
    let (st, v) = send(
        reqwest::Method::PUT,
        "/api/v1/rules/Tick",
        Some(serde_json::json!({ "text": tick.replace("* * * * * *", "99 * * * * *") })),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["statusMessage"].as_str().unwrap().contains("(request body):2: "), "{v}");
    assert_eq!(reclife::lifecycle::rule_store::history(ctx.catalog.as_ref(), "Tick").unwrap().len(), 1);

    wait_until("node B backs up NEW1 for the rule put through A", 60, || files_under(&b.backups) > 0);
    wait_until("Tick runs", 30, || jobs_of(&ctx, "Tick").len() >= 3);
    wait_until("the rule of B's folder runs", 30, || jobs_of(&ctx, "From B's folder").len() >= 2);
    assert_eq!(files_under(&a.backups), 0, "node A ran a backup whose node path names node B");
    // Each fire ran once across the two nodes.
    for rule in ["Tick", "Backup on B", "Purge on B"] {
        let mut fires: Vec<_> = jobs_of(&ctx, rule).iter().filter_map(|j| j.fire).collect();
        let n = fires.len();
        fires.sort();
        fires.dedup();
        assert_eq!(fires.len(), n, "a fire of {rule} ran twice");
    }

    // 3. DELETE through the API: a tombstone naming the caller; both nodes stop the rule at
    // their next poll.
    let (st, v) = send(reqwest::Method::DELETE, "/api/v1/rules/Tick", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["version"]["deleted"], true);
    let (st, _) = send(reqwest::Method::DELETE, "/api/v1/rules/Tick", None);
    assert_eq!(st, 404);
    let (st, v) = send(reqwest::Method::GET, "/api/v1/rules/Tick", None);
    assert_eq!(st, 404, "{v}");
    // The rule that came from B's folder is deleted too: B's unchanged file does not bring it
    // back at B's polls.
    let (st, v) = send(reqwest::Method::DELETE, "/api/v1/rules/From%20B's%20folder", None);
    assert_eq!(st, 200, "{v}");
    std::thread::sleep(Duration::from_secs(4));
    let settled = jobs_of(&ctx, "Tick").len();
    let folder_settled = jobs_of(&ctx, "From B's folder").len();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(jobs_of(&ctx, "Tick").len(), settled, "a deleted rule still runs on a node");
    assert_eq!(jobs_of(&ctx, "From B's folder").len(), folder_settled, "an unchanged file resurrected a deleted rule");
    // Editing the file is a change: B stores it as the next version at its next poll.
    write_rule(&b.rules, "folder.toml", &folder_rule.replace("36001", "36002"));
    wait_until("the edited file's rule runs again", 30, || jobs_of(&ctx, "From B's folder").len() > folder_settled + 1);
    let hist = reclife::lifecycle::rule_store::history(ctx.catalog.as_ref(), "From B's folder").unwrap();
    let whos: Vec<(u64, bool, &str)> = hist.iter().map(|v| (v.version, v.deleted(), v.by.as_str())).collect();
    assert_eq!(whos, [(1, false, "file:/sites/b"), (2, true, "api:ops"), (3, false, "file:/sites/b")]);
    let (st, _) = send(reqwest::Method::DELETE, "/api/v1/rules/From%20B's%20folder", None);
    assert_eq!(st, 200);
    let hist = reclife::lifecycle::rule_store::history(ctx.catalog.as_ref(), "Tick").unwrap();
    assert_eq!((hist.len(), hist[1].deleted(), hist[1].by.as_str()), (2, true, "api:ops"));

    // The list, from either node's CLI, is the catalog's.
    let o = rule_cli(&b, &["rules", "list"]);
    let listed = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        listed.contains("Purge on B\tv1") && listed.contains("Backup on B\tv1") && !listed.contains("Tick"),
        "{listed}"
    );
    assert!(listed.lines().all(|l| l.contains("runs here")), "{listed}");
    stop(node_a);
    stop(node_b);

    // 4. Export → apply round-trips: unchanged here; created alike in another catalog.
    let out = tmp.path().join("exported");
    let o = rule_cli(&b, &["rules", "export", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut exported: Vec<String> = walkdir(&out).iter().map(|p| p.to_str().unwrap().to_string()).collect();
    exported.sort();
    assert_eq!(exported.len(), 2, "{exported:?}");
    let mut args = vec!["rules", "apply"];
    args.extend(exported.iter().map(String::as_str));
    let o = rule_cli(&a, &args);
    let said = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(said.matches(": unchanged, version 1").count(), 2, "{said}");
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let solo_cfg = other.join("node.toml");
    std::fs::write(&solo_cfg, format!("default_backup_location = \"file://{}/b\"\n", other.display())).unwrap();
    let solo = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_reclife"))
            .args(["--data-dir", other.join("data").to_str().unwrap(), "--config", solo_cfg.to_str().unwrap()])
            .args(args)
            .env_remove("RECLIFE_CATALOG")
            .env_remove("RECLIFE_CONFIG")
            .output()
            .unwrap()
    };
    // A new node's data directory is made by `init` (no other command makes one).
    let o = solo(&["init"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut args = vec!["rules", "apply"];
    args.extend(exported.iter().map(String::as_str));
    let o = solo(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(String::from_utf8_lossy(&o.stdout).matches(": created, version 1").count(), 2, "{o:?}");
    let again = tmp.path().join("again");
    let o = solo(&["rules", "export", "--out", again.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in &exported {
        let name = Path::new(f).file_name().unwrap();
        assert_eq!(std::fs::read_to_string(f).unwrap(), std::fs::read_to_string(again.join(name)).unwrap());
    }
}

fn start_rule_daemon(n: &RuleNode, stdout: bool) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_reclife"));
    c.args(["--data-dir", n.data.to_str().unwrap(), "--config", n.cfg.to_str().unwrap()])
        .args(["--now", "2025-06-25T03:00:00Z", "run"])
        .env_remove("RECLIFE_FAILPOINT")
        .env_remove("RECLIFE_CATALOG")
        .stdout(if stdout { Stdio::piped() } else { Stdio::null() })
        .stderr(Stdio::null());
    let _ = &n.rules;
    c.spawn().unwrap()
}
