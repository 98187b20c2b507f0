//! Blocking adapters for code that runs off the async runtime (the backup's zip writer):
//! [`UploadWriter`], a `Write` that streams into a store's `put`/`put_new` through a small
//! bounded channel (a few MiB in flight, whatever the object's size), and [`RangeReader`], a
//! `Read + Seek` over a stored object made of ranged reads.

use super::{ByteStream, Key, MediaStore, ObjectMeta, StorageError};
use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

const CHUNK: usize = 1 << 20;

/// A blocking writer whose bytes become one object. [`UploadWriter::finish`] completes it;
/// dropping it unfinished (an error, a cancel) fails the upload, so nothing is stored under
/// the key. Use only from blocking threads (it waits on the runtime).
pub struct UploadWriter {
    tx: Option<mpsc::Sender<Result<Bytes, StorageError>>>,
    buf: BytesMut,
    handle: Handle,
    task: Option<tokio::task::JoinHandle<Result<ObjectMeta, StorageError>>>,
    written: u64,
}

impl UploadWriter {
    /// Starts the upload of `key` (create-only with `create_only`).
    pub fn start(handle: &Handle, store: Arc<dyn MediaStore>, key: Key, create_only: bool) -> UploadWriter {
        let (tx, rx) = mpsc::channel::<Result<Bytes, StorageError>>(4);
        let body: ByteStream =
            Box::pin(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }));
        let task = handle.spawn(async move {
            if create_only {
                store.put_new(&key, body).await
            } else {
                store.put(&key, body).await
            }
        });
        UploadWriter {
            tx: Some(tx),
            buf: BytesMut::with_capacity(CHUNK),
            handle: handle.clone(),
            task: Some(task),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    fn send(&mut self, item: Result<Bytes, StorageError>) -> std::io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(|| std::io::Error::other("upload already ended"))?;
        // A closed channel means the upload failed; `finish` reports why.
        tx.blocking_send(item).map_err(|_| std::io::Error::other("the upload stopped (its error follows)"))
    }

    /// Sends the rest and waits for the store to complete the object.
    pub fn finish(mut self) -> Result<ObjectMeta, StorageError> {
        let rest = self.buf.split().freeze();
        let sent = if rest.is_empty() { Ok(()) } else { self.send(Ok(rest)) };
        self.tx = None;
        let result = self.wait();
        match (result, sent) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(StorageError::Backend {
                store: String::new(),
                op: "upload",
                key: String::new(),
                message: e.to_string(),
            }),
            (Ok(m), Ok(())) => Ok(m),
        }
    }

    fn wait(&mut self) -> Result<ObjectMeta, StorageError> {
        let task = self.task.take().expect("waited once");
        self.handle.block_on(task).unwrap_or_else(|e| {
            Err(StorageError::Backend {
                store: String::new(),
                op: "upload",
                key: String::new(),
                message: e.to_string(),
            })
        })
    }
}

impl Write for UploadWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        self.written += data.len() as u64;
        if self.buf.len() >= CHUNK {
            let chunk = self.buf.split().freeze();
            self.send(Ok(chunk))?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for UploadWriter {
    fn drop(&mut self) {
        if self.task.is_none() {
            return;
        }
        // Unfinished: fail the body so the store abandons the object, and wait for its cleanup
        // (an aborted multipart upload, a removed temporary).
        if let Some(tx) = self.tx.take() {
            let _ = tx.blocking_send(Err(StorageError::Backend {
                store: String::new(),
                op: "upload",
                key: String::new(),
                message: "the writer gave up".into(),
            }));
        }
        let _ = self.wait();
    }
}

/// `Read + Seek` over a stored object, by ranged reads of `window` bytes (or more when a read
/// asks for more). Use only from blocking threads.
pub struct RangeReader {
    store: Arc<dyn MediaStore>,
    key: Key,
    handle: Handle,
    size: u64,
    pos: u64,
    window: u64,
    buf: Vec<u8>,
    buf_at: u64,
    /// Ranged reads made, for reports and tests.
    pub requests: u64,
}

impl RangeReader {
    pub fn open(
        handle: &Handle,
        store: Arc<dyn MediaStore>,
        key: Key,
        window: u64,
    ) -> Result<RangeReader, StorageError> {
        let size = handle.block_on(store.head(&key))?.size;
        Ok(RangeReader {
            store,
            key,
            handle: handle.clone(),
            size,
            pos: 0,
            window: window.max(4096),
            buf: Vec::new(),
            buf_at: 0,
            requests: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        let in_buf = self.pos >= self.buf_at && self.pos < self.buf_at + self.buf.len() as u64;
        if !in_buf {
            let end = (self.pos + self.window.max(out.len() as u64)).min(self.size);
            let (store, key, start) = (self.store.clone(), self.key.clone(), self.pos);
            let data = self.handle.block_on(async move {
                let mut s = store.get_range(&key, start..end).await?;
                let mut v = Vec::with_capacity((end - start) as usize);
                while let Some(c) = s.try_next().await? {
                    v.extend_from_slice(&c);
                }
                Ok::<_, StorageError>(v)
            });
            self.requests += 1;
            self.buf = data.map_err(std::io::Error::other)?;
            self.buf_at = start;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let off = (self.pos - self.buf_at) as usize;
        let n = out.len().min(self.buf.len() - off);
        out[..n].copy_from_slice(&self.buf[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for RangeReader {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let p = match pos {
            SeekFrom::Start(p) => p as i128,
            SeekFrom::End(d) => self.size as i128 + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if p < 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start"));
        }
        self.pos = p as u64;
        Ok(self.pos)
    }
}
