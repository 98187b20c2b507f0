//! The `[muxer]` section: GIR's Recording Muxer Script option names and defaults
//! (`[processing]` and `[advanced]` of `muxer.cfg`), plus the few keys reclife adds
//! (`screen_certs`, `max_retries`, `lease_seconds`). GIR's 0/1 switches accept `0`/`1` or
//! `false`/`true`.

use crate::catalog::Query;
use crate::crypto::Cipher;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

/// Primary or backup instance (GIR `muxer_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MuxerType {
    #[default]
    Primary,
    Backup,
}

/// The muxer's configuration. Every key is documented in `deploy/reclife.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MuxerConfig {
    /// `reclife run` also runs the muxer (polling) in the same process.
    #[serde(deserialize_with = "flag")]
    pub enabled: bool,
    /// Minutes into the past: the oldest call end time searched.
    pub window_past: u64,
    /// Minutes into the past: the newest call end time searched.
    pub window_past_older_than: u64,
    /// Split the window into sub-intervals of `max_interval_minutes`.
    #[serde(deserialize_with = "flag")]
    pub split_window_enabled: bool,
    pub max_interval_minutes: u64,
    /// Seconds between polls.
    pub min_poll_interval: u64,
    /// This instance's shard; -1 (the default) disables sharding.
    pub muxer_id: i64,
    /// Primary instances in the sharding group (excluding backups).
    pub total_muxers: Option<u32>,
    pub muxer_type: MuxerType,
    /// Pairs muxed at once.
    pub worker_threads: usize,
    /// Call recordings read per catalog page.
    pub pagination: usize,
    /// Mux only when the screen's agent user name is one of the call's.
    #[serde(deserialize_with = "flag")]
    pub check_matching_username: bool,
    /// Seal the output even when no source was encrypted.
    #[serde(deserialize_with = "flag")]
    pub encrypt_always: bool,
    /// Recipient certificates (PEM) the muxed output is sealed to.
    pub screen_certs: Vec<PathBuf>,
    /// Content cipher of sealed output: aes-128-cbc, aes-192-cbc or aes-256-cbc.
    pub cipher: String,
    /// Label the call `screenRecording` after muxing.
    #[serde(deserialize_with = "flag")]
    pub mark_screen_recording_label: bool,
    /// GIR `max_overlap_allowed`, milliseconds: accepted; reclife never truncates recordings (see
    /// `media::timeline`).
    pub max_overlap_allowed: u64,
    /// Length of a padded video slice, milliseconds.
    pub video_padding_slice_length_ms: u64,
    /// Folder for downloaded, decrypted and muxed files (default `<data dir>/muxer-tmp`).
    pub temp_dir: Option<PathBuf>,
    /// Delete a pair's temporary files when it is done.
    #[serde(deserialize_with = "flag")]
    pub auto_clean_temp_folder: bool,
    /// Keep temporary files for debugging (wins over `auto_clean_temp_folder`).
    #[serde(deserialize_with = "flag")]
    pub save_temp_file: bool,
    /// Attempts per pair before it is given up (until `reclife mux --retry`).
    pub max_retries: u32,
    /// (reclife) Longest output span a pair may have, in minutes; a longer one means a wrong
    /// start time, and the pair fails before any work (default 240: 4 hours).
    pub max_span_minutes: u64,
    /// How long a claim on a pair lasts; a crashed process's claims expire after this.
    pub lease_seconds: u64,
    /// GIR `call_recording_query_string`: when set, the calls to mux are those this RWS search
    /// selects (`userName=…&userData=…&callerPhoneNumber=…&startTime=…&endTime=…`, `*`
    /// wildcards, `AND`), in one batch pass, after which the muxer stops instead of polling.
    pub call_recording_query_string: String,
    /// GIR `call_recording_extra_query_string`: RWS search parameters ANDed with every window
    /// (polling and `--since`/`--until`), e.g. `userData=SRSScreenRecordingStateStarted`.
    pub call_recording_extra_query_string: String,
}

impl Default for MuxerConfig {
    fn default() -> Self {
        MuxerConfig {
            enabled: false,
            window_past: 720,
            window_past_older_than: 5,
            split_window_enabled: false,
            max_interval_minutes: 30,
            min_poll_interval: 5,
            muxer_id: -1,
            total_muxers: None,
            muxer_type: MuxerType::Primary,
            worker_threads: 4,
            pagination: 100,
            check_matching_username: true,
            encrypt_always: false,
            screen_certs: Vec::new(),
            cipher: "aes-256-cbc".into(),
            mark_screen_recording_label: true,
            max_overlap_allowed: 0,
            video_padding_slice_length_ms: 5000,
            temp_dir: None,
            auto_clean_temp_folder: true,
            save_temp_file: false,
            max_retries: 3,
            max_span_minutes: 240,
            lease_seconds: 3600,
            call_recording_query_string: String::new(),
            call_recording_extra_query_string: String::new(),
        }
    }
}

