//! HTTP Basic authentication against an Apache htpasswd file, with two roles.
//!
//! Entries are `user:hash`, as `htpasswd -B` (bcrypt, `$2y$`) or `htpasswd -s` (`{SHA}`, base64
//! SHA-1) write them; other schemes (`$apr1$` MD5, crypt) are refused when the file is loaded,
//! naming the line. Users listed in `[api] ops_users` have the `ops` role, everyone else `user`.
//! `user` may read and play (GET/HEAD outside `/api/v2/ops`); `ops` may do everything. The
//! operators' pages ([`crate::web`]) get the same checks, with refusals as pages.
//!
//! A successful check is remembered in memory under a salted SHA-256 of the credentials, so
//! bcrypt's cost is paid once per client rather than once per request. An unknown user name
//! costs what a known one does: its password is checked against a dummy bcrypt hash of the
//! file's highest cost (and a `{SHA}` user's check pays that bcrypt too), so the answer's time
//! does not tell which names exist (as long as the file's bcrypt entries share one cost).
//!
//! Failed logins are counted per user name and client address. Past [`MAX_FAILURES`] in
//! [`WINDOW`], that pair's attempts whose credentials are not already known good are slowed
//! down, never refused: one at a time, each after a delay that doubles from [`FIRST_DELAY`] up
//! to [`MAX_DELAY`]. Right credentials always succeed (a guesser behind the same proxy or NAT
//! cannot lock anyone out). Passwords and hashes never reach logs or error messages.

use super::{ApiError, ApiFailure, Shared};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest as _;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Failed logins per user name and client address in [`WINDOW`] before attempts slow down.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// The delay of the first slowed-down attempt; it doubles with each failure after.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// A user name is counted by at most this many bytes (names are the client's to choose).
const NAME_KEY_MAX: usize = 128;
/// The dummy hash's cost is the file's highest, capped here (a typo in a file must not make
/// every start take minutes).
const DUMMY_COST_MAX: u32 = 15;
/// Remembered successful logins; the cache is cleared when it grows past this.
const CACHE_MAX: usize = 4096;

/// Who made a request, for handlers that record it (deletions are audited under the user).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: String,
    pub role: Role,
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read and play.
    User,
    /// Everything.
    Ops,
}

#[derive(Clone)]
enum Hash {
    Bcrypt(String),
    Sha1([u8; 20]),
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hash::Bcrypt(_) => "Bcrypt(..)",
            Hash::Sha1(_) => "Sha1(..)",
        })
    }
}

/// Failed logins of one user name from one address.
#[derive(Debug)]
struct Failures {
    count: u32,
    since: Instant,
    /// Held by the attempt being slowed down, so that parallel guesses wait in line.
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// The users file, loaded once, and the login bookkeeping.
#[derive(Debug)]
pub struct Users {
    users: HashMap<String, (Hash, Role)>,
    salt: [u8; 32],
    /// What an unknown user's password is checked against.
    dummy: Hash,
    verified: Mutex<HashMap<[u8; 32], (String, Role)>>,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
}

/// The cost of a bcrypt hash (`$2y$10$…`: 10).
fn bcrypt_cost(h: &str) -> Option<u32> {
    h.get(4..6)?.parse().ok()
}

/// A warning when the users file can be read by others, or by a group that is not this
/// process's own (the service's group, as `root:reclife 0640` installs it, is fine): its hashes
/// could be attacked offline.
pub fn users_file_mode_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.mode() & 0o777;
    // SAFETY: getegid cannot fail and touches no memory.
    let own_group = meta.gid() == unsafe { libc::getegid() };
    let who = if mode & 0o004 != 0 {
        "everyone"
    } else if mode & 0o040 != 0 && !own_group {
        "its group"
    } else {
        return None;
    };
    Some(format!(
        "users file {} is readable by {who} (mode {mode:04o}): its password hashes can be attacked offline; chmod 600 it (or 640 with the service's group)",
        path.display()
    ))
}

