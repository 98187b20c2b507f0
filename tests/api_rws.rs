//! The RWS-compatible endpoints against the real binary: paging, filters, single recordings,
//! media with Range, labels and holds, and the error envelope.

mod api_support;

use api_support::{Node, CCID, OPS, USER};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashSet;

/// Follows `nextUri` from `first`; returns every recording and the number of pages.
fn walk(s: &api_support::Server, who: (&str, &str), first: &str) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut pages = 0;
    let mut next = Some(first.to_string());
    while let Some(uri) = next.take() {
        let v = s.json(who, &uri);
        pages += 1;
        out.extend(v["recordings"].as_array().unwrap().iter().cloned());
        next = v.get("nextUri").and_then(Value::as_str).map(str::to_string);
        assert!(pages < 100_000, "paging does not end");
    }
    (out, pages)
}

fn time(v: &Value, f: &str) -> DateTime<Utc> {
    reclife::model::parse_time(&v[f]).unwrap_or_else(|| panic!("{f} of {}", v["id"]))
}

fn users_of(doc: &Value) -> Vec<String> {
    let mut u = Vec::new();
    for m in doc["mediaFiles"].as_array().into_iter().flatten() {
        if let Some(n) = m["parameters"]["username"].as_str() {
            u.push(n.to_string());
        }
    }
    for e in doc["eventHistory"].as_array().into_iter().flatten() {
        if e["event"] == "Joined" && e["contact"]["type"] == "User" {
            if let Some(n) = e["contact"]["userName"].as_str() {
                u.push(n.to_string());
            }
        }
    }
    u
}

fn data_values(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for e in doc["eventHistory"].as_array().into_iter().flatten() {
        for part in ["added", "updated"] {
            for (_, v) in e["data"][part].as_object().into_iter().flatten() {
                if let Some(s) = v.as_str() {
                    out.push(s.to_string());
                }
            }
        }
    }
    out
}

fn ids(recs: &[Value]) -> Vec<String> {
    recs.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn set(recs: &[Value]) -> HashSet<String> {
    ids(recs).into_iter().collect()
}

#[test]
fn paging_visits_every_recording_once_and_filters_match() {
    let node = Node::new(10_000);
    let s = node.serve(&[]);
    // 10,000 synthetic calls and the 4 sample calls (the 2 screen recordings are not listed).
    let (all, pages) = walk(&s, USER, "/api/v2/recordings?limit=100");
    let got = ids(&all);
    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "a recording came twice");
    assert_eq!(got.len(), 10_004);
    assert!(pages >= 101, "{pages} pages");
    // In (startTime, id) order, as the catalog scrolls.
    let keys: Vec<(DateTime<Utc>, String)> =
        all.iter().map(|r| (time(r, "startTime"), r["id"].as_str().unwrap().into())).collect();
    assert!(keys.windows(2).all(|w| w[0] <= w[1]), "pages out of order");

    // The ops path pages the same way, and its nextUri keeps the ops path.
    let v = s.json(OPS, &format!("/api/v2/ops/contact-centers/{CCID}/recordings?limit=7&scanAndScroll=true"));
    assert_eq!(v["recordings"].as_array().unwrap().len(), 7);
    let next = v["nextUri"].as_str().unwrap();
    assert!(next.starts_with(&format!("{}/api/v2/ops/contact-centers/{CCID}/recordings?", s.url)), "{next}");
    assert!(next.contains("scanAndScroll=true") && next.contains("limit=7"), "{next}");

    // limit: above 1000 is served as 1000.
    let v = s.json(USER, "/api/v2/recordings?limit=5000");
    assert_eq!(v["recordings"].as_array().unwrap().len(), 1000);
    let v = s.json(USER, "/api/v2/recordings?limit=1");
    assert_eq!(v["recordings"].as_array().unwrap().len(), 1);

    // startTime: started at or after; endTime: ended at or before (epoch ms).
    let a = time(&all[2000], "startTime");
    let b = time(&all[6000], "stopTime");
    let (f, _) = walk(
        &s,
        USER,
        &format!("/api/v2/recordings?startTime={}&endTime={}&limit=1000", a.timestamp_millis(), b.timestamp_millis()),
    );
    let want: HashSet<String> = all
        .iter()
        .filter(|r| time(r, "startTime") >= a && time(r, "stopTime") <= b)
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();
    assert!(want.len() > 1000, "{}", want.len());
    assert_eq!(set(&f), want);
    // The bounds are inclusive: a recording exactly at both ends is found.
    let r = &all[3000];
    let (f, _) = walk(
        &s,
        USER,
        &format!(
            "/api/v2/recordings?startTime={}&endTime={}",
            time(r, "startTime").timestamp_millis(),
            time(r, "stopTime").timestamp_millis()
        ),
    );
    assert!(set(&f).contains(r["id"].as_str().unwrap()));

    // region, userName (wildcard, no case), callerPhoneNumber (wildcard), userData (OR, wildcard).
    let (f, _) = walk(&s, USER, "/api/v2/recordings?region=eu&userName=AGENT12*&limit=1000");
    let want: HashSet<String> = all
        .iter()
        .filter(|r| r["region"] == "eu" && users_of(r).iter().any(|u| u.to_lowercase().starts_with("agent12")))
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(set(&f), want);
    let (f, _) = walk(&s, USER, "/api/v2/recordings?callerPhoneNumber=12*&limit=1000");
    let want: HashSet<String> = all
        .iter()
        .filter(|r| r["callerPhoneNumber"].as_str().unwrap_or("").starts_with("12"))
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();
    assert!(!want.is_empty());
    assert_eq!(set(&f), want);
    let (f, _) = walk(&s, USER, "/api/v2/recordings?userData=gold%20silv*&limit=1000");
    let want: HashSet<String> = all
        .iter()
        .filter(|r| data_values(r).iter().any(|v| v == "gold" || v.starts_with("silv")))
        .map(|r| r["id"].as_str().unwrap().into())
        .collect();
    assert!(want.len() > 1000 && want.len() < 10_000, "{}", want.len());
    assert_eq!(set(&f), want);
    // The cursor is a position, not a session: it resumes in a new server process.
    let v = s.json(USER, "/api/v2/recordings?limit=3");
    let next = v["nextUri"].as_str().unwrap().strip_prefix(&s.url).unwrap().to_string();
    drop(s);
    let s2 = node.serve(&[]);
    let v2 = s2.json(USER, &next);
    assert_eq!(v2["recordings"][0]["id"], all[3]["id"]);
}

