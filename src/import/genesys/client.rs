//! The HTTP client for Genesys Cloud: an OAuth client-credentials token (`POST
//! <auth_url>/oauth/token`, HTTP Basic with the client id and secret, form body
//! `grant_type=client_credentials`; the answer's `access_token` and `expires_in`), renewed a
//! while before it expires and at once when the API answers 401; every request with a timeout;
//! 429 waits the `Retry-After` the API gives; 5xx and network errors retried with capped, jittered
//! exponential backoff. A TLS client certificate is presented when one is configured. The
//! secret, the token and the client key never reach a log, an error or `Debug`.

use crate::import::config::{Credentials, SourceConfig};
use crate::import::ImportError;
use crate::storage::retry::{backoff, retry_after, RetryPolicy};
use serde::Deserialize;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A token is renewed when less than this share of its life is left (and at least 10 s).
const RENEW_AT_LEFT: f64 = 0.1;

struct Token {
    value: String,
    renew_at: Instant,
}

/// What an answer carried, for the caller: the status and the body.
pub struct Answer {
    pub status: u16,
    pub body: bytes::Bytes,
}

pub struct Client {
    source: String,
    http: reqwest::Client,
    auth_url: String,
    api_url: String,
    creds: Credentials,
    policy: RetryPolicy,
    token: Mutex<Option<Token>>,
    /// The forward proxy's URL (no credentials), when one is configured.
    proxy: Option<String>,
    /// Tokens obtained, for the report and tests.
    pub tokens_issued: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("source", &self.source).field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The parts of an error answer worth showing (Genesys's ErrorBody: `message`, `code`).
#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn explain(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => [e.message, e.error_description, e.code, e.error].into_iter().flatten().collect::<Vec<_>>().join(": "),
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string(),
    }
}

impl Client {
    pub fn new(name: &str, cfg: &SourceConfig) -> Result<Client, ImportError> {
        let bad = |m: String| ImportError::Config { source_name: name.to_string(), message: m };
        let creds = cfg.credentials(name)?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(cfg.timeout_secs.clamp(1, 30)))
            .timeout(Duration::from_secs(cfg.timeout_secs.max(1)));
        let proxy_cfg = cfg.proxy(name)?;
        let proxy = proxy_cfg.as_ref().map(|(u, _)| u.clone());
        if let Some((url, auth)) = proxy_cfg {
            let mut p = reqwest::Proxy::all(&url).map_err(|e| bad(format!("proxy {url}: {e}")))?;
            if let Some((u, pw)) = auth {
                p = p.basic_auth(&u, &pw);
            }
            b = b.proxy(p);
        } else {
            b = b.no_proxy();
        }
        if let Some(path) = &cfg.tls_trust_list {
            let pem = std::fs::read(path).map_err(|e| bad(format!("tls_trust_list {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| bad(format!("tls_trust_list {}: {e}", path.display())))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        if let Some(pem) = cfg.client_identity(name)? {
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| bad(format!("tls_client_certificate and tls_client_key: {e}")))?;
            b = b.identity(id);
        }
        let http = b.build().map_err(|e| bad(format!("HTTP client: {e}")))?;
        let policy = RetryPolicy {
            max_attempts: cfg.max_attempts,
            base: Duration::from_millis(cfg.backoff_base_ms),
            cap: Duration::from_millis(cfg.backoff_cap_ms),
        };
        Ok(Client {
            source: name.to_string(),
            http,
            auth_url: cfg.auth_url.trim_end_matches('/').to_string(),
            api_url: cfg.api_url.trim_end_matches('/').to_string(),
            creds,
            policy,
            token: Mutex::new(None),
            proxy,
            tokens_issued: Default::default(),
        })
    }

    fn err(&self, message: String) -> ImportError {
        ImportError::Api { source_name: self.source.clone(), message }
    }

    /// A valid token: the one held, or a new one when it is near its end (or `force`).
    async fn token(&self, force: bool) -> Result<String, ImportError> {
        let mut held = self.token.lock().await;
        if let Some(t) = held.as_ref() {
            if !force && Instant::now() < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        let url = format!("{}/oauth/token", self.auth_url);
        let mut attempt = 1;
        let answer = loop {
            let sent = self
                .http
                .post(&url)
                .basic_auth(&self.creds.client_id, Some(&self.creds.client_secret))
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials")
                .send()
                .await;
            let (why, after) = match sent {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let after =
                        retry_after(r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()));
                    let body = r.bytes().await.unwrap_or_default();
                    match status {
                        200..=299 => break body,
                        // A forward proxy's refusal: 407, or (tinyproxy) a 401 that is not
                        // the OAuth server's JSON.
                        407 | 401 if status == 407 || (self.proxy.is_some() && serde_json::from_slice::<serde_json::Value>(&body).is_err()) => {
                            return Err(ImportError::Auth {
                                source_name: self.source.clone(),
                                message: format!(
                                    "the forward proxy {} refused the request to {url} (HTTP {status}); check proxy_username and proxy_password_file",
                                    self.proxy.as_deref().unwrap_or("(none)")
                                ),
                            })
                        }
                        400 | 401 | 403 => {
                            return Err(ImportError::Auth {
                                source_name: self.source.clone(),
                                message: format!(
                                    "{url} refused client id {:?}: HTTP {status}: {}; check the client id and secret of the OAuth client",
                                    self.creds.client_id,
                                    explain(&body)
                                ),
                            })
                        }
                        429 | 500..=599 => (format!("HTTP {status}"), after),
                        _ => return Err(self.err(format!("{url}: HTTP {status}: {}", explain(&body)))),
                    }
                }
                Err(e) => (e.without_url().to_string(), None),
            };
            if attempt >= self.policy.max_attempts {
                return Err(ImportError::Auth {
                    source_name: self.source.clone(),
                    message: format!("cannot obtain a token from {url}: {why} (after {attempt} attempts)"),
                });
            }
            tokio::time::sleep(backoff(&self.policy, attempt, after)).await;
            attempt += 1;
        };
        let t: TokenAnswer =
            serde_json::from_slice(&answer).map_err(|e| self.err(format!("{url}: not a token answer: {e}")))?;
        let life = Duration::from_secs(t.expires_in.unwrap_or(86_400));
        let margin = life.mul_f64(RENEW_AT_LEFT).max(Duration::from_secs(10)).min(life / 2);
        *held = Some(Token { value: t.access_token.clone(), renew_at: Instant::now() + life - margin });
        self.tokens_issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(source = %self.source, expires_in = life.as_secs(), "obtained a Genesys Cloud token");
        Ok(t.access_token)
    }

