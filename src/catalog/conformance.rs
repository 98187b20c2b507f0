//! The conformance suite every [`Catalog`] must pass. Call [`run`] with a factory that
//! returns a fresh, empty catalog of the backend under test.

use super::{
    Catalog, CatalogError, CatalogExt, Cursor, DeleteOutcome, Doom, Hold, HoldAction, HoldEvent, HoldOutcome,
    HoldState, ManifestRow, Query, RowState, Upsert,
};
use crate::model::{Kind, Recording};
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

/// Runs every check; panics naming the first that fails.
pub fn run(fresh: &dyn Fn() -> Box<dyn Catalog>) {
    upsert_get_and_idempotence(&*fresh());
    delete_with_screens(&*fresh());
    holds(&*fresh());
    labels(&*fresh());
    every_filter(&*fresh());
    attached_data_now(&*fresh());
    scroll_covers_everything_once(&*fresh());
    cursor_resume(&*fresh());
    state_and_leases(&*fresh());
    versions(&*fresh());
    conditional_writes(&*fresh());
    conditional_deletes_and_tombstones(&*fresh());
    screens_by_call_uuid(&*fresh());
    screens_are_held_by_their_call(&*fresh());
    hold_history(&*fresh());
    manifests(&*fresh());
    state_pages_and_lease_lists(&*fresh());
    import_keeps_versions_and_holds(&*fresh(), &*fresh());
    shared_rules(&*fresh());
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
}

/// A call recording document with one media file.
pub fn call_doc(id: &str, start: DateTime<Utc>, extra: serde_json::Value) -> Recording {
    let mut doc = json!({
        "id": id,
        "startTime": start.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "stopTime": (start + Duration::seconds(90)).to_rfc3339(),
        "callType": "Inbound",
        "region": "us",
        "mediaFiles": [{"mediaId": format!("{id}.mp3"), "type": "audio/mp3", "size": "1000",
                        "parameters": {"username": "agent1"}, "partitions": ["sales"]}],
        "eventHistory": [{"event": "Data", "data": {"added": {"Segment": "gold"}}}],
    });
    if let (Some(o), Some(e)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    Recording::parse(&doc.to_string()).expect("test documents parse")
}

fn screen_doc(id: &str, call: &str, start: DateTime<Utc>) -> Recording {
    let doc = json!({
        "id": id, "callRecordingId": call,
        "startTime": start.to_rfc3339(), "stopTime": (start + Duration::seconds(60)).to_rfc3339(),
        "mediaFiles": [{"mediaId": format!("{id}.mp4"), "type": "video/mp4", "size": 5000}],
        "region": "us",
    });
    Recording::parse(&doc.to_string()).expect("test documents parse")
}

fn ids(c: &dyn Catalog, q: &Query, page: usize) -> Vec<String> {
    let mut out = Vec::new();
    for p in c.scroll(q, page) {
        out.extend(p.expect("scroll page").rows.into_iter().map(|r| r.id));
    }
    out
}

fn upsert_get_and_idempotence(c: &dyn Catalog) {
    let r = call_doc("c1", t0(), json!({"undocumented": {"keep": [1, "x"]}}));
    assert_eq!(c.upsert(&r).unwrap(), Upsert::Inserted);
    assert_eq!(c.upsert(&r).unwrap(), Upsert::Unchanged, "same document twice is unchanged");
    let got = c.get("c1").unwrap().expect("get after upsert");
    assert_eq!(got.recording.doc_value(), r.doc_value(), "document comes back equal");
    assert_eq!(got.recording.start, r.start);
    let changed = call_doc("c1", t0(), json!({"region": "eu"}));
    assert_eq!(c.upsert(&changed).unwrap(), Upsert::Updated);
    assert_eq!(c.get("c1").unwrap().unwrap().recording.region.as_deref(), Some("eu"));
    assert!(c.get("nope").unwrap().is_none());
    let many = vec![call_doc("m1", t0(), json!({})), call_doc("m2", t0(), json!({})), changed];
    assert_eq!(c.upsert_many(&many).unwrap(), vec![Upsert::Inserted, Upsert::Inserted, Upsert::Unchanged]);
    let mut enc = call_doc("e1", t0(), json!({}));
    enc.media[0].encrypted = true;
    c.upsert(&enc).unwrap();
    assert!(c.get("e1").unwrap().unwrap().recording.media[0].encrypted, "encrypted flag found by inspection is kept");
    let ask: Vec<String> = ["m2", "nope", "c1", "m1"].iter().map(|s| s.to_string()).collect();
    let got: Vec<String> = c.get_many(&ask).unwrap().into_iter().map(|e| e.recording.id).collect();
    assert_eq!(got, vec!["m2", "c1", "m1"], "get_many: the ones that exist, in the order asked");
    assert!(c.get_many(&[]).unwrap().is_empty());
}

fn delete_with_screens(c: &dyn Catalog) {
    c.upsert(&call_doc("c1", t0(), json!({}))).unwrap();
    c.upsert(&call_doc("c2", t0(), json!({}))).unwrap();
    c.upsert(&screen_doc("s1", "c1", t0())).unwrap();
    c.upsert(&screen_doc("s2", "c1", t0())).unwrap();
    c.upsert(&screen_doc("s3", "c2", t0())).unwrap();
    assert_eq!(c.screens_of("c1").unwrap().len(), 2);
    assert_eq!(c.delete("c1", true).unwrap(), vec!["c1", "s1", "s2"]);
    assert!(c.get("s1").unwrap().is_none());
    assert_eq!(c.delete("c2", false).unwrap(), vec!["c2"]);
    assert!(c.get("s3").unwrap().is_some(), "screens stay without with_screens");
    assert!(matches!(c.delete("c1", true), Err(CatalogError::NotFound(_))));
    // A deleted recording comes back whole when its document is upserted again (restore).
    let again = call_doc("c1", t0(), json!({}));
    assert_eq!(c.upsert(&again).unwrap(), Upsert::Inserted, "re-upsert after delete inserts");
    assert_eq!(c.get("c1").unwrap().unwrap().recording.doc(), again.doc());
    c.upsert(&call_doc("c9", t0(), json!({}))).unwrap();
    assert_eq!(c.delete_many(&["c9".into(), "gone".into(), "c1".into()]).unwrap(), vec!["c9", "c1"]);
    assert!(c.get("c9").unwrap().is_none());
    assert_eq!(
        c.upsert(&call_doc("c9", t0(), json!({}))).unwrap(),
        Upsert::Inserted,
        "re-upsert after delete_many inserts"
    );
}

fn holds(c: &dyn Catalog) {
    c.upsert(&call_doc("h1", t0(), json!({}))).unwrap();
    c.upsert(&call_doc("h2", t0(), json!({"nonDelete": true}))).unwrap();
    c.upsert(&call_doc("h3", t0(), json!({}))).unwrap();
    c.hold("h1", "litigation 42", "tester", t0()).unwrap();
    let e = c.get("h1").unwrap().unwrap();
    assert!(e.held());
    assert_eq!(e.hold.as_ref().unwrap().reason, "litigation 42");
    assert!(c.get("h2").unwrap().unwrap().held(), "nonDelete is a hold");
    c.upsert(&call_doc("h1", t0(), json!({"region": "eu"}))).unwrap();
    assert!(c.get("h1").unwrap().unwrap().held(), "a hold survives a document update");
    let held = Query { held: Some(true), ..Query::default() };
    assert_eq!(ids(c, &held, 10), vec!["h1", "h2"]);
    c.unhold("h1", "tester", t0()).unwrap();
    assert_eq!(ids(c, &held, 10), vec!["h2"]);
    assert_eq!(ids(c, &Query { held: Some(false), ..Query::default() }, 10), vec!["h1", "h3"]);
    assert!(matches!(c.hold("zz", "x", "tester", t0()), Err(CatalogError::NotFound(_))));
}

fn labels(c: &dyn Catalog) {
    c.upsert(&call_doc("l1", t0(), json!({"labels": ["vip"]}))).unwrap();
    c.label("l1", "screenRecording").unwrap();
    c.label("l1", "screenRecording").unwrap();
    let e = c.get("l1").unwrap().unwrap();
    assert_eq!(e.recording.labels, vec!["vip", "screenRecording"]);
    assert_eq!(e.recording.doc_value()["labels"], json!(["vip", "screenRecording"]), "labels live in the document");
    c.unlabel("l1", "vip").unwrap();
    let q = Query { labels_include: vec!["screenRecording".into()], ..Query::default() };
    let rows: Vec<_> = c.scroll(&q, 10).flat_map(|p| p.unwrap().rows).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].labels, vec!["screenRecording"]);
    assert!(matches!(c.label("zz", "x"), Err(CatalogError::NotFound(_))));
}

