//! Backup: the selected recordings (and their screens) into one archive in the exact GIR MLM
//! layout, zipped or as a folder.
//!
//! In: a backup task, its start time and its job's manifest (the planned rows). Out:
//! `<location>/<Tenant>-<FilterType>-<MaxAge>-<MinAge>-
//! <yyyyMMddHHmmss>[.zip]` holding `<cc>/<Tenant>/<yyyy>/<MM>/<dd>/<id>/meta-data.json` (the stored
//! document, byte for byte; a held recording's hold, with who placed it and its history, is
//! added as the top-level field `reclifeHold`, which GIR's readers ignore, so the archive's file
//! list stays exactly GIR's) and the media as stored (encrypted ones stay encrypted), with
//! `screen/<screen id>/…` beneath a call; and, per manifest row, the versions archived (of the
//! recording and of each screen) and the archive they are in, for the purge. Rows move
//! planned → written (in the unpublished archive) → archived (published) in the catalog, so
//! nothing is held in memory per recording, and a purge sees only what a verified archive holds.
//!
//! Remote destinations (`s3://`, `webdav://`; zip only) get the same archive, streamed: the zip
//! writer's bytes go through a small bounded channel into the store's create-only `put_new`
//! (multipart on S3), so no local copy exists and memory stays flat. The upload is published
//! under a free name (checked first; a name taken meanwhile fails the backup, never replaces),
//! then verified with ranged reads (size, and the central directory's CRC and size of every
//! entry against those computed while writing) and deleted if that fails. A backup that fails
//! or is cancelled mid-way drops its writer, which fails the upload: the multipart upload is
//! aborted (or the WebDAV temporary removed), and nothing appears under the final name.
//!
//! Folder backups to remote destinations upload one object per file under a claimed folder name
//! and publish by removing the claim once the listing matches what was written; see
//! [`remote_dir`](super::remote_dir).
//!
//! Guarantees: zip entries are stored, not deflated (media is already compressed), Zip64 where
//! needed. The archive is written under a hidden temporary name, fsynced, verified (central
//! directory re-read, every entry read back and its CRC checked), and only then linked to its
//! final name, which never replaces an existing archive: a taken name gets `-2`, `-3`, … and
//! the outcome says so. A recording whose media is missing is reported and left out.

use super::{failpoint, LifecycleError, Task};
use crate::archive::{media_name, recording_dir, screen_dir, META_FILE};
use crate::catalog::{Doom, Entry, RowState};
use crate::config::Context;
use crate::ingest::in_place;
use crate::progress::Progress;
use crate::storage::{Key, Location, MediaStore, RangeReader, UploadWriter};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// What a backup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BackupOutcome {
    /// The archive written (`None` when nothing matched).
    pub archive: Option<PathBuf>,
    /// The name the archive would have had, when that was taken and another was chosen.
    pub name_taken: Option<String>,
    pub recordings: u64,
    pub screens: u64,
    pub media: u64,
    pub bytes: u64,
    /// The first [`super::jobs::MAX_FAILED_KEPT`] recordings set aside; all are counted.
    pub failed: Vec<super::Failure>,
    pub failed_total: u64,
}

struct Written {
    name: String,
    size: u64,
    crc: u32,
}

enum Sink {
    Zip(Box<ZipWriter<BufWriter<File>>>),
    Dir(PathBuf),
    /// A zip streamed to a remote store, published create-only when the upload completes.
    Remote(Box<ZipWriter<zip::write::StreamWriter<UploadWriter>>>, Remote),
    /// A folder of objects in a remote store, published by removing its claim.
    RemoteDir(Box<super::remote_dir::RemoteDir>),
}

/// Where a remote archive goes.
struct Remote {
    handle: tokio::runtime::Handle,
    store: Arc<dyn MediaStore>,
    key: Key,
    /// `s3://bucket/prefix/<name>.zip`: what the outcome and the manifest record.
    uri: String,
}

struct Writer {
    sink: Sink,
    /// The temporary path (local), or the final URI (remote), for errors.
    tmp: PathBuf,
    written: Vec<Written>,
    /// Every zip entry's modification time: the backup's time in UTC, as GIR's writer stamps it.
    stamp: zip::DateTime,
}

