//! Settings of the remote backends: the `[s3]` and `[webdav]` sections of the node config,
//! completed from the environment the way each ecosystem does it (the AWS variables for S3,
//! `WEBDAV_USERNAME`/`WEBDAV_PASSWORD` for WebDAV). Secrets are read when a store is opened and
//! kept out of every `Debug` and error.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// `[s3]` and `[webdav]` together, as [`super::open_with`] takes them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub s3: S3Config,
    pub webdav: WebDavConfig,
}

/// The `[s3]` section. Unset values come from the environment: `AWS_ENDPOINT_URL`
/// (`AWS_ENDPOINT_URL_S3` first), `AWS_REGION` (else `AWS_DEFAULT_REGION`, else us-east-1),
/// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`. Keys never go in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Endpoint URL of an S3-compatible server (`http://127.0.0.1:8333`); unset: AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`). Unset: on for a custom endpoint, off for AWS.
    pub force_path_style: Option<bool>,
    /// Send and check checksums only when an operation requires them (what most
    /// S3-compatible servers need: they refuse `aws-chunked` uploads with trailing CRCs).
    /// Unset: on for a custom endpoint, off for AWS.
    pub checksums_when_required: Option<bool>,
    /// Objects up to this size go up in one PutObject; bigger ones (and streams that outgrow
    /// it) go as multipart uploads of parts this size (S3's minimum is 5 MiB).
    pub part_size_mib: u64,
    /// Parts in flight at once for one upload (memory: this × part size).
    pub upload_concurrency: usize,
    /// An HTTP forward proxy for every request (`http://host:port`): the downloader's
    /// `awsProxyHost`/`awsProxyPort`. Not a key of `[s3]`.
    #[serde(skip)]
    pub proxy: Option<String>,
    #[serde(flatten)]
    pub net: NetConfig,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: None,
            force_path_style: None,
            checksums_when_required: None,
            part_size_mib: 8,
            upload_concurrency: 4,
            proxy: None,
            net: NetConfig::default(),
        }
    }
}

/// The `[webdav]` section. The user name comes from `username` or `WEBDAV_USERNAME`; the
/// password from `password_file` (first line) or `WEBDAV_PASSWORD`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebDavConfig {
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    #[serde(flatten)]
    pub net: NetConfig,
}

/// Timeouts and retries shared by both remote backends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Seconds to open a connection.
    pub connect_timeout_secs: u64,
    /// Seconds one request may take (for an upload: one part) before it is abandoned and retried.
    pub request_timeout_secs: u64,
    /// Seconds a download may go without receiving a byte before it is resumed.
    pub read_timeout_secs: u64,
    /// Attempts per request (the first included) on temporary failures: 5xx, 429,
    /// connection resets and timeouts.
    pub max_attempts: u32,
    /// First backoff in milliseconds; it doubles per attempt, with full jitter.
    pub backoff_ms: u64,
    /// Longest backoff in milliseconds (a server's Retry-After is honoured up to this).
    pub max_backoff_ms: u64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            connect_timeout_secs: 10,
            request_timeout_secs: 300,
            read_timeout_secs: 60,
            max_attempts: 8,
            backoff_ms: 100,
            max_backoff_ms: 10_000,
        }
    }
}

impl NetConfig {
    pub fn policy(&self) -> super::retry::RetryPolicy {
        super::retry::RetryPolicy {
            max_attempts: self.max_attempts.max(1),
            base: Duration::from_millis(self.backoff_ms),
            cap: Duration::from_millis(self.max_backoff_ms.max(self.backoff_ms)),
        }
    }
}

/// An environment variable, unset when empty.
pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