    /// Checks that a token can be had (the credentials and the auth URL are right).
    pub async fn login(&self) -> Result<(), ImportError> {
        self.token(false).await.map(|_| ())
    }

    /// A request to the API (`path` below the API URL) with retries; returns any answer but
    /// 401 (a new token, once), 429 and 5xx (retried). `body` is JSON to POST, else a GET.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, ImportError> {
        let url = format!("{}{path}", self.api_url);
        let mut attempt = 1;
        let mut renewed = false;
        loop {
            let token = self.token(false).await?;
            let mut req = self.http.request(method.clone(), &url).bearer_auth(&token);
            if let Some(b) = body {
                req = req.header(reqwest::header::CONTENT_TYPE, "application/json").body(b.to_string());
            }
            let (why, after) = match req.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let after =
                        retry_after(r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()));
                    match status {
                        401 if !renewed => {
                            tracing::info!(source = %self.source, "token refused (401); obtaining a new one");
                            self.token(true).await?;
                            renewed = true;
                            continue;
                        }
                        401 | 403 => {
                            let body = r.bytes().await.unwrap_or_default();
                            return Err(ImportError::Auth {
                                source_name: self.source.clone(),
                                message: format!(
                                    "{method} {url}: HTTP {status}: {}; check the OAuth client's role and permissions",
                                    explain(&body)
                                ),
                            });
                        }
                        429 | 500..=599 => {
                            // 429 is the API's rate limit: its Retry-After is waited in full.
                            let after = if status == 429 { after.or(Some(Duration::from_secs(1))) } else { after };
                            (format!("HTTP {status}"), after)
                        }
                        _ => match r.bytes().await {
                            Ok(body) => return Ok(Answer { status, body }),
                            Err(e) => (format!("reading the answer: {}", e.without_url()), None),
                        },
                    }
                }
                Err(e) => (e.without_url().to_string(), None),
            };
            if attempt >= self.policy.max_attempts {
                return Err(self.err(format!("{method} {url}: {why} (after {attempt} attempts)")));
            }
            let pause = match after {
                Some(a) if why == "HTTP 429" => a.max(backoff(&self.policy, attempt, None)),
                _ => backoff(&self.policy, attempt, after),
            };
            tracing::debug!(source = %self.source, %url, attempt, error = %why, pause_ms = pause.as_millis() as u64, "retrying a Genesys Cloud request");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// A JSON answer of status 2xx, parsed; other statuses are errors naming the request.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, Option<T>), ImportError> {
        let a = self.call(method.clone(), path, body).await?;
        match a.status {
            200 | 201 => serde_json::from_slice(&a.body)
                .map(|v| (a.status, Some(v)))
                .map_err(|e| self.err(format!("{method} {}{path}: unexpected answer: {e}", self.api_url))),
            202 | 204 => Ok((a.status, None)),
            s => Err(self.err(format!("{method} {}{path}: HTTP {s}: {}", self.api_url, explain(&a.body)))),
        }
    }

    /// Opens a download of a pre-signed media URL (no token: the URL carries its signature).
    /// Retries like [`call`](Self::call); the error never shows the URL's query (the signature).
    pub async fn download(&self, url: &str) -> Result<reqwest::Response, ImportError> {
        let shown = url.split('?').next().unwrap_or_default().to_string();
        let mut attempt = 1;
        loop {
            let (why, after) = match self.http.get(url).send().await {
                Ok(r) if r.status().is_success() => return Ok(r),
                Ok(r) => {
                    let status = r.status().as_u16();
                    if !(status == 429 || status >= 500) {
                        return Err(self.err(format!("media {shown}: HTTP {status}")));
                    }
                    (
                        format!("HTTP {status}"),
                        retry_after(r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok())),
                    )
                }
                Err(e) => (e.without_url().to_string(), None),
            };
            if attempt >= self.policy.max_attempts {
                return Err(self.err(format!("media {shown}: {why} (after {attempt} attempts)")));
            }
            tokio::time::sleep(backoff(&self.policy, attempt, after)).await;
            attempt += 1;
        }
    }
}