/// A zip timestamp for `t` (UTC); outside the format's 1980–2107 range, its nearest end.
fn zip_time(t: DateTime<Utc>) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    let y = t.year().clamp(1980, 2107) as u16;
    zip::DateTime::from_date_and_time(
        y,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .unwrap_or_default()
}

pub(super) struct CrcWrite<'a, W: Write> {
    pub(super) inner: &'a mut W,
    pub(super) crc: crc32fast::Hasher,
    pub(super) n: u64,
}

impl<W: Write> Write for CrcWrite<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.crc.update(&buf[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl Writer {
    fn create(tmp: PathBuf, zip: bool, at: DateTime<Utc>) -> Result<Writer, LifecycleError> {
        // Archives hold recordings: owner-only (0600 files, 0700 folders), created exclusively
        // and never through a symlink planted at the temporary name.
        let sink = if zip {
            let f = private_file(&tmp).map_err(|e| LifecycleError::io(&tmp, e))?;
            Sink::Zip(Box::new(ZipWriter::new(BufWriter::with_capacity(1 << 20, f))))
        } else {
            private_dir(&tmp).map_err(|e| LifecycleError::io(&tmp, e))?;
            Sink::Dir(tmp.clone())
        };
        Ok(Writer { sink, tmp, written: Vec::new(), stamp: zip_time(at) })
    }

    /// A zip streamed straight into `remote` (create-only): no local copy of the archive.
    fn create_remote(remote: Remote, at: DateTime<Utc>) -> Writer {
        let up = UploadWriter::start(&remote.handle, remote.store.clone(), remote.key.clone(), true);
        let tmp = PathBuf::from(&remote.uri);
        Writer {
            sink: Sink::Remote(Box::new(ZipWriter::new_stream(up)), remote),
            tmp,
            written: Vec::new(),
            stamp: zip_time(at),
        }
    }

    /// A folder uploaded file by file into a remote store.
    fn create_remote_dir(dir: super::remote_dir::RemoteDir, at: DateTime<Utc>) -> Writer {
        let tmp = PathBuf::from(&dir.uri);
        Writer { sink: Sink::RemoteDir(Box::new(dir)), tmp, written: Vec::new(), stamp: zip_time(at) }
    }

    /// Gives up an unfinished archive: a remote folder removes what it uploaded (local
    /// temporaries and remote zips clean up on their own).
    fn abandon(self) {
        if let Sink::RemoteDir(d) = self.sink {
            d.abandon();
        }
    }

    /// Adds one file; `fill` writes its bytes.
    fn add(
        &mut self,
        name: &str,
        size_hint: u64,
        fill: &mut dyn FnMut(&mut dyn Write) -> Result<(), LifecycleError>,
    ) -> Result<(), LifecycleError> {
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| LifecycleError::io(tmp.join(name), e);
        let stamp = self.stamp;
        let (crc, size) = match &mut self.sink {
            Sink::Zip(zw) => zip_entry(zw.as_mut(), name, size_hint, stamp, fill).map_err(|e| e.map_io(&io))?,
            Sink::Remote(zw, _) => zip_entry(zw.as_mut(), name, size_hint, stamp, fill).map_err(|e| e.map_io(&io))?,
            Sink::RemoteDir(d) => d.add(name, fill)?,
            Sink::Dir(root) => {
                let path = root.join(name);
                if let Some(p) = path.parent() {
                    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p).map_err(io)?;
                }
                let mut f = BufWriter::with_capacity(1 << 20, private_file(&path).map_err(io)?);
                let mut w = CrcWrite { inner: &mut f, crc: crc32fast::Hasher::new(), n: 0 };
                fill(&mut w)?;
                let (crc, n) = (w.crc.finalize(), w.n);
                let f = f.into_inner().map_err(|e| io(e.into_error()))?;
                f.sync_all().map_err(io)?;
                (crc, n)
            }
        };
        self.written.push(Written { name: name.to_string(), size, crc });
        Ok(())
    }

    /// Finishes and fsyncs the archive, then verifies it.
    fn finish(self) -> Result<PathBuf, LifecycleError> {
        let tmp = self.tmp.clone();
        let io = |e: std::io::Error| LifecycleError::io(&tmp, e);
        match self.sink {
            Sink::Zip(zw) => {
                let bw = zw.finish().map_err(|e| io(std::io::Error::other(e)))?;
                let f = bw.into_inner().map_err(|e| io(e.into_error()))?;
                f.sync_all().map_err(io)?;
                drop(f);
                verify_zip(&tmp, &self.written)?;
            }
            Sink::Dir(root) => {
                sync_tree(&root).map_err(io)?;
                verify_dir(&root, &self.written)?;
            }
            Sink::RemoteDir(d) => {
                let written: Vec<(String, u64)> = self.written.iter().map(|w| (w.name.clone(), w.size)).collect();
                d.finish(&written)?;
            }
            Sink::Remote(zw, remote) => {
                let up = zw.finish().map_err(|e| io(std::io::Error::other(e)))?.into_inner();
                let sent = up.written();
                let stored = up.finish().map_err(|e| remote_error(&remote, e))?;
                if let Err(e) = verify_remote(&remote, &self.written, sent, stored.size) {
                    // Unverified: it must not stay under the final name.
                    if let Err(d) = remote.handle.block_on(remote.store.delete(&remote.key)) {
                        tracing::error!(archive = %remote.uri, error = %d, "could not remove an archive that failed verification");
                    }
                    return Err(e);
                }
            }
        }
        Ok(tmp)
    }
}

/// One stored zip entry; returns (CRC, size).
fn zip_entry<W: Write + std::io::Seek>(
    zw: &mut ZipWriter<W>,
    name: &str,
    size_hint: u64,
    stamp: zip::DateTime,
    fill: &mut dyn FnMut(&mut dyn Write) -> Result<(), LifecycleError>,
) -> Result<(u32, u64), EntryError> {
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(stamp)
        .large_file(size_hint >= u64::from(u32::MAX));
    zw.start_file(name, opts).map_err(|e| EntryError::Io(std::io::Error::other(e)))?;
    let mut w = CrcWrite { inner: zw, crc: crc32fast::Hasher::new(), n: 0 };
    fill(&mut w).map_err(EntryError::Fill)?;
    Ok((w.crc.finalize(), w.n))
}

enum EntryError {
    Io(std::io::Error),
    Fill(LifecycleError),
}

impl EntryError {
    fn map_io(self, io: &dyn Fn(std::io::Error) -> LifecycleError) -> LifecycleError {
        match self {
            EntryError::Io(e) => io(e),
            EntryError::Fill(e) => e,
        }
    }
}

fn remote_error(remote: &Remote, e: crate::storage::StorageError) -> LifecycleError {
    match e {
        crate::storage::StorageError::AlreadyExists { .. } => LifecycleError::Other(format!(
            "{}: another backup took this archive name while this one was being written; nothing was replaced, run the backup again",
            remote.uri
        )),
        e => LifecycleError::Other(format!("{}: {e}", remote.uri)),
    }
}

/// Verifies a stored archive with ranged reads, without downloading it: the object has the
/// size streamed, and its central directory lists exactly the entries written, each with the
/// CRC-32 and size computed while writing, stored. (The entries' bytes were checksummed in
/// transit by the store's protocol; reading them all back would double the transfer.)
fn verify_remote(remote: &Remote, written: &[Written], sent: u64, stored: u64) -> Result<(), LifecycleError> {
    let bad = |why: String| LifecycleError::Verify { path: PathBuf::from(&remote.uri), why };
    if stored != sent {
        return Err(bad(format!("{stored} bytes stored, {sent} sent")));
    }
    let reader = RangeReader::open(&remote.handle, remote.store.clone(), remote.key.clone(), 1 << 20)
        .map_err(|e| bad(format!("read back: {e}")))?;
    if reader.size() != sent {
        return Err(bad(format!("{} bytes stored, {sent} sent", reader.size())));
    }
    let za = ZipArchive::new(reader).map_err(|e| bad(format!("central directory: {e}")))?;
    if za.len() != written.len() {
        return Err(bad(format!("{} entries in the central directory, {} written", za.len(), written.len())));
    }
    for w in written {
        let Some(i) = za.index_for_name(&w.name) else {
            return Err(bad(format!("{}: missing from the central directory", w.name)));
        };
        // The central directory's record alone: no read of the entry itself.
        let e = za.by_index_data(i).map_err(|e| bad(format!("{}: {e}", w.name)))?;
        if e.crc32() != w.crc || e.size() != w.size || e.compression() != CompressionMethod::Stored {
            return Err(bad(format!("{}: CRC, size or method differs from what was written", w.name)));
        }
    }
    Ok(())
}

/// A new file, 0600, created exclusively (`O_EXCL`), never through a symlink.
fn private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// A new folder, 0700 (fails if anything is at `path`, a symlink included).
fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

fn sync_tree(root: &Path) -> std::io::Result<()> {
    for e in walkdir::WalkDir::new(root).contents_first(true) {
        let e = e.map_err(std::io::Error::other)?;
        if e.file_type().is_dir() {
            File::open(e.path())?.sync_all()?;
        }
    }
    Ok(())
}

/// Re-reads the central directory and every entry; the zip reader checks each CRC at the end
/// of the entry, and the CRC and size are compared with what was written.
fn verify_zip(path: &Path, written: &[Written]) -> Result<(), LifecycleError> {
    let bad = |why: String| LifecycleError::Verify { path: path.to_path_buf(), why };
    let f = File::open(path).map_err(|e| LifecycleError::io(path, e))?;
    let mut za = ZipArchive::new(std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(|e| bad(format!("central directory: {e}")))?;
    if za.len() != written.len() {
        return Err(bad(format!("{} entries in the central directory, {} written", za.len(), written.len())));
    }
    let mut buf = vec![0u8; 1 << 20];
    for w in written {
        let mut e = za.by_name(&w.name).map_err(|e| bad(format!("{}: {e}", w.name)))?;
        if e.crc32() != w.crc || e.size() != w.size || e.compression() != CompressionMethod::Stored {
            return Err(bad(format!("{}: CRC, size or method differs from what was written", w.name)));
        }
        loop {
            match e.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) => return Err(bad(format!("{}: {err}", w.name))),
            }
        }
    }
    Ok(())
}

