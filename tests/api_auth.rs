//! Authentication and the daemon's life: 401, 403, both htpasswd schemes, failed logins slowed
//! down (never locked out), unknown names as costly as known ones, passwords kept out of logs,
//! configuration errors, graceful SIGTERM.

mod api_support;

use api_support::{read, Node, OPS, USER};
use serde_json::Value;
use std::time::{Duration, Instant};

fn status_and_code(r: reqwest::blocking::Response) -> (u16, i64) {
    let st = r.status().as_u16();
    let v: Value = r.json().unwrap();
    (st, v["statusCode"].as_i64().unwrap())
}

#[test]
fn basic_auth_roles_and_logs() {
    let node = Node::new(0);
    let mut s = node.serve(&["-vv"]);
    let c = s.client();
    let url = |p: &str| format!("{}{p}", s.url);

    // No credentials: 401 with a Basic challenge, in the RWS envelope.
    let r = c.get(url("/api/v2/recordings")).send().unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"reclife\"");
    assert_eq!(status_and_code(r), (401, 5));
    // Wrong password, unknown user, another scheme, garbage: 401.
    assert_eq!(s.get((USER.0, "wrong-password-99"), "/api/v2/recordings").status(), 401);
    assert_eq!(s.get(("mallory", USER.1), "/api/v2/recordings").status(), 401);
    assert_eq!(c.get(url("/api/v2/recordings")).bearer_auth("x").send().unwrap().status(), 401);
    assert_eq!(c.get(url("/api/v2/recordings")).header("authorization", "Basic !!!").send().unwrap().status(), 401);
    // /healthz needs none.
    assert_eq!(c.get(url("/healthz")).send().unwrap().status(), 200);
    assert_eq!(c.get(url("/readyz")).send().unwrap().text().unwrap(), "ready\n");

    // {SHA} user reads and plays; bcrypt ($2y$) ops user too.
    assert_eq!(s.get(USER, "/api/v2/recordings").status(), 200);
    assert_eq!(s.get(OPS, "/api/v2/recordings").status(), 200);
    assert_eq!(s.get(USER, "/api/v1/jobs").status(), 200);
    assert_eq!(s.get(USER, "/metrics").status(), 200);
    // The user role may not use the ops endpoints or act: 403.
    assert_eq!(status_and_code(s.get(USER, "/api/v2/ops/contact-centers")), (403, 5));
    assert_eq!(status_and_code(s.get(USER, "/api/v2/ops/contact-centers/cc1/recordings")), (403, 5));
    let r = c.post(url("/api/v2/recordings/x/hold")).basic_auth(USER.0, Some(USER.1)).body("{}").send().unwrap();
    assert_eq!(r.status(), 403);
    let r = c.post(url("/api/v1/rules/validate")).basic_auth(USER.0, Some(USER.1)).body("x").send().unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(s.get(OPS, "/api/v2/ops/contact-centers").status(), 200);

    // Graceful stop on SIGTERM: exit 0. No password reached the log, failed logins did.
    let st = s.stop();
    assert!(st.success(), "{st:?}");
    let log = read(&s.stderr);
    assert!(log.contains("failed login"), "{log}");
    for secret in [OPS.1, USER.1, "wrong-password-99"] {
        assert!(!log.contains(secret), "password in the log:\n{log}");
    }
}

/// Ten bad logins of one name from one address slow that name's next guesses down, and lock no
/// one out: the right password still gets in, for that user and for others at that address.
#[test]
fn failed_logins_slow_down_but_never_lock_out_the_right_password() {
    let node = Node::new(0);
    let s = node.serve(&[]);
    for _ in 0..10 {
        assert_eq!(s.get((USER.0, "nope"), "/api/v2/recordings").status(), 401);
    }
    let t = Instant::now();
    assert_eq!(status_and_code(s.get((USER.0, "nope-again"), "/api/v2/recordings")), (401, 5));
    let slowed = t.elapsed();
    assert!(slowed >= Duration::from_millis(200), "the eleventh guess was not slowed down: {slowed:?}");
    assert_eq!(status_and_code(s.get(USER, "/api/v2/recordings")), (200, 0), "the right password is refused");
    assert_eq!(status_and_code(s.get(OPS, "/api/v2/recordings")), (200, 0));
    // Known good credentials are not slowed down, however many guesses go on beside them.
    for _ in 0..3 {
        assert_eq!(s.get((USER.0, "still-guessing"), "/api/v2/recordings").status(), 401);
    }
    let t = Instant::now();
    assert_eq!(s.get(USER, "/api/v2/recordings").status(), 200);
    assert!(t.elapsed() < Duration::from_millis(1500), "a remembered login waited {:?}", t.elapsed());
    assert_eq!(s.get((USER.0, "nope"), "/healthz").status(), 200);
}

