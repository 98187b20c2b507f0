//! The operators' pages, server-rendered, through `reclife serve` over the sample recordings:
//! status codes, roles (`user` sees, gets 403 on every POST), CSRF (token, origin, a restart),
//! and each action landing in the catalog as the API and the CLI see it.

mod api_support;

use api_support::{Node, Server, OPS, USER};
use reqwest::blocking::{Client, Response};
use serde_json::Value;
use std::time::{Duration, Instant};

const CALL: &str = "CALLA0000000000000000000000000001";
/// A sample call nobody holds.
const OTHER: &str = "CALLD0000000000000000000000000004";

fn client() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

fn page(s: &Server, who: (&str, &str), path: &str) -> (u16, String) {
    let r = client().get(format!("{}{path}", s.url)).basic_auth(who.0, Some(who.1)).send().unwrap();
    let st = r.status().as_u16();
    if st == 200 {
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
    }
    (st, r.text().unwrap())
}

/// The form token a page carries.
fn token(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form token on the page") + 20;
    html[at..].split('"').next().unwrap().to_string()
}

/// A form POST as a browser sends it from one of the server's pages (with `Origin`).
fn post(s: &Server, who: (&str, &str), path: &str, fields: &[(&str, &str)]) -> Response {
    post_from(s, who, path, fields, Some(("origin", s.url.clone())))
}

fn post_from(
    s: &Server,
    who: (&str, &str),
    path: &str,
    fields: &[(&str, &str)],
    header: Option<(&str, String)>,
) -> Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let mut r = client()
        .post(format!("{}{path}", s.url))
        .basic_auth(who.0, Some(who.1))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    if let Some((k, v)) = header {
        r = r.header(k, v);
    }
    r.send().unwrap()
}

/// Plans through the form: the POST redirects (303) to the plan's preview, a page of its own
/// (POST-redirect-GET: a reload plans nothing); returns that page.
fn plan(s: &Server, who: (&str, &str), fields: &[(&str, &str)]) -> String {
    let r = post(s, who, "/jobs", fields);
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    let to = location(&r);
    assert!(to.starts_with("/jobs/j-") && to.ends_with("/preview"), "{to}");
    let (st, html) = page(s, who, &to);
    assert_eq!(st, 200, "{html}");
    html
}