fn every_filter(c: &dyn Catalog) {
    let day = Duration::days(1);
    c.upsert(&call_doc("a", t0(), json!({}))).unwrap();
    c.upsert(&call_doc("b", t0() + day, json!({"region": "eu", "callType": "Outbound", "labels": ["x"]}))).unwrap();
    c.upsert(&call_doc(
        "c",
        t0() + day * 2,
        json!({"eventHistory": [{"event": "Joined", "contact": {"type": "User", "userName": "bob"}}],
               "mediaFiles": [{"mediaId": "c.mp3", "size": 7, "partitions": ["support"]}]}),
    ))
    .unwrap();
    c.upsert(&screen_doc("s", "a", t0() + Duration::hours(1))).unwrap();
    let check = |q: Query, want: &[&str]| {
        assert_eq!(ids(c, &q, 2), want, "query {q:?}");
        assert_eq!(c.count(&q).unwrap(), want.len() as u64, "count of {q:?}");
    };
    check(Query::default(), &["a", "s", "b", "c"]);
    check(Query { kind: Some(Kind::Voice), ..Query::default() }, &["a", "b", "c"]);
    check(Query { kind: Some(Kind::Screen), ..Query::default() }, &["s"]);
    check(Query { start_from: Some(t0() + day), ..Query::default() }, &["b", "c"]);
    check(Query { start_to: Some(t0() + day), ..Query::default() }, &["a", "s"]);
    check(Query { stop_from: Some(t0() + day * 2), ..Query::default() }, &["c"]);
    check(Query { stop_to: Some(t0() + Duration::minutes(5)), ..Query::default() }, &["a"]);
    check(Query { region: Some("eu".into()), ..Query::default() }, &["b"]);
    check(Query { call_type: Some("OUTBOUND".into()), ..Query::default() }, &["b"]);
    check(Query { labels_include: vec!["x".into()], ..Query::default() }, &["b"]);
    check(Query { labels_exclude: vec!["x".into()], kind: Some(Kind::Voice), ..Query::default() }, &["a", "c"]);
    check(Query { attached: vec![("Segment".into(), "gold".into())], ..Query::default() }, &["a", "b"]);
    check(Query { attached: vec![("Segment".into(), "silver".into())], ..Query::default() }, &[]);
    check(Query { agent_user: Some("bob".into()), ..Query::default() }, &["c"]);
    check(Query { has_screen: Some(true), ..Query::default() }, &["a"]);
    check(Query { has_screen: Some(false), kind: Some(Kind::Voice), ..Query::default() }, &["b", "c"]);
    check(Query { partitions: vec!["support".into(), "nope".into()], ..Query::default() }, &["c"]);
    check(Query { call_recording_id: Some("a".into()), ..Query::default() }, &["s"]);
}

