//! The RWS client: recordings listings (`GET <gwsUriPrefix><gwsRecordingsUri>?startTime=…&endTime=…
//! &limit=…`, then each `nextUri` exactly as given) and media by play URL, with HTTP Basic auth
//! from `GWS_USERNAME`/`GWS_PASSWORD`. Temporary failures (connection errors, timeouts, 429,
//! 5xx) are retried with the storage backends' backoff; 401/403 is an authentication error at
//! once. The password never reaches a log, an error or `Debug`.

use super::DownloadError;
use crate::storage::retry::{backoff, RetryPolicy};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::time::Duration;

/// Listing page size asked for (RWS serves up to 1000).
pub const PAGE: usize = 500;

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
    creds: GwsCredentials,
    policy: RetryPolicy,
}

impl Api {
    pub fn new(prefix: &str, creds: GwsCredentials, proxy: Option<&str>) -> Result<Api, DownloadError> {
        let prefix = prefix.trim_end_matches('/').to_string();
        url::Url::parse(&prefix).map_err(|e| DownloadError::Config(format!("gwsUriPrefix {prefix:?}: {e}")))?;
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256);
        if let Some(p) = proxy {
            let p = reqwest::Proxy::all(p).map_err(|e| DownloadError::Config(format!("gwsProxyHost: {e}")))?;
            b = b.proxy(p);
        }
        let client = b.build().map_err(|e| DownloadError::Config(format!("HTTP client: {e}")))?;
        let policy = RetryPolicy { max_attempts: 6, base: Duration::from_millis(200), cap: Duration::from_secs(10) };
        Ok(Api { client, prefix, creds, policy })
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

    /// GET with retries; `range_from` asks for the bytes from there on. Returns the response
    /// of any status but 401/403 (an error), 429 and 5xx (retried).
    pub async fn get(&self, url: &str, range_from: Option<u64>) -> Result<reqwest::Response, DownloadError> {
        let url = self.absolute(url);
        let mut attempt = 1;
        loop {
            let mut req = self.client.get(&url).basic_auth(&self.creds.username, Some(&self.creds.password));
            if let Some(n) = range_from {
                req = req.header(reqwest::header::RANGE, format!("bytes={n}-"));
            }
            let (err, after) = match req.send().await {
                Ok(r) => match r.status().as_u16() {
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

    /// One listing page.
    pub async fn page(&self, url: &str) -> Result<Page, DownloadError> {
        let r = self.get(url, None).await?;
        let status = r.status();
        let body = r.bytes().await.map_err(|e| DownloadError::Api(format!("{}: {e}", redact(url))))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(DownloadError::Api(format!("{}: HTTP {}: {text}", redact(url), status.as_u16())));
        }
        serde_json::from_slice(&body)
            .map_err(|e| DownloadError::Api(format!("{}: not a recordings listing: {e}", redact(url))))
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