fn location(r: &Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

#[test]
fn pages_render_for_both_roles_and_only_ops_may_act() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    // No credentials: the browser's login prompt, with a page behind it.
    let r = client().get(format!("{}/rules", s.url)).send().unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert!(r.text().unwrap().contains("<html"), "a page, not the API's JSON");
    // The stylesheet and the script are served by reclife itself, without credentials.
    for (p, kind) in [("/static/web.css", "text/css"), ("/static/web.js", "text/javascript")] {
        let r = client().get(format!("{}{p}", s.url)).send().unwrap();
        assert_eq!(r.status(), 200, "{p}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind), "{p}");
    }

    // Pages are never framed, never cached, and run only the server's own script.
    let r = client().get(format!("{}/rules", s.url)).basic_auth(USER.0, Some(USER.1)).send().unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    for who in [USER, OPS] {
        let (st, html) = page(&s, who, "/");
        assert_eq!(st, 200, "{html}");
        for want in ["Contact center", "cc1", "Catalog", "Media store", "Scheduler", "href=\"/metrics\""] {
            assert!(html.contains(want), "health page lacks {want:?}");
        }
        let (st, html) = page(&s, who, "/rules");
        assert_eq!(st, 200);
        for want in ["Daily backup", "0 0 22 * * *", "Next fire", "Last run", "age 1 to 2 days"] {
            assert!(html.contains(want), "rules page lacks {want:?}");
        }
        let (st, html) = page(&s, who, "/recordings");
        assert_eq!(st, 200);
        assert!(html.contains(CALL), "{html}");
        let (st, html) = page(&s, who, &format!("/recordings/{CALL}"));
        assert_eq!(st, 200);
        assert!(html.contains("<audio") && html.contains(&format!("/api/v2/recordings/{CALL}/play/")), "{html}");
        assert_eq!(page(&s, who, "/muxer").0, 200);
        assert_eq!(page(&s, who, "/jobs").0, 200);
        assert_eq!(page(&s, who, "/recordings/NOPE").0, 404);
        assert_eq!(page(&s, who, "/jobs/j-nope").0, 404);
        // An unknown URL: a page saying so (it was an empty body); the API's answer is JSON.
        let r = client().get(format!("{}/no/such/page", s.url)).basic_auth(who.0, Some(who.1)).send().unwrap();
        assert_eq!(r.status(), 404);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        assert!(r.text().unwrap().contains("There is no page at /no/such/page."));
        let r = client().get(format!("{}/api/v2/no-such", s.url)).basic_auth(who.0, Some(who.1)).send().unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(r.json::<Value>().unwrap()["statusCode"], 3);
        // `user` is offered no action: no form token on any page.
        let (_, html) = page(&s, who, "/rules");
        assert_eq!(html.contains("name=\"_csrf\""), who == OPS, "{}", who.0);
    }

    // Every action is refused to `user` before anything is read, whatever it carries.
    let tok = token(&page(&s, OPS, "/rules").1);
    for path in [
        "/rules/Daily%20backup/disable",
        "/rules/validate",
        "/rules/save",
        "/jobs",
        "/jobs/j-x/start",
        "/jobs/j-x/cancel",
        &format!("/recordings/{CALL}/hold"),
        &format!("/recordings/{CALL}/unhold"),
        &format!("/recordings/{CALL}/labels"),
        &format!("/recordings/{CALL}/unlabel"),
        "/muxer/S-1/retry",
    ] {
        let r = post(&s, USER, path, &[("_csrf", &tok), ("reason", "x"), ("label", "x")]);
        assert_eq!(r.status(), 403, "POST {path} as user");
        assert!(r.text().unwrap().contains("ops role"), "{path}");
    }
    let rule = s.json(USER, "/api/v1/rules/Daily%20backup");
    assert_eq!(rule["override"], Value::Null, "nothing changed: {rule}");
}

#[test]
fn forms_need_this_servers_token_and_origin() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let tok = token(&page(&s, OPS, "/rules").1);
    let path = "/rules/Daily%20backup/disable";
    let refused = |r: Response, why: &str| {
        assert_eq!(r.status(), 403, "{why}");
        assert!(r.text().unwrap().contains("<html"), "{why}");
    };
    refused(post(&s, OPS, path, &[]), "no token");
    refused(post(&s, OPS, path, &[("_csrf", "00ff")]), "a made-up token");
    refused(post(&s, OPS, path, &[("_csrf", &tok[..63])]), "a cut token");
    refused(
        post_from(&s, OPS, path, &[("_csrf", &tok)], Some(("origin", "http://evil.example".into()))),
        "cross origin",
    );
    refused(post_from(&s, OPS, path, &[("_csrf", &tok)], Some(("origin", "null".into()))), "opaque origin");
    refused(post_from(&s, OPS, path, &[("_csrf", &tok)], None), "no Origin nor Referer");
    refused(
        post_from(&s, OPS, path, &[("_csrf", &tok)], Some(("referer", "http://evil.example/rules".into()))),
        "cross-site Referer",
    );
    assert_eq!(s.json(USER, "/api/v1/rules/Daily%20backup")["override"], Value::Null, "nothing changed");

    // The page's own form, sent as the browser sends it: the override lands, as the API shows.
    let r = post(&s, OPS, path, &[("_csrf", &tok)]);
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/rules?done="), "{}", location(&r));
    assert_eq!(s.json(USER, "/api/v1/rules/Daily%20backup")["override"], false);
    let (_, html) = page(&s, OPS, "/rules");
    assert!(html.contains("disabled by an operator"), "{html}");
    // A same-origin Referer stands for a missing Origin.
    let r = post_from(
        &s,
        OPS,
        "/rules/Daily%20backup/reset",
        &[("_csrf", &tok)],
        Some(("referer", format!("{}/rules", s.url))),
    );
    assert_eq!(r.status(), 303);
    assert_eq!(s.json(USER, "/api/v1/rules/Daily%20backup")["override"], Value::Null);

    // Validation: problems with their lines, or the parsed rule.
    let r = post(&s, OPS, "/rules/validate", &[("_csrf", &tok), ("text", "name = \"x\"\nschedule = \"bad\"\n")]);
    assert_eq!(r.status(), 200);
    let html = r.text().unwrap();
    assert!(html.contains("Not valid") && html.contains("(pasted text):2"), "{html}");
    let good = "name = \"Nightly\"\nschedule = \"0 0 3 * * *\"\n[[tasks]]\ntype = \"purge\"\nfilter = { recording_type = \"voice\", min_age = 30 }\n";
    let html = post(&s, OPS, "/rules/validate", &[("_csrf", &tok), ("text", good)]).text().unwrap();
    assert!(
        html.contains("Valid: rule") && html.contains("Nightly") && html.contains("purges without backing up"),
        "{html}"
    );

    // Save: a text that does not validate is shown again with its problems, and nothing is
    // stored. Issue 22: saving stores the rule in the catalog (shared by every node), never in
    // this node's folder; each save of a changed text is the rule's next version.
    let rules_dir = node.dir.path().join("rules");
    let files = || std::fs::read_dir(&rules_dir).unwrap().count();
    let before = files();
    let r = post(&s, OPS, "/rules/save", &[("_csrf", &tok), ("text", "name = \"x\"\nschedule = \"bad\"\n")]);
    assert_eq!(r.status(), 422);
    let html = r.text().unwrap();
    assert!(html.contains("Not valid") && html.contains("schedule = &quot;bad&quot;"), "the text is kept: {html}");
    assert_eq!(s.get(USER, "/api/v1/rules/x").status(), 404, "nothing stored");
    // A valid one is stored as a new rule, in the caller's name; the API (the scheduler's
    // loader) sees it.
    let r = post(&s, OPS, "/rules/save", &[("_csrf", &tok), ("text", good)]);
    assert_eq!(r.status(), 303);
    assert!(page(&s, OPS, &location(&r)).1.contains("stored as a new rule (version 1)"));
    let v = s.json(USER, "/api/v1/rules/Nightly");
    assert_eq!(v["rule"]["schedule"], "0 0 3 * * *", "{v}");
    assert_eq!((v["version"]["version"].as_u64(), v["version"]["by"].as_str()), (Some(1), Some("web:ops")), "{v}");
    // Edit starts from the rule's stored text; saving it changed is the next version.
    let html = page(&s, OPS, "/rules?edit=Nightly").1;
    assert!(html.contains("min_age = 30"), "{html}");
    let changed = good.replace("min_age = 30", "min_age = 45");
    let r = post(&s, OPS, "/rules/save", &[("_csrf", &tok), ("text", &changed)]);
    assert!(page(&s, OPS, &location(&r)).1.contains("stored as its next version (version 2)"));
    assert_eq!(files(), before, "the pages never write the rules folder");
    let v = s.json(USER, "/api/v1/rules/Nightly");
    assert_eq!(v["rule"]["tasks"][0]["filter"]["min_age"], 45);
    assert_eq!(v["history"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(page(&s, OPS, "/rules?edit=Nope").0, 404);
    // Delete: `user` may not; ops leaves a tombstone in its name, and the rule is gone.
    let r = post(&s, USER, "/rules/Nightly/delete", &[("_csrf", &tok)]);
    assert_eq!(r.status(), 403);
    let html = page(&s, OPS, "/rules").1;
    assert!(html.contains("Delete rule Nightly"), "{html}");
    let r = post(&s, OPS, "/rules/Nightly/delete", &[("_csrf", &tok)]);
    assert_eq!(r.status(), 303);
    assert!(page(&s, OPS, &location(&r)).1.contains("Rule Nightly deleted (version 3 is its tombstone)."));
    assert_eq!(s.get(USER, "/api/v1/rules/Nightly").status(), 404);
    let out = node.cmd().args(["rules", "show", "Nightly"]).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("# version 3: deleted by web:ops"), "{shown}");
    // The API's writes of rules are ops' too.
    let put = serde_json::json!({ "text": good });
    assert_eq!(s.send(USER, reqwest::Method::PUT, "/api/v1/rules/Nightly", Some(put.clone())).status(), 403);
    assert_eq!(s.send(USER, reqwest::Method::DELETE, "/api/v1/rules/Daily%20backup", None).status(), 403);
    assert_eq!(s.get(USER, "/api/v1/rules/Nightly").status(), 404, "nothing stored");
    let r = s.send(OPS, reqwest::Method::PUT, "/api/v1/rules/Other", Some(put));
    assert_eq!(r.status(), 400, "a rule is PUT at its own name");

    // A restart makes a new key: an old page's token is refused, with a reason to reload.
    drop(s);
    let s = node.serve(&[]);
    let r = post(&s, OPS, path, &[("_csrf", &tok)]);
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("reload the page"));
}

