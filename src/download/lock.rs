//! One downloader per target folder: an exclusive `flock(2)` on `<targetDir>/.reclife-download.lock`,
//! taken without waiting. The kernel drops it when the process ends, however it ends (kill -9
//! included), so a stale lock never blocks the next run. The holder writes its pid into the
//! file, for the message the second instance prints.

use super::DownloadError;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub const LOCK_FILE: &str = ".reclife-download.lock";

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct TargetLock {
    _file: std::fs::File,
}

impl TargetLock {
    /// Takes the lock, or fails at once with [`DownloadError::Locked`].
    pub fn acquire(dir: &Path) -> Result<TargetLock, DownloadError> {
        let path = dir.join(LOCK_FILE);
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| DownloadError::io(&path, e))?;
        // SAFETY: flock on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut holder = String::new();
                let _ = f.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(DownloadError::Locked {
                    dir: dir.to_path_buf(),
                    holder: if holder.is_empty() { "another process".into() } else { format!("process {holder}") },
                });
            }
            return Err(DownloadError::io(&path, err));
        }
        let io = |e| DownloadError::io(&path, e);
        f.set_len(0).map_err(io)?;
        f.rewind().map_err(io)?;
        write!(f, "{}", std::process::id()).map_err(io)?;
        Ok(TargetLock { _file: f })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let first = TargetLock::acquire(d.path()).unwrap();
        match TargetLock::acquire(d.path()) {
            Err(DownloadError::Locked { holder, .. }) => assert!(holder.contains(&std::process::id().to_string())),
            other => panic!("{other:?}"),
        }
        drop(first);
        TargetLock::acquire(d.path()).unwrap();
    }
}