fn verify_dir(root: &Path, written: &[Written]) -> Result<(), LifecycleError> {
    let mut buf = vec![0u8; 1 << 20];
    for w in written {
        let p = root.join(&w.name);
        let mut f = File::open(&p).map_err(|e| LifecycleError::io(&p, e))?;
        let mut h = crc32fast::Hasher::new();
        let mut n = 0u64;
        loop {
            let k = f.read(&mut buf).map_err(|e| LifecycleError::io(&p, e))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
        }
        if h.finalize() != w.crc || n != w.size {
            return Err(LifecycleError::Verify { path: p, why: "read back differs from what was written".into() });
        }
    }
    Ok(())
}

/// Moves `from` to `to` unless something is already at `to`, atomically, without replacing
/// it: `renameat2(RENAME_NOREPLACE)`. Where the filesystem refuses that (SMB/CIFS, exFAT and
/// many NAS mounts, which GIR sites use for backups), a file is copied into a file created
/// exclusively (`O_EXCL`) and fsynced, and a folder is created exclusively and its entries
/// moved into it; the source is removed only once the copy is complete.
fn move_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them like rename(2).
    let r = unsafe { libc::renameat2(libc::AT_FDCWD, f.as_ptr(), libc::AT_FDCWD, t.as_ptr(), libc::RENAME_NOREPLACE) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => copy_no_replace(from, to),
        _ => Err(e),
    }
}

