//! The RWS client: recordings listings (`GET <gwsUriPrefix><gwsRecordingsUri>?startTime=…&endTime=…
//! &limit=…`, then each `nextUri` exactly as given) and media by play URL, with HTTP Basic auth
//! from `GWS_USERNAME`/`GWS_PASSWORD`. Temporary failures (connection errors, timeouts, 429,
//! 5xx) are retried with the storage backends' backoff; 401/403 from the prefix's origin is an
//! authentication error at once (from another origin, just that answer). The password never reaches a log, an error or `Debug`, and goes only to the origin
//! (scheme, host, port) of `gwsUriPrefix`: a `nextUri` or `mediaUri` naming another origin is
//! requested without credentials, and redirects are not followed. A listing page is read up to
//! [`MAX_PAGE_BYTES`], no further.

use super::DownloadError;
use crate::storage::retry::{backoff, RetryPolicy};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::Duration;

/// Listing page size asked for (RWS serves up to 1000).
pub const PAGE: usize = 500;

/// The most a listing page may weigh (1000 recordings of RWS's shape are a few MB).
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// API credentials. `Debug` shows the user name only.
#[derive(Clone)]
pub struct GwsCredentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for GwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GwsCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

impl GwsCredentials {
    /// From `GWS_USERNAME` and `GWS_PASSWORD`.
    pub fn from_env() -> Result<GwsCredentials, DownloadError> {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        match (get("GWS_USERNAME"), get("GWS_PASSWORD")) {
            (Some(username), Some(password)) => Ok(GwsCredentials { username, password }),
            _ => Err(DownloadError::Config("set GWS_USERNAME and GWS_PASSWORD (the API user and password)".into())),
        }
    }
}

/// One listing page: the recordings exactly as the API wrote them, and where the next page is.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub recordings: Vec<Box<RawValue>>,
    #[serde(rename = "nextUri")]
    pub next_uri: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    prefix: String,
    /// The prefix's origin: the only one the credentials go to.
    origin: url::Origin,
    creds: GwsCredentials,
    policy: RetryPolicy,
}