impl Users {
    /// Reads an htpasswd file. Errors name the file and the line, never the hash. A file
    /// readable by group or others is logged as a warning ([`users_file_mode_warning`]).
    pub fn load(path: &Path, ops_users: &[String]) -> Result<Users, ApiError> {
        let bad = |why: String| ApiError::Users { path: path.to_path_buf(), why };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        if let Some(w) = users_file_mode_warning(path) {
            tracing::warn!("{w}");
        }
        let users = parse(&text, ops_users).map_err(bad)?;
        if users.is_empty() {
            return Err(bad("no users".into()));
        }
        for o in ops_users {
            if !users.contains_key(o) {
                return Err(bad(format!("[api] ops_users names {o:?}, who is not in the file")));
            }
        }
        let mut salt = [0u8; 32];
        openssl::rand::rand_bytes(&mut salt).map_err(|e| bad(format!("no random salt: {e}")))?;
        let dummy = dummy_hash(&users).map_err(bad)?;
        Ok(Users { users, salt, dummy, verified: Mutex::new(HashMap::new()), failures: Mutex::new(HashMap::new()) })
    }

    /// The salted tag under which right credentials are remembered.
    fn tag(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    /// The role of `user` if these credentials were found right before (no hashing).
    fn remembered(&self, user: &str, password: &str) -> Option<Role> {
        let tag = self.tag(user, password);
        match self.verified.lock().ok()?.get(&tag) {
            Some((u, r)) if u == user => Some(*r),
            _ => None,
        }
    }

    /// The role of `user` if `password` is right. An unknown user costs a check against the
    /// dummy hash, as a known one costs a check against theirs.
    pub async fn check(&self, user: &str, password: &str) -> Option<Role> {
        if let Some(r) = self.remembered(user, password) {
            return Some(r);
        }
        let (hash, role) = match self.users.get(user) {
            Some((h, r)) => (h.clone(), Some(*r)),
            None => (self.dummy.clone(), None),
        };
        let bcrypt_check = |h: String| {
            let pw = password.to_string();
            async move {
                tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false)).await.unwrap_or(false)
            }
        };
        let ok = match hash {
            Hash::Sha1(want) => {
                let got: [u8; 20] = sha1::Sha1::digest(password.as_bytes()).into();
                // A `{SHA}` user pays the dummy's bcrypt too, so that a fast answer does not say
                // which names exist (the result is the SHA-1 comparison's).
                if let Hash::Bcrypt(d) = &self.dummy {
                    bcrypt_check(d.clone()).await;
                }
                got.iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
            Hash::Bcrypt(h) => bcrypt_check(h).await,
        };
        let role = role?;
        if !ok {
            return None;
        }
        let tag = self.tag(user, password);
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= CACHE_MAX {
                v.clear();
            }
            v.insert(tag, (user.to_string(), role));
        }
        Some(role)
    }

    /// Checks credentials as a login: right ones always give the role; attempts of a user name
    /// from an address that failed [`MAX_FAILURES`] times in [`WINDOW`] wait their turn and
    /// their delay first, unless the credentials are already known good.
    pub async fn login(&self, user: &str, password: &str, ip: IpAddr) -> Option<Role> {
        if let Some(r) = self.remembered(user, password) {
            return Some(r);
        }
        let key = (name_key(user), ip);
        let slowed = self.slowed(&key);
        let _turn = match slowed {
            Some((gate, delay)) => {
                let turn = gate.lock_owned().await;
                tokio::time::sleep(delay).await;
                Some(turn)
            }
            None => None,
        };
        let role = self.check(user, password).await;
        if role.is_none() {
            self.failed(key);
        }
        role
    }

    /// The gate and the delay of a pair past its allowance, if it is.
    fn slowed(&self, key: &(String, IpAddr)) -> Option<(Arc<tokio::sync::Mutex<()>>, Duration)> {
        let f = self.failures.lock().ok()?;
        let e = f.get(key).filter(|e| e.count >= MAX_FAILURES && e.since.elapsed() < WINDOW)?;
        Some((e.gate.clone(), delay_after(e.count)))
    }

    fn failed(&self, key: (String, IpAddr)) {
        let Ok(mut f) = self.failures.lock() else { return };
        if f.len() > CACHE_MAX {
            f.retain(|_, e| e.since.elapsed() < WINDOW);
        }
        let e = f.entry(key).or_insert_with(|| Failures { count: 0, since: Instant::now(), gate: Default::default() });
        if e.since.elapsed() >= WINDOW {
            e.count = 0;
            e.since = Instant::now();
        }
        e.count = e.count.saturating_add(1);
    }
}