fn copy_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    if from.is_dir() {
        private_dir(to)?;
        let moved = (|| {
            for e in std::fs::read_dir(from)? {
                let e = e?;
                std::fs::rename(e.path(), to.join(e.file_name()))?;
            }
            File::open(to)?.sync_all()
        })();
        if let Err(err) = moved {
            // Put back what moved, so the next attempt starts from a whole archive.
            if let Ok(rd) = std::fs::read_dir(to) {
                for e in rd.flatten() {
                    let _ = std::fs::rename(e.path(), from.join(e.file_name()));
                }
            }
            let _ = std::fs::remove_dir(to);
            return Err(err);
        }
        return std::fs::remove_dir(from);
    }
    let mut out = private_file(to)?;
    let copied = (|| {
        std::io::copy(&mut File::open(from)?, &mut out)?;
        out.sync_all()
    })();
    if let Err(err) = copied {
        let _ = std::fs::remove_file(to);
        return Err(err);
    }
    std::fs::remove_file(from)
}

/// Moves the verified archive to `<dir>/<name>[.zip]`, or to `<name>-2…` if that is taken.
/// Returns the final path and, if it had to differ, the name that was taken. An existing
/// archive is never replaced, even by a concurrent backup of the same name.
fn publish(tmp: &Path, dir: &Path, name: &str, zip: bool) -> Result<(PathBuf, Option<String>), LifecycleError> {
    let ext = if zip { ".zip" } else { "" };
    for n in 1..10_000u32 {
        let candidate = if n == 1 { format!("{name}{ext}") } else { format!("{name}-{n}{ext}") };
        let dest = dir.join(&candidate);
        match move_no_replace(tmp, &dest) {
            Ok(()) => {
                File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LifecycleError::io(dir, e))?;
                let taken = (n > 1).then(|| format!("{name}{ext}"));
                if let Some(t) = &taken {
                    tracing::warn!(taken = %t, written = %candidate,
                        "archive name already taken (another rule or run wrote it); wrote under a new name");
                }
                return Ok((dest, taken));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                continue
            }
            Err(e) => return Err(LifecycleError::io(&dest, e)),
        }
    }
    Err(LifecycleError::Other(format!("{}: no free archive name", dir.join(name).display())))
}

