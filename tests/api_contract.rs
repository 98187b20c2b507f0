//! The API's contract and its operator endpoints: the OpenAPI document against the routes the
//! source registers and the answers the server gives; rules enabled and disabled for every node;
//! a job followed as server-sent events; `reclife check` and the muxer through the API; TLS and
//! JSON logs.

mod api_support;

use api_support::{Node, CCID, OPS, USER};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

/// Every `.route("…"` of `src/api`.
fn source_routes() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![api_support::repo().join("src/api")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).unwrap();
                for piece in text.split(".route(\"").skip(1) {
                    out.insert(piece.split('"').next().unwrap().to_string());
                }
            }
        }
    }
    out
}

fn post(s: &api_support::Server, who: (&str, &str), path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = s
        .client()
        .post(format!("{}{path}", s.url))
        .basic_auth(who.0, Some(who.1))
        .header("content-type", "application/json");
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().unwrap();
    let st = r.status().as_u16();
    (st, r.json().unwrap_or(Value::Null))
}

#[test]
fn the_openapi_document_names_every_route_and_each_answers_as_documented() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    // Public: schema tools load it without credentials.
    let doc: Value = s.client().get(format!("{}/api/v1/openapi.json", s.url)).send().unwrap().json().unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(documented, source_routes(), "the document and the routes differ");

    // A planned job, so the job paths have an id to use.
    let (st, v) = post(
        &s,
        OPS,
        "/api/v1/jobs",
        Some(
            serde_json::json!({ "tasks": [{ "type": "purge", "filter": { "recording_type": "voice", "min_age": 1 } }] }),
        ),
    );
    assert_eq!(st, 200, "{v}");
    let job = v["job"]["id"].as_str().unwrap().to_string();
    let call = "CALLA0000000000000000000000000001";
    let rec = s.json(USER, &format!("/api/v2/recordings/{call}"));
    let media = rec["recording"]["mediaFiles"][0]["mediaId"].as_str().unwrap().to_string();
    let fill = |p: &str| {
        p.replace("{ccid}", CCID)
            .replace("{media}", &media)
            .replace("{label}", "x")
            .replace("{screen}", "S-none")
            .replace("{name}", "Daily backup")
            .replace("{id}", if p.starts_with("/api/v1/jobs") { &job } else { call })
    };
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let codes: BTreeSet<String> = op["responses"].as_object().unwrap().keys().cloned().collect();
            let url = format!("{}{}", s.url, fill(path));
            let ops_only = op["summary"].as_str().unwrap().contains("(ops)");
            if method == "get" {
                if path.ends_with("/events") {
                    continue; // a stream; its own test follows it
                }
                let r = s.client().get(&url).basic_auth(OPS.0, Some(OPS.1)).send().unwrap();
                let st = r.status().as_u16().to_string();
                assert!(codes.contains(&st), "GET {path}: {st} is not documented ({codes:?})");
                let json = r.headers().get("content-type").is_some_and(|c| c.to_str().unwrap().contains("json"));
                if json && path != "/api/v1/openapi.json" {
                    let v: Value = r.json().unwrap();
                    assert!(v["statusCode"].is_i64(), "GET {path}: no statusCode: {v}");
                }
                checked += 1;
            }
            // The role table and the document agree: `user` is refused whatever it asks that
            // the document marks as `ops`, and any write.
            if ops_only || method != "get" {
                let r = s
                    .client()
                    .request(method.to_uppercase().parse().unwrap(), &url)
                    .basic_auth(USER.0, Some(USER.1))
                    .send()
                    .unwrap();
                assert_eq!(r.status(), 403, "{method} {path} as user");
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked} operations checked");
}