/// Attached-data filters mean each key's value now (its last added/updated, none after a
/// deleted), as GIR's selective recording changes `keep_recording` during a call.
fn attached_data_now(c: &dyn Catalog) {
    let ev = |events: serde_json::Value| json!({ "eventHistory": events });
    let set = |part: &str, v: &str| json!({"event": "Data", "data": {part: {"keep_recording": v}}});
    let deleted = json!({"event": "Data", "data": {"deleted": {"keep_recording": ""}}});
    // no: "no" all along; kept: "no" then updated to "yes"; back: yes, then no again;
    // gone: "no", then the key deleted; none: never had the key.
    c.upsert(&call_doc("no", t0(), ev(json!([set("added", "no")])))).unwrap();
    c.upsert(&call_doc("kept", t0(), ev(json!([set("added", "no"), set("updated", "yes")])))).unwrap();
    c.upsert(&call_doc("back", t0(), ev(json!([set("added", "yes"), set("updated", "no")])))).unwrap();
    c.upsert(&call_doc("gone", t0(), ev(json!([set("added", "no"), deleted])))).unwrap();
    c.upsert(&call_doc("none", t0(), json!({}))).unwrap();
    let q = |attached: &[(&str, &str)], not: &[(&str, &str)]| Query {
        attached: attached.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        attached_not: not.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Query::default()
    };
    let check = |q: Query, want: &[&str]| {
        let mut got = ids(c, &q, 2);
        got.sort();
        assert_eq!(got, want, "query {q:?}");
        assert_eq!(c.count(&q).unwrap(), want.len() as u64, "count of {q:?}");
    };
    check(q(&[("keep_recording", "no")], &[]), &["back", "no"]);
    check(q(&[("keep_recording", "yes")], &[]), &["kept"]);
    check(q(&[], &[("keep_recording", "yes")]), &["back", "gone", "no", "none"]);
    check(q(&[("Segment", "gold")], &[("keep_recording", "yes")]), &["none"]);
}

fn scroll_covers_everything_once(c: &dyn Catalog) {
    // Recordings spread over 40 days at irregular times, several at the same instant, with a
    // gap of empty days in the middle.
    let mut want = Vec::new();
    let mut batch = Vec::new();
    for i in 0..600i64 {
        let day = if i < 300 { i % 10 } else { 30 + i % 10 };
        let t = t0() + Duration::days(day) + Duration::minutes((i * 37) % 1440) + Duration::seconds(i % 3);
        let id = format!("r{i:04}");
        want.push((t, id.clone()));
        batch.push(call_doc(&id, t, json!({})));
    }
    c.upsert_many(&batch).unwrap();
    want.sort();
    let want: Vec<String> = want.into_iter().map(|(_, id)| id).collect();
    for slices in [1, 7, 24, 1440] {
        for page in [1, 13, 1000] {
            let q = Query { scan_intervals_per_day: slices, ..Query::default() };
            assert_eq!(ids(c, &q, page), want, "slices {slices}, page {page}");
        }
    }
    let from = t0() + Duration::days(3) + Duration::hours(5);
    let to = t0() + Duration::days(33) + Duration::hours(2);
    let q = Query { start_from: Some(from), start_to: Some(to), scan_intervals_per_day: 24, ..Query::default() };
    let got = ids(c, &q, 17);
    assert_eq!(got.len() as u64, c.count(&q).unwrap(), "a bounded scroll returns what count counts");
    for id in &got {
        let s = c.get(id).unwrap().unwrap().recording.start;
        assert!(s >= from && s < to, "{id} at {s} outside the range");
    }
    assert!(c.scroll_page(&q, &Cursor::start(), 0).is_err(), "page size 0 is refused");
}

