//! reclife's own API: jobs (list with paging, show) and rules (list, validate), and /metrics.

mod api_support;

use api_support::{Node, OPS, USER};
use serde_json::Value;

#[test]
fn jobs_rules_and_metrics() {
    let node = Node::new(0);
    // Three on-demand jobs, made by the CLI the API reads.
    let loc = format!("file://{}", node.dir.path().join("backups").display());
    let mut made = Vec::new();
    for _ in 0..3 {
        let out = node
            .cmd()
            .args(["backup", "--type", "voice", "--min-age", "1", "--location", &loc, "--no-zip", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        made.push(String::from_utf8_lossy(&out.stdout).to_string());
    }
    let s = node.serve(&[]);

    let all = s.json(USER, "/api/v1/jobs");
    let jobs = all["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 3, "{all}");
    assert!(all.get("next").is_none());
    for j in jobs {
        assert_eq!(j["kind"], "backup");
        assert_eq!(j["state"], "succeeded", "{j}");
        assert!(made.iter().any(|m| m.contains(j["id"].as_str().unwrap())), "job {} not printed by the CLI", j["id"]);
    }
    // Paging: one at a time through `next`, every job once, in order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/api/v1/jobs?limit=1&after={a}"),
            None => "/api/v1/jobs?limit=1".into(),
        };
        let p = s.json(USER, &q);
        seen.extend(p["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()));
        match p.get("next").and_then(Value::as_str) {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let want: Vec<String> = jobs.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(seen, want);
    let id = &want[1];
    let one = s.json(USER, &format!("/api/v1/jobs/{id}"));
    assert_eq!(one["job"]["id"], id.as_str());
    assert!(one["job"]["tasks"][0]["recordings"].as_u64().unwrap() >= 1, "{one}");
    let r = s.get(USER, "/api/v1/jobs/j-nope");
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().unwrap()["statusCode"], 3);
    let long_after = format!("after={}", "j".repeat(300));
    for bad in ["limit=0", "limit=1001", "limit=x", "colour=red", "limit=99999999999999999999999", &long_after] {
        let r = s.get(USER, &format!("/api/v1/jobs?{bad}"));
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(r.json::<Value>().unwrap()["statusCode"], 2, "{bad}");
    }

    // Rules: the three shipped rules; validate a good one and a bad one (with its line).
    let rules = s.json(USER, "/api/v1/rules");
    let names: Vec<&str> =
        rules["rules"].as_array().unwrap().iter().map(|r| r["rule"]["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{rules}");
    assert!(rules["rules"][0]["runs_here"].as_bool().unwrap());
    let good = std::fs::read_to_string(api_support::repo().join("rules/purge-old.toml")).unwrap();
    let post = |body: &str| {
        s.send(OPS, reqwest::Method::POST, "/api/v1/rules/validate", Some(serde_json::json!({ "text": body })))
    };
    // A POST like any other: JSON only (the rule's text is a field).
    let r = s
        .client()
        .post(format!("{}/api/v1/rules/validate", s.url))
        .basic_auth(OPS.0, Some(OPS.1))
        .header("content-type", "text/plain")
        .body(good.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = post(&good).json().unwrap();
    assert_eq!(v["valid"], true, "{v}");
    let bad = good.replacen("schedule", "schedul", 1);
    let v: Value = post(&bad).json().unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert!(v["problems"][0]["line"].as_u64().is_some(), "{v}");

    // Metrics: text format, recordings by kind, jobs by state, requests by route and status.
    let text = s.get(USER, "/metrics").text().unwrap();
    assert!(text.contains("reclife_recordings{kind=\"voice\"} 4"), "{text}");
    assert!(text.contains("reclife_recordings{kind=\"screen\"} 2"), "{text}");
    assert!(text.contains("reclife_jobs{state=\"succeeded\"} 3"), "{text}");
    let backed: u64 = jobs.iter().map(|j| j["tasks"][0]["recordings"].as_u64().unwrap()).sum();
    assert!(text.contains(&format!("reclife_lifecycle_recordings{{op=\"backup\"}} {backed}")), "{text}");
    assert!(
        text.contains("reclife_http_requests_total{route=\"/api/v1/jobs/{id}\",method=\"GET\",status=\"404\"} 1"),
        "{text}"
    );
    let count = |t: &str| -> u64 {
        let line = t
            .lines()
            .find(|l| {
                l.starts_with("reclife_http_requests_total{route=\"/api/v1/jobs\",method=\"GET\",status=\"200\"}")
            })
            .unwrap();
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let before = count(&text);
    s.json(USER, "/api/v1/jobs");
    assert_eq!(count(&s.get(USER, "/metrics").text().unwrap()), before + 1);
}

/// A backup-then-purge plan created, reviewed, started and followed to its end through the API;
/// `user` may not create or start jobs; a planned job can be cancelled.
#[test]
fn a_plan_runs_end_to_end_through_the_jobs_api() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let c = s.client();
    let post = |who: (&str, &str), path: &str, body: Value| {
        let r = c.post(format!("{}{path}", s.url)).basic_auth(who.0, Some(who.1)).json(&body).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let backups = node.dir.path().join("api-backups");
    let filter = serde_json::json!({ "recording_type": "voice", "min_age": 365 });
    let body = serde_json::json!({ "tasks": [
        { "type": "backup", "filter": filter, "include_screen": true, "location": format!("file://{}", backups.display()) },
        { "type": "purge", "filter": filter, "include_screen": true },
    ]});
    let (st, _) = post(USER, "/api/v1/jobs", body.clone());
    assert_eq!(st, 403, "user may not plan jobs");
    let (st, v) = post(
        OPS,
        "/api/v1/jobs",
        serde_json::json!({ "tasks": [{ "type": "purge", "filter": { "recording_type": "voice" } }] }),
    );
    assert_eq!(st, 400, "a purge without min_age is refused: {v}");
    let (st, v) = post(OPS, "/api/v1/jobs", body);
    assert_eq!(st, 200, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    assert_eq!(v["job"]["state"], "planned");
    // The preview (the server's clock is real: all four sample calls are over a year old): four
    // calls backed up; the purge leaves the nonDelete one alone.
    assert_eq!(v["plan"]["tasks"][0]["recordings"], 4, "{v}");
    assert_eq!(v["plan"]["tasks"][1]["held"], 1, "{v}");
    assert!(!backups.join("x").exists());
    let (st, _) = post(USER, &format!("/api/v1/jobs/{id}/start"), Value::Null);
    assert_eq!(st, 403);
    let (st, v) = post(OPS, &format!("/api/v1/jobs/{id}/start"), Value::Null);
    assert_eq!(st, 202, "{v}");
    let job = ended(&s, &id);
    assert_eq!(job["job"]["state"], "succeeded", "{job}");
    assert_eq!(job["job"]["tasks"][1]["recordings"], 3, "{job}");
    assert_eq!(job["job"]["tasks"][1]["held"], 1, "{job}");
    let (st, _) = post(OPS, &format!("/api/v1/jobs/{id}/start"), Value::Null);
    assert_eq!(st, 409, "an ended job cannot start again");
    assert_eq!(s.get(USER, "/api/v2/recordings/CALLA0000000000000000000000000001").status(), 404, "purged");
    assert_eq!(std::fs::read_dir(&backups).unwrap().count(), 1, "one archive");
    // A planned job is cancelled, and its plan dropped.
    let (_, v) = post(
        OPS,
        "/api/v1/jobs",
        serde_json::json!({ "tasks": [{ "type": "purge", "filter": { "recording_type": "voice", "min_age": 1 } }] }),
    );
    let id2 = v["job"]["id"].as_str().unwrap().to_string();
    let (st, v) = post(OPS, &format!("/api/v1/jobs/{id2}/cancel"), Value::Null);
    assert_eq!((st, v["state"].as_str()), (200, Some("cancelled")), "{v}");
    assert_eq!(s.json(USER, &format!("/api/v1/jobs/{id2}"))["job"]["state"], "cancelled");
}

/// Issue 20, sequences 1 and 6 (the start race): a posted job is checked by the same rules as a
/// rule file (a purge is last and alone, with its backup's filter; `min_age = 0` needs
/// `"all_ages": true`), so it never purges what its plan did not show; and of concurrent starts
/// of one planned job exactly one is accepted.
#[test]
fn a_posted_job_is_checked_like_a_rule_and_starts_once() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let c = s.client();
    let post = |path: &str, body: Value| {
        let r = c.post(format!("{}{path}", s.url)).basic_auth(OPS.0, Some(OPS.1)).json(&body).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let loc = format!("file://{}", node.dir.path().join("api-backups").display());
    let jobs_before = s.json(USER, "/api/v1/jobs")["jobs"].as_array().unwrap().len();
    let task = |op: &str, min: u32| {
        let mut t = serde_json::json!({ "type": op, "filter": { "recording_type": "voice", "min_age": min } });
        if op == "backup" {
            t["location"] = Value::String(loc.clone());
        }
        t
    };
    for (body, want) in [
        (serde_json::json!({ "tasks": [task("backup", 30), task("purge", 365)] }), "must equal"),
        (serde_json::json!({ "tasks": [task("purge", 365), task("backup", 365)] }), "last"),
        (serde_json::json!({ "tasks": [task("purge", 365), task("purge", 365)] }), "only one purge"),
        (serde_json::json!({ "tasks": [task("purge", 0)] }), "all_ages"),
        (serde_json::json!({ "tasks": [{ "type": "purge", "filter": { "recording_type": "screen" } }] }), "all_ages"),
    ] {
        let (st, v) = post("/api/v1/jobs", body.clone());
        assert_eq!(st, 400, "{body} was accepted: {v}");
        let msg = v["statusMessage"].as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
        assert!(msg.contains(want), "{body}: {msg}");
    }
    assert_eq!(s.json(USER, "/api/v1/jobs")["jobs"].as_array().unwrap().len(), jobs_before, "a refused job was kept");
    // Confirmed, a purge of every age is planned.
    let (st, v) = post("/api/v1/jobs", serde_json::json!({ "tasks": [task("purge", 0)], "all_ages": true }));
    assert_eq!(st, 200, "{v}");
    let (st, _) = post(&format!("/api/v1/jobs/{}/cancel", v["job"]["id"].as_str().unwrap()), Value::Null);
    assert_eq!(st, 200);

    // Four concurrent starts of one plan: one 202, three 409; the job runs once.
    let (st, v) = post("/api/v1/jobs", serde_json::json!({ "tasks": [task("backup", 365), task("purge", 365)] }));
    assert_eq!(st, 200, "{v}");
    let id = v["job"]["id"].as_str().unwrap().to_string();
    let planned = v["plan"]["tasks"][0]["recordings"].as_u64().unwrap();
    let codes: Vec<u16> = std::thread::scope(|sc| {
        let hs: Vec<_> =
            (0..4).map(|_| sc.spawn(|| post(&format!("/api/v1/jobs/{id}/start"), Value::Null).0)).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, [202, 409, 409, 409], "{codes:?}");
    let job = ended(&s, &id);
    assert_eq!(job["job"]["state"], "succeeded", "{job}");
    let purged =
        job["job"]["tasks"][1]["recordings"].as_u64().unwrap() + job["job"]["tasks"][1]["held"].as_u64().unwrap();
    assert_eq!(purged, planned, "the purge acted on other recordings than the plan showed: {job}");
    let (st, _) = post(&format!("/api/v1/jobs/{id}/cancel"), Value::Null);
    assert_eq!(st, 200, "cancelling an ended job is a no-op");
}

/// Job `id` once it has ended (at most a minute).
fn ended(s: &api_support::Server, id: &str) -> Value {
    let t = std::time::Instant::now();
    loop {
        let j = s.json(USER, &format!("/api/v1/jobs/{id}"));
        let state = j["job"]["state"].as_str().unwrap().to_string();
        if state != "planned" && state != "running" {
            return j;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "the job never ended: {j}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