#[test]
fn rules_are_enabled_and_disabled_for_every_node_through_the_api() {
    let node = Node::new(0);
    // A rule, disabled in its file, whose backup location cannot be made.
    let example = std::fs::read_to_string(api_support::repo().join("rules/daily-backup.toml"))
        .unwrap()
        .replace("name = \"Daily backup\"", "name = \"Example\"")
        .replace("file:///CHANGE-ME/reclife-backups", "file:///proc/no-such-place/backups");
    std::fs::write(node.dir.path().join("rules/example.toml"), example).unwrap();
    let s = node.serve(&[]);
    let enabled = |name: &str| -> (bool, Value) {
        let v = s.json(USER, &format!("/api/v1/rules/{}", name.replace(' ', "%20")));
        (v["rule"]["enabled"].as_bool().unwrap(), v["override"].clone())
    };
    assert_eq!(enabled("Daily backup"), (true, Value::Null));
    assert_eq!(s.get(USER, "/api/v1/rules/nope").status(), 404);

    let (st, v) = post(&s, OPS, "/api/v1/rules/Daily%20backup/disable", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(enabled("Daily backup"), (false, Value::Bool(false)));
    // The CLI of another process on the same catalog sees it, and a run skips the rule.
    let out = node.cmd().args(["rules", "list", "--json"]).output().unwrap();
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    let daily = listed.lines().find(|l| l.contains("\"Daily backup\"")).unwrap();
    assert!(daily.contains("\"enabled\":false"), "{daily}");
    let out = node.cmd().args(["run", "--once"]).output().unwrap();
    assert!(out.status.code() != Some(101), "{}", String::from_utf8_lossy(&out.stderr));
    let jobs = s.json(USER, "/api/v1/jobs");
    let rules_run: BTreeSet<&str> =
        jobs["jobs"].as_array().unwrap().iter().filter_map(|j| j["rule"].as_str()).collect();
    assert!(rules_run.contains("Backup and purge"), "{jobs}");
    assert!(!rules_run.contains("Daily backup"), "a disabled rule ran: {jobs}");

    // A rule whose location is unusable cannot be enabled; the reason names the location.
    let (st, v) = post(&s, OPS, "/api/v1/rules/Example/enable", None);
    assert_eq!(st, 409, "{v}");
    assert!(v["statusMessage"].as_str().unwrap().contains("/proc/no-such-place"), "{v}");
    let (st, _) = post(&s, OPS, "/api/v1/rules/Nope/enable", None);
    assert_eq!(st, 404);
    assert!(!enabled("Example").0);
    // `user` may not; reset gives the file's flag back.
    let (st, _) = post(&s, USER, "/api/v1/rules/Daily%20backup/reset", None);
    assert_eq!(st, 403);
    let (st, v) = post(&s, OPS, "/api/v1/rules/Daily%20backup/reset", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(enabled("Daily backup"), (true, Value::Null));
    let out = node.cmd().args(["rules", "disable", "Daily backup"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(enabled("Daily backup"), (false, Value::Bool(false)));
}

/// Issue 24: a 2,000-recording zip backup's events show its `written` count move (at least
/// ten distinct values before the end), and the live task's recordings and bytes with it.
#[test]
fn a_large_zip_backup_moves_in_its_events_before_it_ends() {
    let node = Node::new(0);
    node.add_calls("PROG", 2000, 64 << 10);
    let s = node.serve(&[]);
    let backups = node.dir.path().join("progress-backups");
    let (st, v) = post(
        &s,
        OPS,
        "/api/v1/jobs",
        Some(serde_json::json!({ "tasks": [{ "type": "backup", "zip": true,
            "filter": { "recording_type": "voice", "min_age": 1 },
            "location": format!("file://{}", backups.display()) }] })),
    );
    assert_eq!(st, 200, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let planned = v["plan"]["tasks"][0]["recordings"].as_u64().unwrap();
    assert!(planned >= 2000, "{v}");
    let r = s
        .client()
        .get(format!("{}/api/v1/jobs/{id}/events", s.url))
        .basic_auth(USER.0, Some(USER.1))
        .timeout(Duration::from_secs(300))
        .send()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(String, Value)>();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                if tx.send((event.clone(), serde_json::from_str(d).unwrap())).is_err() {
                    return;
                }
            }
        }
    });
    let (first, _) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(first, "progress");
    let (st, v) = post(&s, OPS, &format!("/api/v1/jobs/{id}/start"), None);
    assert_eq!(st, 202, "{v}");
    let (mut written, mut live_bytes) = (BTreeSet::new(), BTreeSet::new());
    let last = loop {
        let (e, v) = rx.recv_timeout(Duration::from_secs(120)).expect("the stream ends with the job");
        if e == "end" {
            break v;
        }
        if let Some(w) = v["rows"][0]["written"].as_u64() {
            written.insert(w);
        }
        if let Some(b) = v["live"]["bytes"].as_u64() {
            live_bytes.insert(b);
        }
    };
    assert_eq!(last["job"]["state"], "succeeded", "{last}");
    assert_eq!(last["job"]["tasks"][0]["recordings"].as_u64(), Some(planned), "{last}");
    // Before the end: written rose through at least ten values short of the total.
    let moving: Vec<_> = written.iter().filter(|w| **w > 0 && **w < planned).collect();
    eprintln!("written values before the end: {}; live byte values: {}", moving.len(), live_bytes.len());
    assert!(moving.len() >= 10, "written seen: {written:?}");
    assert!(live_bytes.iter().filter(|b| **b > 0).count() >= 10, "live bytes seen: {live_bytes:?}");
}

/// The events of job `id` on `s`, as `(event, data)` in order, read by a thread.
fn job_event_stream(s: &api_support::Server, id: &str) -> std::sync::mpsc::Receiver<(String, Value)> {
    let r = s
        .client()
        .get(format!("{}/api/v1/jobs/{id}/events", s.url))
        .basic_auth(USER.0, Some(USER.1))
        .timeout(Duration::from_secs(300))
        .send()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(String, Value)>();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { return };
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                if tx.send((event.clone(), serde_json::from_str(d).unwrap())).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Issue 24: a purge of 3,000 recordings reports each deleted recording (not each batch of
/// 500): its events show the live task's recordings and bytes move through at least ten values
/// before the end.
#[test]
fn a_large_purge_moves_in_its_events_before_it_ends() {
    let node = Node::new(0);
    node.add_calls("PURG", 3000, 4 << 10);
    let s = node.serve(&[]);
    let (st, v) = post(
        &s,
        OPS,
        "/api/v1/jobs",
        Some(
            serde_json::json!({ "tasks": [{ "type": "purge", "filter": { "recording_type": "voice", "min_age": 1 } }] }),
        ),
    );
    assert_eq!(st, 200, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let planned = v["plan"]["tasks"][0]["recordings"].as_u64().unwrap();
    assert!(planned >= 3000, "{v}");
    let rx = job_event_stream(&s, &id);
    let (first, _) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(first, "progress");
    let (st, v) = post(&s, OPS, &format!("/api/v1/jobs/{id}/start"), None);
    assert_eq!(st, 202, "{v}");
    let (mut done, mut bytes) = (BTreeSet::new(), BTreeSet::new());
    let last = loop {
        let (e, v) = rx.recv_timeout(Duration::from_secs(120)).expect("the stream ends with the job");
        if e == "end" {
            break v;
        }
        if let Some(n) = v["live"]["recordings"].as_u64() {
            done.insert(n);
        }
        if let Some(b) = v["live"]["bytes"].as_u64() {
            bytes.insert(b);
        }
    };
    assert_eq!(last["job"]["state"], "succeeded", "{last}");
    assert_eq!(last["job"]["tasks"][0]["recordings"].as_u64(), Some(planned), "{last}");
    let moving: Vec<_> = done.iter().filter(|n| **n > 0 && **n < planned).collect();
    eprintln!("live recordings values before the end: {}; live byte values: {}", moving.len(), bytes.len());
    assert!(moving.len() >= 10, "live recordings seen: {done:?}");
    assert!(bytes.iter().filter(|b| **b > 0).count() >= 10, "live bytes seen: {bytes:?}");
}

#[test]
fn a_job_is_followed_as_server_sent_events_to_its_end() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let backups = node.dir.path().join("sse-backups");
    let (st, v) = post(
        &s,
        OPS,
        "/api/v1/jobs",
        Some(serde_json::json!({ "tasks": [{ "type": "backup", "filter": { "recording_type": "voice", "min_age": 1 },
            "include_screen": true, "location": format!("file://{}", backups.display()) }] })),
    );
    assert_eq!(st, 200, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let planned = v["plan"]["tasks"][0]["recordings"].as_u64().unwrap();
    assert!(planned >= 4, "{v}");
    assert_eq!(s.get(USER, "/api/v1/jobs/j-nope/events").status(), 404);
    let r = s
        .client()
        .get(format!("{}/api/v1/jobs/{id}/events", s.url))
        .basic_auth(USER.0, Some(USER.1))
        .timeout(Duration::from_secs(120))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    // The stream's first event is the planned job; start it while following.
    let (tx, rx) = std::sync::mpsc::channel::<(String, Value)>();
    let reader = std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(r).lines() {
            let line = line.unwrap();
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ") {
                tx.send((event.clone(), serde_json::from_str(d).unwrap())).unwrap();
            }
        }
    });
    let (first, v) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(first, "progress");
    assert_eq!(v["job"]["state"], "planned", "{v}");
    assert!(v["rows"][0]["planned"].as_u64().unwrap() >= planned, "the plan's rows are in the catalog: {v}");
    let (st, v) = post(&s, OPS, &format!("/api/v1/jobs/{id}/start"), None);
    assert_eq!(st, 202, "{v}");
    let t = Instant::now();
    let mut events = vec![first];
    let last = loop {
        let (e, v) = rx.recv_timeout(Duration::from_secs(60)).expect("the stream ends with the job");
        events.push(e.clone());
        if e == "end" {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(120));
    };
    reader.join().unwrap();
    assert_eq!(last["job"]["state"], "succeeded", "{last}");
    assert_eq!(last["job"]["tasks"][0]["recordings"].as_u64(), Some(planned), "{last}");
    assert_eq!(events.iter().filter(|e| *e == "end").count(), 1, "{events:?}");

    // Metrics: the finished job's run time is in the histogram, once.
    let text = s.get(USER, "/metrics").text().unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("reclife_job_duration_seconds_count{kind=\"backup\",state=\"succeeded\"}"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with(" 1"), "{line}");
    let again = s.get(USER, "/metrics").text().unwrap();
    assert!(again.contains(line), "a job observed twice");
    assert!(text.contains("reclife_muxer_pairs{status=\"muxed\"} 0"), "{text}");
}

#[test]
fn check_and_the_muxer_through_the_api() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    assert_eq!(s.get(USER, "/api/v1/check").status(), 403, "a check reads everything: ops only");
    let v = s.json(OPS, "/api/v1/check");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["report"]["recordings"].as_u64().unwrap() >= 6, "{v}");
    // A media file no document points at.
    let orphan = node.data().join("media/ORPHAN0000000000000000000000000001/voice.mp3");
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"nobody's").unwrap();
    // Older than the repair's grace period (a younger one may be a writer's upload).
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&orphan).unwrap().set_modified(old).unwrap();
    let v = s.json(OPS, "/api/v1/check");
    assert_eq!(v["ok"], false, "{v}");
    let f = &v["report"]["findings"][0];
    assert_eq!(f["kind"], "orphan-media", "{v}");
    assert!(f["item"].as_str().unwrap().contains("ORPHAN"), "{v}");
    // A GET never repairs, whatever it asks; the repair is a JSON POST.
    for q in ["repair=maybe", "repair=true"] {
        let r = s.get(OPS, &format!("/api/v1/check?{q}"));
        assert_eq!(r.status(), 400, "{q}");
        let v: Value = r.json().unwrap();
        assert!(v["statusMessage"].as_str().unwrap().contains("POST /api/v1/check/repair"), "{v}");
    }
    assert!(orphan.exists(), "a GET repaired");
    let r = s.client().post(format!("{}/api/v1/check/repair", s.url)).basic_auth(OPS.0, Some(OPS.1)).send().unwrap();
    assert_eq!(r.status(), 415, "a repair without a JSON Content-Type");
    assert!(orphan.exists());
    let (st, v) = post(&s, USER, "/api/v1/check/repair", None);
    assert_eq!(st, 403, "{v}");
    let (st, v) = post(&s, OPS, "/api/v1/check/repair", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(!orphan.exists());

    let m = s.json(USER, "/api/v1/muxer");
    assert_eq!(m["muxed"], 0, "{m}");
    assert_eq!(m["failed"].as_array().unwrap().len(), 0, "{m}");
    let (st, _) = post(&s, OPS, "/api/v1/muxer/retry/SCREEN-NONE", None);
    assert_eq!(st, 404);
}