fn err(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let v: Value = r.json().unwrap();
    assert_ne!(v["statusCode"], 0, "{v}");
    assert!(v["statusMessage"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    (status, v)
}

#[test]
fn recordings_media_labels_holds_and_errors() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    assert_eq!(
        s.json(USER, "/api/v2/diagnostics/version")["version"].as_str().unwrap(),
        concat!("reclife-", env!("CARGO_PKG_VERSION"))
    );
    let cc = s.json(OPS, "/api/v2/ops/contact-centers");
    assert_eq!(cc["uris"][0], format!("{}/api/v2/ops/contact-centers/{CCID}", s.url));

    // Every sample call: the document, and each mediaUri plays the stored bytes exactly.
    let (calls, _) = walk(&s, USER, "/api/v2/recordings");
    assert_eq!(calls.len(), 4);
    let id = calls[0]["id"].as_str().unwrap().to_string();
    let one = s.json(USER, &format!("/api/v2/recordings/{id}"));
    let rec = &one["recording"];
    assert_eq!(rec["id"], id);
    let m = &rec["mediaFiles"][0];
    let media_id = m["mediaId"].as_str().unwrap();
    assert_eq!(m["mediaPath"], format!("/recordings/{id}/play/{media_id}"));
    assert_eq!(m["mediaDescriptor"]["key"], format!("{id}/{media_id}"));
    let stored = std::fs::read(node.data().join("media").join(&id).join(media_id)).unwrap();
    let uri = m["mediaUri"].as_str().unwrap();
    let r = s.get(USER, uri);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], m["type"].as_str().unwrap());
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(r.bytes().unwrap().as_ref(), &stored[..]);
    let n = stored.len();
    for (range, a, b) in [
        ("bytes=0-0".to_string(), 0, 0),
        ("bytes=100-4195".into(), 100, 4195),
        (format!("bytes={}-", n - 10), n - 10, n - 1),
        ("bytes=-333".into(), n - 333, n - 1),
        (format!("bytes=5-{}", n + 100), 5, n - 1),
    ] {
        let r = s.client().get(uri).basic_auth(USER.0, Some(USER.1)).header("Range", &range).send().unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(r.headers()["content-range"], format!("bytes {a}-{b}/{n}"), "{range}");
        assert_eq!(r.bytes().unwrap().as_ref(), &stored[a..=b], "{range}");
    }
    let r = s.client().get(uri).basic_auth(USER.0, Some(USER.1)).header("Range", format!("bytes={n}-")).send().unwrap();
    assert_eq!(r.headers()["content-range"], format!("bytes */{n}"));
    assert_eq!(err(r).0, 416);
    // The ops play path serves the same bytes.
    let r = s.get(OPS, &format!("/api/v2/ops/contact-centers/{CCID}/recordings/{id}/play/{media_id}"));
    assert_eq!(r.bytes().unwrap().as_ref(), &stored[..]);

    // Screen recordings: listed and played under /api/v2/screen-recordings.
    let (screens, _) = walk(&s, USER, "/api/v2/screen-recordings");
    assert_eq!(screens.len(), 2);
    let sid = screens[0]["id"].as_str().unwrap();
    let sm = &screens[0]["mediaFiles"][0];
    assert!(sm["mediaPath"].as_str().unwrap().starts_with(&format!("/screen-recordings/{sid}/content/")));
    let sstored = std::fs::read(node.data().join("media").join(sid).join(sm["mediaId"].as_str().unwrap())).unwrap();
    assert_eq!(s.get(USER, sm["mediaUri"].as_str().unwrap()).bytes().unwrap().as_ref(), &sstored[..]);
    // A screen recording is not a call recording, and the reverse.
    assert_eq!(err(s.get(USER, &format!("/api/v2/recordings/{sid}"))).0, 404);
    assert_eq!(err(s.get(USER, &format!("/api/v2/screen-recordings/{id}"))).0, 404);

    // Not found, with code 3.
    let (st, v) = err(s.get(USER, "/api/v2/recordings/NOPE"));
    assert_eq!((st, v["statusCode"].as_i64()), (404, Some(3)));
    assert!(v["statusMessage"].as_str().unwrap().contains("NOPE"));
    let (st, v) = err(s.get(USER, &format!("/api/v2/recordings/{id}/play/other.mp3")));
    assert_eq!(st, 404);
    assert!(v["statusMessage"].as_str().unwrap().contains("other.mp3"));
    assert_eq!(err(s.get(OPS, "/api/v2/ops/contact-centers/elsewhere/recordings")).0, 404);

    // Bad parameters: 400, code 2, and the message names the parameter.
    for (q, word) in [
        ("limit=0", "limit"),
        ("limit=-5", "limit"),
        ("limit=ten", "limit"),
        ("startTime=yesterday", "startTime"),
        ("endTime=1e9", "endTime"),
        ("cursor=garbage", "cursor"),
        ("color=red", "color"),
        ("region=us&region=eu", "region"),
        ("scanAndScroll=maybe", "scanAndScroll"),
        ("callerPhoneNumber=--", "callerPhoneNumber"),
    ] {
        let (st, v) = err(s.get(USER, &format!("/api/v2/recordings?{q}")));
        assert_eq!((st, v["statusCode"].as_i64()), (400, Some(2)), "{q}");
        assert!(v["statusMessage"].as_str().unwrap().contains(word), "{q}: {v}");
    }

    // Labels and holds: ops only; they show in the document.
    let c = s.client();
    let post = |who: (&str, &str), path: &str, body: &str| {
        c.post(format!("{}{path}", s.url))
            .basic_auth(who.0, Some(who.1))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let del = |who: (&str, &str), path: &str| s.send(who, reqwest::Method::DELETE, path, None);
    assert_eq!(err(post(USER, &format!("/api/v2/recordings/{id}/labels"), r#"{"label":"vip"}"#)).0, 403);
    assert_eq!(post(OPS, &format!("/api/v2/recordings/{id}/labels"), r#"{"label":"vip"}"#).status(), 200);
    let labels =
        |s: &api_support::Server| s.json(USER, &format!("/api/v2/recordings/{id}"))["recording"]["labels"].clone();
    assert!(labels(&s).as_array().unwrap().iter().any(|l| l == "vip"), "{}", labels(&s));
    assert_eq!(del(OPS, &format!("/api/v2/recordings/{id}/labels/vip")).status(), 200);
    assert!(!labels(&s).as_array().into_iter().flatten().any(|l| l == "vip"));
    assert_eq!(err(post(OPS, &format!("/api/v2/recordings/{id}/labels"), r#"{"label":"../x"}"#)).0, 400);
    assert_eq!(err(post(OPS, &format!("/api/v2/recordings/{id}/labels"), r#"{"name":"x"}"#)).0, 400);
    assert_eq!(err(post(OPS, "/api/v2/recordings/NOPE/labels", r#"{"label":"x"}"#)).0, 404);
    assert_eq!(post(OPS, &format!("/api/v2/recordings/{id}/hold"), r#"{"reason":"case 17"}"#).status(), 200);
    assert_eq!(s.json(USER, &format!("/api/v2/recordings/{id}"))["recording"]["hold"]["reason"], "case 17");
    let listed = node.cmd().args(["recordings", "list", "--held", "--json"]).output().unwrap();
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&id));
    assert_eq!(del(OPS, &format!("/api/v2/recordings/{id}/hold")).status(), 200);
    assert!(s.json(USER, &format!("/api/v2/recordings/{id}"))["recording"].get("hold").is_none());
    assert_eq!(err(post(OPS, &format!("/api/v2/screen-recordings/{sid}/hold"), r#"{"reason":" "}"#)).0, 400);
}

#[test]
fn delete_is_journaled_audited_and_refused_when_held_and_internal_ingest() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let c = s.client();
    let del = |who: (&str, &str), path: &str| s.send(who, reqwest::Method::DELETE, path, None);
    let post = |who: (&str, &str), path: &str, body: String| {
        c.post(format!("{}{path}", s.url))
            .basic_auth(who.0, Some(who.1))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap()
    };
    let (calls, _) = walk(&s, USER, "/api/v2/recordings");
    let (screens, _) = walk(&s, USER, "/api/v2/screen-recordings");
    let held = s.json(USER, "/api/v2/recordings"); // nonDelete comes from the document
    let non_delete: Vec<&Value> =
        held["recordings"].as_array().unwrap().iter().filter(|r| r["nonDelete"] == true).collect();
    assert_eq!(non_delete.len(), 1);
    let nd = non_delete[0]["id"].as_str().unwrap();
    let (st, v) = err(del(OPS, &format!("/api/v2/recordings/{nd}")));
    assert_eq!((st, v["statusCode"].as_i64()), (409, Some(6)));
    assert!(v["statusMessage"].as_str().unwrap().contains("nonDelete"), "{v}");

    // A call with screen recordings: refused while held, deleted with its screens after.
    let call = screens[0]["callRecordingId"].as_str().unwrap().to_string();
    let its_screens: Vec<String> = screens
        .iter()
        .filter(|x| x["callRecordingId"] == call.as_str())
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    assert!(calls.iter().any(|r| r["id"] == call.as_str()));
    assert_eq!(err(del(USER, &format!("/api/v2/recordings/{call}"))).0, 403);
    assert_eq!(post(OPS, &format!("/api/v2/recordings/{call}/hold"), r#"{"reason":"audit 9"}"#.into()).status(), 200);
    let (st, v) = err(del(OPS, &format!("/api/v2/recordings/{call}")));
    assert_eq!(st, 409);
    assert!(v["statusMessage"].as_str().unwrap().contains("audit 9"), "{v}");
    assert_eq!(del(OPS, &format!("/api/v2/recordings/{call}/hold")).status(), 200);
    let call_doc = s.json(USER, &format!("/api/v2/recordings/{call}"))["recording"].clone();
    let v: Value = del(OPS, &format!("/api/v2/recordings/{call}")).json().unwrap();
    assert_eq!(v["statusCode"], 0, "{v}");
    let mut deleted: Vec<String> =
        v["deleted"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
    deleted.sort();
    let mut want = its_screens.clone();
    want.push(call.clone());
    want.sort();
    assert_eq!(deleted, want);
    for id in &want {
        assert_eq!(err(s.get(USER, &format!("/api/v2/recordings/{id}"))).0, 404);
        assert!(
            !node.data().join("media").join(id).read_dir().is_ok_and(|mut d| d.next().is_some()),
            "media of {id} left"
        );
    }
    let audit = std::fs::read_to_string(node.data().join("audit/deletions.jsonl")).unwrap();
    for id in &want {
        let lines: Vec<&str> = audit.lines().filter(|l| l.contains(&format!("\"recording\":\"{id}\""))).collect();
        assert_eq!(lines.len(), 1, "{audit}");
        assert!(lines[0].contains("\"job\":\"api:ops\""), "{}", lines[0]);
    }
    assert_eq!(err(del(OPS, &format!("/api/v2/recordings/{call}"))).0, 404);

    // The Recording Processor's call: media already in the store, then the document.
    let new_id = "CALLNEW000000000000000000000000099";
    let mut doc = call_doc.clone();
    doc["id"] = Value::String(new_id.into());
    let media_id = doc["mediaFiles"][0]["mediaId"].as_str().unwrap().to_string();
    let path = format!("/internal-api/contact-centers/{CCID}/recordings");
    let (st, v) = err(post(OPS, &path, doc.to_string()));
    assert_eq!(st, 400);
    assert!(v["statusMessage"].as_str().unwrap().contains(&media_id), "{v}");
    let bytes = b"not really an mp3, but bytes all the same".repeat(100);
    let dir = node.data().join("media").join(new_id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&media_id), &bytes).unwrap();
    doc["mediaFiles"][0]["size"] = Value::String(bytes.len().to_string());
    doc.as_object_mut().unwrap().remove("hold");
    assert_eq!(err(post(USER, &path, doc.to_string())).0, 403);
    assert_eq!(err(post(OPS, "/internal-api/contact-centers/other/recordings", doc.to_string())).0, 404);
    assert_eq!(err(post(OPS, &path, "{\"id\":".into())).0, 400);
    let v: Value = post(OPS, &path, doc.to_string()).json().unwrap();
    assert_eq!((v["statusCode"].as_i64(), v["result"].as_str()), (Some(0), Some("inserted")), "{v}");
    let v: Value = post(OPS, &path, doc.to_string()).json().unwrap();
    assert_eq!(v["result"], "unchanged");
    let got = s.get(USER, &format!("/api/v2/recordings/{new_id}/play/{media_id}")).bytes().unwrap();
    assert_eq!(got.as_ref(), &bytes[..]);
}

/// A call whose metadata says its media is a web page, with a script in it.
const HTML_CALL: &str = "CALLHTML0000000000000000000000001";

/// Media is never a page: an allow-listed audio type is served as itself, anything else as an
/// attachment of no type a browser renders; every media answer is sandboxed and every answer
/// says nosniff.
#[test]
fn media_is_served_as_audio_video_or_an_attachment_never_as_a_page() {
    let node = Node::new(0);
    node.add_call(HTML_CALL, "page.html", "text/html", b"<!doctype html><script>document.title='ran'</script>");
    let s = node.serve(&[]);
    let doc = s.json(OPS, &format!("/api/v2/recordings/{HTML_CALL}"));
    let uri = doc["recording"]["mediaFiles"][0]["mediaUri"].as_str().unwrap().to_string();
    for who in [OPS, USER] {
        let r = s.get(who, &uri);
        assert_eq!(r.status(), 200);
        let h = r.headers();
        assert_eq!(h["content-type"], "application/octet-stream", "{h:?}");
        assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment"), "{h:?}");
        assert_eq!(h["content-security-policy"], "sandbox", "{h:?}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{h:?}");
    }
    // A range of it too.
    let r = s.client().get(&uri).basic_auth(OPS.0, Some(OPS.1)).header("Range", "bytes=0-4").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.headers()["content-security-policy"], "sandbox");

    // An audio file keeps its type, sandboxed all the same.
    let call = s.json(USER, "/api/v2/recordings/CALLA0000000000000000000000000001");
    let m = &call["recording"]["mediaFiles"][0];
    let r = s.get(USER, m["mediaUri"].as_str().unwrap());
    assert_eq!(r.headers()["content-type"], m["type"].as_str().unwrap());
    assert_eq!(r.headers()["content-security-policy"], "sandbox");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // JSON answers and errors are not sniffed either.
    assert_eq!(s.get(USER, "/api/v2/recordings").headers()["x-content-type-options"], "nosniff");
    assert_eq!(s.get(USER, "/api/v2/recordings/NOPE").headers()["x-content-type-options"], "nosniff");
}

/// Documents served to the `user` role name no store: no `mediaDescriptor.storage`, no path of
/// this server's data directory, none of GIR's own descriptors; `ops` sees where media lives.
#[test]
fn user_role_documents_carry_no_store_paths() {
    let node = Node::new(0);
    node.add_call(HTML_CALL, "a.mp3", "audio/mp3", b"ID3 not really");
    let s = node.serve(&[]);
    let data = node.data().display().to_string();
    let secret = |text: &str| {
        ["\"storage\"", data.as_str(), "/srv/gir-store", "secret-bucket", "originalMediaDescriptor"]
            .into_iter()
            .filter(|w| text.contains(w))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let call = "CALLA0000000000000000000000000001";
    let screens = s.json(USER, "/api/v2/screen-recordings");
    let sid = screens["recordings"][0]["id"].as_str().unwrap().to_string();
    for path in [
        "/api/v2/recordings".to_string(),
        "/api/v2/screen-recordings".to_string(),
        format!("/api/v2/recordings/{call}"),
        format!("/api/v2/recordings/{HTML_CALL}"),
        format!("/api/v2/screen-recordings/{sid}"),
    ] {
        let r = s.get(USER, &path);
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().unwrap();
        assert!(secret(&text).is_empty(), "{path} shows the user role {:?}: {text}", secret(&text));
        assert!(text.contains("\"mediaDescriptor\":{\"key\":"), "{path}: the media's key stays: {text}");
    }
    // The recording's page shows its metadata the same way (quotes escaped in HTML).
    let page = s.get(USER, &format!("/recordings/{HTML_CALL}")).text().unwrap().replace("&quot;", "\"");
    assert!(page.contains("mediaId"), "{page}");
    assert!(secret(&page).is_empty(), "the page shows the user role {:?}", secret(&page));
    // ops sees where media lives.
    let v = s.json(OPS, &format!("/api/v2/recordings/{call}"));
    assert!(v["recording"]["mediaFiles"][0]["mediaDescriptor"]["storage"].as_str().is_some(), "{v}");
    let v = s.json(OPS, &format!("/api/v2/ops/contact-centers/{CCID}/recordings/{call}"));
    assert!(v["recording"]["mediaFiles"][0]["mediaDescriptor"]["storage"].as_str().is_some(), "{v}");
}

/// Every listing parameter is bounded: a time past what a date can hold, too many terms or too
/// long a value is a 400 in the envelope naming the parameter, never a panic or a 500 with the
/// database's words, and the server goes on.
#[test]
fn listing_parameters_are_bounded() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let terms = |n: usize| vec!["gold*"; n].join("%20");
    let long = "x".repeat(5000);
    let cases = [
        ("endTime=8210266876799999".to_string(), "endTime"),
        ("startTime=0&endTime=8210266876799999".into(), "endTime"),
        ("startTime=9223372036854775807".into(), "startTime"),
        (format!("userData={}", terms(1000)), "userData"),
        (format!("userData={}", terms(100)), "userData"),
        (format!("userName={}", terms(100)), "userName"),
        (format!("userName={}%20AND", terms(40)), "userName"),
        (format!("region={long}"), "region"),
        (format!("callerPhoneNumber={}", "1".repeat(3000)), "callerPhoneNumber"),
        (format!("cursor={long}"), "cursor"),
    ];
    for path in
        ["/api/v2/recordings", "/api/v2/screen-recordings", &format!("/api/v2/ops/contact-centers/{CCID}/recordings")]
    {
        for (q, word) in &cases {
            let r = s.get(OPS, &format!("{path}?{q}"));
            let (st, v) = err(r);
            assert_eq!((st, v["statusCode"].as_i64()), (400, Some(2)), "{path}?{q:.60}: {v}");
            let m = v["statusMessage"].as_str().unwrap();
            assert!(m.starts_with(word) || m.contains(&format!("{word}=")), "{q:.60}: {m}");
            assert!(!m.to_lowercase().contains("sql") && m.len() < 400, "{q:.60}: {m}");
        }
    }
    // Within the bounds, the same searches answer.
    let v = s.json(USER, &format!("/api/v2/recordings?userData={}&endTime=8210266876799998", terms(32)));
    assert!(v["recordings"].is_array(), "{v}");
    assert_eq!(s.json(USER, "/api/v2/diagnostics/version")["statusCode"], 0);
    let log = api_support::read(&s.stderr);
    assert!(!log.contains("panicked"), "{log}");
}

/// The API's writes are JSON, from this origin or from no browser page: a cross-site form
/// (text/plain, form-encoded, no body) or a request naming another origin changes nothing.
#[test]
fn writes_are_json_from_this_origin_only() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let call = "CALLA0000000000000000000000000001";
    let hold_path = format!("/api/v2/recordings/{call}/hold");
    let send = |method: reqwest::Method, path: &str, ct: Option<&str>, hdr: Option<(&str, &str)>, body: &str| {
        let mut r = s
            .client()
            .request(method, format!("{}{path}", s.url))
            .basic_auth(OPS.0, Some(OPS.1))
            .body(body.to_string());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        if let Some((k, v)) = hdr {
            r = r.header(k, v);
        }
        r.send().unwrap()
    };
    let own = s.url.clone();
    let post = reqwest::Method::POST;
    for (ct, hdr, want) in [
        (Some("text/plain"), None, 415),
        (Some("application/x-www-form-urlencoded"), None, 415),
        (Some("multipart/form-data; boundary=x"), None, 415),
        (None, None, 415),
        (Some("application/json"), Some(("origin", "http://127.0.0.1:1")), 403),
        (Some("application/json"), Some(("origin", "null")), 403),
        (Some("text/plain"), Some(("origin", "http://evil.example")), 403),
        (Some("application/json"), Some(("referer", "http://evil.example/page")), 403),
    ] {
        let (st, v) = err(send(post.clone(), &hold_path, ct, hdr, r#"{"reason":"forged"}"#));
        assert_eq!(st, want, "{ct:?} {hdr:?}: {v}");
        let code = if want == 415 { 2 } else { 5 };
        assert_eq!(v["statusCode"], code, "{v}");
    }
    assert!(
        s.json(USER, &format!("/api/v2/recordings/{call}"))["recording"].get("hold").is_none(),
        "a refused hold held"
    );
    // A rule enabled, a check repaired, a recording deleted, a document written: refused alike.
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/rules/Purge%20old%20files/enable".to_string()),
        (reqwest::Method::POST, "/api/v1/check/repair".into()),
        (reqwest::Method::DELETE, format!("/api/v2/recordings/{call}")),
        (reqwest::Method::POST, format!("/internal-api/contact-centers/{CCID}/recordings")),
    ] {
        assert_eq!(send(method.clone(), &path, Some("text/plain"), None, "{}").status(), 415, "{method} {path}");
        assert_eq!(
            send(method.clone(), &path, Some("application/json"), Some(("origin", "http://evil.example")), "{}")
                .status(),
            403,
            "{method} {path}"
        );
    }
    assert_eq!(s.json(USER, "/api/v1/rules/Purge%20old%20files")["rule"]["enabled"], false);
    assert_eq!(s.get(USER, &format!("/api/v2/recordings/{call}")).status(), 200);
    // This server's own origin (or Referer), and clients that name none, may write.
    for hdr in [Some(("origin", own.as_str())), Some(("referer", &format!("{own}/recordings/{call}"))), None] {
        let r = send(post.clone(), &hold_path, Some("application/json; charset=utf-8"), hdr, r#"{"reason":"case 3"}"#);
        assert_eq!(r.status(), 200, "{hdr:?}");
    }
    assert_eq!(s.json(USER, &format!("/api/v2/recordings/{call}"))["recording"]["hold"]["reason"], "case 3");
    // Reads need nothing of the kind.
    assert_eq!(s.get(USER, "/api/v2/recordings").status(), 200);
}

/// Issue 20: a hold on a call protects its screen recordings from the API's DELETE (409 in the
/// envelope, nothing deleted or audited); a hold names who placed it (the API's user), a second
/// hold keeps the first and joins its history, and the CLI shows the same.
#[test]
fn a_held_calls_screen_is_not_deleted_and_holds_name_who_placed_them() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let c = s.client();
    let post = |path: &str, body: &str| {
        c.post(format!("{}{path}", s.url))
            .basic_auth(OPS.0, Some(OPS.1))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    let del = |path: &str| {
        c.delete(format!("{}{path}", s.url))
            .basic_auth(OPS.0, Some(OPS.1))
            .header("content-type", "application/json")
            .send()
            .unwrap()
    };
    let (screens, _) = walk(&s, USER, "/api/v2/screen-recordings");
    let sid = screens[0]["id"].as_str().unwrap().to_string();
    let call = screens[0]["callRecordingId"].as_str().unwrap().to_string();
    assert_eq!(post(&format!("/api/v2/recordings/{call}/hold"), r#"{"reason":"audit 10"}"#).status(), 200);
    let (st, v) = err(del(&format!("/api/v2/screen-recordings/{sid}")));
    assert_eq!((st, v["statusCode"].as_i64()), (409, Some(6)), "{v}");
    assert!(v["statusMessage"].as_str().unwrap().contains("its call is held"), "{v}");
    assert_eq!(s.get(USER, &format!("/api/v2/screen-recordings/{sid}")).status(), 200, "the screen remains");
    let media = node.data().join("media").join(&sid);
    assert!(media.read_dir().unwrap().next().is_some(), "its media remains");
    let audit = std::fs::read_to_string(node.data().join("audit/deletions.jsonl")).unwrap_or_default();
    assert!(!audit.contains(&sid), "{audit}");

    let second: Value = post(&format!("/api/v2/recordings/{call}/hold"), r#"{"reason":"audit 11"}"#).json().unwrap();
    assert_eq!(second["statusCode"], 0);
    assert!(second["statusMessage"].as_str().unwrap().contains("already held"), "{second}");
    let hold = s.json(USER, &format!("/api/v2/recordings/{call}"))["recording"]["hold"].clone();
    assert_eq!((hold["reason"].as_str(), hold["by"].as_str()), (Some("audit 10"), Some("ops")), "{hold}");
    let reasons: Vec<&str> =
        hold["history"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["audit 10", "audit 11"]);

    let shown = node.cmd().args(["recordings", "show", &call]).output().unwrap();
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["reclifeHold"]["by"], "ops", "{shown}");

    assert_eq!(del(&format!("/api/v2/recordings/{call}/hold")).status(), 200);
    let after = s.json(USER, &format!("/api/v2/recordings/{call}"))["recording"].clone();
    assert!(after.get("hold").is_none());
    assert_eq!(after["holdHistory"].as_array().unwrap().last().unwrap()["event"], "released", "{after}");
    let v: Value = del(&format!("/api/v2/screen-recordings/{sid}")).json().unwrap();
    assert_eq!(v["deleted"], serde_json::json!([sid]), "released: the screen goes");
}

/// Issue 22: ids holding `#`, `?`, `%`, `+`, a space and non-ASCII letters are percent-encoded in
/// every URI the server writes (`mediaUri`, `mediaPath`, `nextUri`) and decoded on the way in:
/// a client that follows them gets the recording and its bytes.
#[test]
fn odd_ids_are_percent_encoded_in_every_uri() {
    let node = Node::new(0);
    let id = "odd #1?a%b+c d-é";
    let media = "take #2?x%y+z w-ü.mp3";
    let bytes = b"ID3 odd id media bytes".to_vec();
    node.add_call(id, media, "audio/mp3", &bytes);
    let s = node.serve(&[]);
    // Walk the listing one recording a page, following nextUri as given.
    let mut next = Some(format!("{}/api/v2/recordings?limit=1", s.url));
    let mut found = None;
    let mut pages = 0;
    while let Some(uri) = next.take() {
        pages += 1;
        assert!(pages < 50, "the listing never ended");
        let v: Value = s.client().get(&uri).basic_auth(USER.0, Some(USER.1)).send().unwrap().json().unwrap();
        assert_eq!(v["statusCode"], 0, "{uri}: {v}");
        for r in v["recordings"].as_array().unwrap() {
            if r["id"] == id {
                found = Some(r.clone());
            }
        }
        next = v["nextUri"].as_str().map(str::to_string);
    }
    let rec = found.expect("the odd id is listed");
    let m = &rec["mediaFiles"][0];
    let uri = m["mediaUri"].as_str().unwrap();
    let path = m["mediaPath"].as_str().unwrap();
    for raw in ['#', '?', ' ', '+', 'é', 'ü'] {
        assert!(!path.contains(raw), "{raw:?} unencoded in mediaPath {path}");
    }
    assert!(uri.ends_with(path), "{uri} / {path}");
    let r = s.client().get(uri).basic_auth(USER.0, Some(USER.1)).send().unwrap();
    assert_eq!(r.status(), 200, "{uri}");
    assert_eq!(r.bytes().unwrap().to_vec(), bytes);
    // The recording itself, by its encoded id.
    let one = s.json(USER, &format!("/api/v2/recordings/{}", path.split('/').nth(2).unwrap()));
    assert_eq!(one["recording"]["id"], id, "{one}");
}

/// Issue 22 (playback audit) and 24 (encrypted playback): every media read through the API is
/// one line of `audit/plays.jsonl` (who, what, outcome, bytes, range); a missing media file is
/// a failed line; an encrypted voice file is decrypted by the server and a range of it is the
/// right plaintext, audited with the key that opened it; `reclife check` reads the log.
#[test]
fn plays_are_audited_and_encrypted_media_play_decrypted_with_ranges() {
    use api_support::{encrypted_sample, openssl_decrypt, ENCRYPTED_CALL};
    let node = Node::new(0);
    node.add_keys();
    let before: std::collections::HashMap<_, _> =
        walkdir(&node.data()).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap_or_default())).collect();
    let s = node.serve(&[]);
    let call = "CALLA0000000000000000000000000001";
    let doc = s.json(USER, &format!("/api/v2/recordings/{call}"));
    let m = &doc["recording"]["mediaFiles"][0];
    let (uri, media) = (m["mediaUri"].as_str().unwrap().to_string(), m["mediaId"].as_str().unwrap().to_string());
    let whole = s.get(USER, &uri);
    assert_eq!(whole.status(), 200);
    let size = whole.bytes().unwrap().len() as u64;
    let r = s.client().get(&uri).basic_auth(OPS.0, Some(OPS.1)).header("Range", "bytes=100-199").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().unwrap().len(), 100);
    // The ops path to the same file, and a media id the recording does not list.
    let ops_uri = format!("/api/v2/ops/contact-centers/{CCID}/recordings/{call}/play/{media}");
    assert_eq!(s.get(OPS, &ops_uri).status(), 200);
    assert_eq!(s.get(USER, &format!("/api/v2/recordings/{call}/play/nope.mp3")).status(), 404);
    // A range outside the file.
    let r = s.client().get(&uri).basic_auth(USER.0, Some(USER.1)).header("Range", "bytes=999999-").send().unwrap();
    assert_eq!(r.status(), 416);

    let lines = node.plays(5);
    assert_eq!(lines.len(), 5, "{lines:?}");
    let (a, b, c, d, e) = (&lines[0], &lines[1], &lines[2], &lines[3], &lines[4]);
    assert_eq!(
        (a["user"].as_str(), a["recording"].as_str(), a["media"].as_str()),
        (Some("alice"), Some(call), Some(media.as_str()))
    );
    assert_eq!(
        (a["outcome"].as_str(), a["status"].as_u64(), a["bytes"].as_u64()),
        (Some("succeeded"), Some(200), Some(size))
    );
    assert!(a.get("range").is_none() && a["time"].as_str().is_some(), "{a}");
    assert_eq!(
        (b["user"].as_str(), b["outcome"].as_str(), b["bytes"].as_u64()),
        (Some("ops"), Some("succeeded"), Some(100))
    );
    assert_eq!(b["range"].as_str(), Some(format!("bytes 100-199/{size}").as_str()), "{b}");
    assert_eq!((c["outcome"].as_str(), c["bytes"].as_u64()), (Some("succeeded"), Some(size)), "{c}");
    assert_eq!(
        (d["outcome"].as_str(), d["status"].as_u64(), d["media"].as_str()),
        (Some("failed"), Some(404), Some("nope.mp3"))
    );
    assert!(d["reason"].as_str().unwrap().contains("no media file nope.mp3"), "{d}");
    assert_eq!(
        (e["outcome"].as_str(), e["status"].as_u64(), e["range"].as_str()),
        (Some("failed"), Some(416), Some("bytes=999999-"))
    );

    // A listed media file missing from the store: 404 and a failed line naming it.
    let stored = node.data().join("media").join(call).join(&media);
    std::fs::remove_file(&stored).unwrap();
    assert_eq!(s.get(USER, &uri).status(), 404);
    let lines = node.plays(6);
    let f = &lines[5];
    assert_eq!(
        (f["outcome"].as_str(), f["status"].as_u64(), f["bytes"].as_u64()),
        (Some("failed"), Some(404), Some(0)),
        "{f}"
    );

    // The encrypted call: the API decrypts it; a range is the plaintext's, as openssl opens it.
    let plain = openssl_decrypt(&encrypted_sample());
    let enc = s.json(USER, &format!("/api/v2/recordings/{ENCRYPTED_CALL}"));
    let euri = enc["recording"]["mediaFiles"][0]["mediaUri"].as_str().unwrap().to_string();
    let r = s.client().get(&euri).basic_auth(USER.0, Some(USER.1)).header("Range", "bytes=1000-4999").send().unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], format!("bytes 1000-4999/{}", plain.len()).as_str());
    assert_eq!(r.headers()["x-reclife-key"], "recording-key");
    assert_eq!(r.headers()["content-type"], "audio/mp3");
    assert!(r.bytes().unwrap()[..] == plain[1000..5000], "the range is the plaintext's");
    let r = s.client().get(&euri).basic_auth(USER.0, Some(USER.1)).header("Range", "bytes=-10").send().unwrap();
    assert!(r.bytes().unwrap()[..] == plain[plain.len() - 10..]);
    let r = s.get(USER, &euri);
    assert_eq!(r.headers()["content-length"], plain.len().to_string().as_str());
    assert!(r.bytes().unwrap()[..] == plain[..], "the whole plaintext");
    let lines = node.plays(9);
    let g = &lines[6];
    assert_eq!(
        (g["recording"].as_str(), g["outcome"].as_str(), g["key"].as_str()),
        (Some(ENCRYPTED_CALL), Some("succeeded"), Some("recording-key")),
        "{g}"
    );
    assert_eq!(g["range"].as_str(), Some(format!("bytes 1000-4999/{}", plain.len()).as_str()));
    assert_eq!(lines[8]["bytes"].as_u64(), Some(plain.len() as u64));
    // Nothing plaintext was written: no file the server wrote or changed holds its bytes.
    let head = &plain[..64];
    for f in walkdir(&node.data()) {
        let b = std::fs::read(&f).unwrap_or_default();
        if before.get(&f) != Some(&b) {
            assert!(!b.windows(head.len()).any(|w| w == head), "{} holds plaintext", f.display());
        }
    }
    // The log is 0600, and `reclife check` reads it (a torn last line is reported by line).
    use std::os::unix::fs::PermissionsExt;
    let log = node.data().join("audit/plays.jsonl");
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    use std::io::Write as _;
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b"{\"time\":\"2026").unwrap();
    let out = node.cmd().arg("check").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("plays.jsonl:10"), "{text}");
}

fn walkdir(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walkdir(&p));
        } else {
            out.push(p);
        }
    }
    out
}