impl Api {
    pub fn new(prefix: &str, creds: GwsCredentials, proxy: Option<&str>) -> Result<Api, DownloadError> {
        let prefix = prefix.trim_end_matches('/').to_string();
        let origin = url::Url::parse(&prefix)
            .map_err(|e| DownloadError::Config(format!("gwsUriPrefix {prefix:?}: {e}")))?
            .origin();
        // No redirects: one could carry the request (and so the credentials) to another origin.
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256);
        if let Some(p) = proxy {
            let p = reqwest::Proxy::all(p).map_err(|e| DownloadError::Config(format!("gwsProxyHost: {e}")))?;
            b = b.proxy(p);
        }
        let client = b.build().map_err(|e| DownloadError::Config(format!("HTTP client: {e}")))?;
        let policy = RetryPolicy { max_attempts: 6, base: Duration::from_millis(200), cap: Duration::from_secs(10) };
        Ok(Api { client, prefix, origin, creds, policy })
    }

    /// The first page of recordings that started at or after `start` and ended before `end`.
    pub fn listing_url(&self, path: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
        format!(
            "{}{path}?startTime={}&endTime={}&limit={PAGE}",
            self.prefix,
            start.timestamp_millis(),
            // endTime is inclusive in RWS.
            end.timestamp_millis() - 1
        )
    }

    /// A URL the API gave (`nextUri`, `mediaUri`), or a path below the prefix.
    fn absolute(&self, u: &str) -> String {
        if u.starts_with("http://") || u.starts_with("https://") {
            u.to_string()
        } else {
            format!("{}{}", self.prefix, u)
        }
    }

    /// Whether `url` (absolute) is on the origin of `gwsUriPrefix`, the only one trusted with
    /// the credentials.
    pub fn is_own_origin(&self, url: &str) -> bool {
        url::Url::parse(url).is_ok_and(|u| u.origin() == self.origin)
    }

    /// GET with retries; `range_from` asks for the bytes from there on. Returns the response
    /// of any status but 401/403 from the prefix's origin (an error), 429 and 5xx (retried). The credentials go only to
    /// the prefix's origin.
    pub async fn get(&self, url: &str, range_from: Option<u64>) -> Result<reqwest::Response, DownloadError> {
        let url = self.absolute(url);
        let own = self.is_own_origin(&url);
        let mut attempt = 1;
        loop {
            let mut req = self.client.get(&url);
            if own {
                req = req.basic_auth(&self.creds.username, Some(&self.creds.password));
            }
            if let Some(n) = range_from {
                req = req.header(reqwest::header::RANGE, format!("bytes={n}-"));
            }
            let (err, after) = match req.send().await {
                Ok(r) => match r.status().as_u16() {
                    // Another origin was sent no credentials: its refusal is its answer, not
                    // a sign that ours are wrong.
                    401 | 403 if !own => return Ok(r),
                    401 | 403 => {
                        return Err(DownloadError::Auth(format!(
                            "{}: HTTP {} for user {:?}; check GWS_USERNAME and GWS_PASSWORD",
                            redact(&url),
                            r.status().as_u16(),
                            self.creds.username
                        )))
                    }
                    429 | 500..=599 => {
                        let after = crate::storage::retry::retry_after(
                            r.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
                        );
                        (format!("HTTP {}", r.status().as_u16()), after)
                    }
                    _ => return Ok(r),
                },
                Err(e) => (e.to_string(), None),
            };
            if attempt >= self.policy.max_attempts {
                return Err(DownloadError::Api(format!("{}: {err} (after {attempt} attempts)", redact(&url))));
            }
            tracing::debug!(url = %redact(&url), attempt, error = %err, "retrying an API request");
            tokio::time::sleep(backoff(&self.policy, attempt, after)).await;
            attempt += 1;
        }
    }

    /// One listing page, read up to [`MAX_PAGE_BYTES`] (a larger one is an error naming it).
    pub async fn page(&self, url: &str) -> Result<Page, DownloadError> {
        let mut r = self.get(url, None).await?;
        let status = r.status();
        let too_big = || {
            DownloadError::Api(format!(
                "{}: the listing page is larger than {MAX_PAGE_BYTES} bytes; refused",
                redact(&self.absolute(url))
            ))
        };
        if r.content_length().is_some_and(|n| n > MAX_PAGE_BYTES as u64) {
            return Err(too_big());
        }
        let mut body = Vec::new();
        while let Some(c) = r.chunk().await.map_err(|e| DownloadError::Api(format!("{}: {e}", redact(url))))? {
            if body.len() + c.len() > MAX_PAGE_BYTES {
                return Err(too_big());
            }
            body.extend_from_slice(&c);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(DownloadError::Api(format!("{}: HTTP {}: {text}", redact(url), status.as_u16())));
        }
        serde_json::from_slice(&body)
            .map_err(|e| DownloadError::Api(format!("{}: not a recordings listing: {e}", redact(url))))
    }
}

/// One walk through a listing's pages: a page URL met twice means the `nextUri`s loop.
#[derive(Debug, Default)]
pub struct PageWalk {
    seen: std::collections::HashSet<String>,
}

impl PageWalk {
    /// Notes that `url` is about to be read; an error naming it if it was read before.
    pub fn visit(&mut self, url: &str) -> Result<(), DownloadError> {
        if self.seen.insert(url.to_string()) {
            Ok(())
        } else {
            Err(DownloadError::Api(format!(
                "{}: this listing page was already read (a nextUri loop); refused",
                redact(url)
            )))
        }
    }
}

/// A URL without user info (the API might put some in a nextUri).
pub fn redact(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut x) if !x.username().is_empty() || x.password().is_some() => {
            let _ = x.set_username("");
            let _ = x.set_password(None);
            x.to_string()
        }
        _ => u.to_string(),
    }
}