/// An unknown user name answers no faster than a known one with a wrong password (both pay a
/// bcrypt check), so the answer's time does not tell which names exist. Loose on purpose: the
/// medians of a few tries each, unknown at least half of known.
#[test]
fn unknown_user_names_cost_what_known_ones_do() {
    let node = Node::new(0);
    // carol: bcrypt at cost 8, well above the noise of a loopback request.
    let carol = bcrypt::hash_with_result("carol-pw-31", 8).unwrap().format_for_version(bcrypt::Version::TwoY);
    let users = node.dir.path().join("users");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{text}carol:{carol}\n")).unwrap();
    let s = node.serve(&[]);
    let timed = |user: &str, pw: &str| {
        let t = Instant::now();
        let st = s.get((user, pw), "/api/v2/diagnostics/version").status();
        assert_eq!(st, 401, "{user}");
        t.elapsed()
    };
    let (mut known, mut sha, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    // Seven tries each: below the ten failures after which one name's guesses slow down.
    for i in 0..7 {
        known.push(timed("carol", &format!("wrong-{i}")));
        sha.push(timed(USER.0, &format!("wrong-{i}")));
        unknown.push(timed(&format!("nobody-{i}"), "wrong"));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, h, u) = (median(&mut known), median(&mut sha), median(&mut unknown));
    assert!(u * 2 >= k, "unknown users answer in {u:?}, known ones in {k:?}: the time tells which names exist");
    // A `{SHA}` user (alice) is no faster either.
    assert!(h * 2 >= u, "a {{SHA}} user answers in {h:?}, unknown ones in {u:?}: the time tells which names exist");
}

#[test]
fn configuration_errors_are_clear() {
    let node = Node::new(0);
    let cfg = std::fs::read_to_string(node.config()).unwrap();
    // No users file: refuses to start.
    let no_users: String = cfg.lines().filter(|l| !l.starts_with("users_file")).map(|l| format!("{l}\n")).collect();
    std::fs::write(node.config(), no_users.replace("ops_users = [\"ops\"]\n", "")).unwrap();
    let out = node.cmd().args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("users_file"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(node.config(), &cfg).unwrap();
    // An MD5 ($apr1$) entry: the error names the file and line, not the hash.
    let users = node.dir.path().join("users");
    std::fs::write(&users, "ops:$apr1$saltsalt$hashhashhashhashhash12\n").unwrap();
    let out = node.cmd().args(["serve", "--listen", "127.0.0.1:0"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 1") && err.contains(&users.display().to_string()) && !err.contains("hashhash"), "{err}");
    // A port in use: named.
    std::fs::write(&users, "ops:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = node.cmd().args(["serve", "--listen", &addr]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&addr));
}

/// `/metrics` is scrapable with the bearer token of `[api] metrics_token_file` (Prometheus'
/// `authorization: { credentials_file: … }`), without an operator's password; the token opens
/// nothing else. A users file others can read is named in a warning at start.
#[test]
fn metrics_token_scrapes_without_credentials_and_a_readable_users_file_is_warned() {
    let node = Node::new(0);
    let token = "scrape-token-0123456789abcdef";
    let tf = node.dir.path().join("metrics.token");
    std::fs::write(&tf, format!("{token}\n")).unwrap();
    let cfg = std::fs::read_to_string(node.config()).unwrap();
    assert!(cfg.trim_end().ends_with(']'), "[api] is the config's last section: {cfg}");
    std::fs::write(node.config(), format!("{cfg}metrics_token_file = \"{}\"\n", tf.display())).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        let users = node.dir.path().join("users");
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let mut s = node.serve(&[]);
    let c = s.client();
    let url = |p: &str| format!("{}{p}", s.url);
    let r = c.get(url("/metrics")).bearer_auth(token).send().unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().unwrap().contains("# TYPE"), "Prometheus text format");
    assert_eq!(c.get(url("/metrics")).bearer_auth("scrape-token-wrong-456789abcdef").send().unwrap().status(), 401);
    assert_eq!(c.get(url("/metrics")).send().unwrap().status(), 401);
    assert_eq!(c.get(url("/api/v2/recordings")).bearer_auth(token).send().unwrap().status(), 401, "metrics only");
    assert_eq!(s.get(USER, "/metrics").status(), 200, "operators still may");
    assert!(s.stop().success());
    let log = read(&s.stderr);
    assert!(log.contains("is readable by everyone (mode 0644)") && log.contains("chmod 600"), "{log}");
    assert!(!log.contains(token), "the token never reaches the log");
}
