//! The operators' pages in a real browser: `reclife serve` over the sample recordings, and
//! `node --test tests/browser/` driving Debian's headless Chromium with playwright-core
//! (installed by `deploy/install.sh` into `tests/browser/node_modules`).
//!
//! Without Chromium, node or playwright-core the test says so and passes, unless
//! `RECLIFE_REQUIRE_SERVERS=1` (CI), where it fails. `RECLIFE_CHROMIUM` names another browser
//! build (default `/usr/bin/chromium`). Screenshots go to
//! `$RECLIFE_ARTIFACTS` when set.

mod api_support;
mod browser_support;

use api_support::{Node, OPS, USER};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn the_pages_work_in_headless_chromium() {
    if !browser_support::available() {
        return;
    }
    let dir = browser_support::dir();
    let node = Node::new(0);
    let s = node.serve(&[]);
    let t = Instant::now();
    let mut cmd = Command::new("node");
    cmd.current_dir(&dir)
        .args(["--test", "--test-concurrency=1", "--test-timeout=120000"])
        .arg("web.test.mjs")
        .env("RECLIFE_URL", &s.url)
        .env("RECLIFE_OPS", format!("{}:{}", OPS.0, OPS.1))
        .env("RECLIFE_USER", format!("{}:{}", USER.0, USER.1))
        .env("RECLIFE_CHROMIUM", browser_support::chromium());
    let out = cmd.output().unwrap();
    let took = t.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed ({:?}):\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        api_support::read(&s.stderr)
    );
    // node's runner says how many passed; all five must have run.
    assert!(stdout.contains("# pass 5") && stdout.contains("# fail 0"), "{stdout}");
    eprintln!("browser tests: {took:?}");
    assert!(took < Duration::from_secs(180), "the browser tests took {took:?}");
}

/// Issue 24, in headless Chromium (tests/browser/layout.test.mjs) at 1366 px and 390 px: no word
/// of a table cell broken across lines and no page wider than the screen on every page, tables
/// as cards on a phone; a reloaded plan preview plans one job only; a form error keeps what was
/// typed, at its field, by its label; an unknown URL and refused credentials are HTML pages; a
/// video shows a frame before it plays. `RECLIFE_SCREENSHOTS=dir` saves every page at both
/// widths (how docs/screenshots is made).
#[test]
fn pages_read_well_at_1366_and_390_px_in_headless_chromium() {
    if !browser_support::available() {
        return;
    }
    let node = Node::new(0);
    let s = node.serve(&[]);
    let mut cmd = Command::new("node");
    cmd.current_dir(browser_support::dir())
        .args(["--test", "--test-concurrency=1", "--test-timeout=180000"])
        .arg("layout.test.mjs")
        .env("RECLIFE_URL", &s.url)
        .env("RECLIFE_OPS", format!("{}:{}", OPS.0, OPS.1))
        .env("RECLIFE_USER", format!("{}:{}", USER.0, USER.1))
        .env("RECLIFE_CHROMIUM", browser_support::chromium());
    if let Some(dir) = std::env::var_os("RECLIFE_SCREENSHOTS") {
        cmd.env("RECLIFE_SCREENSHOTS", std::path::absolute(dir).unwrap());
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("# pass 5") && stdout.contains("# fail 0"),
        "node --test layout.test.mjs failed ({:?}):\n{stdout}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        api_support::read(&s.stderr)
    );
}

