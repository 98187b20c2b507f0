//! The downloader's options: RCBS's `config.properties` keys, the `[download]` section of the
//! node config and the command-line flags, all parsed by one function ([`Settings::set`]) so
//! that a value means the same wherever it is written.
//!
//! Precedence: defaults < `[download]` (TOML) < `--properties` file < flags. An unknown key is
//! an error naming where it was written (`config.properties line 7`).

use super::layout::FolderFormat;
use super::properties;
use super::DownloadError;
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// An age or length: whole days/hours (RCBS's plain numbers) or an ISO 8601 duration
/// `P[n]Y[n]M[n]DT[n]H[n]M[n]S`; years and months are calendar ones, counted back from "now".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    pub months: u32,
    pub seconds: i64,
}

impl Span {
    pub fn days(n: i64) -> Span {
        Span { months: 0, seconds: n * 86_400 }
    }
    pub fn hours(n: i64) -> Span {
        Span { months: 0, seconds: n * 3600 }
    }
    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.seconds == 0
    }
    /// `t` minus this span (calendar months first, then the rest).
    pub fn before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        let t = t.checked_sub_months(Months::new(self.months)).unwrap_or(DateTime::<Utc>::MIN_UTC);
        t.checked_sub_signed(TimeDelta::seconds(self.seconds)).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
    /// A fixed length (a month counted as 30 days), for slice lengths.
    pub fn approx(&self) -> TimeDelta {
        TimeDelta::seconds(self.seconds + i64::from(self.months) * 30 * 86_400)
    }

    /// A plain number in `unit` seconds, or an ISO 8601 duration.
    pub fn parse(s: &str, unit_secs: i64) -> Result<Span, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<i64>() {
            if n < 0 {
                return Err(format!("{s:?} is negative"));
            }
            return Ok(Span { months: 0, seconds: n.saturating_mul(unit_secs) });
        }
        let bad = || format!("{s:?} is neither a whole number nor an ISO 8601 duration such as PT30M or P6MT12H");
        let rest = s.strip_prefix(['P', 'p']).ok_or_else(bad)?;
        if rest.is_empty() {
            return Err(bad());
        }
        let (date, time) = match rest.split_once(['T', 't']) {
            Some((d, t)) if !t.is_empty() => (d, Some(t)),
            Some(_) => return Err(bad()),
            None => (rest, None),
        };
        let mut span = Span::default();
        let mut fields = |part: &str, units: &[(char, i64, u32)]| -> Result<(), String> {
            let mut num = String::new();
            let mut order = 0;
            for c in part.chars() {
                if c.is_ascii_digit() {
                    num.push(c);
                    continue;
                }
                let c = c.to_ascii_uppercase();
                let pos = units.iter().position(|u| u.0 == c).ok_or_else(bad)?;
                if num.is_empty() || pos < order {
                    return Err(bad());
                }
                order = pos + 1;
                let n: i64 = num.parse().map_err(|_| bad())?;
                num.clear();
                let (_, secs, months) = units[pos];
                span.seconds = span.seconds.saturating_add(n.saturating_mul(secs));
                span.months = span.months.saturating_add(u32::try_from(n).map_err(|_| bad())?.saturating_mul(months));
            }
            if num.is_empty() {
                Ok(())
            } else {
                Err(bad())
            }
        };
        fields(date, &[('Y', 0, 12), ('M', 0, 1), ('W', 7 * 86_400, 0), ('D', 86_400, 0)])?;
        if let Some(t) = time {
            fields(t, &[('H', 3600, 0), ('M', 60, 0), ('S', 1, 0)])?;
        }
        Ok(span)
    }
}

/// `YYYY-MM-DD` (midnight GMT) or epoch milliseconds.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .and_then(DateTime::from_timestamp_millis)
            .ok_or_else(|| format!("{s:?} is not a valid epoch time in milliseconds"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is neither YYYY-MM-DD nor epoch milliseconds"))
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" | "" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

fn parse_count(s: &str, min: u32) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(format!("{s:?} is not a whole number of at least {min}")),
    }
}

