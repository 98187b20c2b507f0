//! Moving recordings in: folders and GIR backup archives (zip) into the catalog and the
//! media store; and out: one recording exported to a folder.
//!
//! In: paths. A folder is any tree of `meta-data.json` files, each beside its media files
//! (named by mediaId, or by stored path as `useFullPathInMediaFileBackup` writes them); a
//! call's screen recordings sit in `screen/<screen id>/` or are separate recordings carrying
//! `callRecordingId`. A zip is a GIR backup archive. Out: an [`IngestReport`].
//!
//! Guarantees: media is stored (atomically) before its metadata, so the catalog never
//! points at missing media; a recording's writer announces its media before the first byte
//! and confirms it is all still there before the document ([`intent`]), so `check --repair`
//! never races it; re-ingesting is idempotent; a bad recording is set aside with a reason
//! naming its file, and the rest go in. A hold the metadata carries (a backup's
//! `reclifeHold`, the API's `hold` in a downloaded folder) is taken out of the stored document
//! and applied to the catalog ([`Catalog::apply_carried_hold`]): an ingest or a restore never
//! releases a hold, and brings back one the metadata carries (unless this catalog released it
//! after it was placed).
//!
//! [`Catalog::apply_carried_hold`]: crate::catalog::Catalog::apply_carried_hold

mod export;
pub mod in_place;
pub mod intent;
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
    /// Recordings held by a hold their metadata carried (placed now, or already in force).
    pub held: u64,
}

/// Ingests every recording found under `paths` (folders and zip archives).
pub async fn ingest_paths(
    ctx: &Context,
    paths: &[PathBuf],
    progress: &dyn Progress,
) -> Result<IngestReport, IngestError> {
    ingest_paths_with(ctx, paths, progress, false).await
}

/// [`ingest_paths`]; with `in_place`, media is not copied: each recording's media is checked
/// where its `mediaDescriptor` says it is and registered there ([`in_place`]).
pub async fn ingest_paths_with(
    ctx: &Context,
    paths: &[PathBuf],
    progress: &dyn Progress,
    in_place: bool,
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
            match ingest_one(ctx, &src, c, in_place, &mut report.held).await {
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

/// Ingests one recording, then applies the hold its metadata carries (counted in `held`). A
/// returned `Err` is the reason it was rejected.
async fn ingest_one(
    ctx: &Context,
    src: &Arc<Source>,
    c: &Candidate,
    in_place: bool,
    held: &mut u64,
) -> Result<(Upsert, u64, String), String> {
    let text = src.read_meta(c).await.map_err(|e| format!("cannot read metadata: {e}"))?;
    let (text, carried) = crate::catalog::hold::take_carried(&text)?;
    let done = ingest_doc(ctx, src, c, in_place, text).await?;
    if let Some(carried) = carried {
        let (catalog, id) = (ctx.catalog.clone(), done.2.clone());
        let now = tokio::task::spawn_blocking(move || catalog.apply_carried_hold(&id, &carried))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("recording {}: its hold: {e}", done.2))?;
        if now.hold.is_some() {
            *held += 1;
        }
    }
    Ok(done)
}

/// Ingests one recording's document `text` (its hold already taken out).
async fn ingest_doc(
    ctx: &Context,
    src: &Arc<Source>,
    c: &Candidate,
    in_place: bool,
    text: String,
) -> Result<(Upsert, u64, String), String> {
    let mut rec = Recording::parse_in(&text, c.parent_call.as_deref()).map_err(|e| e.to_string())?;
    // Two media files with one mediaId would share a key in the store and a name in every
    // archive: the recording is refused, naming both.
    let mut seen = std::collections::HashSet::new();
    for m in &rec.media {
        if !seen.insert(m.media_id.as_str()) {
            return Err(format!("recording {}: mediaId {} appears twice in mediaFiles", rec.id, m.media_id));
        }
    }
    if in_place {
        return register_in_place(ctx, rec).await;
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
        if e.recording.doc() == rec.doc() && all_present(ctx, &rec.id, &refs).await {
            return Ok((Upsert::Unchanged, 0, rec.id));
        }
    }
    // Announced before the first byte, withdrawn when `intent` drops (document written, or
    // the recording rejected).
    let intent = intent::announce(ctx, &rec.id).await?;
    let mut bytes = 0;
    let mut stored = Vec::with_capacity(refs.len());
    for (i, (key, r)) in refs.iter().enumerate() {
        let (meta, encrypted) =
            src.copy_media(r, key, ctx.media.as_ref()).await.map_err(|e| format!("media {key}: {e}"))?;
        crate::lifecycle::failpoint::hit("ingest.after_media");
        bytes += meta.size;
        stored.push((ctx.media.clone(), key.clone(), meta.size));
        rec.media[i].encrypted |= encrypted;
    }
    // Its media is in the node's store now: no longer where a descriptor said.
    let (c2, id) = (ctx.clone(), rec.id.clone());
    tokio::task::spawn_blocking(move || {
        if !in_place::placed(&c2, &id)?.is_empty() {
            in_place::forget(&c2, &id)?;
        }
        Ok::<_, StorageError>(())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    intent.confirm(&stored).await?;
    let catalog = ctx.catalog.clone();
    let id = rec.id.clone();
    let outcome = tokio::task::spawn_blocking(move || catalog.upsert(&rec))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    drop(intent);
    // Media changed under an unchanged document still counts as an update.
    let outcome = if outcome == Upsert::Unchanged && existing.is_some() { Upsert::Updated } else { outcome };
    Ok((outcome, bytes, id))
}

/// `ingest --in-place`: the media is checked where the descriptors say (present, and of the size
/// the metadata gives), registered there, then the document is stored. Nothing is copied.
async fn register_in_place(ctx: &Context, rec: Recording) -> Result<(Upsert, u64, String), String> {
    let media: Vec<(String, Option<u64>)> = rec.media.iter().map(|m| (m.media_id.clone(), m.size)).collect();
    let placed = in_place::find(ctx, rec.doc(), &media).await.map_err(|e| format!("recording {}: {e}", rec.id))?;
    let (c, id) = (ctx.clone(), rec.id.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let existing = c.catalog.get(&rec.id).map_err(|e| e.to_string())?;
        let same_place = in_place::placed(&c, &rec.id).map_err(|e| e.to_string())? == placed;
        if same_place && existing.as_ref().is_some_and(|e| e.recording.doc() == rec.doc()) {
            return Ok(Upsert::Unchanged);
        }
        // Where the media is, first: a stored document always finds its media.
        in_place::register(&c, &rec.id, &placed).map_err(|e| e.to_string())?;
        let o = c.catalog.upsert(&rec).map_err(|e| e.to_string())?;
        Ok::<_, String>(if o == Upsert::Unchanged && existing.is_some() { Upsert::Updated } else { o })
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok((outcome, 0, id))
}

/// Every media file is already stored, of the right size: in the node's store, or where the
/// recording was registered in place.
async fn all_present(ctx: &Context, id: &str, refs: &[(Key, MediaRef)]) -> bool {
    let (c, i) = (ctx.clone(), id.to_string());
    let Ok(Ok(placed)) = tokio::task::spawn_blocking(move || in_place::placed(&c, &i)).await else { return false };
    for (key, r) in refs {
        let media_id = key.segments().last().unwrap_or_default();
        let Ok((store, key)) = in_place::locate_in(ctx, &placed, id, media_id) else { return false };
        match store.head(&key).await {
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
