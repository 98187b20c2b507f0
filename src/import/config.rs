//! `[import.<name>]`: one import source per table, named as the seed's "Name" (the name that
//! identifies the source across the system: leases, cursor, retry buffer, reports).
//!
//! The client secret never sits in this file: it comes from `client_secret_file` (its first
//! line) or from the environment variable `client_secret_env` names. `Debug` shows neither it
//! nor the proxy password.

use super::ImportError;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What kind of source a table describes (the seed's "Type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SourceType {
    /// Genesys Cloud Import Source.
    #[serde(rename = "genesys-cloud")]
    GenesysCloud,
}

/// One `[import.<name>]` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(rename = "type")]
    pub kind: SourceType,
    /// The OAuth client id; else env `GENESYS_CLOUD_CLIENT_ID`.
    pub client_id: Option<String>,
    /// A file whose first line is the client secret.
    pub client_secret_file: Option<PathBuf>,
    /// The environment variable holding the client secret when no file is named.
    #[serde(default = "default_secret_env")]
    pub client_secret_env: String,
    /// "HTTPS Genesys Cloud API Authentication URL", e.g. `https://login.usw2.pure.cloud`.
    pub auth_url: String,
    /// "HTTPS Genesys Cloud API URL", e.g. `https://api.usw2.pure.cloud`.
    pub api_url: String,
    /// "TLS Trust List": PEM file of CA certificates trusted besides the system's.
    pub tls_trust_list: Option<PathBuf>,
    /// "TLS Client Certificate" and "TLS Client Key" (PEM files; the certificate file may hold
    /// its chain), for an API behind a gateway that asks for a client certificate. A key
    /// encrypted with a password ("TLS Client Key Password") is read with the password from
    /// `tls_client_key_password_file` or env `RECLIFE_IMPORT_TLS_KEY_PASSWORD`.
    pub tls_client_certificate: Option<PathBuf>,
    pub tls_client_key: Option<PathBuf>,
    pub tls_client_key_password_file: Option<PathBuf>,
    /// "Forward Proxy Address" and "Forward Proxy Port".
    pub proxy_address: Option<String>,
    pub proxy_port: Option<u16>,
    /// "Forward Proxy Username"; its password comes from `proxy_password_file` or env
    /// `RECLIFE_IMPORT_PROXY_PASSWORD`.
    pub proxy_username: Option<String>,
    pub proxy_password_file: Option<PathBuf>,
    /// "Transcoding by Genesys": the `formatId` asked for (MP3, WAV, WAV_ULAW, OGG_VORBIS,
    /// OGG_OPUS, WEBM).
    #[serde(default = "default_codec")]
    pub codec: String,
    /// "Recording Timezone": kept in each document (`genesysCloud.timezone`); times are stored
    /// in UTC and shown in this zone as well on the source's pages ([`super::zone`]).
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// "Recording Start Timestamp": RFC 3339 or the cursor's `yyyy.MM.dd HH:mm:ss.SSS` (UTC).
    pub start_timestamp: String,
    /// "Genesys Cloud Maximum Recording Length (minutes)".
    pub max_recording_length_minutes: f64,
    /// "Genesys Cloud Availability Delay (minutes)": how long a recording the API calls not
    /// ready is waited for before its conversation goes to the retry buffer.
    pub availability_delay_minutes: f64,
    /// "Genesys Cache Lifetime (minutes)": how long user details are reused.
    pub cache_lifetime_minutes: f64,
    /// "On Completion Delete Recordings Stored in Genesys Cloud".
    #[serde(default)]
    pub delete_on_completion: bool,
    /// Conversations taken from the retry buffer per run (the seed's 25).
    #[serde(default = "default_retry_batch")]
    pub retry_batch: usize,
    /// The import batch duration: one analytics query covers at most this many minutes.
    #[serde(default = "default_batch_minutes")]
    pub batch_minutes: f64,
    /// The recording lag: conversations that started less than this long ago wait.
    #[serde(default = "default_lag_minutes")]
    pub lag_minutes: f64,
    /// Conversations handled per run at most (a backfill catches up run by run).
    #[serde(default = "default_max_conversations")]
    pub max_conversations: usize,
    /// Conversations fetched at once (metadata, user, media); the cursor still moves in order.
    #[serde(default = "default_parallel")]
    pub parallel_fetches: usize,
    /// Analytics page size.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Seconds between two asks for a recording that is not ready.
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: f64,
    /// Seconds between runs of `reclife import genesys-cloud` without `--once`.
    #[serde(default = "default_interval_seconds")]
    pub interval_seconds: f64,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Attempts per request on 429, 5xx and network errors (the first included).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Backoff: first pause and cap, milliseconds (full jitter; Retry-After honoured).
    #[serde(default = "default_backoff_base")]
    pub backoff_base_ms: u64,
    #[serde(default = "default_backoff_cap")]
    pub backoff_cap_ms: u64,
}

impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("auth_url", &self.auth_url)
            .field("api_url", &self.api_url)
            .field("proxy_address", &self.proxy_address)
            .field("proxy_port", &self.proxy_port)
            .field("proxy_username", &self.proxy_username)
            .field("codec", &self.codec)
            .field("start_timestamp", &self.start_timestamp)
            .finish_non_exhaustive()
    }
}

fn default_secret_env() -> String {
    "GENESYS_CLOUD_CLIENT_SECRET".into()
}
fn default_codec() -> String {
    "MP3".into()
}
fn default_tz() -> String {
    "UTC".into()
}
fn default_retry_batch() -> usize {
    25
}
fn default_batch_minutes() -> f64 {
    60.0
}
fn default_lag_minutes() -> f64 {
    1.0
}
fn default_max_conversations() -> usize {
    500
}
fn default_parallel() -> usize {
    8
}
fn default_page_size() -> u32 {
    100
}
fn default_poll_seconds() -> f64 {
    5.0
}
fn default_interval_seconds() -> f64 {
    60.0
}
fn default_timeout() -> u64 {
    30
}
fn default_attempts() -> u32 {
    6
}
fn default_backoff_base() -> u64 {
    200
}
fn default_backoff_cap() -> u64 {
    10_000
}

/// Client id and secret. `Debug` shows the id only.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

fn minutes(m: f64) -> Duration {
    Duration::from_secs_f64((m * 60.0).max(0.0))
}

fn first_line(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or_default().trim().to_string())
}

