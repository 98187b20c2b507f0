//! The durable plan: one manifest row per recording (with its screens) per task of a job, and
//! the vocabulary of conditional deletes and leases that executing a plan needs.
//!
//! A plan is written while the catalog is scrolled (one page in memory), kept under its job id,
//! and consumed page by page by the task that executes it: a backup records per row the
//! versions it archived and the archive they are in; a purge deletes a row's recordings only
//! if they are still at those versions and not held.

use super::Version;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a manifest row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowState {
    /// Planned, not acted on yet.
    Planned,
    /// Written into an archive that is not yet verified and published.
    Written,
    /// In a verified, published archive (`archive`).
    Archived,
    /// Set aside (`note` says why).
    Failed,
    /// Purged.
    Deleted,
    /// Left alone by a purge (`note`: held, changed since backup, gone).
    Skipped,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Planned => "planned",
            RowState::Written => "written",
            RowState::Archived => "archived",
            RowState::Failed => "failed",
            RowState::Deleted => "deleted",
            RowState::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<RowState> {
        Some(match s {
            "planned" => RowState::Planned,
            "written" => RowState::Written,
            "archived" => RowState::Archived,
            "failed" => RowState::Failed,
            "deleted" => RowState::Deleted,
            "skipped" => RowState::Skipped,
            _ => return None,
        })
    }
}

impl std::fmt::Display for RowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recording and the version it was seen at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doom {
    pub id: String,
    pub version: Version,
    /// For a screen deleted with its call: the call. A screen is left alone (`Held`) while
    /// its call is held.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// One row of a plan: a recording (a call, or a screen for a screen task), its screens when the
/// task takes them, and the versions planned (or, once archived, the versions archived).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Position in the plan, from 1.
    pub seq: u64,
    pub id: String,
    pub version: Version,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screens: Vec<Doom>,
    pub state: RowState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Media bytes planned (the recording and its screens).
    #[serde(default)]
    pub bytes: u64,
}

/// What a conditional delete did with one recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteOutcome {
    Deleted,
    /// `nonDelete` or a hold: left alone.
    Held,
    /// Its version is not the one given: left alone.
    Changed,
    /// Not in the catalog.
    Missing,
}

/// A lease as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    pub until: DateTime<Utc>,
}