fn cursor_resume(c: &dyn Catalog) {
    let batch: Vec<Recording> =
        (0..250i64).map(|i| call_doc(&format!("k{i:03}"), t0() + Duration::minutes(i * 29), json!({}))).collect();
    c.upsert_many(&batch).unwrap();
    let q = Query { scan_intervals_per_day: 24, ..Query::default() };
    let whole = ids(c, &q, 1000);
    assert_eq!(whole.len(), 250);
    // Stop after every page, keep only the token, and resume from it.
    let mut resumed = Vec::new();
    let mut token = Cursor::start().token();
    loop {
        let cur = Cursor::from_token(&token).unwrap();
        let page = c.scroll_page(&q, &cur, 7).unwrap();
        resumed.extend(page.rows.into_iter().map(|r| r.id));
        match page.next {
            Some(n) => token = n.token(),
            None => break,
        }
    }
    assert_eq!(resumed, whole, "a resumed scroll yields the same rows in the same order");
    // Rows added behind the cursor are not returned again; rows ahead are.
    let mut it = c.scroll(&q, 100);
    let first = it.next().unwrap().unwrap();
    c.upsert(&call_doc("zz-early", t0() - Duration::days(1), json!({}))).unwrap();
    c.upsert(&call_doc("zz-late", t0() + Duration::days(30), json!({}))).unwrap();
    let rest: Vec<String> = it.flat_map(|p| p.unwrap().rows.into_iter().map(|r| r.id)).collect();
    assert!(!rest.contains(&"zz-early".to_string()));
    assert!(rest.contains(&"zz-late".to_string()));
    assert_eq!(first.rows.len() + rest.len(), 251);
}

fn state_and_leases(c: &dyn Catalog) {
    assert_eq!(c.state_get("ns", "k").unwrap(), None);
    c.state_put("ns", "k", "v1").unwrap();
    c.state_put("ns", "k", "v2").unwrap();
    c.state_put("ns", "a", "x").unwrap();
    c.state_put("other", "k", "y").unwrap();
    assert_eq!(c.state_get("ns", "k").unwrap().as_deref(), Some("v2"));
    assert_eq!(
        c.state_list("ns").unwrap(),
        vec![("a".to_string(), "x".to_string()), ("k".to_string(), "v2".to_string())]
    );
    assert_eq!(c.state_namespaces().unwrap(), ["ns", "other"], "namespaces holding entries, in order");
    c.state_delete("ns", "k").unwrap();
    assert_eq!(c.state_get("ns", "k").unwrap(), None);

    // Leases are about real time passing: a backend on a shared server may judge expiry on
    // the server's clock, using `until - now` as the lease's length. So these checks use the
    // real clock, and let a short lease really expire.
    let now = Utc::now();
    let later = now + Duration::minutes(10);
    assert!(c.lease_acquire("pair-1", "muxer-a", now, later).unwrap());
    assert!(!c.lease_acquire("pair-1", "muxer-b", now, later).unwrap(), "a live lease is exclusive");
    assert!(
        c.lease_acquire("pair-1", "muxer-a", Utc::now(), Utc::now() + Duration::milliseconds(300)).unwrap(),
        "the holder may extend (or shorten) its lease"
    );
    assert!(!c.lease_acquire("pair-1", "muxer-b", Utc::now(), later).unwrap(), "still live");
    std::thread::sleep(std::time::Duration::from_millis(600));
    assert!(c.lease_acquire("pair-1", "muxer-b", Utc::now(), later).unwrap(), "an expired lease can be taken");
    c.lease_release("pair-1", "muxer-a").unwrap();
    assert!(!c.lease_acquire("pair-1", "muxer-a", Utc::now(), later).unwrap(), "release by a non-holder does nothing");
    c.lease_release("pair-1", "muxer-b").unwrap();
    assert!(c.lease_acquire("pair-1", "muxer-a", now, later).unwrap());
    // The length counts, not the caller's clock: a caller whose clock is an hour ahead still
    // gets a lease of the length it asked for.
    let skewed = Utc::now() + Duration::hours(1);
    assert!(c.lease_acquire("skew", "n1", skewed, skewed + Duration::minutes(5)).unwrap());
    assert!(!c.lease_acquire("skew", "n2", Utc::now(), Utc::now() + Duration::minutes(5)).unwrap());
}

fn versions(c: &dyn Catalog) {
    c.upsert(&call_doc("v1", t0(), json!({}))).unwrap();
    let v0 = c.get("v1").unwrap().unwrap().version;
    c.upsert(&call_doc("v1", t0(), json!({}))).unwrap();
    assert_eq!(c.get("v1").unwrap().unwrap().version, v0, "an unchanged upsert keeps the version");
    let mut seen = vec![v0];
    let mut step = |what: &str| {
        let v = c.get("v1").unwrap().unwrap().version;
        assert!(v > *seen.last().unwrap(), "{what} changes the version");
        seen.push(v);
    };
    c.label("v1", "x").unwrap();
    step("a label");
    c.unlabel("v1", "x").unwrap();
    step("removing a label");
    c.hold("v1", "legal", "tester", t0()).unwrap();
    step("a hold");
    c.unhold("v1", "tester", t0()).unwrap();
    step("an unhold");
    c.upsert(&call_doc("v1", t0(), json!({"region": "eu"}))).unwrap();
    step("a document update");
    let row = c.scroll(&Query::default(), 10).flat_map(|p| p.unwrap().rows).find(|r| r.id == "v1").unwrap();
    assert_eq!(row.version, *seen.last().unwrap(), "rows carry the version");
}