/// The delay of an attempt after `failures` failures (at least [`MAX_FAILURES`]).
fn delay_after(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(MAX_FAILURES).min(16);
    FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY)
}

/// A user name as the failure count keys it: at most [`NAME_KEY_MAX`] bytes.
fn name_key(user: &str) -> String {
    let mut end = user.len().min(NAME_KEY_MAX);
    while !user.is_char_boundary(end) {
        end -= 1;
    }
    user[..end].to_string()
}

/// A bcrypt hash of a random password at the file's highest bcrypt cost, or a `{SHA}` one when
/// the file has no bcrypt entry: what an unknown user's password is checked against.
fn dummy_hash(users: &HashMap<String, (Hash, Role)>) -> Result<Hash, String> {
    let mut secret = [0u8; 16];
    openssl::rand::rand_bytes(&mut secret).map_err(|e| format!("no random bytes: {e}"))?;
    let cost = users
        .values()
        .filter_map(|(h, _)| match h {
            Hash::Bcrypt(h) => bcrypt_cost(h),
            Hash::Sha1(_) => None,
        })
        .max();
    let Some(cost) = cost else { return Ok(Hash::Sha1(sha1::Sha1::digest(secret).into())) };
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt).map_err(|e| format!("no random bytes: {e}"))?;
    let parts = bcrypt::hash_with_salt(hex::encode(secret), cost.clamp(4, DUMMY_COST_MAX), salt)
        .map_err(|e| format!("no dummy hash: {e}"))?;
    Ok(Hash::Bcrypt(parts.format_for_version(bcrypt::Version::TwoY)))
}

fn parse(text: &str, ops_users: &[String]) -> Result<HashMap<String, (Hash, Role)>, String> {
    let mut out = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let (user, hash) = line.split_once(':').ok_or_else(|| format!("line {n}: not user:hash"))?;
        let hash = if let Some(b64) = hash.strip_prefix("{SHA}") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| format!("line {n} (user {user}): {{SHA}} hash is not base64"))?;
            Hash::Sha1(raw.try_into().map_err(|_| format!("line {n} (user {user}): {{SHA}} hash is not 20 bytes"))?)
        } else if ["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
            Hash::Bcrypt(hash.to_string())
        } else {
            return Err(format!(
                "line {n} (user {user}): unsupported hash scheme; write it with `htpasswd -B` (bcrypt) or `htpasswd -s` (SHA-1)"
            ));
        };
        let role = if ops_users.iter().any(|o| o == user) { Role::Ops } else { Role::User };
        if out.insert(user.to_string(), (hash, role)).is_some() {
            return Err(format!("line {n}: user {user} appears twice"));
        }
    }
    Ok(out)
}

/// The role a request needs: `ops` for anything but reading, and for the ops endpoints.
pub fn needed(method: &Method, path: &str) -> Role {
    let reads = method == Method::GET || method == Method::HEAD;
    if !reads
        || path.starts_with("/api/v2/ops")
        || path.starts_with("/internal-api")
        || path.starts_with("/api/v1/check")
    {
        Role::Ops
    } else {
        Role::User
    }
}

fn basic(req: &Request) -> Option<(String, String)> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// A bearer token read from a file (its first line), kept as a SHA-256 digest and compared in
/// constant time.
pub struct BearerToken([u8; 32]);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

