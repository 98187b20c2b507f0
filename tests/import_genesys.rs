//! `reclife import genesys-cloud` with the real binary against the Genesys Cloud emulator
//! (tests/genesys_support): backfill over several runs, the cursor moved back, a token that
//! expires mid-run, a 429 storm and 503s, a recording not ready then ready, one never ready
//! (retry buffer, then imported), kill -9 at each step, delete on completion exactly once, two
//! processes on one source, bad credentials and an unreachable auth URL.

mod catalog_support;
mod genesys_support;

use chrono::{DateTime, Utc};
use genesys_support::Emulator;
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const SECRET: &str = "s3cr3t-Client-Secret-77";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_reclife")
}

/// Conversations start six hours ago (whole minutes); a run walks to now from an hour before.
fn base() -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    (Utc::now() - TimeDelta::hours(6)).duration_trunc(TimeDelta::minutes(1)).unwrap()
}

/// The start timestamp (and a cursor moved back to it), in the seed's form.
fn start_cursor() -> String {
    format!(";{}", (base() - chrono::TimeDelta::hours(1)).format("%Y.%m.%d %H:%M:%S%.3f"))
}

struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    /// A node whose `[import.gc]` points at `emu`; `extra` lines override or add keys.
    fn new(emu: &Emulator, extra: &str) -> Node {
        Self::with_urls(&emu.url, &emu.url, extra)
    }

    fn with_urls(auth: &str, api: &str, extra: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
        let mut keys: Vec<(String, String)> = [
            ("type", "\"genesys-cloud\""),
            ("client_id", "\"emu-client\""),
            ("client_secret_file", "\"secret\""),
            ("max_recording_length_minutes", "120"),
            ("availability_delay_minutes", "0.02"),
            ("cache_lifetime_minutes", "10"),
            ("poll_seconds", "0.2"),
            ("batch_minutes", "1440"),
            ("lag_minutes", "0"),
            ("backoff_base_ms", "20"),
            ("backoff_cap_ms", "300"),
            ("timeout_secs", "10"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        keys.push(("start_timestamp".into(), format!("{:?}", &start_cursor()[1..])));
        keys.push(("auth_url".into(), format!("{auth:?}")));
        keys.push(("api_url".into(), format!("{api:?}")));
        for line in extra.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let (k, v) = line.split_once('=').unwrap();
            keys.retain(|(x, _)| x != k.trim());
            keys.push((k.trim().to_string(), v.trim().to_string()));
        }
        let body: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        std::fs::write(dir.path().join("reclife.toml"), format!("lease_seconds = 6\n[import.gc]\n{body}")).unwrap();
        Node { dir }
    }

    /// Sets top-level keys of the node's configuration (before `[import.gc]`).
    fn top(&self, lines: &str) {
        let f = self.dir.path().join("reclife.toml");
        let text = std::fs::read_to_string(&f).unwrap();
        let (head, tail) = text.split_once("[import.gc]").unwrap();
        let head: String = head
            .lines()
            .filter(|l| !lines.lines().any(|n| n.split('=').next() == l.split('=').next()))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(f, format!("{head}{lines}\n[import.gc]{tail}")).unwrap();
    }

    /// Writes a rule file in the node's rules folder (`rules_dir = "rules"`).
    fn rule(&self, file: &str, text: &str) {
        let dir = self.dir.path().join("rules");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.arg("--data-dir").arg(self.data()).arg("--config").arg(self.dir.path().join("reclife.toml")).args(args);
        c.env_remove("RECLIFE_FAILPOINT").env_remove("RUST_LOG").env_remove("RECLIFE_CATALOG");
        c
    }

    fn out(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// One `--once --json` run; its exit code and report.
    fn run(&self) -> (i32, Value) {
        self.run_env(&[])
    }

    fn run_env(&self, env: &[(&str, &str)]) -> (i32, Value) {
        let mut c = self.cmd(&["import", "genesys-cloud", "--source", "gc", "--once", "--json"]);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).to_string();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET), "the secret leaked");
        let code = o.status.code().unwrap_or(-9);
        let report = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
        if code != 0 && code != 3 {
            eprintln!("run exited {code}: {stderr}");
        }
        (code, report)
    }

    /// Every recording in the catalog: id → document.
    fn recordings(&self) -> Vec<Value> {
        let o = self.out(&["recordings", "list", "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    fn media_file(&self, conv: &str, rec: &str) -> PathBuf {
        self.data().join("media").join(conv).join(format!("{conv}_{rec}.mp3"))
    }

    fn cursor(&self) -> String {
        let o = self.out(&["import", "cursor", "--source", "gc"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn retry_list(&self) -> Vec<String> {
        let o = self.out(&["import", "retry", "list", "--source", "gc"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect()
    }

    fn check(&self) {
        let o = self.out(&["check"]);
        assert!(
            o.status.success(),
            "reclife check: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn ids_of(report: &Value, flag: &str) -> Vec<String> {
    report["conversations"]
        .as_array()
        .map(|a| {
            a.iter().filter(|c| c[flag] == true).map(|c| c["conversation_id"].as_str().unwrap().to_string()).collect()
        })
        .unwrap_or_default()
}

/// Every conversation is there once, with the emulator's bytes.
fn assert_all_imported(node: &Node, emu: &Emulator, ids: &[String]) {
    let recs = node.recordings();
    let mut got: Vec<String> = recs.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    got.sort();
    let mut want = ids.to_vec();
    want.sort();
    assert_eq!(got, want, "one recording per conversation");
    for (i, id) in ids.iter().enumerate() {
        let rid = emu.with(|s| s.conversations.iter().find(|c| &c.id == id).unwrap().recordings[0].id.clone());
        let bytes = std::fs::read(node.media_file(id, &rid)).unwrap_or_else(|e| panic!("media of {id} ({i}): {e}"));
        assert!(bytes == emu.media_of(id), "media of {id} is byte-identical");
    }
}

#[test]
fn backfill_over_runs_then_cursor_back_recognises_every_conversation() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("a", base(), 8, 3);
    let node = Node::new(&emu, "max_conversations = 3\nbatch_minutes = 30");
    assert_eq!(node.cursor(), start_cursor(), "before any run: the start timestamp");

    let mut imported = Vec::new();
    for run in 0..3 {
        let (code, r) = node.run();
        assert_eq!(code, 0, "run {run}: {r}");
        let now = ids_of(&r, "newly_imported");
        assert!(now.len() <= 3, "run {run} handles at most max_conversations: {now:?}");
        for c in r["conversations"].as_array().unwrap() {
            assert_eq!(c["media_downloaded"], true);
            assert_eq!(c["already_imported"], false);
            assert!(c["extension"].as_str().is_some_and(|e| e.starts_with("100")), "{c}");
            assert!(c["participant"].as_str().is_some_and(|p| p.starts_with("+1555")), "{c}");
        }
        imported.extend(now);
        // The cursor names the last conversation handled, in the seed's form.
        let cur = node.cursor();
        assert!(
            cur.contains(';')
                && chrono::NaiveDateTime::parse_from_str(cur.split(';').nth(1).unwrap(), "%Y.%m.%d %H:%M:%S%.3f")
                    .is_ok(),
            "{cur}"
        );
    }
    assert_eq!(imported, ids, "in start order, each once, over three runs");
    assert_all_imported(&node, &emu, &ids);
    // Caught up: nothing more, and the batch says so.
    let (code, r) = node.run();
    assert_eq!((code, r["conversations"].as_array().map(|a| a.len())), (0, Some(0)), "{r}");
    let o = node.out(&["import", "status", "--source", "gc"]);
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(status.contains("No conversations imported"), "{status}");

    // GIR-shaped documents with the seed's Genesys metadata.
    let rec = node.recordings().into_iter().find(|r| r["id"] == ids[1]).unwrap();
    let doc = node.out(&["recordings", "show", rec["id"].as_str().unwrap()]);
    let doc: Value = serde_json::from_slice(&doc.stdout).unwrap_or(Value::Null);
    let text = doc.to_string();
    for needle in [
        "\"sourcePlatform\":\"Genesys\"",
        "\"conversationType\":\"Voice\"",
        "\"recordType\":\"Standard\"",
        "\"callType\":\"Outbound\"",
        "\"platformCallId\"",
    ] {
        assert!(text.contains(needle), "{needle} in {text}");
    }
    // User details were cached: three users, one lookup each per run at most.
    assert!(emu.count("user") <= 3 * 3, "users API calls: {}", emu.count("user"));

    // An operator moves the cursor back: every conversation is recognised, nothing fetched again.
    let media_before = emu.count("media");
    let o = node.out(&["import", "cursor", "--source", "gc", "--set", &start_cursor()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bad = node.out(&["import", "cursor", "--source", "gc", "--set", "x;2025-03-10T00:00:00Z"]);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("yyyy.MM.dd"),
        "a malformed cursor is refused"
    );
    let mut again = Vec::new();
    for _ in 0..3 {
        let (code, r) = node.run();
        assert_eq!(code, 0, "{r}");
        assert!(ids_of(&r, "newly_imported").is_empty(), "nothing imported twice: {r}");
        again.extend(ids_of(&r, "already_imported"));
    }
    assert_eq!(again, ids, "every conversation flagged already imported");
    assert_eq!(emu.count("media"), media_before, "no second media copy");
    assert_all_imported(&node, &emu, &ids);
    node.check();
}

#[test]
fn token_expiry_429_storm_and_503s_do_not_stop_a_run() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("b", base(), 6, 3);
    // Every token is revoked after a few requests (it expired mid-run), a 429 storm of three
    // answers with Retry-After: 1, then two 503s.
    emu.with(|s| {
        s.revoke_after = Some(5);
        s.storm = 3;
        s.retry_after = 1;
        s.unavailable = 2;
    });
    let node = Node::new(&emu, "");
    let started = std::time::Instant::now();
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), ids);
    assert!(r["tokens_issued"].as_u64().unwrap() >= 2, "a new token after the 401: {r}");
    assert!(emu.with(|s| s.unauthorized) >= 1);
    // The storm was waited out as the API asked: each 429 waited at least its Retry-After.
    let (storm, after) = emu.with(|s| (s.storm_times.clone(), s.after_storm));
    assert_eq!(storm.len(), 3);
    for w in storm.windows(2) {
        assert!(w[1] - w[0] >= std::time::Duration::from_millis(950), "Retry-After honoured: {:?}", w[1] - w[0]);
    }
    assert!(after.unwrap() - *storm.last().unwrap() >= std::time::Duration::from_millis(950));
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    assert_all_imported(&node, &emu, &ids);

    // A token that lives 2 s is renewed before it expires, without a 401.
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("c", base(), 6, 3);
    emu.with(|s| {
        s.token_life = 2;
        s.latency = std::time::Duration::from_millis(150);
    });
    // One conversation at a time: the run outlives the token.
    let node = Node::new(&emu, "parallel_fetches = 1");
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), ids);
    assert!(emu.with(|s| s.tokens_issued) >= 2, "renewed before expiry");
    assert_eq!(emu.with(|s| s.unauthorized), 0, "never sent an expired token");
}

#[test]
fn not_ready_waits_never_ready_goes_to_the_retry_buffer_then_imports() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("d", base(), 4, 3);
    // Not ready for three polls (0.6 s), within the availability delay (1.2 s): imported.
    emu.recording_mut(&ids[0], |r| r.not_ready_polls = 3);
    // Never ready: the retry buffer, and the cursor goes on.
    emu.recording_mut(&ids[1], |r| r.never_ready = true);
    let node = Node::new(&emu, "");
    let (code, r) = node.run();
    assert_eq!(code, 3, "a conversation set aside: exit 3 ({r})");
    assert_eq!(ids_of(&r, "newly_imported"), vec![ids[0].clone(), ids[2].clone(), ids[3].clone()]);
    assert_eq!(r["buffered"], serde_json::json!([ids[1]]));
    assert_eq!(node.retry_list(), vec![ids[1].clone()]);
    assert!(!node.cursor().starts_with(&ids[0]), "the cursor went past the buffered conversation");
    let o = node.out(&["import", "status", "--source", "gc"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("CDR placed in retry buffer"));

    // Still not ready: it stays in the buffer (taken, failed, put back).
    let (code, r) = node.run();
    assert_eq!((code, r["retried"].as_u64(), r["failed"].as_u64()), (3, Some(1), Some(1)), "{r}");
    assert_eq!(node.retry_list(), vec![ids[1].clone()]);

    // An operator can edit the buffer.
    let o = node.out(&["import", "retry", "remove", "--source", "gc", "nope"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("nope"));
    assert!(node.out(&["import", "retry", "remove", "--source", "gc", &ids[1]]).status.success());
    assert!(node.retry_list().is_empty());
    assert!(node.out(&["import", "retry", "add", "--source", "gc", &ids[1]]).status.success());
    assert_eq!(node.retry_list(), vec![ids[1].clone()]);

    // Available now: the next run imports it from the buffer; the cursor is unchanged by it.
    emu.recording_mut(&ids[1], |r| r.never_ready = false);
    let cursor = node.cursor();
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), vec![ids[1].clone()]);
    assert!(node.retry_list().is_empty());
    assert!(node.cursor() >= cursor, "taking from the buffer never moves the cursor back");
    assert_all_imported(&node, &emu, &ids);
}

#[test]
fn kill_at_each_step_then_rerun_imports_each_conversation_once_and_deletes_once() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("e", base(), 5, 3);
    // One conversation at a time, so that a kill after a delete leaves exactly one delete
    // un-noted (parallel fetches, and their bound, are the random-kill test's).
    let node = Node::new(&emu, "delete_on_completion = true\nparallel_fetches = 1");
    let points = ["import.after_media:1", "import.after_document:2", "import.after_delete:1", "import.before_cursor:2"];
    for fp in points {
        let (code, _) = node.run_env(&[("RECLIFE_FAILPOINT", fp)]);
        assert_ne!(code, 0, "{fp}: the run was killed");
        // Nothing deleted in the cloud before it was stored.
        for (c, _) in emu.with(|s| s.deletions.clone()) {
            let rid = emu.with(|s| s.conversations.iter().find(|x| x.id == c).unwrap().recordings[0].id.clone());
            assert!(node.media_file(&c, &rid).exists(), "{fp}: {c} deleted before it was stored");
        }
    }
    loop {
        let (code, r) = node.run();
        assert_eq!(code, 0, "{r}");
        if r["conversations"].as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
    }
    assert_all_imported(&node, &emu, &ids);
    let mut deleted: Vec<String> = emu.with(|s| s.deletions.iter().map(|(c, _)| c.clone()).collect());
    deleted.sort();
    deleted.dedup();
    assert_eq!(deleted, ids, "every conversation's recording deleted in the cloud");
    let calls = emu.with(|s| s.deletions.len());
    // A kill between the delete and its note costs one repeated (idempotent) call at most.
    assert!(calls <= ids.len() + 1, "deletions: {:?}", emu.with(|s| s.deletions.clone()));
    node.check();
}

/// 20 runs killed with SIGKILL at a random moment (a seeded RNG: `RECLIFE_TEST_SEED` replays
/// one), three conversations a run at most, then runs to the end: every conversation
/// imported exactly once with byte-identical media, each recording deleted in the cloud only
/// after its media was stored (checked by the emulator at each deletion), and every one deleted.
#[test]
fn killed_at_random_moments_then_rerun_imports_each_once_and_never_deletes_early() {
    let seed: u64 = std::env::var("RECLIFE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
    eprintln!("kill test seed = {seed} (RECLIFE_TEST_SEED={seed} replays it)");
    let mut x = seed;
    let mut rand = move |below: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % below
    };
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("r", base(), 30, 3);
    emu.with(|s| s.latency = std::time::Duration::from_millis(15));
    // A few conversations per run, so that the kills fall all along the backfill.
    let node = Node::new(&emu, "delete_on_completion = true\nparallel_fetches = 4\nmax_conversations = 3");
    let (data, emu_state) = (node.data(), emu.state.clone());
    emu.with(|s| {
        s.stored = Some(std::sync::Arc::new(move |cid: &str, rid: &str| {
            let want = emu_state
                .lock()
                .ok()
                .and_then(|st| st.conversations.iter().find(|c| c.id == cid).map(|c| c.recordings[0].media.clone()));
            let file = data.join("media").join(cid).join(format!("{cid}_{rid}.mp3"));
            match (std::fs::read(file), want) {
                (Ok(got), Some(want)) => got == want,
                (_, None) => false,
                (Err(_), _) => false,
            }
        }))
    });
    let mut kills = 0;
    for run in 0..20 {
        let mut child = node
            .cmd(&["import", "genesys-cloud", "--source", "gc", "--once"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let delay = rand(400);
        std::thread::sleep(std::time::Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
            kills += 1;
        }
        let _ = child.wait();
        let early = emu.with(|s| s.early_deletions.clone());
        assert!(early.is_empty(), "seed {seed}, run {run} (killed after {delay} ms): deleted before stored: {early:?}");
    }
    eprintln!("seed {seed}: {kills} of 20 runs killed");
    // The lease of a killed run expires (lease_seconds = 6); then runs until nothing is left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let (code, r) = node.run();
        assert!(code == 0 || code == 3, "seed {seed}: {r}");
        let idle = r["skipped_held_by"].is_null()
            && r["more"] == false
            && r["conversations"].as_array().is_some_and(|a| a.iter().all(|c| c["newly_imported"] == false))
            && r["buffered"].as_array().is_some_and(|a| a.is_empty());
        if idle && node.retry_list().is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "seed {seed}: not done after 120 s: {r}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    assert_all_imported(&node, &emu, &ids);
    let early = emu.with(|s| s.early_deletions.clone());
    assert!(early.is_empty(), "seed {seed}: deleted before stored: {early:?}");
    let calls = emu.with(|s| s.deletions.clone());
    let mut deleted: Vec<String> = calls.iter().map(|(c, _)| c.clone()).collect();
    deleted.sort();
    deleted.dedup();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(deleted, want, "seed {seed}: every conversation's recording deleted in the cloud");
    // Each kill may interrupt the deletions in flight (at most parallel_fetches): those are
    // repeated (the call is idempotent), nothing else.
    assert!(
        calls.len() <= ids.len() + 4 * kills,
        "seed {seed}: {} deletion calls for {} conversations",
        calls.len(),
        ids.len()
    );
    node.check();
}

/// Two nodes (data directories of their own, one media store, one PostgreSQL catalog) whose
/// daemons schedule the same import rule, while node B's operator also runs the source by
/// hand: every conversation is imported once (one media download each), the cursor ends past
/// them all. Needs `RECLIFE_TEST_PG` (skipped without it unless `CI`/`RECLIFE_REQUIRE_SERVERS`).
#[test]
fn two_nodes_on_postgresql_scheduling_one_source_import_each_conversation_once() {
    let Some(server) = catalog_support::pg_server() else { return };
    let schema = catalog_support::unique_schema("imp");
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("p", base(), 16, 3);
    emu.with(|s| s.latency = std::time::Duration::from_millis(40));
    let shared = tempfile::tempdir().unwrap();
    let rule =
        "name = \"Genesys import\"\nschedule = \"*/2 * * * * *\"\n[[tasks]]\ntype = \"import\"\nsource = \"gc\"\n";
    let nodes: Vec<Node> = ["/A", "/B"]
        .iter()
        .map(|path| {
            let n = Node::new(&emu, "max_conversations = 4\nparallel_fetches = 2");
            n.top(&format!(
                "node_path = \"{path}\"\nrules_dir = \"rules\"\nschedule_polling_interval = 1\n\
                 media_location = \"file://{}\"\ncatalog = \"{server}\"\n[postgres]\nschema = \"{schema}\"\npool_size = 4\n",
                shared.path().display()
            ));
            n.rule("import.toml", rule);
            n
        })
        .collect();
    let mut daemons: Vec<std::process::Child> = nodes
        .iter()
        .map(|n| {
            n.cmd(&["-q", "run"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut by_hand = 0;
    loop {
        // Node B's operator runs it by hand too: it imports, or finds the source's lease held.
        let (code, r) = nodes[1].run();
        assert!(code == 0 || code == 3, "{r}");
        by_hand += 1;
        let done = nodes[0].recordings().len();
        if done == ids.len() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{done} of {} imported after 120 s", ids.len());
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    for d in &mut daemons {
        let _ = Command::new("kill").arg(d.id().to_string()).status();
        let _ = d.wait();
    }
    let counts = emu.with(|s| s.media_by_conversation.clone());
    for id in &ids {
        assert_eq!(counts.get(id), Some(&1), "{id}: downloaded once ({counts:?}, {by_hand} runs by hand)");
        let rid = emu.with(|s| s.conversations.iter().find(|c| &c.id == id).unwrap().recordings[0].id.clone());
        let file = shared.path().join(id).join(format!("{id}_{rid}.mp3"));
        assert!(std::fs::read(&file).unwrap() == emu.media_of(id), "{id}: media identical");
    }
    let mut seen: Vec<String> = nodes[1].recordings().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    seen.sort();
    assert_eq!(seen, ids, "both nodes see the one catalog");
    let last_start = emu.with(|s| s.conversations.iter().map(|c| c.start).max().unwrap());
    let cur = nodes[0].cursor();
    let at = cur.rsplit_once(';').unwrap().1.to_string();
    assert!(at >= last_start.format("%Y.%m.%d %H:%M:%S%.3f").to_string(), "the cursor {cur} is past them all");
    let schemas = catalog_support::Schemas::new(&server);
    if let Ok(c) = reclife::catalog::PgCatalog::open(&schemas.options(&schema)) {
        let _ = c.drop_schema();
    }
}

/// A Genesys Cloud API behind a TLS gateway that requires a client certificate (made here with
/// the `openssl` command): the source presents its certificate and its password-protected key
/// and imports; without them, or with a wrong password, a clear error names the source and the
/// file (never the password), and nothing is imported.
#[test]
fn a_tls_client_certificate_with_a_password_protected_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ossl = |args: &str| {
        let o = Command::new("openssl").args(args.split_whitespace()).current_dir(d).output().unwrap();
        assert!(o.status.success(), "openssl {args}: {}", String::from_utf8_lossy(&o.stderr));
    };
    std::fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(d.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").unwrap();
    ossl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca");
    ossl(
        "req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1",
    );
    ossl(
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile server.ext",
    );
    ossl("req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout client.key -passout pass:key-pw-9 -out client.csr -subj /CN=importer");
    ossl(
        "x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.ext",
    );
    assert!(std::fs::read_to_string(d.join("client.key")).unwrap().contains("ENCRYPTED"));
    std::fs::write(d.join("key-password"), "key-pw-9\n").unwrap();
    std::fs::write(d.join("wrong-password"), "not-it\n").unwrap();

    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("t", base(), 2, 3);
    let (url, accepted, refused) =
        genesys_support::tls_front(&emu.url, &d.join("server.pem"), &d.join("server.key"), &d.join("ca.pem"));
    let p = |f: &str| format!("{:?}", d.join(f).display().to_string());
    let trust = format!("tls_trust_list = {}", p("ca.pem"));
    let client = format!("tls_client_certificate = {}\ntls_client_key = {}", p("client.pem"), p("client.key"));

    // No client certificate: the gateway refuses the handshake.
    let node = Node::with_urls(&url, &url, &format!("{trust}\nmax_attempts = 1"));
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("import source gc"), "{err}");
    assert!(refused.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // A wrong password: a configuration error naming the key file, not the password.
    let node = Node::with_urls(
        &url,
        &url,
        &format!("{trust}\n{client}\ntls_client_key_password_file = {}", p("wrong-password")),
    );
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success() && err.contains("import source gc") && err.contains("client.key"), "{err}");
    assert!(!err.contains("not-it") && !err.contains("key-pw-9"), "{err}");
    assert!(node.recordings().is_empty());
    // The right one: imported through the gateway.
    let node = Node::with_urls(
        &url,
        &url,
        &format!("{trust}\n{client}\ntls_client_key_password_file = {}", p("key-password")),
    );
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), ids);
    assert!(accepted.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_all_imported(&node, &emu, &ids);
}

/// A window holding more conversations than a page: every page of the window is read against
/// the interval it was asked for (the cursor moving inside the window must not shift the pages).
#[test]
fn a_window_of_several_pages_imports_every_conversation() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("w", base(), 7, 3);
    let node = Node::new(&emu, "page_size = 3\nparallel_fetches = 2");
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), ids, "{r}");
    assert_all_imported(&node, &emu, &ids);
}

/// `type = "import"` rule tasks: the one task check refuses an unknown source (naming it and
/// the rule), a node whose path the rule does not name runs nothing, and the daemon (`reclife
/// run`) of the node it names imports every conversation on its schedule.
#[test]
fn an_import_rule_runs_on_the_nodes_its_path_names() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("k", base(), 4, 3);
    let node = Node::new(&emu, "");
    node.top("rules_dir = \"rules\"\nnode_path = \"/B\"\nschedule_polling_interval = 1");
    let rule = |source: &str| {
        format!(
            "name = \"Genesys import\"\nschedule = \"*/2 * * * * *\"\nnode_path = \"/A\"\n[[tasks]]\ntype = \"import\"\nsource = \"{source}\"\n"
        )
    };
    node.rule("import.toml", &rule("nope"));
    let o = node.out(&["rules", "validate"]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "an unknown source is refused");
    assert!(err.contains("import.toml") && err.contains("\"nope\" is not configured") && err.contains("gc"), "{err}");
    node.rule("import.toml", &rule("gc"));
    let o = node.out(&["rules", "validate"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Node /B: the rule is not its own.
    let o = node.out(&["-q", "run", "--once"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(emu.count("token"), 0, "node /B never called Genesys Cloud");
    assert!(node.recordings().is_empty());
    // Node /A: the daemon runs it every two seconds.
    node.top("node_path = \"/A\"");
    let mut daemon = node.cmd(&["-q", "run"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let stdout = daemon.stdout.take().unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let l2 = lines.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            l2.lock().unwrap().push(l);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !lines.lock().unwrap().iter().any(|l| l.contains("imported 4 recording(s)")) {
        assert!(std::time::Instant::now() < deadline, "no import run within 60 s: {:?}", lines.lock().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Later fires find nothing new.
    let n = lines.lock().unwrap().len();
    while lines.lock().unwrap()[n..].iter().all(|l| !l.contains("Scheduled rule [Genesys import]")) {
        assert!(std::time::Instant::now() < deadline, "no second run: {:?}", lines.lock().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let _ = Command::new("kill").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();
    let all = lines.lock().unwrap().join("\n");
    assert!(all.contains("Scheduled rule [Genesys import] on node path [/A] completed: succeeded"), "{all}");
    assert!(all.contains("import source gc: 4 imported"), "{all}");
    assert!(all.contains("imported 0 recording(s)"), "a later fire imports nothing again: {all}");
    assert_all_imported(&node, &emu, &ids);
}

/// Issue 24: an import rule task reports through the task's progress path (the same as
/// backups and purges): its log lines count the conversations handled and the media bytes
/// stored, so `reclife run` (and a job's live events) see an import move.
#[test]
fn an_import_rule_task_reports_its_progress() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("p", base(), 5, 3);
    let node = Node::new(&emu, "");
    node.top("rules_dir = \"rules\"\nnode_path = \"/A\"");
    node.rule(
        "import.toml",
        "name = \"Genesys import\"\nschedule = \"0 0 3 * * *\"\nnode_path = \"/A\"\n[[tasks]]\ntype = \"import\"\nsource = \"gc\"\n",
    );
    let o = node.out(&["-v", "run", "--once"]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{out}\n{err}");
    assert!(out.contains("imported 5 recording(s)"), "{out}");
    let line = err
        .lines()
        .rfind(|l| l.contains("progress") && l.contains("import") && l.contains("recordings=5"))
        .unwrap_or_else(|| panic!("no progress line of the import task:\n{err}"));
    let bytes: u64 = line.split("bytes=").nth(1).and_then(|b| b.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(bytes > 0, "{line}");
    assert_all_imported(&node, &emu, &ids);
}

/// A `reclife serve` on the node, with an ops user and a user (`{SHA}` htpasswd lines).
struct Serve {
    child: std::process::Child,
    url: String,
}

const OPS: (&str, &str) = ("ops", "ops-pw-1");
const USER: (&str, &str) = ("alice", "alice-pw-2");

impl Node {
    fn api_tables(&self) -> String {
        use base64::Engine as _;
        use sha1::Digest as _;
        let sha = |p: &str| base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(p.as_bytes()));
        let users = self.dir.path().join("users");
        std::fs::write(&users, format!("{}:{{SHA}}{}\n{}:{{SHA}}{}\n", OPS.0, sha(OPS.1), USER.0, sha(USER.1)))
            .unwrap();
        format!("[api]\nusers_file = \"users\"\nops_users = [\"{}\"]\n", OPS.0)
    }

    fn serve(&self) -> Serve {
        use std::io::BufRead;
        let mut child = self
            .cmd(&["serve", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve said {line:?}")).to_string();
        Serve { child, url }
    }
}

impl Serve {
    fn req(&self, who: (&str, &str), method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut r = reqwest::blocking::Client::new()
            .request(method, format!("{}{path}", self.url))
            .basic_auth(who.0, Some(who.1));
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b.to_string());
        }
        let resp = r.send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    fn get_json(&self, who: (&str, &str), path: &str) -> Value {
        let (code, text) = self.req(who, reqwest::Method::GET, path, None);
        assert_eq!(code, 200, "{path}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

/// The batch report and the seed's alerts reach the notification outbox's endpoint, the log,
/// `/metrics`, `GET /api/v1/import/sources[/{name}]` and the source's page (Genesys metadata
/// escaped); the cursor and the retry buffer are edited through the API (ops only, the CLI's
/// checks: 404, 409 while a run holds the source, 400 for a bad cursor).
#[test]
fn alerts_and_batches_reach_the_outbox_metrics_api_and_pages() {
    use reqwest::Method;
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("m", base(), 3, 3);
    emu.recording_mut(&ids[2], |r| r.never_ready = true);
    emu.with(|s| s.conversations[0].customer_number = "<b>+1555</b>".into());
    let node = Node::new(&emu, "timezone = \"America/New_York\"");
    let api = node.api_tables();
    node.top(&format!("[notify]\nurl = \"{}/notify\"\nretries = 1\nbackoff_ms = 10\n\n{api}", emu.url));
    let (code, r) = node.run();
    assert_eq!(code, 3, "one conversation went to the retry buffer: {r}");
    // A quiet run: nothing new (the buffered one fails again).
    let (code, r) = node.run();
    assert_eq!((code, r["conversations"].as_array().map(Vec::len)), (3, Some(0)), "{r}");
    let sent = emu.with(|s| s.notifications.clone());
    let of = |event: &str| sent.iter().filter(|n| n["event"] == event).cloned().collect::<Vec<_>>();
    let batches = of("import.batch");
    assert_eq!(batches.len(), 2, "one report per run: {sent:?}");
    assert_eq!(batches[0]["source"], "gc");
    assert_eq!(ids_of(&batches[0]["report"], "newly_imported"), ids[..2].to_vec());
    assert!(batches[0]["detail"].as_str().unwrap().contains(&format!("{} extension=1001", ids[0])), "{sent:?}");
    assert_eq!(batches[1]["detail"], "No conversations imported");
    let alerts = of("import.alert");
    assert!(
        alerts
            .iter()
            .any(|a| a["alert"] == "CDR placed in retry buffer" && a["detail"].as_str().unwrap().contains(&ids[2])),
        "{sent:?}"
    );
    assert!(!serde_json::to_string(&sent).unwrap().contains(SECRET));

    let srv = node.serve();
    let all = srv.get_json(USER, "/api/v1/import/sources");
    let gc = &all["sources"][0];
    assert_eq!((gc["name"].as_str(), gc["type"].as_str()), (Some("gc"), Some("genesys-cloud")), "{all}");
    assert_eq!(gc["retry_buffer"][0]["conversation_id"], ids[2].as_str());
    assert_eq!(gc["totals"]["imported"], 2);
    assert_eq!(gc["last_batch"]["conversations"].as_array().map(Vec::len), Some(0));
    assert_eq!(gc["alerts"][0]["message"], "Migration status", "newest first");
    assert_eq!(gc["cursor"].as_str(), Some(node.cursor().as_str()));
    let one = srv.get_json(USER, "/api/v1/import/sources/gc");
    assert_eq!(one["source"]["name"], "gc");
    assert_eq!(srv.req(USER, Method::GET, "/api/v1/import/sources/nope", None).0, 404);

    // /metrics.
    let (code, m) = srv.req(USER, Method::GET, "/metrics", None);
    assert_eq!(code, 200);
    for want in [
        "reclife_import_conversations_imported{source=\"gc\"} 2",
        "reclife_import_conversations_failed{source=\"gc\"} 2",
        "reclife_import_retry_buffer{source=\"gc\"} 1",
        "reclife_import_alerts{source=\"gc\",alert=\"CDR placed in retry buffer\"} 2",
        "reclife_import_alerts{source=\"gc\",alert=\"Migration status\"} 2",
        "reclife_import_last_batch_timestamp_seconds{source=\"gc\"} ",
    ] {
        assert!(m.contains(want), "{want} in\n{m}");
    }

    // The pages: the source listed, its page with the last batch (metadata escaped) and times in
    // the source's zone; the forms for ops only.
    let (code, list) = srv.req(USER, Method::GET, "/import", None);
    assert!(code == 200 && list.contains("href=\"/import/gc\""), "{list}");
    let (code, page) = srv.req(USER, Method::GET, "/import/gc", None);
    assert_eq!(code, 200);
    assert!(page.contains(&ids[2]) && page.contains("CDR placed in retry buffer"), "{page}");
    assert!(
        page.contains("America/New_York") && (page.contains(" EST -05:00") || page.contains(" EDT -04:00")),
        "{page}"
    );
    assert!(!page.contains("action=\"/import/gc/cursor\""), "no forms for the user role");
    let (_, page) = srv.req(OPS, Method::GET, "/import/gc", None);
    assert!(page.contains("action=\"/import/gc/cursor\""), "{page}");
    // The first run's batch had the escaped number; run it back to show it.
    let cur = start_cursor();
    let (code, t) =
        srv.req(OPS, Method::POST, "/api/v1/import/sources/gc/cursor", Some(serde_json::json!({"cursor": cur})));
    assert_eq!(code, 200, "{t}");
    assert_eq!(node.cursor(), cur);
    drop(srv);
    let (_, r) = node.run();
    assert_eq!(ids_of(&r, "already_imported"), ids[..2].to_vec(), "{r}");
    let srv = node.serve();
    let (_, page) = srv.req(USER, Method::GET, "/import/gc", None);
    assert!(page.contains("&lt;b&gt;+1555&lt;/b&gt;") && !page.contains("<b>+1555"), "escaped: {page}");

    // Cursor and retry buffer through the API: ops only, the CLI's checks.
    let post = |who, path: &str, body: Value| srv.req(who, Method::POST, path, Some(body));
    assert_eq!(post(USER, "/api/v1/import/sources/gc/cursor", serde_json::json!({"cursor": cur})).0, 403);
    let (code, t) = post(OPS, "/api/v1/import/sources/gc/cursor", serde_json::json!({"cursor": "2024-01-01"}));
    assert!(code == 400 && t.contains("yyyy.MM.dd"), "{code} {t}");
    assert_eq!(post(OPS, "/api/v1/import/sources/nope/cursor", serde_json::json!({"cursor": cur})).0, 404);
    let (code, t) = post(OPS, "/api/v1/import/sources/gc/retry", serde_json::json!({"conversation_id": "extra-1"}));
    assert_eq!(code, 200, "{t}");
    assert_eq!(node.retry_list(), vec![ids[2].clone(), "extra-1".to_string()]);
    let (code, t) = post(OPS, "/api/v1/import/sources/gc/retry", serde_json::json!({"conversation_id": "../x"}));
    assert_eq!(code, 400, "{t}");
    let del = |who, id: &str| {
        srv.req(who, Method::DELETE, &format!("/api/v1/import/sources/gc/retry/{id}"), Some(serde_json::json!({})))
    };
    assert_eq!(del(USER, "extra-1").0, 403);
    assert_eq!(del(OPS, "extra-1").0, 200);
    assert_eq!(del(OPS, "extra-1").0, 404);
    assert_eq!(node.retry_list(), vec![ids[2].clone()]);
    // While a run holds the source: 409.
    emu.with(|s| s.latency = std::time::Duration::from_millis(400));
    let mut running = node.cmd(&["import", "genesys-cloud", "--source", "gc", "--once"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (code, t) = post(OPS, "/api/v1/import/sources/gc/cursor", serde_json::json!({"cursor": cur}));
    let _ = running.wait();
    assert!(code == 409 && t.contains("in progress"), "{code} {t}");
}

/// The media URLs are real S3 pre-signed GET URLs of objects in the SeaweedFS of
/// `deploy/servers.sh`: the importer fetches them as they are (no credentials of its own), and
/// stores the very bytes. Skipped without `RECLIFE_TEST_S3` unless `RECLIFE_REQUIRE_SERVERS`/`CI`.
#[test]
fn media_comes_from_seaweedfs_presigned_urls() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("s", base(), 3, 3);
    let Some(place) = emu.media_in_s3() else {
        assert!(
            std::env::var_os("RECLIFE_REQUIRE_SERVERS").is_none() && std::env::var_os("CI").is_none(),
            "RECLIFE_TEST_S3 is not set: eval \"$(bash deploy/servers.sh start)\""
        );
        eprintln!("skipped: RECLIFE_TEST_S3 is not set");
        return;
    };
    let node = Node::new(&emu, "");
    // The importer gets no S3 credentials: only the pre-signed URL's signature lets it in.
    let (code, r) = node.run_env(&[("AWS_ACCESS_KEY_ID", "nobody"), ("AWS_SECRET_ACCESS_KEY", "wrong")]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), ids);
    assert_eq!((emu.with(|s| s.presigned), emu.count("media")), (3, 0), "every media file came from {place}");
    assert_all_imported(&node, &emu, &ids);
}

/// Runs `bin` to completion; its exit code and peak RSS in KiB (`wait4`'s `ru_maxrss`).
/// Runs `c` and gives its exit code, its own peak RSS (KiB) and its wall time. The peak is the
/// child's `VmHWM` read from `/proc` while it runs, not `wait4`'s `ru_maxrss`: the child is
/// spawned with vfork, and at its exec the kernel folds the parent's high-water RSS (this test
/// process, whose emulator holds every conversation's media) into the child's `ru_maxrss`.
fn run_measured(mut c: Command) -> (i32, i64, std::time::Duration) {
    let t = std::time::Instant::now();
    let mut child = c.stdout(std::process::Stdio::null()).spawn().unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0i64;
    loop {
        let hwm = std::fs::read_to_string(&status).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        });
        peak = peak.max(hwm.unwrap_or(0));
        if let Some(st) = child.try_wait().unwrap() {
            return (st.code().unwrap_or(-1), peak, t.elapsed());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// The benchmark's peak RSS is the importer's own: with 128 MiB touched in this process, a
/// small run of the binary measures far below it (`wait4`'s `ru_maxrss` reported this
/// process's high-water mark, which made the import's RSS seem to grow with the emulator's
/// media).
#[test]
fn measured_peak_rss_is_the_child_s_own() {
    let ballast = vec![1u8; 128 << 20];
    let mut c = Command::new(bin());
    c.arg("--version");
    let (code, rss, _) = run_measured(c);
    assert_eq!(code, 0);
    assert!(rss > 0 && rss < 64 * 1024, "reclife --version measured at {rss} KiB");
    assert_eq!(ballast[ballast.len() - 1], 1);
}

/// The import throughput benchmark (`benches/import_throughput.sh` runs it with the release
/// binary in `RECLIFE_BENCH_BIN`): 50 ms of API latency, conversations of 3 minutes (240 KB of
/// media each), imported in one run; prints conversations/s and the peak RSS at each size
/// (`RECLIFE_BENCH_SIZES`, default `100,1000`). Ignored in the test suite.
#[test]
#[ignore]
fn import_throughput_benchmark() {
    let bin = std::env::var("RECLIFE_BENCH_BIN").unwrap_or_else(|_| bin().to_string());
    let sizes: Vec<usize> = std::env::var("RECLIFE_BENCH_SIZES")
        .unwrap_or_else(|_| "100,1000".into())
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let mut rows = Vec::new();
    for n in sizes {
        let emu = Emulator::start("emu-client", SECRET);
        let from = {
            use chrono::{DurationRound, TimeDelta};
            (Utc::now() - TimeDelta::minutes(10 * n as i64 + 120)).duration_trunc(TimeDelta::minutes(1)).unwrap()
        };
        let ids = emu.add_conversations("b", from, n, 3);
        emu.with(|s| {
            for c in &mut s.conversations {
                c.recordings[0].media = genesys_support::media_bytes(&c.id, 240_000);
            }
            s.latency = std::time::Duration::from_millis(50);
        });
        let start = (from - chrono::TimeDelta::hours(1)).format("%Y.%m.%d %H:%M:%S%.3f").to_string();
        let node = Node::new(
            &emu,
            &format!("start_timestamp = \"{start}\"\nmax_conversations = 100000\npage_size = 100\nbatch_minutes = 600"),
        );
        let c = node.cmd(&["-q", "import", "genesys-cloud", "--source", "gc", "--once"]);
        let mut c2 = Command::new(&bin);
        c2.args(c.get_args()).env_remove("RECLIFE_FAILPOINT").env("RUST_LOG", "error");
        let (code, rss, took) = run_measured(c2);
        assert_eq!(code, 0, "the run failed");
        assert_eq!(node.recordings().len(), ids.len(), "every conversation imported");
        let rate = n as f64 / took.as_secs_f64();
        println!(
            "import benchmark: {n} conversations in {:.2} s = {rate:.1} conversations/s, peak RSS {rss} KiB",
            took.as_secs_f64()
        );
        rows.push((n, rate, rss));
    }
    if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
        println!("peak RSS at {} / at {}: {:.2}", b.0, a.0, b.2 as f64 / a.2 as f64);
    }
}

#[test]
fn two_processes_one_source_one_imports() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("f", base(), 4, 3);
    emu.with(|s| s.latency = std::time::Duration::from_millis(200));
    let node = Node::new(&emu, "");
    let first = node
        .cmd(&["import", "genesys-cloud", "--source", "gc", "--once", "--json"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let (code, r) = node.run();
    assert_eq!(code, 0);
    assert!(r["skipped_held_by"].as_str().is_some(), "the second process did nothing: {r}");
    let o = first.wait_with_output().unwrap();
    assert!(o.status.success());
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ids_of(&r, "newly_imported"), ids);
}

#[test]
fn bad_credentials_and_unreachable_auth_url_name_the_source() {
    let emu = Emulator::start("emu-client", "another-secret");
    emu.add_conversations("g", base(), 1, 3);
    let node = Node::new(&emu, "");
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("import source gc") && err.contains("authentication") && err.contains("emu-client"), "{err}");
    assert!(!err.contains(SECRET));
    let o = node.out(&["import", "status", "--source", "gc"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Failed to retrieve next batch"));

    let node = Node::with_urls("http://127.0.0.1:1", &emu.url, "max_attempts = 2");
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("import source gc") && err.contains("http://127.0.0.1:1/oauth/token"), "{err}");

    // No secret configured, an unknown source, a bad start timestamp: clear errors.
    let node = Node::new(&emu, "client_secret_file = \"missing-file\"");
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("client_secret_file"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = node.out(&["import", "genesys-cloud", "--source", "other", "--once"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no [import.other]"));
    let node = Node::new(&emu, "start_timestamp = \"yesterday\"");
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("start_timestamp"));
    // The analytics query failing: "Failed to retrieve next batch", exit 1.
    let emu = Emulator::start("emu-client", SECRET);
    emu.with(|s| s.listing_broken = true);
    let node = Node::new(&emu, "max_attempts = 2");
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("import source gc"));
    let o = node.out(&["import", "status", "--source", "gc"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("Failed to retrieve next batch"));
}

#[test]
fn a_conversation_in_progress_holds_the_cursor_and_a_too_long_one_is_alerted() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("h", base(), 4, 3);
    // The second is still in progress; the third lasted longer than the maximum (999 minutes).
    emu.with(|s| {
        s.conversations[1].end = None;
        s.conversations[2].end = Some(s.conversations[2].start + chrono::TimeDelta::minutes(1200));
    });
    let node = Node::new(&emu, "max_recording_length_minutes = 999");
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), vec![ids[0].clone()], "nothing past the call in progress");
    assert_eq!(r["more"], true);
    assert!(node.cursor().starts_with(&format!("{};", ids[0])), "the cursor waits before it: {}", node.cursor());
    // It ends: the next run imports it and the one after; the too-long one is alerted, not imported.
    emu.with(|s| s.conversations[1].end = Some(s.conversations[1].start + chrono::TimeDelta::minutes(3)));
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), vec![ids[1].clone(), ids[3].clone()]);
    let o = node.out(&["import", "status", "--source", "gc"]);
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(
        status.contains("Conversation failed to import")
            && status.contains(&ids[2])
            && status.contains("maximum recording length"),
        "{status}"
    );
    assert!(node.recordings().iter().all(|r| r["id"] != ids[2]));
}

/// Genesys's own Python SDK (purecloudplatformclientv2, installed by deploy/install.sh) reads
/// every emulator answer the importer relies on into its models.
#[test]
fn the_emulator_answers_deserialize_into_the_genesys_python_sdk_models() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("s", base(), 3, 3);
    let interval = format!(
        "{}/{}",
        (base() - chrono::TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/genesys_sdk_check.py");
    let o =
        Command::new("python3").args([script, &emu.url, "emu-client", SECRET, &interval, &ids[1]]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    for call in ["token", "analytics query", "analytics details", "recordingmetadata", "recording", "user", "delete"] {
        assert!(out.lines().any(|l| l.starts_with(&format!("ok {call}"))), "{call}: {out}");
    }
    assert_eq!(emu.with(|s| s.deletions.clone()), vec![(ids[1].clone(), "r0001".to_string())]);
}

/// Through a real forward proxy (tinyproxy from Debian, installed by deploy/install.sh) with
/// basic auth; a wrong proxy password is a clear error naming the source.
#[test]
fn through_a_forward_proxy_with_basic_auth() {
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("p", base(), 2, 3);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nBasicAuth reclife proxy-pw-5\nLogLevel Info\nMaxClients 20\n"),
    )
    .unwrap();
    let mut proxy = Command::new("tinyproxy")
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tinyproxy (deploy/install.sh installs it)");
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let extra = format!(
        "proxy_address = \"127.0.0.1\"\nproxy_port = {port}\nproxy_username = \"reclife\"\nproxy_password_file = \"proxy-pw\""
    );
    let node = Node::new(&emu, &extra);
    std::fs::write(node.dir.path().join("proxy-pw"), "proxy-pw-5\n").unwrap();
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    assert_eq!(ids_of(&r, "newly_imported"), ids);
    assert!(emu.count("via proxy") >= 1, "the token request went through the proxy");

    let node = Node::new(&emu, &format!("{extra}\nmax_attempts = 1"));
    std::fs::write(node.dir.path().join("proxy-pw"), "wrong\n").unwrap();
    let o = node.out(&["import", "genesys-cloud", "--source", "gc", "--once"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("import source gc") && err.contains("forward proxy") && err.contains("proxy_password_file"),
        "{err}"
    );
    assert!(!err.contains("wrong"), "the proxy password is never shown: {err}");
    let _ = proxy.kill();
    let _ = proxy.wait();
}

/// "Recording Timezone" in listings and pages: recordings imported from a source whose zone is
/// `+05:30` carry it in their document, and `reclife recordings list` (text and JSON), the
/// Recordings page and a recording's page show their start and stop in that zone beside UTC.
#[test]
fn recording_timezone_in_listings_and_pages() {
    use reqwest::Method;
    let emu = Emulator::start("emu-client", SECRET);
    let ids = emu.add_conversations("z", base(), 2, 3);
    let node = Node::new(&emu, "timezone = \"+05:30\"");
    let api = node.api_tables();
    node.top(&api);
    let (code, r) = node.run();
    assert_eq!(code, 0, "{r}");
    let local = |utc: &str| {
        let t: DateTime<Utc> = utc.parse().unwrap();
        (t + chrono::TimeDelta::minutes(330)).format("%Y-%m-%d %H:%M:%S +05:30").to_string()
    };

    // The CLI: JSON lines with the zone and both local times; the text table's line under each.
    let rows = node.recordings();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["timezone"], "+05:30", "{row}");
        assert_eq!(row["startTimeLocal"].as_str(), Some(local(row["startTime"].as_str().unwrap()).as_str()), "{row}");
        assert_eq!(row["stopTimeLocal"].as_str(), Some(local(row["stopTime"].as_str().unwrap()).as_str()), "{row}");
    }
    let o = node.out(&["recordings", "list"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for row in &rows {
        let want = format!(
            "  in +05:30: start {}, stop {}",
            local(row["startTime"].as_str().unwrap()),
            local(row["stopTime"].as_str().unwrap())
        );
        assert!(text.contains(&want), "{want:?} in\n{text}");
    }

    // The pages: the Recordings page and a recording's page.
    let srv = node.serve();
    let (code, page) = srv.req(USER, Method::GET, "/recordings", None);
    assert_eq!(code, 200, "{page}");
    for row in &rows {
        let want = format!("({})", local(row["startTime"].as_str().unwrap()));
        assert!(page.contains(&want), "{want} in {page}");
    }
    let (code, page) = srv.req(USER, Method::GET, &format!("/recordings/{}", ids[0]), None);
    assert_eq!(code, 200, "{page}");
    let row = rows.iter().find(|r| r["id"] == ids[0].as_str()).unwrap();
    for t in ["startTime", "stopTime"] {
        let want = format!("({})", local(row[t].as_str().unwrap()));
        assert!(page.contains(&want), "{want} in {page}");
    }
    assert!(page.contains("Recording Timezone"), "{page}");
}