/// Every RCBS key, with its `[download]` TOML name. The CLI flag is the TOML name with `-`.
pub const KEYS: &[(&str, &str)] = &[
    ("gwsUriPrefix", "gws_uri_prefix"),
    ("gwsRecordingsUri", "gws_recordings_uri"),
    ("gwsSettingsUri", "gws_settings_uri"),
    ("targetDir", "target_dir"),
    ("minAge", "min_age"),
    ("maxAge", "max_age"),
    ("minDate", "min_date"),
    ("maxDate", "max_date"),
    ("skipLastRecordingCheck", "skip_last_recording_check"),
    ("shardBy", "shard_by"),
    ("overlap", "overlap"),
    ("mediaTypePattern", "media_type_pattern"),
    ("recordingFolderFormat", "recording_folder_format"),
    ("metadataOnly", "metadata_only"),
    ("downloadMode", "download_mode"),
    ("numThreads", "num_threads"),
    ("totalRcbsInstances", "total_rcbs_instances"),
    ("rcbsInstanceId", "rcbs_instance_id"),
    ("awsProxyHost", "aws_proxy_host"),
    ("awsProxyPort", "aws_proxy_port"),
    ("gwsProxyHost", "gws_proxy_host"),
    ("gwsProxyPort", "gws_proxy_port"),
    ("encryptionFormat", "encryption_format"),
    ("usePayloadSigning", "use_payload_signing"),
    // reclife's own: RCBS has no such key (see `budget`).
    ("diskBudget", "disk_budget"),
];

/// A TOML scalar, as `[download]` may write a value (`max_age = 2`, `max_age = "P2D"`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Str(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Bool(b) => write!(f, "{b}"),
            Scalar::Int(n) => write!(f, "{n}"),
            Scalar::Str(s) => f.write_str(s),
        }
    }
}

/// The `[download]` section of the node config: the RCBS keys in snake_case (the camelCase
/// RCBS names are accepted too). Checked when `reclife download` runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct DownloadConfig(pub toml::Table);

/// The resolved options of one run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `gwsUriPrefix`: the RWS API base, e.g. `https://gir.example/api/v2`.
    pub gws_uri_prefix: Option<String>,
    /// `gwsRecordingsUri`: path of the recordings listing below the prefix.
    pub recordings_uri: String,
    pub target_dir: Option<PathBuf>,
    pub min_age: Span,
    /// Zero: no limit.
    pub max_age: Span,
    /// The newer end of a fixed period (RCBS: "recordings older than minDate").
    pub min_date: Option<DateTime<Utc>>,
    /// The older end of a fixed period; overrides the checkpoint.
    pub max_date: Option<DateTime<Utc>>,
    pub skip_last_recording_check: bool,
    pub shard_by: Span,
    pub overlap: Span,
    pub media_type_pattern: regex::Regex,
    pub folder_format: FolderFormat,
    pub metadata_only: bool,
    pub num_threads: u32,
    pub total_instances: u32,
    pub instance_id: u32,
    pub aws_proxy: Option<String>,
    pub gws_proxy: Option<String>,
    /// `diskBudget`: the most bytes one run may add to the disk ([`super::budget`]); `None`: no limit.
    pub disk_budget: Option<u64>,
    aws_proxy_host: Option<String>,
    aws_proxy_port: Option<u16>,
    gws_proxy_host: Option<String>,
    gws_proxy_port: Option<u16>,
}

/// The default `mediaTypePattern`.
pub const DEFAULT_MEDIA_TYPES: &str = "audio/mp3|video/mp4";

