//! The cloud backup downloader (`reclife download`, GIR's Recording Cloud Backup Service):
//! recordings' metadata from the RWS API and their media, still encrypted, from S3 (or the
//! API's play URL) onto the user's disk.
//!
//! In: [`Settings`] (RCBS's `config.properties` keys, `[download]`, flags), API credentials and
//! the S3 settings. Out: `<targetDir>/<recordingFolderFormat>/<recording id>/` holding each
//! matching media file and `meta-data.json` (a screen recording of a call in the download in
//! `screen/<screen id>/` inside the call's folder, [`record::InCall`]), the checkpoint
//! `last_recording_endtime.txt`, and a [`Report`].
//!
//! Guarantees: one run per target folder ([`lock`]); every file appears whole or not at all
//! (`.part` + fsync + rename; metadata by atomic replace, and only when it changed); a file
//! already there is not fetched again, an interrupted one resumes; a recording's metadata is
//! written after all its media, so a folder with `meta-data.json` is complete; the checkpoint
//! only covers slices whose every recording is done ([`period`]). After a kill at any moment, a
//! rerun leaves exactly the expected set. Memory: one listing page and `numThreads` transfers;
//! the period's listing is spooled, slice by slice, to files in the target folder before any
//! download, so no order of the listing is assumed and totals are known whatever the size. The
//! slices run as one pipeline: a slice's recordings start as soon as the last of the previous
//! one are under way; slices finish (folder syncs, checkpoint) in order.
//!
//! Against a hostile API: credentials only to the origin of `gwsUriPrefix` ([`api`]); listing
//! pages bounded in size and never read twice (a `nextUri` loop is an error); media bodies never
//! written past their stated size, and a resumed read checked by its `Content-Range` ([`fetch`]);
//! the whole run within the operator's disk budget (`diskBudget`, [`budget`]): a run that would
//! pass it stops at the recording that does not fit, named in [`Report::budget_stop`].

pub mod api;
pub mod budget;
pub mod check;
pub mod fetch;
mod fsio;
pub mod layout;
pub mod lock;
pub mod options;
pub mod period;
mod properties;
pub mod record;
mod run;

pub use api::GwsCredentials;
pub use check::{check, CheckReport};
pub use options::{DownloadConfig, Settings, Span};
pub use period::Period;
pub use run::{run, verify_api, verify_s3};

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Errors that stop a run. A single recording or file that fails does not: it is listed in the
/// [`Report`] and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("authentication: {0}")]
    Auth(String),
    #[error("target folder {dir} is in use by {holder}: one download per folder at a time")]
    Locked { dir: PathBuf, holder: String },
    #[error("API: {0}")]
    Api(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl DownloadError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DownloadError {
        DownloadError::Io { path: path.to_path_buf(), source }
    }
}

/// Decrypting while downloading (`--decrypt`).
#[derive(Debug, Clone)]
pub struct Decrypt {
    pub keys: Arc<crate::crypto::KeyStore>,
    /// Plain files go to `<plain_dir>/<folder format>/<recording id>/<name>` (0600).
    pub plain_dir: PathBuf,
    /// Keep only the plaintext: the encrypted file is removed once decrypted.
    pub plain_only: bool,
}

/// One run's inputs.
#[derive(Debug, Clone)]
pub struct Job {
    pub settings: Settings,
    pub credentials: GwsCredentials,
    /// `[s3]` of the node config (endpoint, region, timeouts); credentials from the AWS variables.
    pub s3: crate::storage::S3Config,
    /// Fetch media from the API's play URL even where an S3 descriptor is given.
    pub via_api: bool,
    pub decrypt: Option<Decrypt>,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Job {
    /// Where one listed recording goes and what of it is fetched, by this job's settings (folder
    /// format, media types, metadata only, API or S3); the run and `--check` place alike.
    pub(crate) fn plan_record(
        &self,
        raw: Box<serde_json::value::RawValue>,
        in_call: Option<&record::InCall>,
    ) -> Result<record::Planned, String> {
        let s = &self.settings;
        record::plan(raw, &s.folder_format, &s.media_type_pattern, s.metadata_only, self.via_api, in_call)
    }
}

/// A file or recording that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub recording: String,
    /// The media file (empty: the recording as a whole).
    pub file: String,
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.file.is_empty() {
            write!(f, "recording {}: {}", self.recording, self.reason)
        } else {
            write!(f, "recording {} file {}: {}", self.recording, self.file, self.reason)
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub period: Option<Period>,
    pub slices: usize,
    /// Recordings of this instance in the period.
    pub recordings: u64,
    /// Recordings left to the other instances.
    pub other_instances: u64,
    pub files_downloaded: u64,
    pub bytes_downloaded: u64,
    pub files_present: u64,
    pub metadata_written: u64,
    pub metadata_unchanged: u64,
    pub decrypted: u64,
    /// With `--decrypt`: plain (unencrypted) files passed through to the plain folder.
    pub passed_through: u64,
    pub failures: Vec<Failure>,
    /// Recordings listed with a start outside the period: reported, not downloaded, and no
    /// reason to stop or to hold the checkpoint.
    pub skipped: Vec<Failure>,
    /// The run stopped at this recording: the disk budget ([`budget`]) would have been passed.
    /// It and the recordings after it were not downloaded.
    pub budget_stop: Option<Failure>,
    /// The checkpoint after the run.
    pub checkpoint: Option<chrono::DateTime<chrono::Utc>>,
}

/// Progress of a run, slice by slice, with true totals (counted before a slice downloads).
pub trait DownloadProgress: Send + Sync {
    /// Slice `index` (from 0) of `count` starts: `recordings` to handle, `bytes` of media in them.
    fn slice(&self, _index: usize, _count: usize, _slice: &Period, _recordings: u64, _bytes: u64) {}
    /// More recordings done / media bytes done (downloaded or found in place) in slice `index`.
    /// Slices overlap: the next one starts while the last files of this one finish.
    fn advance(&self, _index: usize, _recordings: u64, _bytes: u64) {}
    /// Slice `index` is finished (they finish in order).
    fn slice_done(&self, _index: usize) {}
}

/// Progress nobody watches.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;
impl DownloadProgress for NoProgress {}
