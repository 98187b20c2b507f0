//! HTTP Basic authentication against an Apache htpasswd file, with two roles.
//!
//! Entries are `user:hash`, as `htpasswd -B` (bcrypt, `$2y$`) or `htpasswd -s` (`{SHA}`, base64
//! SHA-1) write them; other schemes (`$apr1$` MD5, crypt) are refused when the file is loaded,
//! naming the line. Users listed in `[api] ops_users` have the `ops` role, everyone else `user`.
//! `user` may read and play (GET/HEAD outside `/api/v2/ops`); `ops` may do everything. The
//! operators' pages ([`crate::web`]) get the same checks, with refusals as pages.
//!
//! A successful check is remembered in memory under a salted SHA-256 of the credentials, so
//! bcrypt's cost is paid once per client rather than once per request. Failed logins are
//! counted per client address: past [`MAX_FAILURES`] in [`WINDOW`], the address gets 429 until
//! the window ends. Passwords and hashes never reach logs or error messages.

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
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed logins allowed per client address in [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
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

/// The users file, loaded once, and the login bookkeeping.
#[derive(Debug)]
pub struct Users {
    users: HashMap<String, (Hash, Role)>,
    salt: [u8; 32],
    verified: Mutex<HashMap<[u8; 32], (String, Role)>>,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Users {
    /// Reads an htpasswd file. Errors name the file and the line, never the hash.
    pub fn load(path: &Path, ops_users: &[String]) -> Result<Users, ApiError> {
        let bad = |why: String| ApiError::Users { path: path.to_path_buf(), why };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
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
        Ok(Users { users, salt, verified: Mutex::new(HashMap::new()), failures: Mutex::new(HashMap::new()) })
    }

    /// The role of `user` if `password` is right.
    pub async fn check(&self, user: &str, password: &str) -> Option<Role> {
        let (hash, role) = self.users.get(user)?.clone();
        let mut h = sha2::Sha256::new();
        h.update(self.salt);
        h.update(user.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        let tag: [u8; 32] = h.finalize().into();
        if let Some((u, r)) = self.verified.lock().ok()?.get(&tag) {
            if u == user {
                return Some(*r);
            }
        }
        let ok = match hash {
            Hash::Sha1(want) => {
                let got: [u8; 20] = sha1::Sha1::digest(password.as_bytes()).into();
                got.iter().zip(want.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
            }
            Hash::Bcrypt(h) => {
                let pw = password.to_string();
                tokio::task::spawn_blocking(move || bcrypt::verify(pw, &h).unwrap_or(false)).await.unwrap_or(false)
            }
        };
        if !ok {
            return None;
        }
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= CACHE_MAX {
                v.clear();
            }
            v.insert(tag, (user.to_string(), role));
        }
        Some(role)
    }

    fn blocked(&self, ip: IpAddr) -> bool {
        let Ok(f) = self.failures.lock() else { return false };
        matches!(f.get(&ip), Some((n, since)) if *n >= MAX_FAILURES && since.elapsed() < WINDOW)
    }

    fn failed(&self, ip: IpAddr) {
        let Ok(mut f) = self.failures.lock() else { return };
        if f.len() > CACHE_MAX {
            f.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        let e = f.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= WINDOW {
            *e = (0, Instant::now());
        }
        e.0 += 1;
    }
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
    let ip = peer.ip();
    let page = crate::web::is_page(req.uri().path());
    if s.users.blocked(ip) {
        return ApiFailure {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: ApiFailure::TOO_MANY,
            message: format!("too many failed logins from {ip}; wait {} s", WINDOW.as_secs()),
        }
        .into_response();
    }
    let Some((user, password)) = basic(&req) else {
        return unauthorized(page, "authentication required (HTTP Basic)");
    };
    let Some(role) = s.users.check(&user, &password).await else {
        s.users.failed(ip);
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
    fn roles_by_route() {
        assert_eq!(needed(&Method::GET, "/api/v2/recordings"), Role::User);
        assert_eq!(needed(&Method::GET, "/api/v2/ops/contact-centers"), Role::Ops);
        assert_eq!(needed(&Method::POST, "/api/v2/recordings/x/labels"), Role::Ops);
        assert_eq!(needed(&Method::DELETE, "/api/v2/recordings/x"), Role::Ops);
    }
}