impl Default for Settings {
    fn default() -> Self {
        Settings {
            gws_uri_prefix: None,
            recordings_uri: "/recordings".into(),
            target_dir: None,
            min_age: Span::default(),
            max_age: Span::days(2),
            min_date: None,
            max_date: None,
            skip_last_recording_check: false,
            shard_by: Span::days(1),
            overlap: Span::hours(6),
            media_type_pattern: anchored(DEFAULT_MEDIA_TYPES).expect("the default pattern compiles"),
            folder_format: FolderFormat::parse(super::layout::DEFAULT_FOLDER_FORMAT)
                .expect("the default format parses"),
            metadata_only: false,
            num_threads: 16,
            total_instances: 1,
            instance_id: 0,
            aws_proxy: None,
            gws_proxy: None,
            disk_budget: None,
            aws_proxy_host: None,
            aws_proxy_port: None,
            gws_proxy_host: None,
            gws_proxy_port: None,
        }
    }
}

/// The pattern must match the whole type, as Java's `String.matches` does.
fn anchored(p: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| format!("not a valid regular expression: {e}"))
}

fn port(s: &str) -> Result<Option<u16>, String> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    s.trim().parse::<u16>().map(Some).map_err(|_| format!("{s:?} is not a port number"))
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl Settings {
    /// Sets one key (RCBS or snake_case name) from its text. `Err` explains the value; the
    /// caller adds where it was written.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let Some((rcbs, _)) = KEYS.iter().find(|(r, s)| *r == key || *s == key) else {
            return Err(format!("unknown key {key:?}"));
        };
        let v = value;
        let bad = |e: String| format!("{rcbs}: {e}");
        match *rcbs {
            "gwsUriPrefix" => self.gws_uri_prefix = opt(v),
            "gwsRecordingsUri" => {
                self.recordings_uri = opt(v).unwrap_or_else(|| "/recordings".into());
                if !self.recordings_uri.starts_with('/') {
                    self.recordings_uri.insert(0, '/');
                }
            }
            // The settings API tells RCBS's Java client its server-side settings; reclife needs
            // none of them, so the key is accepted and not used.
            "gwsSettingsUri" => {}
            "targetDir" => self.target_dir = opt(v).map(PathBuf::from),
            "minAge" => self.min_age = Span::parse(v, 86_400).map_err(bad)?,
            "maxAge" => self.max_age = Span::parse(v, 86_400).map_err(bad)?,
            "minDate" => self.min_date = opt(v).map(|s| parse_date(&s)).transpose().map_err(bad)?,
            "maxDate" => self.max_date = opt(v).map(|s| parse_date(&s)).transpose().map_err(bad)?,
            "skipLastRecordingCheck" => self.skip_last_recording_check = parse_bool(v).map_err(bad)?,
            "shardBy" => {
                let s = Span::parse(v, 86_400).map_err(bad)?;
                if s.approx() < TimeDelta::minutes(1) {
                    return Err(bad(format!("{v:?} is shorter than a minute")));
                }
                self.shard_by = s;
            }
            "overlap" => self.overlap = Span::parse(v, 3600).map_err(bad)?,
            "mediaTypePattern" => {
                self.media_type_pattern = anchored(opt(v).as_deref().unwrap_or(DEFAULT_MEDIA_TYPES)).map_err(bad)?
            }
            "recordingFolderFormat" => {
                self.folder_format =
                    FolderFormat::parse(opt(v).as_deref().unwrap_or(super::layout::DEFAULT_FOLDER_FORMAT))
                        .map_err(bad)?
            }
            "metadataOnly" => self.metadata_only = parse_bool(v).map_err(bad)?,
            "downloadMode" => match v.trim().to_ascii_lowercase().as_str() {
                "single" => self.num_threads = 1,
                "multithread" | "" => {}
                _ => return Err(bad(format!("{v:?}: expected single or multithread"))),
            },
            "numThreads" => self.num_threads = parse_count(v, 1).map_err(bad)?.min(1024),
            "totalRcbsInstances" => self.total_instances = parse_count(v, 1).map_err(bad)?,
            "rcbsInstanceId" => self.instance_id = parse_count(v, 0).map_err(bad)?,
            "awsProxyHost" => self.aws_proxy_host = opt(v),
            "awsProxyPort" => self.aws_proxy_port = port(v).map_err(bad)?,
            "gwsProxyHost" => self.gws_proxy_host = opt(v),
            "gwsProxyPort" => self.gws_proxy_port = port(v).map_err(bad)?,
            // RCBS re-encrypts only in modes reclife does not have; downloads stay as stored.
            "encryptionFormat" => match v.trim().to_ascii_uppercase().as_str() {
                "" | "AES-128" | "AES-256" => {}
                _ => return Err(bad(format!("{v:?}: expected AES-128 or AES-256"))),
            },
            // Payload signing of S3 uploads; a download has no payload to sign.
            "usePayloadSigning" => {
                parse_bool(v).map_err(bad)?;
            }
            "diskBudget" => self.disk_budget = super::budget::parse_size(v).map_err(bad)?,
            _ => unreachable!("every key in KEYS is handled"),
        }
        Ok(())
    }

    /// Applies the `[download]` section of the node config.
    pub fn apply_toml(&mut self, t: &DownloadConfig) -> Result<(), DownloadError> {
        for (k, v) in &t.0 {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(n) => n.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(DownloadError::Config(format!(
                        "[download] {k}: expected a string, number or boolean, not {}",
                        other.type_str()
                    )))
                }
            };
            self.set(k, &text).map_err(|e| DownloadError::Config(format!("[download] {k}: {e}")))?;
        }
        Ok(())
    }

    /// Applies an RCBS `config.properties` file; errors name the file and line.
    pub fn apply_properties(&mut self, path: &Path) -> Result<(), DownloadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DownloadError::Config(format!("{}: cannot read: {e}", path.display())))?;
        self.apply_properties_text(&text, &path.display().to_string())
    }

    pub fn apply_properties_text(&mut self, text: &str, name: &str) -> Result<(), DownloadError> {
        let entries = properties::parse(text).map_err(|e| DownloadError::Config(format!("{name} {e}")))?;
        for e in entries {
            self.set(&e.key, &e.value).map_err(|m| DownloadError::Config(format!("{name} line {}: {m}", e.line)))?;
        }
        Ok(())
    }

    /// Checks the combination and completes derived values (proxies). Call after every source
    /// has been applied.
    pub fn finish(&mut self) -> Result<(), DownloadError> {
        let err = |m: String| Err(DownloadError::Config(m));
        if self.instance_id >= self.total_instances {
            return err(format!(
                "rcbsInstanceId {} must be below totalRcbsInstances {} (ids start at 0)",
                self.instance_id, self.total_instances
            ));
        }
        if !self.max_age.is_zero() && self.max_age.approx() <= self.min_age.approx() {
            return err("maxAge must be greater than minAge (or 0 for no limit)".into());
        }
        if let (Some(newer), Some(older)) = (self.min_date, self.max_date) {
            if newer <= older {
                return err(format!(
                    "minDate {} is not after maxDate {}: as in RCBS, minDate is the newer end of the period \
                     (recordings older than it) and maxDate the older end (recordings newer than it)",
                    newer.format("%Y-%m-%d %H:%M:%S"),
                    older.format("%Y-%m-%d %H:%M:%S")
                ));
            }
        }
        self.aws_proxy = proxy_url(&self.aws_proxy_host, self.aws_proxy_port, "awsProxyHost")?;
        self.gws_proxy = proxy_url(&self.gws_proxy_host, self.gws_proxy_port, "gwsProxyHost")?;
        Ok(())
    }
}