fn conditional_writes(c: &dyn Catalog) {
    c.upsert(&call_doc("w1", t0(), json!({}))).unwrap();
    let v = c.get("w1").unwrap().unwrap().version;
    let edited = call_doc("w1", t0(), json!({"region": "eu"}));
    let v2 = c.upsert_if(&edited, v).unwrap();
    assert!(v2 > v);
    assert_eq!(c.get("w1").unwrap().unwrap().recording.region.as_deref(), Some("eu"));
    let stale = call_doc("w1", t0(), json!({"region": "ap"}));
    assert!(matches!(c.upsert_if(&stale, v), Err(CatalogError::Changed { .. })), "a stale version is refused");
    assert_eq!(c.get("w1").unwrap().unwrap().recording.region.as_deref(), Some("eu"), "nothing written");
    assert!(
        matches!(c.upsert_if(&call_doc("w9", t0(), json!({})), 1), Err(CatalogError::NotFound(_))),
        "a conditional write never re-creates a deleted recording"
    );
    assert!(c.get("w9").unwrap().is_none());
}

fn conditional_deletes_and_tombstones(c: &dyn Catalog) {
    for id in ["d1", "d2", "d3", "d4"] {
        c.upsert(&call_doc(id, t0(), json!({}))).unwrap();
    }
    let v = |id: &str| c.get(id).unwrap().unwrap().version;
    let doom: Vec<Doom> =
        ["d1", "d2", "d3", "d4"].iter().map(|i| Doom { id: i.to_string(), version: v(i), parent: None }).collect();
    c.hold("d2", "legal", "tester", t0()).unwrap();
    c.label("d3", "late").unwrap();
    c.delete("d4", false).unwrap();
    let out = c.delete_checked(&doom, "j-1").unwrap();
    assert_eq!(out, vec![DeleteOutcome::Deleted, DeleteOutcome::Held, DeleteOutcome::Changed, DeleteOutcome::Missing]);
    assert!(c.get("d1").unwrap().is_none());
    assert!(c.get("d2").unwrap().is_some() && c.get("d3").unwrap().is_some(), "held and changed stay");
    assert_eq!(c.tombstones("j-1").unwrap(), vec!["d1"], "only what this call deleted is tombstoned");
    assert!(c.tombstones("j-2").unwrap().is_empty());
    // Idempotent: running the same batch again deletes nothing more and keeps the tombstone.
    let again = c.delete_checked(&doom, "j-1").unwrap();
    assert_eq!(again[0], DeleteOutcome::Missing);
    assert_eq!(c.tombstones("j-1").unwrap(), vec!["d1"]);
    c.tombstones_clear("j-1").unwrap();
    assert!(c.tombstones("j-1").unwrap().is_empty());
    let held_nondelete = call_doc("d5", t0(), json!({"nonDelete": true}));
    c.upsert(&held_nondelete).unwrap();
    let out = c.delete_checked(&[Doom { id: "d5".into(), version: v("d5"), parent: None }], "j-3").unwrap();
    assert_eq!(out, vec![DeleteOutcome::Held], "nonDelete is never deleted");
    // A screen is not deleted while its call is held.
    c.upsert(&call_doc("d6", t0(), json!({}))).unwrap();
    c.upsert(&screen_doc("d6s", "d6", t0())).unwrap();
    c.hold("d6", "legal", "tester", t0()).unwrap();
    let s = Doom { id: "d6s".into(), version: v("d6s"), parent: Some("d6".into()) };
    assert_eq!(c.delete_checked(std::slice::from_ref(&s), "j-4").unwrap(), vec![DeleteOutcome::Held]);
    c.unhold("d6", "tester", t0()).unwrap();
    assert_eq!(c.delete_checked(&[s], "j-4").unwrap(), vec![DeleteOutcome::Deleted]);
}

fn screens_by_call_uuid(c: &dyn Catalog) {
    c.upsert(&call_doc("u1", t0(), json!({"callUuid": "UUID-1"}))).unwrap();
    c.upsert(&call_doc("u2", t0(), json!({"callUuid": "UUID-2"}))).unwrap();
    c.upsert(&screen_doc("s-by-id", "u1", t0())).unwrap();
    let by_uuid = Recording::parse(
        &json!({"id": "s-by-uuid", "callUuid": "UUID-1", "startTime": t0().to_rfc3339(),
                "stopTime": (t0() + Duration::seconds(60)).to_rfc3339(),
                "mediaFiles": [{"mediaId": "s.mp4", "type": "video/mp4", "size": 1}]})
        .to_string(),
    )
    .unwrap();
    c.upsert(&by_uuid).unwrap();
    let ids: Vec<String> = c.screens_of("u1").unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, vec!["s-by-id", "s-by-uuid"], "screens linked by callRecordingId and by callUuid");
    assert!(c.screens_of("u2").unwrap().is_empty());
    assert!(c.screens_of("none").unwrap().is_empty());
}

