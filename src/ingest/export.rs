//! One recording out to its own folder, `<out>/<recording id>/`: `meta-data.json` (the stored
//! document, with its hold as `reclifeHold` as a backup archives it) and its media files, named
//! by mediaId, as stored (encrypted media stays encrypted). A folder that exists is refused:
//! an export never overwrites anything.

use super::IngestError;
use crate::archive::META_FILE;
use crate::catalog::CatalogError;
use crate::config::Context;
use crate::storage::{Key, MediaStoreExt};
use std::path::{Path, PathBuf};

/// Writes recording `id` into the new folder `<out>/<id>` (`out` is created if missing; the
/// recording's folder must not exist). Returns the files written.
pub async fn export_recording(ctx: &Context, id: &str, out: &Path) -> Result<Vec<PathBuf>, IngestError> {
    let catalog = ctx.catalog.clone();
    let id2 = id.to_string();
    let entry = tokio::task::spawn_blocking(move || catalog.get(&id2))
        .await
        .map_err(|e| IngestError::Other(e.to_string()))??
        .ok_or_else(|| CatalogError::NotFound(id.to_string()))?;
    let io = |path: &Path, e: std::io::Error| IngestError::Source { path: path.to_path_buf(), message: e.to_string() };
    // Exports hold recordings: owner-only folders (0700) and files (0600).
    tokio::fs::DirBuilder::new().recursive(true).mode(0o700).create(out).await.map_err(|e| io(out, e))?;
    // The id was checked as a key segment, so the folder cannot leave `out`.
    Key::from_names(&[id])?;
    let top = out;
    let out = &top.join(id);
    match tokio::fs::DirBuilder::new().mode(0o700).create(out).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(IngestError::Source {
                path: out.clone(),
                message: "exists: an export never overwrites; remove it or choose another --out".into(),
            })
        }
        Err(e) => return Err(io(out, e)),
    }
    let mut written = Vec::new();
    let meta = out.join(META_FILE);
    let doc = crate::catalog::hold::with_archive_field(entry.recording.doc(), &entry.hold_state());
    write_atomic(&meta, doc.as_bytes()).await.map_err(|e| io(&meta, e))?;
    written.push(meta);
    for m in &entry.recording.media {
        Key::media(&entry.recording.id, &m.media_id)?;
        let (store, key) = super::in_place::locate_async(ctx, &entry.recording.id, &m.media_id).await?;
        // The name was checked when the key was built, so it cannot leave `out`.
        let dest = out.join(&m.media_id);
        let tmp = out.join(format!(".{}.part", m.media_id));
        store.get_to_file(&key, &tmp).await?;
        tokio::fs::rename(&tmp, &dest).await.map_err(|e| io(&dest, e))?;
        written.push(dest);
    }
    Ok(written)
}

async fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let tmp = path.with_extension("json.part");
    let mut f = tokio::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).await?;
    f.write_all(data).await?;
    f.flush().await?;
    drop(f);
    tokio::fs::rename(&tmp, path).await
}