/// `host` (a name, an address, or a URL as gwsProxyHost is documented) and `port` → a URL.
fn proxy_url(host: &Option<String>, port: Option<u16>, key: &str) -> Result<Option<String>, DownloadError> {
    let Some(h) = host else { return Ok(None) };
    let base = if h.contains("://") { h.clone() } else { format!("http://{h}") };
    let mut u = url::Url::parse(&base).map_err(|e| DownloadError::Config(format!("{key} {h:?}: {e}")))?;
    if let Some(p) = port {
        u.set_port(Some(p)).map_err(|_| DownloadError::Config(format!("{key} {h:?}: cannot take a port")))?;
    }
    Ok(Some(u.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(Span::parse("2", 86_400).unwrap(), Span::days(2));
        assert_eq!(Span::parse("6", 3600).unwrap(), Span::hours(6));
        assert_eq!(Span::parse("PT30M", 86_400).unwrap(), Span { months: 0, seconds: 1800 });
        assert_eq!(Span::parse("P6MT12H", 86_400).unwrap(), Span { months: 6, seconds: 12 * 3600 });
        assert_eq!(
            Span::parse("P1Y2DT4H30M", 86_400).unwrap(),
            Span { months: 12, seconds: 2 * 86_400 + 4 * 3600 + 1800 }
        );
        assert_eq!(Span::parse("P6D", 3600).unwrap(), Span::days(6));
        for bad in ["", "P", "PT", "-1", "P1H", "PT1D", "P1M1Y", "2 days", "P1.5D"] {
            assert!(Span::parse(bad, 1).is_err(), "{bad:?} accepted");
        }
        let now = parse_date("2018-03-31").unwrap();
        assert_eq!(Span::parse("P1M", 1).unwrap().before(now), parse_date("2018-02-28").unwrap());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2015-07-31").unwrap().timestamp_millis(), 1_438_300_800_000);
        assert_eq!(parse_date("1438300800000").unwrap(), parse_date("2015-07-31").unwrap());
        assert!(parse_date("2015-13-01").is_err());
        assert!(parse_date("31/07/2015").is_err());
    }

    #[test]
    fn keys_from_every_source() {
        let mut s = Settings::default();
        s.apply_properties_text(
            "gwsUriPrefix=https://x/api/v2\nmediaTypePattern=audio\\/mp3\nmaxAge=P3D\ndownloadMode=single\n",
            "config.properties",
        )
        .unwrap();
        assert!(s.media_type_pattern.is_match("audio/mp3"));
        assert!(!s.media_type_pattern.is_match("audio/mp3x"), "the whole type must match");
        assert!(!s.media_type_pattern.is_match("video/mp4"));
        assert_eq!((s.max_age, s.num_threads), (Span::days(3), 1));
        let e = s.apply_properties_text("minAge=0\nbogusKey=1\n", "c.properties").unwrap_err().to_string();
        assert!(e.contains("c.properties line 2") && e.contains("bogusKey"), "{e}");
        let e = s.apply_properties_text("minAge=soon\n", "c.properties").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("minAge"), "{e}");
        let t: DownloadConfig = toml::from_str("max_age = 0\nnum_threads = 8\nmetadataOnly = true").unwrap();
        s.apply_toml(&t).unwrap();
        assert!(s.max_age.is_zero() && s.metadata_only && s.num_threads == 8);
        s.set("gwsProxyHost", "http://10.0.1.31").unwrap();
        s.set("gwsProxyPort", "8080").unwrap();
        s.set("awsProxyHost", "10.0.1.32").unwrap();
        s.finish().unwrap();
        assert_eq!(s.gws_proxy.as_deref(), Some("http://10.0.1.31:8080/"));
        assert_eq!(s.aws_proxy.as_deref(), Some("http://10.0.1.32/"));
        let mut s = Settings::default();
        s.set("minDate", "2018-01-02").unwrap();
        s.set("maxDate", "2018-01-04").unwrap();
        assert!(s.finish().unwrap_err().to_string().contains("newer end"));
        let mut s = Settings::default();
        s.set("totalRcbsInstances", "4").unwrap();
        s.set("rcbsInstanceId", "4").unwrap();
        assert!(s.finish().is_err());
    }
}
