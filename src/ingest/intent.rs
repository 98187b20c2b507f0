//! Writers' intents: a process about to store media of a recording says so first, so that
//! `reclife check --repair` never takes a media object it is storing for an orphan.
//!
//! Every writer of media into the node's store goes through here: ingest (before its first
//! media file of a recording), `POST /internal-api/…` (while it checks the media and writes
//! the document) and the muxer (before it stores a muxed file). An intent is the catalog lease
//! `media/intent/<recording id>` ([`crate::catalog::namespaces::INTENT_LEASE`]), naming the
//! process that holds it and renewed while it lives; it is released when the document is
//! written or the write is abandoned. A writer that dies leaves a lease that is dead at once
//! on its host (its pid is gone) and expires after `lease_seconds` anywhere, like every lease
//! ([`crate::lifecycle::lease`]).
//!
//! Guarantees, with [`crate::lifecycle::check`]:
//! - repair removes a media object only when no live intent names its recording, then only
//!   when still no document lists it (intent first, document second: a writer that wrote its
//!   document and let go is seen by the second look), and only when it is older than
//!   `orphan_grace_seconds`;
//! - before writing the document, a writer checks that the media it stored earlier is still
//!   there ([`Intent::confirm`]), and fails the recording, naming the missing file, if not:
//!   a document never lists media that is gone;
//! - two writers of one recording take turns: the second waits for the first (up to
//!   [`WAIT`]), so their media files never interleave.

use crate::catalog::{namespaces, Catalog};
use crate::config::Context;
use crate::lifecycle::lease::{self, Held};
use crate::storage::{Key, MediaStore, StorageError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How long a writer waits for another writer of the same recording to finish.
pub const WAIT: Duration = Duration::from_secs(600);

/// The lease that holds an intent for `recording`.
pub fn lease_name(recording: &str) -> String {
    format!("{}{recording}", namespaces::INTENT_LEASE)
}

/// This process's intent to store media of one recording; dropping it withdraws it.
#[derive(Debug)]
pub struct Intent {
    recording: String,
    _held: Held,
}

/// Announces that this process is about to store media of `recording`, before the first byte;
/// waits (up to [`WAIT`]) while another writer holds the recording. `Err` is a reason naming
/// the recording.
pub async fn announce(ctx: &Context, recording: &str) -> Result<Intent, String> {
    let name = lease_name(recording);
    let secs = ctx.config.lease_seconds.max(3);
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match Held::take(ctx.catalog.clone(), &name, secs).await {
            Ok(Some(held)) => return Ok(Intent { recording: recording.to_string(), _held: held }),
            Ok(None) => {}
            Err(e) => return Err(format!("recording {recording}: cannot announce its media: {e}")),
        }
        if started.elapsed() > WAIT {
            return Err(format!(
                "recording {recording}: another writer has been storing its media for {} s; try again later",
                WAIT.as_secs()
            ));
        }
        if !told {
            tracing::info!(recording = %recording, "another writer is storing this recording's media; waiting for it");
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Intent {
    pub fn recording(&self) -> &str {
        &self.recording
    }

    /// Checks that every media object this writer stored (store, key, size) is still there,
    /// right before the document is written. `Err` names the first that is not.
    pub async fn confirm(&self, stored: &[(Arc<dyn MediaStore>, Key, u64)]) -> Result<(), String> {
        for (store, key, size) in stored {
            match store.head(key).await {
                Ok(m) if m.size == *size => {}
                Ok(m) => {
                    return Err(format!(
                        "recording {}: media {key} changed while the recording was stored ({} bytes, {size} written); nothing was recorded",
                        self.recording, m.size
                    ))
                }
                Err(StorageError::NotFound { .. }) => {
                    return Err(format!(
                        "recording {}: media {key} vanished from {} while the recording was stored; nothing was recorded, store it again",
                        self.recording,
                        store.describe()
                    ))
                }
                Err(e) => return Err(format!("recording {}: cannot confirm media {key}: {e}", self.recording)),
            }
        }
        Ok(())
    }
}

/// Recordings a live writer is storing media of now (one lease listing).
pub fn live(catalog: &dyn Catalog) -> Result<HashSet<String>, crate::catalog::CatalogError> {
    let now = chrono::Utc::now();
    Ok(catalog
        .lease_list(namespaces::INTENT_LEASE)?
        .into_iter()
        .filter(|l| lease::is_live(l, now))
        .filter_map(|l| l.name.strip_prefix(namespaces::INTENT_LEASE).map(str::to_string))
        .collect())
}

/// True when a live writer is storing media of `recording` now.
pub fn is_live(catalog: &dyn Catalog, recording: &str) -> Result<bool, crate::catalog::CatalogError> {
    let name = lease_name(recording);
    let now = chrono::Utc::now();
    Ok(catalog.lease_list(&name)?.iter().any(|l| l.name == name && lease::is_live(l, now)))
}