/// Origin safety in headless Chromium (tests/browser/origin.test.mjs): an HTML-typed media file
/// with a script that reads a form token from /rules, enables a rule and holds a call, opened by
/// ops, runs nothing; a page on another loopback port posting forms and no-cors requests to the
/// API (a hold, an /internal-api document clearing nonDelete, a rule enabled) changes nothing.
#[test]
fn hostile_media_and_cross_site_pages_change_nothing_in_headless_chromium() {
    if !browser_support::available() {
        return;
    }
    let node = Node::new(0);
    let (call, guarded, rule) =
        ("CALLA0000000000000000000000000001", "CALLB0000000000000000000000000002", "Purge old files");
    let html_call = "CALLHTML0000000000000000000000001";
    let script = format!(
        r#"<!doctype html><html><head><title>media</title></head><body><script>
document.title = "script ran";
(async () => {{
  const rules = await (await fetch("/rules")).text();
  const token = (rules.match(/name="_csrf" value="([0-9a-f]+)"/) || [])[1];
  await fetch("/rules/{rule_seg}/enable", {{ method: "POST",
    headers: {{ "Content-Type": "application/x-www-form-urlencoded" }}, body: "_csrf=" + token }});
  await fetch("/api/v2/recordings/{call}/hold", {{ method: "POST",
    headers: {{ "Content-Type": "application/json" }}, body: JSON.stringify({{ reason: "by a script" }}) }});
  document.title = "script done";
}})();
</script></body></html>"#,
        rule_seg = rule.replace(' ', "%20")
    );
    node.add_call(html_call, "page.html", "text/html", script.as_bytes());
    let s = node.serve(&[]);
    let mut doc = s.json(OPS, &format!("/api/v2/recordings/{guarded}"))["recording"].clone();
    assert_eq!(doc["nonDelete"], true);
    doc["nonDelete"] = serde_json::Value::Bool(false);
    let media = s.json(OPS, &format!("/api/v2/recordings/{html_call}"))["recording"]["mediaFiles"][0]["mediaPath"]
        .as_str()
        .unwrap()
        .to_string();
    let out = Command::new("node")
        .current_dir(browser_support::dir())
        .args(["--test", "--test-concurrency=1", "--test-timeout=120000"])
        .arg("origin.test.mjs")
        .env("RECLIFE_URL", &s.url)
        .env("RECLIFE_OPS", format!("{}:{}", OPS.0, OPS.1))
        .env("RECLIFE_USER", format!("{}:{}", USER.0, USER.1))
        .env("RECLIFE_CHROMIUM", browser_support::chromium())
        .env("RECLIFE_HTML_MEDIA", format!("/api/v2{media}"))
        .env("RECLIFE_CALL", call)
        .env("RECLIFE_GUARDED", guarded)
        .env("RECLIFE_GUARDED_DOC", doc.to_string())
        .env("RECLIFE_RULE", rule)
        .env("RECLIFE_CCID", api_support::CCID)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = api_support::read(&s.stderr);
    assert!(
        out.status.success() && stdout.contains("# pass 2") && stdout.contains("# fail 0"),
        "node --test failed ({:?}):\n{stdout}\n{}\nserver log:\n{log}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The forged requests reached the server and were refused there, by their origin.
    assert!(log.contains("cross-origin write refused"), "{log}");
    // And, read back here too: nothing changed.
    assert!(s.json(USER, &format!("/api/v2/recordings/{call}"))["recording"].get("hold").is_none());
    assert_eq!(s.json(USER, &format!("/api/v2/recordings/{guarded}"))["recording"]["nonDelete"], true);
    assert_eq!(s.json(USER, "/api/v1/rules/Purge%20old%20files")["rule"]["enabled"], false);
}

/// Issue 24: an encrypted recording plays in the page (tests/browser/playback.test.mjs): the
/// server decrypts it with the node's keys, Chromium decodes the audio, and the play is a line
/// of the playback audit log naming the user and the key.
#[test]
fn an_encrypted_recording_plays_in_headless_chromium_and_is_audited() {
    if !browser_support::available() {
        return;
    }
    let node = Node::new(0);
    node.add_keys();
    let s = node.serve(&[]);
    let out = Command::new("node")
        .current_dir(browser_support::dir())
        .args(["--test", "--test-concurrency=1", "--test-timeout=120000"])
        .arg("playback.test.mjs")
        .env("RECLIFE_URL", &s.url)
        .env("RECLIFE_OPS", format!("{}:{}", OPS.0, OPS.1))
        .env("RECLIFE_USER", format!("{}:{}", USER.0, USER.1))
        .env("RECLIFE_CHROMIUM", browser_support::chromium())
        .env("RECLIFE_ENCRYPTED_CALL", api_support::ENCRYPTED_CALL)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("# pass 1") && stdout.contains("# fail 0"),
        "node --test failed ({:?}):\n{stdout}\n{}\nserver log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        api_support::read(&s.stderr)
    );
    let plays = node.plays(1);
    let played: Vec<&serde_json::Value> = plays
        .iter()
        .filter(|l| l["recording"] == api_support::ENCRYPTED_CALL && l["user"] == USER.0 && l["outcome"] == "succeeded")
        .collect();
    assert!(!played.is_empty(), "{plays:?}");
    assert!(played.iter().all(|l| l["key"] == "recording-key" && l["bytes"].as_u64() > Some(0)), "{played:?}");
}
