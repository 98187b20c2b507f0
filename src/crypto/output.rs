//! Output files: created 0600 as a temporary file beside the final name, synced, then renamed,
//! so a reader never sees half a file and a failed run leaves nothing behind.

use super::CryptoError;
use std::io::{BufWriter, Write};
use std::path::Path;
use tempfile::NamedTempFile;

const BUF: usize = 256 << 10;

/// Syncs a directory so that the renames into it survive a crash (once per batch).
pub fn sync_dir(dir: &Path) -> Result<(), CryptoError> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(CryptoError::io(dir))
}

pub(crate) struct Output {
    w: BufWriter<NamedTempFile>,
}

impl Output {
    /// Refuses `output` when it is the `input` file itself (also through links).
    pub fn create(input: Option<&Path>, output: &Path) -> Result<Output, CryptoError> {
        if let Some(input) = input {
            if same_file(input, output) {
                return Err(CryptoError::SourceOverwrite { file: input.to_path_buf() });
            }
        }
        let parent = match output.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".reclife-")
            .suffix(".tmp")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .tempfile_in(parent)
            .map_err(CryptoError::io(output))?;
        Ok(Output { w: BufWriter::with_capacity(BUF, tmp) })
    }

    pub fn write(&mut self, b: &[u8], output: &Path) -> Result<(), CryptoError> {
        self.w.write_all(b).map_err(CryptoError::io(output))
    }

    /// Flushes, syncs (when `durable`: a scratch copy skips it) and renames into place.
    pub fn commit(self, output: &Path, durable: bool) -> Result<(), CryptoError> {
        let tmp = self.w.into_inner().map_err(|e| CryptoError::Io { file: output.into(), source: e.into_error() })?;
        if durable {
            tmp.as_file().sync_data().map_err(CryptoError::io(output))?;
        }
        tmp.persist(output).map_err(|e| CryptoError::Io { file: output.into(), source: e.error })?;
        // The data is synced before the rename, so a crash never leaves a short file under the
        // final name. The directory is not synced per file (it costs as much again on ext4): a
        // crash may lose the rename, and a rerun redoes that file. Batches sync it once.
        Ok(())
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
