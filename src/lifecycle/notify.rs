//! Optional notification of purged recording ids to a downstream system (GIR tells
//! SpeechMiner), as an HTTP POST of JSON, retried with exponential backoff on network errors
//! and 5xx/429 answers. Configured by the `[notify]` section of the node config.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[notify]` in the node config.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
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

fn three() -> u32 {
    3
}
fn ten() -> u64 {
    10
}
fn five_hundred() -> u64 {
    500
}

/// Posts the ids; `Err` after the last retry, with a reason that never includes the URL's
/// query string (it may hold a token).
pub async fn send(cfg: &NotifyConfig, journal: &str, ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    let shown = cfg.url.split('?').next().unwrap_or_default().to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_secs))
        .build()
        .map_err(|e| format!("notification client: {e}"))?;
    let body = serde_json::json!({ "event": "purged", "journal": journal, "ids": ids }).to_string();
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
        tracing::warn!(attempt = attempt + 1, error = %last, "purge notification failed");
    }
    Err(last)
}