/// The first free archive name in a remote store: `<name>.zip`, else `<name>-2.zip`, …; and the
/// name that was taken, if any. (The upload itself is create-only, so a name taken meanwhile
/// fails the backup rather than replacing anything.)
fn free_remote_name(
    handle: &tokio::runtime::Handle,
    store: &dyn MediaStore,
    name: &str,
) -> Result<(Key, Option<String>), LifecycleError> {
    for n in 1..10_000u32 {
        let candidate = if n == 1 { format!("{name}.zip") } else { format!("{name}-{n}.zip") };
        let key = Key::parse(&candidate)?;
        match handle.block_on(store.head(&key)) {
            Err(crate::storage::StorageError::NotFound { .. }) => {
                let taken = (n > 1).then(|| format!("{name}.zip"));
                if let Some(t) = &taken {
                    tracing::warn!(taken = %t, written = %candidate,
                        "archive name already taken (another rule or run wrote it); writing under a new name");
                }
                return Ok((key, taken));
            }
            Ok(_) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(LifecycleError::Other(format!("{}/{name}: no free archive name", store.describe())))
}

/// How often a running backup saves the manifest rows it has done (see [`run_backup`]).
const FLUSH: std::time::Duration = std::time::Duration::from_millis(50);

/// Runs a backup task that started at `started` over the planned rows of `(job, n)`.
/// Progress counts recordings (as each is done, skipped or failed) and media bytes (as they
/// are written); the manifest rows done reach the catalog at least every 50 ms (one small
/// transaction each). Cancelling stops at the next recording: nothing is published.
#[allow(clippy::too_many_arguments)]
pub async fn run_backup(
    ctx: &Context,
    task: &Task,
    started: DateTime<Utc>,
    job: &str,
    n: u32,
    cancel: &tokio_util::sync::CancellationToken,
    progress: Arc<dyn Progress>,
) -> Result<BackupOutcome, LifecycleError> {
    let (dest, name) = super::plan::destination(ctx, task, started)?;
    // A remote destination: its store, opened with the node's [s3]/[webdav] settings.
    let (dir, remote_store) = match dest {
        Location::File(dir) => (dir, None),
        remote => {
            let store = crate::storage::open_with(&remote, &ctx.config.storage())?;
            // Like remove_dead_parts for folders: uploads of backups that died a day ago or more.
            match store.clean_up_abandoned(std::time::Duration::from_secs(24 * 3600)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(location = %remote, n, "removed abandoned uploads of earlier backups"),
                Err(e) => tracing::warn!(location = %remote, error = %e, "could not look for abandoned uploads"),
            }
            // Folders that backups killed mid-way left under their final names.
            if let Err(e) = super::remote_dir::recover(ctx).await {
                tracing::warn!(location = %remote, error = %e, "could not clean up unfinished backup folders");
            }
            (PathBuf::new(), Some((store, remote)))
        }
    };
    let catalog = ctx.catalog.clone();
    let ctx2 = ctx.clone();
    let cc = ctx.config.contact_center_id.clone();
    let tenant = ctx.config.tenant.clone();
    let task = task.clone();
    let job = job.to_string();
    let cancel = cancel.clone();
    let handle = tokio::runtime::Handle::current();
    super::blocking(move || {
        if remote_store.is_none() {
            std::fs::create_dir_all(&dir).map_err(|e| LifecycleError::io(&dir, e))?;
            super::check::remove_dead_parts(&dir);
        }
        let ext = if task.zip { ".zip" } else { "" };
        let tmp = dir.join(format!(".{name}{ext}.{}.part", std::process::id()));
        let mut out = BackupOutcome::default();
        let mut writer: Option<Writer> = None;
        let screens = task.include_screen && task.filter.recording_type == crate::model::Kind::Voice;
        let result = (|| -> Result<(), LifecycleError> {
            let mut after = 0u64;
            let mut flushed = std::time::Instant::now();
            loop {
                if cancel.is_cancelled() {
                    return Err(LifecycleError::Cancelled);
                }
                let rows = catalog.manifest_page(&job, n, Some(RowState::Planned), after, super::plan::PAGE)?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                let mut updates = Vec::with_capacity(rows.len());
                for mut row in rows {
                    // The rows done so far reach the catalog every FLUSH, so any process
                    // following the job (its page, the events) sees the counts move.
                    if flushed.elapsed() >= FLUSH && !updates.is_empty() {
                        catalog.manifest_update(&job, n, &updates)?;
                        updates.clear();
                        flushed = std::time::Instant::now();
                    }
                    let Some(entry) = catalog.get(&row.id)? else {
                        row.state = RowState::Skipped;
                        row.note = Some("gone before the backup reached it".into());
                        updates.push(row);
                        progress.inc(1);
                        continue;
                    };
                    let mut items = vec![(entry, None::<String>)];
                    if screens {
                        for s in catalog.screens_of(&row.id)? {
                            if let Some(se) = catalog.get(&s.id)? {
                                items.push((se, Some(s.id)));
                            }
                        }
                    }
                    if let Err(reason) = check_present(&handle, &ctx2, &items, task.use_full_path) {
                        out.failed_total += 1;
                        if out.failed.len() < super::jobs::MAX_FAILED_KEPT {
                            out.failed.push(super::Failure { item: row.id.clone(), reason: reason.clone() });
                        }
                        row.state = RowState::Failed;
                        row.note = Some(reason);
                        updates.push(row);
                        progress.inc(1);
                        continue;
                    }
                    let w = match &mut writer {
                        Some(w) => w,
                        None => writer.insert(match &remote_store {
                            None => Writer::create(tmp.clone(), task.zip, started)?,
                            Some((store, loc)) if !task.zip => {
                                let (dir, taken) = super::remote_dir::RemoteDir::claim(
                                    &handle,
                                    catalog.clone(),
                                    store.clone(),
                                    loc,
                                    &name,
                                )?;
                                out.name_taken = taken;
                                Writer::create_remote_dir(dir, started)
                            }
                            Some((store, loc)) => {
                                let (key, taken) = free_remote_name(&handle, store.as_ref(), &name)?;
                                out.name_taken = taken;
                                let uri = format!("{}/{key}", loc.to_string().trim_end_matches('/'));
                                Writer::create_remote(
                                    Remote { handle: handle.clone(), store: store.clone(), key, uri },
                                    started,
                                )
                            }
                        }),
                    };
                    let call = &items[0].0.recording;
                    let call_dir = recording_dir(&cc, &tenant, call.start, &call.id)
                        .map_err(|e| LifecycleError::Other(format!("recording {}: {e}", call.id)))?;
                    row.version = items[0].0.version;
                    row.screens.clear();
                    for (e, screen_id) in &items {
                        let folder = match screen_id {
                            None => call_dir.clone(),
                            Some(s) => screen_dir(&call_dir, s)
                                .map_err(|e| LifecycleError::Other(format!("screen recording {s}: {e}")))?,
                        };
                        let (m, b) =
                            write_recording(&handle, &ctx2, w, &folder, e, task.use_full_path, progress.as_ref())?;
                        out.media += m;
                        out.bytes += b;
                        if let Some(s) = screen_id {
                            row.screens.push(Doom { id: s.clone(), version: e.version, parent: None });
                            out.screens += 1;
                        }
                    }
                    row.state = RowState::Written;
                    out.recordings += 1;
                    updates.push(row);
                    progress.inc(1);
                    failpoint::hit("backup.after_entry");
                }
                catalog.manifest_update(&job, n, &updates)?;
            }
            Ok(())
        })();
        let remote = remote_store.is_some();
        // A remote upload cleans up after itself when its writer is dropped unfinished.
        let cleanup = |tmp: &Path| {
            if !remote {
                let _ = if task.zip { std::fs::remove_file(tmp) } else { std::fs::remove_dir_all(tmp) };
            }
        };
        if let Err(e) = result {
            cleanup(&tmp);
            if let Some(w) = writer {
                w.abandon();
            }
            return Err(e);
        }
        let Some(w) = writer else {
            return Ok(out);
        };
        let tmp = match w.finish() {
            Ok(t) => t,
            Err(e) => {
                cleanup(&tmp);
                return Err(e);
            }
        };
        if remote {
            // Streamed, published create-only and verified by `finish`: `tmp` is its URI.
            failpoint::hit("backup.after_rename");
            catalog.manifest_promote(
                &job,
                n,
                RowState::Written,
                RowState::Archived,
                Some(&tmp.display().to_string()),
            )?;
            out.archive = Some(tmp);
            return Ok(out);
        }
        if cancel.is_cancelled() {
            cleanup(&tmp);
            return Err(LifecycleError::Cancelled);
        }
        failpoint::hit("backup.before_rename");
        let (dest, taken) = match publish(&tmp, &dir, &name, task.zip) {
            Ok(x) => x,
            Err(e) => {
                cleanup(&tmp);
                return Err(e);
            }
        };
        failpoint::hit("backup.after_rename");
        catalog.manifest_promote(&job, n, RowState::Written, RowState::Archived, Some(&dest.display().to_string()))?;
        out.archive = Some(dest);
        out.name_taken = taken;
        Ok(out)
    })
    .await
}

/// Plans `task` into a throwaway manifest and backs it up: one call for tools, tests and
/// benches that want a backup without a job record.
pub async fn plan_and_backup(
    ctx: &Context,
    task: &Task,
    started: DateTime<Utc>,
    progress: Arc<dyn Progress>,
) -> Result<BackupOutcome, LifecycleError> {
    let job = super::jobs::new_id(started);
    let noop = Arc::new(crate::progress::NoProgress);
    super::plan::plan_task(ctx, 1, task, started, None, 0, noop, Some(&job)).await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    let r = run_backup(ctx, task, started, &job, 1, &cancel, progress).await;
    let catalog = ctx.catalog.clone();
    super::blocking(move || Ok(catalog.manifest_drop(&job)?)).await?;
    r
}

/// Every media file is in the store, and no two of a recording's files share an archive name
/// (a duplicate mediaId fails that recording only, not the archive).
fn check_present(
    handle: &tokio::runtime::Handle,
    ctx: &Context,
    items: &[(Entry, Option<String>)],
    use_full_path: bool,
) -> Result<(), String> {
    for (e, _) in items {
        let mut names = std::collections::HashSet::new();
        let placed = in_place::placed(ctx, &e.recording.id).map_err(|err| err.to_string())?;
        for m in &e.recording.media {
            let name = media_name(m, use_full_path).map_err(|err| format!("recording {}: {err}", e.recording.id))?;
            if !names.insert(name.clone()) {
                return Err(format!("recording {}: two media files would both be named {name}", e.recording.id));
            }
            let (store, key) =
                in_place::locate_in(ctx, &placed, &e.recording.id, &m.media_id).map_err(|err| err.to_string())?;
            handle
                .block_on(store.head(&key))
                .map_err(|err| format!("recording {}: media {}: {err}", e.recording.id, m.media_id))?;
        }
    }
    Ok(())
}

/// Writes one recording folder; returns (media files, media bytes).
fn write_recording(
    handle: &tokio::runtime::Handle,
    ctx: &Context,
    w: &mut Writer,
    folder: &str,
    e: &Entry,
    use_full_path: bool,
    progress: &dyn Progress,
) -> Result<(u64, u64), LifecycleError> {
    let rec = &e.recording;
    let doc = crate::catalog::hold::with_archive_field(rec.doc(), &e.hold_state());
    let doc = doc.as_bytes();
    w.add(&format!("{folder}/{META_FILE}"), doc.len() as u64, &mut |out| {
        out.write_all(doc).map_err(|err| LifecycleError::Other(format!("recording {}: {err}", rec.id)))
    })?;
    let (mut files, mut bytes) = (0, 0);
    let placed = in_place::placed(ctx, &rec.id)?;
    for m in &rec.media {
        let name = media_name(m, use_full_path)
            .map_err(|err| LifecycleError::Other(format!("recording {}: media {}: {err}", rec.id, m.media_id)))?;
        let (media, key) = in_place::locate_in(ctx, &placed, &rec.id, &m.media_id)?;
        let size = handle.block_on(media.head(&key))?.size;
        let local = media.local_path(&key);
        w.add(&format!("{folder}/{name}"), size, &mut |out| {
            // Plain files are read directly, in large blocks; other stores are streamed.
            if let Some(p) = &local {
                let mut f = File::open(p).map_err(|err| LifecycleError::io(p, err))?;
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = f.read(&mut buf).map_err(|err| LifecycleError::io(p, err))?;
                    if k == 0 {
                        return Ok(());
                    }
                    out.write_all(&buf[..k]).map_err(|err| LifecycleError::Other(format!("archive write: {err}")))?;
                    progress.bytes(k as u64);
                }
            }
            let mut s = handle.block_on(media.get(&key))?;
            while let Some(chunk) = handle.block_on(s.try_next())? {
                out.write_all(&chunk).map_err(|err| LifecycleError::Other(format!("archive write: {err}")))?;
                progress.bytes(chunk.len() as u64);
            }
            Ok(())
        })?;
        files += 1;
        bytes += size;
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod publish_tests {
    use super::*;

    #[test]
    fn the_fallback_never_replaces_and_leaves_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join(".a.part"), d.path().join("a.zip"));
        std::fs::write(&a, b"new").unwrap();
        std::fs::write(&b, b"old").unwrap();
        assert_eq!(copy_no_replace(&a, &b).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"old");
        let c = d.path().join("c.zip");
        copy_no_replace(&a, &c).unwrap();
        assert_eq!(std::fs::read(&c).unwrap(), b"new");
        assert!(!a.exists());
        // Folders: created exclusively, entries moved, the temporary folder gone.
        let (src, dst) = (d.path().join(".f.part"), d.path().join("f"));
        std::fs::create_dir_all(src.join("x")).unwrap();
        std::fs::write(src.join("x/m.mp3"), b"m").unwrap();
        copy_no_replace(&src, &dst).unwrap();
        assert_eq!(std::fs::read(dst.join("x/m.mp3")).unwrap(), b"m");
        assert!(!src.exists());
        // renameat2 refuses to replace a folder or a file.
        std::fs::create_dir_all(src.join("y")).unwrap();
        assert!(move_no_replace(&src, &dst).is_err());
        assert!(dst.join("x/m.mp3").exists() && src.join("y").exists());
    }
}