#[test]
fn tls_and_json_logs() {
    let node = Node::new(0);
    let dir = node.dir.path();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut cfg = std::fs::read_to_string(node.config()).unwrap();
    cfg.push_str("tls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"); // relative to the config file
    std::fs::write(node.config(), cfg).unwrap();
    let s = node.serve(&["-v", "--log-format", "json"]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let curl = |args: &[&str]| {
        std::process::Command::new("curl").args(["-sS", "--max-time", "20"]).args(args).output().unwrap()
    };
    let ok = curl(&["--cacert", cert.to_str().unwrap(), &format!("{}/healthz", s.url)]);
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "ok\n", "{}", String::from_utf8_lossy(&ok.stderr));
    let auth = format!("{}:{}", USER.0, USER.1);
    let v = curl(&["--cacert", cert.to_str().unwrap(), "-u", &auth, &format!("{}/api/v2/recordings", s.url)]);
    let v: Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(v["recordings"].as_array().unwrap().len(), 4, "{v}");
    assert!(v["recordings"][0]["mediaFiles"][0]["mediaUri"].as_str().unwrap().starts_with("https://"), "{v}");
    // Plain HTTP on the TLS port gets nothing; the server goes on.
    let plain = curl(&[&s.url.replace("https://", "http://")]);
    assert!(!plain.status.success());
    let ok = curl(&["--cacert", cert.to_str().unwrap(), &format!("{}/readyz", s.url)]);
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "ready\n");
    // Logs: one JSON object a line, with the event's fields.
    let log = api_support::read(&s.stderr);
    let listening = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .find(|v| v["message"] == "API listening")
        .unwrap_or_else(|| panic!("{log}"));
    assert_eq!(listening["level"], "INFO");
    assert_eq!(listening["tls"], true);
    assert!(!log.contains(USER.1), "a password in the log");
}