fn manifests(c: &dyn Catalog) {
    let row = |seq: u64, id: &str| ManifestRow {
        seq,
        id: id.to_string(),
        version: 3,
        screens: vec![Doom { id: format!("{id}_s"), version: 1, parent: None }],
        state: RowState::Planned,
        archive: None,
        note: None,
        bytes: 10,
    };
    let rows: Vec<ManifestRow> = (1..=25).map(|i| row(i, &format!("r{i:02}"))).collect();
    c.manifest_add("job-a", 1, &rows[..10]).unwrap();
    c.manifest_add("job-a", 1, &rows[10..]).unwrap();
    c.manifest_add("job-a", 2, &rows[..2]).unwrap();
    c.manifest_add("job-b", 1, &rows[..1]).unwrap();
    assert!(c.manifest_add("job-a", 1, &rows[..1]).is_err(), "a seq is added once");
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page = c.manifest_page("job-a", 1, None, after, 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().seq;
        got.extend(page);
    }
    assert_eq!(got, rows, "pages return every row once, in order, as written");
    let mut upd = rows[3].clone();
    upd.state = RowState::Written;
    upd.version = 4;
    c.manifest_update("job-a", 1, &[upd.clone()]).unwrap();
    assert_eq!(c.manifest_page("job-a", 1, Some(RowState::Written), 0, 10).unwrap(), vec![upd]);
    assert_eq!(c.manifest_promote("job-a", 1, RowState::Written, RowState::Archived, Some("/b/a.zip")).unwrap(), 1);
    let archived = c.manifest_page("job-a", 1, Some(RowState::Archived), 0, 10).unwrap();
    assert_eq!(archived[0].archive.as_deref(), Some("/b/a.zip"));
    assert_eq!(c.manifest_counts("job-a", 1).unwrap(), vec![(RowState::Archived, 1), (RowState::Planned, 24)]);
    assert_eq!(c.manifest_jobs().unwrap(), vec!["job-a", "job-b"]);
    assert_eq!(c.manifest_drop("job-a").unwrap(), 27);
    assert!(c.manifest_page("job-a", 1, None, 0, 10).unwrap().is_empty());
    assert_eq!(c.manifest_jobs().unwrap(), vec!["job-b"]);
}

fn state_pages_and_lease_lists(c: &dyn Catalog) {
    for i in 0..2500 {
        c.state_put("many", &format!("k{i:05}"), "v").unwrap();
    }
    assert_eq!(c.state_list("many").unwrap().len(), 2500, "state_list pages past 1000 keys");
    let p = c.state_page("many", Some("k00010"), 3).unwrap();
    assert_eq!(p.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), vec!["k00011", "k00012", "k00013"]);
    let now = Utc::now();
    c.lease_acquire("guard/a", "n1", now, now + Duration::minutes(1)).unwrap();
    c.lease_acquire("guard/b", "n2", now, now + Duration::minutes(2)).unwrap();
    c.lease_acquire("other/c", "n3", now, now + Duration::minutes(3)).unwrap();
    c.lease_acquire("guard_x", "n4", now, now + Duration::minutes(3)).unwrap();
    let l = c.lease_list("guard/").unwrap();
    assert_eq!(l.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), vec!["guard/a", "guard/b"]);
    assert_eq!(l[1].holder, "n2");
    // Told on the caller's clock; a backend on a server's clock may differ by the time a call takes.
    let off = (l[1].until - (now + Duration::minutes(2))).num_milliseconds().abs();
    assert!(off < 5_000, "lease end {} is {off} ms from the one asked for", l[1].until);
}

fn import_keeps_versions_and_holds(from: &dyn Catalog, to: &dyn Catalog) {
    from.upsert(&call_doc("i1", t0(), json!({}))).unwrap();
    from.upsert(&call_doc("i2", t0(), json!({}))).unwrap();
    from.label("i1", "x").unwrap();
    from.hold("i1", "legal", "tester", t0()).unwrap();
    let entries = from.get_many(&["i1".to_string(), "i2".to_string()]).unwrap();
    assert_eq!(to.import(&entries).unwrap(), vec![Upsert::Inserted, Upsert::Inserted]);
    let got = to.get("i1").unwrap().unwrap();
    assert_eq!((got.version, got.hold.clone()), (entries[0].version, entries[0].hold.clone()), "version and hold kept");
    assert_eq!(got.hold.as_ref().and_then(|h| h.by.as_deref()), Some("tester"), "who placed it kept");
    assert_eq!(got.hold_history, entries[0].hold_history, "hold history kept");
    assert_eq!(got.hold_history.len(), 1);
    assert_eq!(got.recording.doc(), entries[0].recording.doc());
    assert_eq!(to.import(&entries).unwrap(), vec![Upsert::Unchanged, Upsert::Unchanged], "a second import skips");
    to.label("i2", "newer").unwrap();
    let newer = to.get("i2").unwrap().unwrap();
    assert_eq!(to.import(&entries[1..]).unwrap(), vec![Upsert::Unchanged], "a newer version here is kept");
    assert_eq!(to.get("i2").unwrap().unwrap().recording.labels, newer.recording.labels);
    from.unhold("i1", "tester", t0()).unwrap();
    let later = from.get_many(&["i1".to_string()]).unwrap();
    assert_eq!(to.import(&later).unwrap(), vec![Upsert::Updated]);
    assert!(to.get("i1").unwrap().unwrap().hold.is_none(), "an unhold in the source is carried over");
    assert_eq!(to.get("i1").unwrap().unwrap().hold_history.len(), 2, "with its history");
    assert_eq!(to.count(&Query { held: Some(true), ..Query::default() }).unwrap(), 0);
}