impl SourceConfig {
    /// Checks every value; the error names the source and the key.
    pub fn validate(&self, name: &str) -> Result<(), ImportError> {
        let bad = |why: String| ImportError::Config { source_name: name.to_string(), message: why };
        for (key, u) in [("auth_url", &self.auth_url), ("api_url", &self.api_url)] {
            let p = url::Url::parse(u).map_err(|e| bad(format!("{key} {u:?}: {e}")))?;
            if !matches!(p.scheme(), "http" | "https") {
                return Err(bad(format!("{key} {u:?}: not an http(s) URL")));
            }
        }
        for (key, v) in [
            ("max_recording_length_minutes", self.max_recording_length_minutes),
            ("availability_delay_minutes", self.availability_delay_minutes),
            ("cache_lifetime_minutes", self.cache_lifetime_minutes),
            ("batch_minutes", self.batch_minutes),
            ("lag_minutes", self.lag_minutes),
            ("poll_seconds", self.poll_seconds),
            ("interval_seconds", self.interval_seconds),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(bad(format!("{key} = {v}: must be a number of at least 0")));
            }
        }
        if self.batch_minutes <= 0.0 {
            return Err(bad("batch_minutes must be more than 0".into()));
        }
        if self.page_size == 0 || self.max_conversations == 0 || self.max_attempts == 0 || self.parallel_fetches == 0 {
            return Err(bad(
                "page_size, max_conversations, max_attempts and parallel_fetches must be at least 1".into()
            ));
        }
        const CODECS: [&str; 6] = ["MP3", "WAV", "WAV_ULAW", "OGG_VORBIS", "OGG_OPUS", "WEBM"];
        if !CODECS.contains(&self.codec.as_str()) {
            return Err(bad(format!("codec {:?}: one of {}", self.codec, CODECS.join(", "))));
        }
        self.start().map_err(bad)?;
        super::zone::check(&self.timezone).map_err(|e| bad(format!("timezone: {e}")))?;
        if self.tls_client_certificate.is_some() != self.tls_client_key.is_some() {
            return Err(bad("tls_client_certificate and tls_client_key go together".into()));
        }
        if self.proxy_port.is_some() && self.proxy_address.is_none() {
            return Err(bad("proxy_port without proxy_address".into()));
        }
        Ok(())
    }

    /// The Recording Start Timestamp.
    pub fn start(&self) -> Result<DateTime<Utc>, String> {
        parse_time(&self.start_timestamp).ok_or_else(|| {
            format!("start_timestamp {:?}: expected RFC 3339 or yyyy.MM.dd HH:mm:ss.SSS (UTC)", self.start_timestamp)
        })
    }

    /// The client id and secret, from the file or the environment.
    pub fn credentials(&self, name: &str) -> Result<Credentials, ImportError> {
        let bad = |why: String| ImportError::Config { source_name: name.to_string(), message: why };
        let env = |k: &str| std::env::var(k).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let client_id = self
            .client_id
            .clone()
            .or_else(|| env("GENESYS_CLOUD_CLIENT_ID"))
            .ok_or_else(|| bad("no client id: set client_id or GENESYS_CLOUD_CLIENT_ID".into()))?;
        let client_secret = match &self.client_secret_file {
            Some(p) => first_line(p).map_err(|e| bad(format!("client_secret_file {e}")))?,
            None => env(&self.client_secret_env).unwrap_or_default(),
        };
        if client_secret.is_empty() {
            return Err(bad(format!(
                "no client secret: set client_secret_file or the environment variable {}",
                self.client_secret_env
            )));
        }
        Ok(Credentials { client_id, client_secret })
    }

    /// The client certificate (with its chain) and its key, decrypted, as one PEM text for the
    /// HTTP client; `None` when none is configured. Errors name the file, never the key's text or
    /// the password.
    pub fn client_identity(&self, name: &str) -> Result<Option<Vec<u8>>, ImportError> {
        let (Some(cert), Some(key)) = (&self.tls_client_certificate, &self.tls_client_key) else {
            return Ok(None);
        };
        let bad = |why: String| ImportError::Config { source_name: name.to_string(), message: why };
        let read = |p: &Path| std::fs::read(p).map_err(|e| bad(format!("{}: {e}", p.display())));
        let mut pem = read(cert)?;
        let key_pem = read(key)?;
        let password = match &self.tls_client_key_password_file {
            Some(p) => Some(first_line(p).map_err(|e| bad(format!("tls_client_key_password_file {e}")))?),
            None => std::env::var("RECLIFE_IMPORT_TLS_KEY_PASSWORD").ok().filter(|v| !v.is_empty()),
        };
        let pkey = match &password {
            Some(pw) => openssl::pkey::PKey::private_key_from_pem_passphrase(&key_pem, pw.as_bytes()),
            None => openssl::pkey::PKey::private_key_from_pem(&key_pem),
        }
        .map_err(|_| {
            bad(format!(
                "tls_client_key {}: not a usable PEM private key{}",
                key.display(),
                if password.is_some() { " (or a wrong password)" } else { " (encrypted? give its password)" }
            ))
        })?;
        let plain =
            pkey.private_key_to_pem_pkcs8().map_err(|e| bad(format!("tls_client_key {}: {e}", key.display())))?;
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        pem.extend_from_slice(&plain);
        Ok(Some(pem))
    }

    /// The forward proxy URL (`http://address:port`) and its basic-auth pair, if any.
    pub fn proxy(&self, name: &str) -> Result<Option<Proxy>, ImportError> {
        let Some(addr) = &self.proxy_address else { return Ok(None) };
        let bad = |why: String| ImportError::Config { source_name: name.to_string(), message: why };
        let base = if addr.contains("://") { addr.clone() } else { format!("http://{addr}") };
        let url = match self.proxy_port {
            Some(p) => format!("{}:{p}", base.trim_end_matches('/')),
            None => base,
        };
        url::Url::parse(&url).map_err(|e| bad(format!("proxy {url:?}: {e}")))?;
        let auth = match &self.proxy_username {
            None => None,
            Some(u) => {
                let pw = match &self.proxy_password_file {
                    Some(p) => first_line(p).map_err(|e| bad(format!("proxy_password_file {e}")))?,
                    None => std::env::var("RECLIFE_IMPORT_PROXY_PASSWORD").unwrap_or_default(),
                };
                Some((u.clone(), pw))
            }
        };
        Ok(Some((url, auth)))
    }

    pub fn availability_delay(&self) -> Duration {
        minutes(self.availability_delay_minutes)
    }
    pub fn max_length(&self) -> Duration {
        minutes(self.max_recording_length_minutes)
    }
    pub fn cache_lifetime(&self) -> Duration {
        minutes(self.cache_lifetime_minutes)
    }
    pub fn batch(&self) -> Duration {
        minutes(self.batch_minutes)
    }
    pub fn lag(&self) -> Duration {
        minutes(self.lag_minutes)
    }
    pub fn poll(&self) -> Duration {
        Duration::from_secs_f64(self.poll_seconds)
    }
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_seconds)
    }

    /// The MIME type and file extension of the configured codec.
    pub fn media_type(&self) -> (&'static str, &'static str) {
        match self.codec.as_str() {
            "WAV" | "WAV_ULAW" => ("audio/wav", "wav"),
            "OGG_VORBIS" | "OGG_OPUS" => ("audio/ogg", "ogg"),
            "WEBM" => ("audio/webm", "webm"),
            _ => ("audio/mp3", "mp3"),
        }
    }

    /// Makes relative file paths absolute against `base` (the config file's folder).
    pub fn resolve_against(&mut self, base: &Path) {
        for p in [
            &mut self.client_secret_file,
            &mut self.tls_trust_list,
            &mut self.proxy_password_file,
            &mut self.tls_client_certificate,
            &mut self.tls_client_key,
            &mut self.tls_client_key_password_file,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// A forward proxy URL and its basic-auth user and password.
pub type Proxy = (String, Option<(String, String)>);

/// RFC 3339, or the cursor's `yyyy.MM.dd HH:mm:ss.SSS` (UTC).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(s, super::state::CURSOR_TIME).ok().map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &str) -> Result<SourceConfig, String> {
        let text = format!(
            "type = \"genesys-cloud\"\nclient_id = \"id1\"\nauth_url = \"https://login.usw2.pure.cloud\"\n\
             api_url = \"https://api.usw2.pure.cloud\"\nstart_timestamp = \"2023.02.02 07:00:00.000\"\n\
             max_recording_length_minutes = 120\navailability_delay_minutes = 10\ncache_lifetime_minutes = 60\n{extra}"
        );
        toml::from_str(&text).map_err(|e| e.to_string())
    }

    #[test]
    fn checked_values_and_no_secret_in_debug() {
        let c = parse("").unwrap();
        c.validate("gc").unwrap();
        assert_eq!((c.retry_batch, c.codec.as_str(), c.media_type()), (25, "MP3", ("audio/mp3", "mp3")));
        assert_eq!(c.start().unwrap(), "2023-02-02T07:00:00Z".parse::<DateTime<Utc>>().unwrap());
        let e = parse("codec = \"FLAC\"").unwrap().validate("gc").unwrap_err().to_string();
        assert!(e.contains("import source gc") && e.contains("FLAC"), "{e}");
        let e = parse("batch_minutes = 0").unwrap().validate("gc").unwrap_err().to_string();
        assert!(e.contains("batch_minutes"), "{e}");
        assert!(parse("client_secret = \"x\"").is_err(), "the secret never goes in the file");
        let c = parse("proxy_address = \"proxy.example\"\nproxy_port = 3128\nproxy_username = \"u\"").unwrap();
        let (url, auth) = c.proxy("gc").unwrap().unwrap();
        assert_eq!(url, "http://proxy.example:3128");
        assert_eq!(auth.map(|a| a.0).as_deref(), Some("u"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), "top-secret\n").unwrap();
        let mut c = parse("client_secret_file = \"s\"").unwrap();
        c.resolve_against(dir.path());
        let creds = c.credentials("gc").unwrap();
        assert_eq!(creds.client_secret, "top-secret");
        assert!(!format!("{creds:?}{c:?}").contains("top-secret"));
    }
}
