//! Moving recordings in: folders and GIR backup archives (zip) into the catalog and the
//! media store; and out: one recording exported to a folder.
//!
//! In: paths. A folder is any tree of `meta-data.json` files, each beside its media files
//! (named by mediaId, or by stored path as `useFullPathInMediaFileBackup` writes them); a
//! call's screen recordings sit in `screen/<screen id>/` or are separate recordings carrying
//! `callRecordingId`. A zip is a GIR backup archive. Out: an [`IngestReport`].
//!
//! Guarantees: media is stored (atomically) before its metadata, so the catalog never
//! points at missing media; re-ingesting is idempotent; a bad recording is set aside with a
//! reason naming its file, and the rest go in.

mod export;
mod source;

pub use export::export_recording;

use crate::archive;
use crate::catalog::Upsert;
use crate::config::Context;
use crate::model::Recording;
use crate::progress::Progress;
use crate::storage::{Key, MediaStore, MediaStoreExt, StorageError};
use source::{Candidate, MediaRef, Source};
use std::path::PathBuf;
use std::sync::Arc;

/// Errors that stop an ingest as a whole (a bad recording does not: it is rejected).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {message}")]
    Source { path: PathBuf, message: String },
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Other(String),
}

/// One recording set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The metadata file (`path` or `archive.zip!entry`).
    pub source: String,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rejected {}: {}", self.source, self.reason)
    }
}

/// What an ingest did.
#[derive(Debug, Default, Clone)]
pub struct IngestReport {
    pub ingested: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub media_bytes: u64,
    pub rejected: Vec<Rejection>,
    /// Ids of the recordings ingested or updated.
    pub ids: Vec<String>,
}

/// Ingests every recording found under `paths` (folders and zip archives).
pub async fn ingest_paths(
    ctx: &Context,
    paths: &[PathBuf],
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    let mut report = IngestReport::default();
    let mut sources = Vec::new();
    for p in paths {
        let p2 = p.clone();
        let src = tokio::task::spawn_blocking(move || Source::open(&p2))
            .await
            .map_err(|e| IngestError::Other(e.to_string()))??;
        sources.push(src);
    }
    progress.set_total(sources.iter().map(|s| s.candidates.len() as u64).sum());
    for src in sources {
        let src = Arc::new(src);
        for i in 0..src.candidates.len() {
            let c = &src.candidates[i];
            match ingest_one(ctx, &src, c).await {
                Ok((Upsert::Inserted, bytes, id)) => {
                    report.ingested += 1;
                    report.media_bytes += bytes;
                    report.ids.push(id);
                }
                Ok((Upsert::Updated, bytes, id)) => {
                    report.updated += 1;
                    report.media_bytes += bytes;
                    report.ids.push(id);
                }
                Ok((Upsert::Unchanged, _, _)) => report.unchanged += 1,
                Err(reason) => {
                    let r = Rejection { source: c.display.clone(), reason };
                    tracing::info!(source = %r.source, reason = %r.reason, "recording rejected");
                    report.rejected.push(r);
                }
            }
            progress.inc(1);
        }
    }
    progress.finish();
    Ok(report)
}

/// Ingests one recording. A returned `Err` is the reason it was rejected.
async fn ingest_one(ctx: &Context, src: &Arc<Source>, c: &Candidate) -> Result<(Upsert, u64, String), String> {
    let text = src.read_meta(c).await.map_err(|e| format!("cannot read metadata: {e}"))?;
    let mut rec = Recording::parse_in(&text, c.parent_call.as_deref()).map_err(|e| e.to_string())?;
    // Two media files with one mediaId would share a key in the store and a name in every
    // archive: the recording is refused, naming both.
    let mut seen = std::collections::HashSet::new();
    for m in &rec.media {
        if !seen.insert(m.media_id.as_str()) {
            return Err(format!("recording {}: mediaId {} appears twice in mediaFiles", rec.id, m.media_id));
        }
    }
    // Find every media file before touching anything.
    let mut refs = Vec::with_capacity(rec.media.len());
    for m in &rec.media {
        let key = Key::media(&rec.id, &m.media_id).map_err(|e| e.to_string())?;
        let r = src.find_media(c, m).map_err(|e| format!("media {}: {e}", m.media_id))?;
        refs.push((key, r));
    }
    let catalog = ctx.catalog.clone();
    let id = rec.id.clone();
    let existing = tokio::task::spawn_blocking(move || catalog.get(&id))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if let Some(e) = &existing {
        if e.recording.doc() == rec.doc() && all_present(ctx.media.as_ref(), &refs).await {
            return Ok((Upsert::Unchanged, 0, rec.id));
        }
    }
    let mut bytes = 0;
    for (i, (key, r)) in refs.iter().enumerate() {
        let (meta, encrypted) =
            src.copy_media(r, key, ctx.media.as_ref()).await.map_err(|e| format!("media {key}: {e}"))?;
        bytes += meta.size;
        rec.media[i].encrypted |= encrypted;
    }
    let catalog = ctx.catalog.clone();
    let id = rec.id.clone();
    let outcome = tokio::task::spawn_blocking(move || catalog.upsert(&rec))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    // Media changed under an unchanged document still counts as an update.
    let outcome = if outcome == Upsert::Unchanged && existing.is_some() { Upsert::Updated } else { outcome };
    Ok((outcome, bytes, id))
}

async fn all_present(store: &dyn MediaStore, refs: &[(Key, MediaRef)]) -> bool {
    for (key, r) in refs {
        match store.head(key).await {
            Ok(meta) if meta.size == r.size() => {}
            _ => return false,
        }
    }
    true
}

/// Reads a whole small object (used by export and tests).
pub async fn read_object(store: &dyn MediaStore, key: &Key) -> Result<Vec<u8>, StorageError> {
    store.get_bytes(key).await
}

/// The metadata file names ingest recognises.
pub fn is_meta_file(name: &str) -> bool {
    name == archive::META_FILE || name == archive::RCS_META_FILE
}
