//! Media Lifecycle Management (GIR MLM), with GIR's warnings turned into guarantees.
//!
//! In: rules (one TOML file each, [`rules`]), or one task given on the command line (an
//! on-demand job, [`jobs`]). Out: backup archives in the exact GIR layout ([`backup`]),
//! deletions with one audit line each ([`purge`]), job records and a completion report.
//!
//! Every run plans first ([`plan`]): it scrolls the catalog for each task and counts the
//! recordings, media and bytes; a dry run stops there. Guarantees:
//! - an archive appears under its final name only complete, fsynced and verified (central
//!   directory re-read, every CRC checked), and never over another archive;
//! - a purge that follows a backup deletes only what that backup archived and verified, and does
//!   not run at all when the backup failed (unless the backup task says `on_failure = "continue"`);
//! - held recordings (`nonDelete`, or a hold, of the recording or of the call a screen belongs
//!   to) are never purged;
//! - plans are durable manifests in the catalog ([`plan`]); a backup records per row the
//!   versions it archived; a purge deletes a recording only if it is still at the version
//!   archived (or planned) and not held, checked in the deleting transaction, so an edit or a
//!   hold placed at any moment wins (`skipped: changed since backup`, `skipped: held`);
//! - purges are journaled ([`journal`]): after a crash at any point, the next task on any
//!   process finishes the journal (re-checking holds and versions), so every recording is fully
//!   present, or fully gone and audited exactly once; notifications go through a durable
//!   [`outbox`] (at least once);
//! - no purge runs alongside a task whose filter overlaps it, in any process on the catalog
//!   ([`guard`], catalog leases); the scheduler ([`schedule`]) catches up on runs missed while
//!   the node was down, and persists last runs;
//! - [`check`] verifies all of this after any run.

pub mod backup;
pub mod check;
pub mod failpoint;
pub mod guard;
pub mod jobs;
pub mod journal;
pub mod lease;
pub mod notify;
pub mod outbox;
pub mod plan;
pub mod purge;
pub mod remote_dir;
pub mod rule_store;
pub mod rules;
pub mod runner;
pub mod schedule;
pub mod validate;

pub use rules::{Filter, OnFailure, Op, Rule, RuleProblem, Task};

/// Errors that stop a task as a whole. A bad recording does not: it is reported as a
/// [`Failure`] and the task goes on.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("archive {path}: verification failed: {why}")]
    Verify { path: std::path::PathBuf, why: String },
    #[error("backup location {location}: {why}")]
    Location { location: String, why: String },
    #[error("rule {rule}: {why}")]
    Rule { rule: String, why: String },
    #[error("job {0} not found")]
    NoJob(String),
    #[error("no rule named {0} in the catalog")]
    NoRule(String),
    #[error("cancelled")]
    Cancelled,
    /// The tasks break a rule of [`validate`] (every problem, one per line).
    #[error("{}", validate::describe(.0))]
    Invalid(Vec<validate::TaskProblem>),
    /// The job is not in a state that allows this (started twice, cancelled while starting).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Other(String),
    /// The shared rules ([`rule_store`]): a rule that does not validate, or none of that name.
    #[error(transparent)]
    Rules(#[from] rule_store::StoreError),
}

impl LifecycleError {
    pub(crate) fn io(path: impl Into<std::path::PathBuf>, source: std::io::Error) -> Self {
        LifecycleError::Io { path: path.into(), source }
    }
}

/// One item a task set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Failure {
    /// Recording id (or archive path).
    pub item: String,
    pub reason: String,
}

/// Runs blocking catalog work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, LifecycleError>
where
    F: FnOnce() -> Result<T, LifecycleError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| LifecycleError::Other(format!("worker failed: {e}")))?
}