#[test]
fn a_plan_is_previewed_then_exactly_it_runs_and_holds_and_labels_land() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let tok = token(&page(&s, OPS, "/jobs/new").1);
    // Held recordings are left alone by a purge: hold one through its page first.
    let r = post(&s, OPS, &format!("/recordings/{CALL}/hold"), &[("_csrf", &tok), ("reason", "Case 2025-17")]);
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with(&format!("/recordings/{CALL}?done=Held.&sig=")), "{}", location(&r));
    // The message shows on the page the redirect leads to, and only if this server signed it.
    assert!(page(&s, OPS, &location(&r)).1.contains("Held."));
    let forged = page(&s, OPS, &format!("/recordings/{CALL}?done=Call+555+now&sig=00")).1;
    assert!(!forged.contains("Call 555"), "{forged}");
    let (_, html) = page(&s, USER, &format!("/recordings/{CALL}"));
    assert!(html.contains("Case 2025-17"), "{html}");
    let api = s.json(USER, &format!("/api/v2/recordings/{CALL}"));
    assert_eq!(api["recording"]["hold"]["reason"], "Case 2025-17", "{api}");
    // Who placed it shows on the page and in the API; a second hold keeps the first, says so,
    // and joins the history the page lists.
    assert_eq!(api["recording"]["hold"]["by"], "ops", "{api}");
    assert!(html.contains(r#"<span class="hold-by">ops</span>"#), "who placed the hold: {html}");
    let r = post(&s, OPS, &format!("/recordings/{CALL}/hold"), &[("_csrf", &tok), ("reason", "Case 2025-18")]);
    assert_eq!(r.status(), 303);
    assert!(page(&s, OPS, &location(&r)).1.contains("already held"), "{}", location(&r));
    let (_, html) = page(&s, USER, &format!("/recordings/{CALL}"));
    let history = html.split("id=\"hold-history\"").nth(1).unwrap_or_else(|| panic!("no hold history: {html}"));
    assert!(history.contains("Case 2025-17") && history.contains("Case 2025-18"), "{html}");
    assert!(html.contains("Case 2025-17 (since"), "the first hold stays in force: {html}");
    // An empty reason is the API's 400, as a page.
    let r = post(&s, OPS, &format!("/recordings/{CALL}/hold"), &[("_csrf", &tok), ("reason", "  ")]);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("reason is empty"));
    // Search: held only, then by label.
    let (_, html) = page(&s, USER, "/recordings?held=yes");
    assert!(html.contains(CALL) && !html.contains(OTHER), "{html}");
    let (_, html) = page(&s, USER, "/recordings?held=no");
    assert!(!html.contains(CALL) && html.contains(OTHER), "{html}");
    let r = post(&s, OPS, &format!("/recordings/{CALL}/labels"), &[("_csrf", &tok), ("label", "legal")]);
    assert_eq!(r.status(), 303);
    let (_, html) = page(&s, USER, "/recordings?label=legal");
    assert!(html.contains(CALL) && !html.contains(OTHER), "{html}");
    assert_eq!(
        post(&s, OPS, &format!("/recordings/{CALL}/labels"), &[("_csrf", &tok), ("label", "../x")]).status(),
        400
    );

    // The preview: counts as the API plans them, held ones counted and left alone.
    let form = [
        ("_csrf", tok.as_str()),
        ("type", "purge"),
        ("recording_type", "voice"),
        ("min_age", "1"),
        ("include_screen", "1"),
    ];
    let html = plan(&s, OPS, &form);
    // Reading the preview again (a reload) plans nothing more.
    let jobs_now = s.json(USER, "/api/v1/jobs?limit=1000")["jobs"].as_array().unwrap().len();
    let id0 = html.split("/jobs/").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(page(&s, OPS, &format!("/jobs/{id0}/preview")).1, html);
    assert_eq!(s.json(USER, "/api/v1/jobs?limit=1000")["jobs"].as_array().unwrap().len(), jobs_now);
    assert!(html.contains("Plan preview") && html.contains("Held, left alone"), "{html}");
    let id = html.split("/jobs/").nth(1).unwrap().split('"').next().unwrap().to_string();
    let dd = |name: &str| -> u64 {
        let at = html.find(&format!("data-plan=\"{name}\">")).unwrap() + name.len() + 13;
        html[at..].split('<').next().unwrap().parse().unwrap()
    };
    let (planned, held) = (dd("recordings"), dd("held"));
    // CALLA held here, CALLB by `nonDelete` in its metadata.
    assert!(planned >= 2 && held >= 2, "{planned} {held}");
    assert_eq!(s.json(USER, &format!("/api/v1/jobs/{id}"))["job"]["state"], "planned");
    // A rule's own tasks can be planned too.
    let html = plan(&s, OPS, &[("_csrf", &tok), ("rule", "Daily backup")]);
    assert!(html.contains("Task 1: backup") && html.contains("Start this plan"), "{html}");
    // A purge without a minimum age is the API's refusal, shown in the form again (what was
    // typed kept) at the field, named by the form's label, not the API's field name.
    let r = post(
        &s,
        OPS,
        "/jobs",
        &[("_csrf", &tok), ("type", "purge"), ("call_type", "inbound"), ("labels_include", "keep-me")],
    );
    assert_eq!(r.status(), 400);
    let html = r.text().unwrap();
    let err = html.split("id=\"min_age-error\"").nth(1).unwrap_or_else(|| panic!("no error at the field: {html}"));
    let err = err.split("</p>").next().unwrap();
    assert!(err.contains("Minimum age (days)") && !err.contains("min_age"), "{err}");
    assert!(html.contains("value=\"inbound\"") && html.contains("value=\"keep-me\""), "{html}");
    assert!(html.contains("value=\"purge\" checked"), "{html}");

    // Start runs that plan; the job's page shows it to its end.
    let r = post(&s, OPS, &format!("/jobs/{id}/start"), &[("_csrf", &tok)]);
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with(&format!("/jobs/{id}?done=")));
    let t = Instant::now();
    let html = loop {
        let (st, html) = page(&s, USER, &format!("/jobs/{id}"));
        assert_eq!(st, 200);
        if html.contains("badge succeeded") || html.contains("badge failed") {
            break html;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the job did not end: {html}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(html.contains("badge succeeded"), "{html}");
    let job = s.json(USER, &format!("/api/v1/jobs/{id}"))["job"].clone();
    assert_eq!(job["tasks"][0]["recordings"].as_u64(), Some(planned), "{job}");
    assert_eq!(s.get(USER, &format!("/api/v2/recordings/{OTHER}")).status(), 404, "purged");
    assert_eq!(s.get(USER, &format!("/api/v2/recordings/{CALL}")).status(), 200, "held: kept");
    // A second start of the same plan is refused; so is an unknown job.
    assert_eq!(post(&s, OPS, &format!("/jobs/{id}/start"), &[("_csrf", &tok)]).status(), 409);
    assert_eq!(post(&s, OPS, "/jobs/j-nope/cancel", &[("_csrf", &tok)]).status(), 404);
    // The history lists it.
    let (_, html) = page(&s, USER, "/jobs");
    assert!(html.contains(&id), "{html}");

    // A planned job can be discarded.
    let html = plan(&s, OPS, &[("_csrf", &tok), ("type", "purge"), ("min_age", "1")]);
    let id2 = html.split("/jobs/").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_ne!(id, id2);
    assert_eq!(post(&s, OPS, &format!("/jobs/{id2}/cancel"), &[("_csrf", &tok)]).status(), 303);
    assert_eq!(s.json(USER, &format!("/api/v1/jobs/{id2}"))["job"]["state"], "cancelled");

    // Unhold and unlabel; the muxer knows no such pair.
    assert_eq!(post(&s, OPS, &format!("/recordings/{CALL}/unhold"), &[("_csrf", &tok)]).status(), 303);
    assert_eq!(
        post(&s, OPS, &format!("/recordings/{CALL}/unlabel"), &[("_csrf", &tok), ("label", "legal")]).status(),
        303
    );
    let api = s.json(USER, &format!("/api/v2/recordings/{CALL}"));
    assert!(api["recording"].get("hold").is_none(), "{api}");
    assert!(!api["recording"]["labels"].to_string().contains("legal"), "{api}");
    assert_eq!(post(&s, OPS, "/muxer/S-none/retry", &[("_csrf", &tok)]).status(), 404);
}

/// `reclife run` with the muxer: the health page shows the scheduler's tick, the muxer page the
/// muxed pair, and the screen recording's page a video player for the muxed file.
#[test]
fn the_daemon_shows_its_tick_its_muxed_pair_and_the_muxed_video() {
    use std::process::Command;
    let node = Node::new(0);
    let (mut child, url, _) = node.run_with_muxer();
    let get = |path: &str| -> String {
        let r = client().get(format!("{url}{path}")).basic_auth(USER.0, Some(USER.1)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.text().unwrap()
    };
    let t = Instant::now();
    let muxer = loop {
        let html = get("/muxer");
        if html.contains("Muxed pairs (1)") {
            break html;
        }
        assert!(t.elapsed() < Duration::from_secs(120), "nothing muxed: {html}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(muxer.contains("Failed pairs (0)") && muxer.contains(CALL), "{muxer}");
    let screen =
        muxer.split("/recordings/").skip(1).filter_map(|p| p.split('"').next()).find(|id| *id != CALL).unwrap();
    let html = get(&format!("/recordings/{screen}"));
    assert!(html.contains("<video") && html.contains("muxed"), "{html}");
    assert!(html.contains(&format!("/api/v2/screen-recordings/{screen}/content/")), "{html}");
    // The scheduler ticked at start (system time, whatever --now says).
    let health = get("/");
    assert!(health.contains("last tick") && !health.contains("no scheduler has ticked"), "{health}");
    assert!(health.contains("1 pairs muxed"), "{health}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
}

/// The job history pages newest first (by job id), every job on exactly one page.
#[test]
fn the_job_history_pages_newest_first() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    let tok = token(&page(&s, OPS, "/jobs/new").1);
    let mut made = Vec::new();
    for _ in 0..53 {
        let html = plan(&s, OPS, &[("_csrf", &tok), ("type", "purge"), ("min_age", "400")]);
        made.push(html.split("/jobs/").nth(1).unwrap().split('"').next().unwrap().to_string());
    }
    made.sort();
    let ids = |html: &str| -> Vec<String> {
        html.split("<td data-label=\"Job\"><a class=\"id\" href=\"/jobs/")
            .skip(1)
            .map(|p| p.split('"').next().unwrap().to_string())
            .collect()
    };
    let (st, first) = page(&s, USER, "/jobs");
    assert_eq!(st, 200);
    let p1 = ids(&first);
    assert_eq!(p1.len(), 50, "{first}");
    assert!(p1.windows(2).all(|w| w[0] > w[1]), "newest first: {p1:?}");
    assert_eq!(p1[0], made[52]);
    let older =
        first.split("rel=\"next\"").next().unwrap().rsplit("href=\"").next().unwrap().split('"').next().unwrap();
    let older = older.replace("&amp;", "&");
    assert!(older.starts_with("/jobs?before="), "{older}");
    let (_, second) = page(&s, USER, &older);
    let p2 = ids(&second);
    assert_eq!(p2, made[..3].iter().rev().cloned().collect::<Vec<_>>());
    assert!(!second.contains("rel=\"next\""), "no page after the oldest");
}

/// A job's page lists the items it set aside, with their reasons.
#[test]
fn a_jobs_failed_items_show_with_their_reasons() {
    let node = Node::new(0);
    let media = node.data().join("media").join(OTHER);
    let gone = std::fs::read_dir(&media).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(&gone).unwrap();
    let s = node.serve(&[]);
    let tok = token(&page(&s, OPS, "/jobs/new").1);
    let loc = format!("file://{}", node.dir.path().join("web-backups").display());
    let html =
        plan(&s, OPS, &[("_csrf", &tok), ("type", "backup"), ("min_age", "1"), ("location", &loc), ("zip", "1")]);
    let id = html.split("/jobs/").nth(1).unwrap().split('"').next().unwrap().to_string();
    assert_eq!(post(&s, OPS, &format!("/jobs/{id}/start"), &[("_csrf", &tok)]).status(), 303);
    let t = Instant::now();
    let html = loop {
        let html = page(&s, USER, &format!("/jobs/{id}")).1;
        if html.contains("Outcome per task") && !html.contains("badge running") {
            break html;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "the job did not end: {html}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let job = s.json(USER, &format!("/api/v1/jobs/{id}"))["job"].clone();
    let reason = job["failed"][0]["reason"].as_str().unwrap_or_else(|| panic!("no failed item: {job}"));
    assert!(html.contains("Failed items (1)"), "{html}");
    assert!(html.contains(&format!("<code>{OTHER}</code>")), "{html}");
    // maud escapes what it shows; the reason names the missing file.
    let shown = reason.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    assert!(html.contains(&shown), "{reason} not on the page: {html}");
    assert!(reason.contains(gone.file_name().unwrap().to_str().unwrap()), "{reason}");
}

/// Issues 22 and 24: a recording's page lists its plays from the playback audit log (who,
/// when, outcome, for ops), and an encrypted recording gets a player and names the key that
/// opens it (a label, no key material); without a key store it says why it cannot be opened.
#[test]
fn a_recordings_page_lists_its_plays_and_names_the_key_of_encrypted_media() {
    use api_support::ENCRYPTED_CALL;
    let node = Node::new(0);
    node.add_keys();
    let s = node.serve(&[]);
    let (_, html) = page(&s, OPS, &format!("/recordings/{CALL}"));
    assert!(html.contains("Not played through the API yet"), "{html}");
    let doc = s.json(USER, &format!("/api/v2/recordings/{CALL}"));
    let uri = doc["recording"]["mediaFiles"][0]["mediaUri"].as_str().unwrap().to_string();
    assert_eq!(s.get(USER, &uri).status(), 200);
    assert_eq!(s.get(USER, &format!("/api/v2/recordings/{CALL}/play/gone.mp3")).status(), 404);
    assert_eq!(node.plays(2).len(), 2);
    let (_, html) = page(&s, OPS, &format!("/recordings/{CALL}"));
    let table = &html[html.find("id=\"plays\"").expect("a plays table")..];
    let table = &table[..table.find("</table>").unwrap()];
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 2, "{table}");
    assert!(
        rows[0].contains("alice") && rows[0].contains("failed") && rows[0].contains("gone.mp3"),
        "newest first: {}",
        rows[0]
    );
    assert!(rows[1].contains("alice") && rows[1].contains("succeeded") && rows[1].contains("<time"), "{}", rows[1]);
    // `user` plays, and is not shown who else did.
    let (_, html) = page(&s, USER, &format!("/recordings/{CALL}"));
    assert!(!html.contains("id=\"plays\""), "{html}");

    // The encrypted call: a player, and the key that opens it.
    for who in [USER, OPS] {
        let (_, html) = page(&s, who, &format!("/recordings/{ENCRYPTED_CALL}"));
        assert!(
            html.contains("<audio") && html.contains(&format!("/api/v2/recordings/{ENCRYPTED_CALL}/play/")),
            "{html}"
        );
        assert!(html.contains("class=\"key-label\">recording-key</code>"), "{html}");
        assert!(!html.contains("PRIVATE KEY") && !html.contains("the browser cannot play it"), "{html}");
    }
    drop(s);
    // Without a key store, the page says why it cannot be opened.
    let cfg = std::fs::read_to_string(node.config()).unwrap();
    std::fs::write(node.config(), cfg.lines().filter(|l| !l.starts_with("keys_dir")).collect::<Vec<_>>().join("\n"))
        .unwrap();
    let s = node.serve(&[]);
    let (_, html) = page(&s, OPS, &format!("/recordings/{ENCRYPTED_CALL}"));
    assert!(html.contains("this node cannot open it") && html.contains("keys_dir is not set"), "{html}");
    let r = s.get(USER, &format!("/api/v2/recordings/{ENCRYPTED_CALL}/play/{ENCRYPTED_CALL}_0001.mp3"));
    assert_eq!(r.status(), 500);
    let v: Value = r.json().unwrap();
    assert!(v["statusMessage"].as_str().unwrap().contains("no key store"), "{v}");
    let last = node.plays(3).pop().unwrap();
    assert_eq!((last["outcome"].as_str(), last["status"].as_u64()), (Some("failed"), Some(500)), "{last}");
}