impl BearerToken {
    /// Reads the token; an empty or unreadable file is an error naming it (never the token).
    pub fn load(path: &Path) -> Result<BearerToken, ApiError> {
        let bad = |why: String| ApiError::MetricsToken { path: path.to_path_buf(), why };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let token = text.lines().next().unwrap_or("").trim();
        if token.len() < 16 {
            return Err(bad("the token (first line) must be at least 16 characters".into()));
        }
        Ok(BearerToken(sha2::Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether the request carries `Authorization: Bearer <this token>`.
    pub fn matches(&self, req: &Request) -> bool {
        let Some(v) = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
        let Some((scheme, token)) = v.split_once(' ') else { return false };
        if !scheme.eq_ignore_ascii_case("bearer") {
            return false;
        }
        let d: [u8; 32] = sha2::Sha256::digest(token.trim().as_bytes()).into();
        openssl::memcmp::eq(&d, &self.0)
    }
}

/// A refusal: the RWS envelope for the API, a page for the operators' pages.
fn refuse(page: bool, status: StatusCode, message: String) -> Response {
    if page {
        crate::web::error_page(status, &message)
    } else {
        ApiFailure { status, code: ApiFailure::UNAUTHORIZED, message }.into_response()
    }
}

fn unauthorized(page: bool, message: &str) -> Response {
    let mut r = refuse(page, StatusCode::UNAUTHORIZED, message.into());
    r.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"reclife\""));
    r
}

/// Middleware: authenticates the request and checks its role.
pub async fn require(
    State(s): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut req: Request,
    next: Next,
) -> Response {
    // Prometheus scrapes `/metrics` with its own bearer token, not an operator's password.
    if req.uri().path() == "/metrics" && req.method() == axum::http::Method::GET {
        if let Some(t) = &s.metrics_token {
            if t.matches(&req) {
                return next.run(req).await;
            }
        }
    }
    let ip = peer.ip();
    let page = crate::web::is_page(req.uri().path());
    let Some((user, password)) = basic(&req) else {
        return unauthorized(page, "authentication required (HTTP Basic)");
    };
    let Some(role) = s.users.login(&user, &password, ip).await else {
        s.metrics.auth_failure();
        tracing::warn!(%user, %ip, "failed login");
        return unauthorized(page, "wrong user name or password");
    };
    if role < needed(req.method(), req.uri().path()) {
        return refuse(page, StatusCode::FORBIDDEN, format!("user {user} has the user role; this needs the ops role"));
    }
    req.extensions_mut().insert(Caller { user, role });
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_htpasswd() {
        // A `{SHA}` line as `htpasswd -s` writes it, and a bcrypt line.
        let text = "# users\nops:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\nalice:$2y$05$abcdefghijklmnopqrstuu\n";
        let u = parse(text, &["ops".into()]).unwrap();
        assert_eq!(u["ops"].1, Role::Ops);
        assert_eq!(u["alice"].1, Role::User);
        let e = parse("bob:$apr1$xyz$abc\n", &[]).unwrap_err();
        assert!(e.contains("line 1") && e.contains("htpasswd -B") && !e.contains("xyz"), "{e}");
        assert!(parse("a:{SHA}!!\n", &[]).unwrap_err().contains("line 1"));
        assert!(parse("a:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\na:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n", &[]).is_err());
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        assert_eq!(delay_after(MAX_FAILURES), FIRST_DELAY);
        assert_eq!(delay_after(MAX_FAILURES + 1), FIRST_DELAY * 2);
        assert_eq!(delay_after(MAX_FAILURES + 40), MAX_DELAY);
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
        assert_eq!(name_key(&"é".repeat(100)).len(), 128);
        assert_eq!(bcrypt_cost("$2y$12$abc"), Some(12));
    }

    #[test]
    fn roles_by_route() {
        assert_eq!(needed(&Method::GET, "/api/v2/recordings"), Role::User);
        assert_eq!(needed(&Method::GET, "/api/v2/ops/contact-centers"), Role::Ops);
        assert_eq!(needed(&Method::POST, "/api/v2/recordings/x/labels"), Role::Ops);
        assert_eq!(needed(&Method::DELETE, "/api/v2/recordings/x"), Role::Ops);
    }
}
