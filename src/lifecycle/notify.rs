//! Optional notification of purged recording ids to a downstream system (GIR tells
//! SpeechMiner), and of import sources' alerts and batch reports (`{"event":"import.alert"…}`,
//! `{"event":"import.batch"…}`, see [`crate::import`]), as an HTTP POST of JSON, retried with exponential backoff on network errors
//! and 5xx/429 answers. Configured by the `[notify]` section of the node config.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[notify]` in the node config. Its `Debug` shows the URL redacted.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Endpoint that receives `{"event":"purged","journal":…,"ids":[…]}`.
    pub url: String,
    /// Attempts after the first one.
    #[serde(default = "three")]
    pub retries: u32,
    /// Per-request timeout in seconds.
    #[serde(default = "ten")]
    pub timeout_secs: u64,
    /// Delay before the first retry, in milliseconds; doubled each time.
    #[serde(default = "five_hundred")]
    pub backoff_ms: u64,
}

impl std::fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("url", &redact_url(&self.url))
            .field("retries", &self.retries)
            .field("timeout_secs", &self.timeout_secs)
            .field("backoff_ms", &self.backoff_ms)
            .finish()
    }
}

fn three() -> u32 {
    3
}
fn ten() -> u64 {
    10
}
fn five_hundred() -> u64 {
    500
}

/// A URL as it may be shown or stored: without user name, password, query or fragment
/// (any of which may hold a secret).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let had_user = !u.username().is_empty() || u.password().is_some();
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            let s = u.to_string();
            if had_user {
                s.replacen("://", "://***@", 1)
            } else {
                s
            }
        }
        // Unparseable: show nothing of it that could be a secret.
        Err(_) => "(an unparseable URL)".to_string(),
    }
}

/// Posts the ids; `Err` after the last retry, with a reason that never includes the URL's
/// credentials or query string.
pub async fn send(cfg: &NotifyConfig, journal: &str, ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    let body = serde_json::json!({ "event": "purged", "journal": journal, "ids": ids }).to_string();
    post(cfg, body).await
}

/// Posts one event (a JSON object with its `event` name, such as an import source's alert);
/// retried and redacted as [`send`].
pub async fn post(cfg: &NotifyConfig, body: String) -> Result<(), String> {
    let shown = redact_url(&cfg.url);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .build()
        .map_err(|e| format!("notification client: {e}"))?;
    let mut delay = Duration::from_millis(cfg.backoff_ms);
    let mut last = String::new();
    for attempt in 0..=cfg.retries {
        if attempt > 0 {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        let r = client.post(&cfg.url).header("content-type", "application/json").body(body.clone()).send().await;
        match r {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => {
                let st = resp.status();
                last = format!("{shown}: HTTP {st}");
                if !(st.is_server_error() || st.as_u16() == 429) {
                    break;
                }
            }
            Err(e) => last = format!("{shown}: {}", e.without_url()),
        }
        tracing::warn!(attempt = attempt + 1, error = %last, "notification failed");
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn secrets_in_urls_are_never_shown() {
        let r = redact_url("https://svc:s3cr3t@speechminer.example:8443/purged?token=abc#frag");
        assert_eq!(r, "https://***@speechminer.example:8443/purged");
        assert!(!r.contains("s3cr3t") && !r.contains("svc") && !r.contains("abc"));
        assert_eq!(redact_url("http://h/p"), "http://h/p");
        assert_eq!(redact_url("::not a url::"), "(an unparseable URL)");
        let cfg =
            super::NotifyConfig { url: "https://u:pw@h/p?k=v".into(), retries: 1, timeout_secs: 1, backoff_ms: 1 };
        assert!(!format!("{cfg:?}").contains("pw"));
    }
}