impl MuxerConfig {
    /// Checks the values that TOML types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_past <= self.window_past_older_than {
            return Err(format!(
                "muxer.window_past ({}) must be greater than muxer.window_past_older_than ({})",
                self.window_past, self.window_past_older_than
            ));
        }
        if self.window_past - self.window_past_older_than > 720 {
            // GIR: "the maximum window length … should be a maximum of 720 minutes".
            tracing::warn!(
                window_past = self.window_past,
                window_past_older_than = self.window_past_older_than,
                "the muxer's window is longer than 12 hours (720 minutes), which GIR advises against: \
                 use a second muxer (or sharding group) for each further 12 hours"
            );
        }
        if self.worker_threads == 0 {
            return Err("muxer.worker_threads must be at least 1".into());
        }
        if self.pagination == 0 {
            return Err("muxer.pagination must be at least 1".into());
        }
        if self.max_retries == 0 {
            return Err("muxer.max_retries must be at least 1".into());
        }
        if self.lease_seconds == 0 {
            return Err("muxer.lease_seconds must be at least 1".into());
        }
        self.cipher()?;
        self.batch_query()?;
        self.extra_query()?;
        super::shard::Shard::from_config(self).map(|_| ())
    }

    /// The calls `call_recording_query_string` selects, if it is set.
    pub fn batch_query(&self) -> Result<Option<Query>, String> {
        rws_query("call_recording_query_string", &self.call_recording_query_string)
    }

    /// The filter `call_recording_extra_query_string` adds to every window, if it is set.
    pub fn extra_query(&self) -> Result<Option<Query>, String> {
        let q = rws_query("call_recording_extra_query_string", &self.call_recording_extra_query_string)?;
        if q.as_ref().is_some_and(|q| q.start_from.is_some() || q.stop_to.is_some()) {
            return Err("muxer.call_recording_extra_query_string: startTime and endTime come from the window \
                 (window_past, window_past_older_than, --since/--until); use call_recording_query_string for a fixed range"
                .into());
        }
        Ok(q)
    }

    /// The `cipher` key as a [`Cipher`].
    pub fn cipher(&self) -> Result<Cipher, String> {
        Cipher::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(self.cipher.trim())).ok_or_else(|| {
            format!("muxer.cipher {:?} is not one of aes-128-cbc, aes-192-cbc, aes-256-cbc", self.cipher)
        })
    }

    /// True when temporary files are deleted after each pair.
    pub fn clean_temp(&self) -> bool {
        self.auto_clean_temp_folder && !self.save_temp_file
    }
}

/// An RWS search string (GIR writes it as a URL's query, `?` optional) through the one parser
/// of RWS's parameters ([`crate::catalog::parse_rws`]); empty: none.
fn rws_query(key: &str, v: &str) -> Result<Option<Query>, String> {
    let v = v.trim();
    let v = v.strip_prefix('?').unwrap_or(v);
    if v.is_empty() {
        return Ok(None);
    }
    crate::catalog::parse_rws(v, crate::model::Kind::Voice, 24)
        .map(|s| Some(s.query))
        .map_err(|e| format!("muxer.{key}: {e}"))
}

/// GIR writes switches as 0/1; TOML users write booleans. Both are accepted.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum F {
        B(bool),
        I(i64),
    }
    match F::deserialize(d)? {
        F::B(b) => Ok(b),
        F::I(0) => Ok(false),
        F::I(1) => Ok(true),
        F::I(n) => Err(serde::de::Error::custom(format!("expected 0, 1, true or false, found {n}"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn gir_names_and_defaults() {
        let c = Config::parse("").unwrap().muxer;
        assert_eq!((c.window_past, c.window_past_older_than, c.min_poll_interval), (720, 5, 5));
        assert!(c.check_matching_username && c.mark_screen_recording_label && c.clean_temp());
        assert!(!c.encrypt_always && !c.split_window_enabled);
        assert_eq!(c.muxer_id, -1);
        assert_eq!(c.video_padding_slice_length_ms, 5000);

        let text = "[muxer]\nwindow_past = 1440\nwindow_past_older_than = 725\ncheck_matching_username = 0\n\
                    encrypt_always = true\nmuxer_id = 2\ntotal_muxers = 4\nmuxer_type = \"backup\"\nsave_temp_file = 1\n\
                    screen_certs = [\"a.pem\"]\n";
        let c = Config::parse(text).unwrap().muxer;
        assert_eq!((c.window_past, c.window_past_older_than), (1440, 725));
        assert!(!c.check_matching_username && c.encrypt_always && !c.clean_temp());
        assert_eq!(c.muxer_type, super::MuxerType::Backup);
        assert_eq!(c.screen_certs.len(), 1);
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::parse("[muxer]\nencrypt_always = 2\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("expected 0, 1"), "{e}");
        let e = Config::parse("[muxer]\nwindow_pass = 2\n").unwrap_err();
        assert!(e.contains("window_pass"), "{e}");
        let c = Config::parse("[muxer]\nwindow_past = 5\n").unwrap().muxer;
        assert!(c.validate().unwrap_err().contains("window_past"));
        let c = Config::parse("[muxer]\nmuxer_id = 3\ntotal_muxers = 2\n").unwrap().muxer;
        assert!(c.validate().unwrap_err().contains("muxer_id"));
    }
}