/// A screen recording is held while its call is (by callRecordingId, or by callUuid when it has
/// none): in rows, the `held` filter, entries and conditional deletes, whatever `parent` says.
fn screens_are_held_by_their_call(c: &dyn Catalog) {
    c.upsert(&call_doc("k1", t0(), json!({"callUuid": "K-UUID-1"}))).unwrap();
    c.upsert(&call_doc("k2", t0(), json!({"callUuid": "K-UUID-2", "nonDelete": true}))).unwrap();
    c.upsert(&screen_doc("k1s", "k1", t0())).unwrap();
    let by_uuid = |id: &str, uuid: &str| {
        Recording::parse(
            &json!({"id": id, "callUuid": uuid, "startTime": t0().to_rfc3339(),
                    "stopTime": (t0() + Duration::seconds(60)).to_rfc3339(),
                    "mediaFiles": [{"mediaId": format!("{id}.mp4"), "type": "video/mp4", "size": 1}]})
            .to_string(),
        )
        .unwrap()
    };
    c.upsert(&by_uuid("k1u", "K-UUID-1")).unwrap();
    c.upsert(&by_uuid("k1u2", "K-UUID-1")).unwrap();
    c.upsert(&by_uuid("k2u", "K-UUID-2")).unwrap();
    let held_rows = |c: &dyn Catalog| -> Vec<String> {
        c.scroll(&Query::default(), 3).flat_map(|p| p.unwrap().rows).filter(|r| r.held).map(|r| r.id).collect()
    };
    let held = Query { held: Some(true), ..Query::default() };
    assert_eq!(held_rows(c), vec!["k2", "k2u"], "nonDelete on a call holds its screens (by callUuid)");
    assert_eq!(ids(c, &held, 10), vec!["k2", "k2u"]);
    // A hold on a screen holds neither its call nor the screens beside it.
    c.hold("k1u2", "review", "tester", t0()).unwrap();
    assert_eq!(held_rows(c), vec!["k1u2", "k2", "k2u"]);
    c.unhold("k1u2", "tester", t0()).unwrap();
    c.hold("k1", "legal", "tester", t0()).unwrap();
    assert_eq!(held_rows(c), vec!["k1", "k1s", "k1u", "k1u2", "k2", "k2u"]);
    assert_eq!(ids(c, &held, 2), vec!["k1", "k1s", "k1u", "k1u2", "k2", "k2u"]);
    assert!(ids(c, &Query { held: Some(false), ..Query::default() }, 10).is_empty());
    assert_eq!(c.count(&held).unwrap(), 6);
    let e = c.get("k1s").unwrap().unwrap();
    assert!(e.held() && e.call_held && e.hold.is_none(), "an entry says its call holds it");
    assert!(c.get_many(&["k1u".to_string()]).unwrap()[0].held());
    assert!(!c.get("k1").unwrap().unwrap().call_held, "a call is held by itself only");
    let screens: Vec<bool> = c.screens_of("k1").unwrap().iter().map(|r| r.held).collect();
    assert_eq!(screens, vec![true, true, true], "screens_of says held too");
    // A conditional delete refuses them, with or without the parent named.
    let v = |id: &str| c.get(id).unwrap().unwrap().version;
    let doom = |id: &str| Doom { id: id.to_string(), version: v(id), parent: None };
    let batch = [doom("k1s"), doom("k1u"), doom("k2u")];
    assert_eq!(
        c.delete_checked(&batch, "j-k").unwrap(),
        vec![DeleteOutcome::Held, DeleteOutcome::Held, DeleteOutcome::Held],
        "a screen whose call is held is not deleted"
    );
    assert!(c.tombstones("j-k").unwrap().is_empty());
    c.unhold("k1", "tester", t0()).unwrap();
    let batch = [doom("k1s"), doom("k1u"), doom("k2u")];
    assert_eq!(
        c.delete_checked(&batch, "j-k").unwrap(),
        vec![DeleteOutcome::Deleted, DeleteOutcome::Deleted, DeleteOutcome::Held],
        "released: deleted; a call's nonDelete still holds"
    );
}

/// Who placed a hold, and every hold placed or released; a second hold keeps the first; a hold
/// that metadata carries is applied but never releases one.
fn hold_history(c: &dyn Catalog) {
    c.upsert(&call_doc("g1", t0(), json!({}))).unwrap();
    let t1 = t0() + Duration::hours(1);
    assert_eq!(c.hold("g1", "case 1", "alice", t0()).unwrap(), HoldOutcome::Placed);
    let first = Hold { reason: "case 1".into(), at: t0(), by: Some("alice".into()) };
    assert_eq!(c.hold("g1", "case 2", "bob", t1).unwrap(), HoldOutcome::AlreadyHeld(first.clone()));
    let e = c.get("g1").unwrap().unwrap();
    assert_eq!(e.hold, Some(first.clone()), "the first hold stays in force");
    let ev = |event, at, by: &str, reason: &str| HoldEvent {
        event,
        at,
        by: Some(by.to_string()),
        reason: Some(reason.to_string()),
    };
    assert_eq!(
        e.hold_history,
        vec![ev(HoldAction::Placed, t0(), "alice", "case 1"), ev(HoldAction::Placed, t1, "bob", "case 2")]
    );
    c.upsert(&call_doc("g1", t0(), json!({"region": "eu"}))).unwrap();
    assert_eq!(c.get("g1").unwrap().unwrap().hold_state(), e.hold_state(), "a document update keeps hold and history");
    assert!(matches!(c.hold("g1", "  ", "bob", t1), Err(CatalogError::Invalid(_))), "an empty reason is refused");
    assert_eq!(c.unhold("g1", "carol", t1).unwrap(), Some(first.clone()));
    assert_eq!(c.unhold("g1", "carol", t1).unwrap(), None, "nothing to release");
    let e = c.get("g1").unwrap().unwrap();
    assert!(e.hold.is_none() && !e.held());
    assert_eq!(e.hold_history.last(), Some(&ev(HoldAction::Released, t1, "carol", "case 1")));
    assert_eq!(e.hold_history.len(), 3);
    // Carried by metadata: not applied over a release made here after it was placed…
    let old = HoldState { hold: Some(first.clone()), history: vec![ev(HoldAction::Placed, t0(), "alice", "case 1")] };
    let now = c.apply_carried_hold("g1", &old).unwrap();
    assert!(now.hold.is_none(), "a release made here stands");
    assert_eq!(now.history.len(), 3, "the history already had that event");
    // …else applied when none is in force, history merged once.
    let t2 = t0() + Duration::hours(2);
    let carried = HoldState {
        hold: Some(Hold { reason: "archived".into(), at: t2, by: Some("dave".into()) }),
        history: vec![ev(HoldAction::Placed, t2, "dave", "archived")],
    };
    let now = c.apply_carried_hold("g1", &carried).unwrap();
    assert_eq!(now.hold, carried.hold);
    assert_eq!(now.history.len(), 4);
    let v = c.get("g1").unwrap().unwrap().version;
    assert_eq!(c.apply_carried_hold("g1", &carried).unwrap(), now, "applying it again changes nothing");
    assert_eq!(c.get("g1").unwrap().unwrap().version, v, "nor the version");
    // Never releases: a carried state without a hold leaves the one in force.
    c.upsert(&call_doc("g2", t0(), json!({}))).unwrap();
    c.hold("g2", "kept", "erin", t1).unwrap();
    let released = HoldState { hold: None, history: vec![ev(HoldAction::Released, t1, "x", "kept")] };
    assert_eq!(c.apply_carried_hold("g2", &released).unwrap().hold.map(|h| h.reason), Some("kept".to_string()));
    assert!(matches!(c.apply_carried_hold("zz", &carried), Err(CatalogError::NotFound(_))));
}

