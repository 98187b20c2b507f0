//! Files in the target folder: owner-only (files 0600, folders 0700), written atomically
//! (temporary file, fsync, rename, fsync of the folder) so a crash leaves the old file or the
//! new one, never a mix.

use super::DownloadError;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Creates `dir` and its missing parents, 0700.
pub fn create_dirs(dir: &Path) -> Result<(), DownloadError> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| DownloadError::io(dir, e))
}

/// fsyncs a folder, so the renames into it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), DownloadError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| DownloadError::io(dir, e))
}

/// Replaces `path` with `data`, atomically; the folder is synced.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), DownloadError> {
    replace(path, data)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// [`write_atomic`] without the folder sync, for a caller that syncs the folder once after
/// several renames into it.
pub fn replace(path: &Path, data: &[u8]) -> Result<(), DownloadError> {
    let tmp = temp_path(path);
    let io = |e| DownloadError::io(path, e);
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
    f.write_all(data).and_then(|_| f.sync_data()).map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// The temporary file [`write_atomic`] uses for `path`: one fixed name (the target folder's lock
/// makes this process its only writer), so what a killed run left is reused, or removed by
/// [`remove_temp`].
pub fn temp_path(path: &Path) -> std::path::PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.join(format!(".{name}.tmp"))
}

/// Removes what a killed run may have left of a [`write_atomic`] of `path`.
pub fn remove_temp(path: &Path) {
    let _ = std::fs::remove_file(temp_path(path));
}

/// True if `path` holds exactly `data` (a missing file does not).
pub fn same_content(path: &Path, data: &[u8]) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == data.len() as u64 => std::fs::read(path).is_ok_and(|d| d == data),
        _ => false,
    }
}