fn rule_text(name: &str, age: u32) -> String {
    format!(
        "name = \"{name}\"\nschedule = \"0 0 3 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = {{ min_age = {age} }}\n"
    )
}

/// The shared rules (`lifecycle::rule_store`, kept in state namespaces under a lease): versions
/// numbered once each, an unchanged apply writes nothing, a bad text stores nothing, a delete
/// is a tombstone, and the rules folder as a source never resurrects a deleted rule.
fn shared_rules(c: &dyn Catalog) {
    use crate::lifecycle::rule_store::*;
    use std::path::Path;
    let purge = rule_text;

    let now = Utc::now();
    let f = Path::new("r.toml");
    let a = apply(c, f, &purge("Nightly", 30), None, false, "cli:a", now).unwrap();
    assert_eq!((a.outcome, a.version.version), (Outcome::Created, 1));
    let b = apply(c, f, &purge("Nightly", 30), None, false, "cli:b", now).unwrap();
    assert_eq!((b.outcome, b.version.version, b.version.by.as_str()), (Outcome::Unchanged, 1, "cli:a"));
    let u = apply(c, f, &purge("Nightly", 60), None, false, "api:ops", now).unwrap();
    assert_eq!((u.outcome, u.version.version), (Outcome::Updated, 2));
    // A bad text: every problem with its file and line, nothing stored.
    let bad = purge("Nightly", 90).replace("0 0 3 * * *", "0 0 25 * * *");
    match apply(c, Path::new("bad.toml"), &bad, None, false, "cli:a", now) {
        Err(StoreError::Invalid(p)) => assert!(p[0].to_string().starts_with("bad.toml:2: "), "{p:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(history(c, "Nightly").unwrap().len(), 2);
    let d = delete(c, "Nightly", "api:ops", now).unwrap();
    assert_eq!((d.version, d.deleted()), (3, true));
    assert!(matches!(delete(c, "Nightly", "api:ops", now), Err(StoreError::NoRule(_))));
    assert!(load(c, None).unwrap().0.is_empty());

    // The folder: a text already held once is not applied again (no resurrection); a
    // changed file is.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("n.toml"), purge("Nightly", 60)).unwrap();
    let s = sync_dir(c, dir.path(), None, "file:-", now).unwrap();
    assert!(s.applied.is_empty() && s.problems.is_empty(), "{s:?}");
    assert!(head(c, "Nightly").unwrap().unwrap().deleted());
    std::fs::write(dir.path().join("n.toml"), purge("Nightly", 61)).unwrap();
    let s = sync_dir(c, dir.path(), None, "file:-", now).unwrap();
    assert_eq!(s.applied.len(), 1);
    assert_eq!((s.applied[0].outcome, s.applied[0].version.version), (Outcome::Created, 4));
    let (live, problems) = load(c, None).unwrap();
    assert_eq!((live.len(), problems.len(), live[0].0.tasks[0].filter.min_age), (1, 0, Some(61)));
    assert_eq!(history(c, "Nightly").unwrap().iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2, 3, 4]);

    // Writers at once (threads here; processes and nodes take the same catalog lease): each
    // version is numbered once.
    std::thread::scope(|sc| {
        for i in 0..4u32 {
            sc.spawn(move || apply(c, f, &purge("Race", 10 + i), None, false, "cli:x", now).unwrap());
        }
    });
    let versions: Vec<u64> = history(c, "Race").unwrap().iter().map(|v| v.version).collect();
    assert_eq!(versions, [1, 2, 3, 4]);
}
