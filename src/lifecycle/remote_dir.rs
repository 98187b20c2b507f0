//! Folder backups (`zip = false`) to S3 and WebDAV: the same files, names and layout as a
//! folder backup on disk, one object per file.
//!
//! A store has no atomic rename of a folder, so a folder is published the other way round: its
//! name is claimed first, and nothing under it counts until the backup is verified.
//! 1. A free name: `<name>`, `<name>-2`, … with no object beneath it.
//! 2. The claim: a note in the catalog (namespace [`NAMESPACE`], naming this process), then the
//!    object `<name>/.reclife.writing` written create-only ([`MediaStore::put_new`]): of two
//!    backups racing for one name exactly one gets it. The winner lists the name again: anything
//!    there besides its claim (a backup that finished meanwhile) makes it let go and take the
//!    next name. Only then does the note say the folder is ours (`owned`).
//! 3. Every file is uploaded create-only, streamed, and its stored size compared with the bytes
//!    sent.
//! 4. Verification: the listing under the name holds exactly the files written, with their
//!    sizes, and the claim. Then the claim is removed (the folder is published) and the note
//!    dropped. A backup that fails or is cancelled removes what it uploaded.
//!
//! A backup killed mid-way leaves its note and its claim: [`recover`] (run before every remote
//! backup and by `reclife check --repair`) removes the folder of every note whose process is
//! gone, if the claim there is still that note's, so no partial folder stays under a final
//! name. A note without `owned` only ever removes its own claim, never a folder it did not
//! check was empty.

use super::{LifecycleError, Task};
use crate::catalog::Catalog;
use crate::config::Context;
use crate::storage::{Key, Location, MediaStore, MediaStoreExt, StorageError, UploadWriter};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;

/// Catalog state namespace of remote folders being written.
pub const NAMESPACE: &str = crate::catalog::namespaces::REMOTE_FOLDERS;

/// The claim object inside a folder being written (`.reclife-` names are reserved by the
/// WebDAV store, `.reclife.` ones are not).
pub const CLAIM: &str = ".reclife.writing";

/// A note: a remote folder this process is writing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Note {
    /// The backup location (`s3://bucket/prefix`).
    pub location: String,
    /// The folder's name under it.
    pub folder: String,
    /// The lease-holder name of the writing process (`host:pid:random`).
    pub holder: String,
    /// The claim object's contents: unique to this backup.
    pub token: String,
    /// True once the folder was found empty after the claim: from then on, all in it is ours.
    #[serde(default)]
    pub owned: bool,
    pub at: DateTime<Utc>,
}

/// A folder being written.
pub(super) struct RemoteDir {
    handle: tokio::runtime::Handle,
    catalog: Arc<dyn Catalog>,
    store: Arc<dyn MediaStore>,
    prefix: Key,
    /// `<location>/<folder>`: what the outcome and the manifest record.
    pub uri: String,
    note: Note,
    uploaded: Vec<Key>,
}

fn err(uri: &str, e: StorageError) -> LifecycleError {
    match e {
        StorageError::AlreadyExists { .. } => LifecycleError::Other(format!(
            "{uri}: another backup wrote into this folder while this one was being written; nothing was replaced, run the backup again"
        )),
        e => LifecycleError::Other(format!("{uri}: {e}")),
    }
}

impl RemoteDir {
    /// Claims the first free folder name for `name`; returns the folder and, when `name` was
    /// taken, that name.
    pub fn claim(
        handle: &tokio::runtime::Handle,
        catalog: Arc<dyn Catalog>,
        store: Arc<dyn MediaStore>,
        location: &Location,
        name: &str,
    ) -> Result<(RemoteDir, Option<String>), LifecycleError> {
        let loc = location.to_string().trim_end_matches('/').to_string();
        for n in 1..10_000u32 {
            let folder = if n == 1 { name.to_string() } else { format!("{name}-{n}") };
            let prefix = Key::parse(&folder)?;
            let uri = format!("{loc}/{folder}");
            if !handle.block_on(store.list(Some(&prefix))).map_err(|e| err(&uri, e))?.is_empty() {
                continue;
            }
            let holder = super::lease::holder();
            let token = format!("{holder} {uri} {}", Utc::now().timestamp_nanos_opt().unwrap_or_default());
            let mut note =
                Note { location: loc.clone(), folder: folder.clone(), holder, token, owned: false, at: Utc::now() };
            let key = note_key(&note);
            put_note(catalog.as_ref(), &key, &note)?;
            let claim = prefix.join(&Key::parse(CLAIM)?);
            let body = bytes::Bytes::from(note.token.clone().into_bytes());
            match handle.block_on(store.put_new(&claim, Box::pin(futures::stream::once(async move { Ok(body) })))) {
                Ok(_) => {}
                Err(StorageError::AlreadyExists { .. }) => {
                    catalog.state_delete(NAMESPACE, &key)?;
                    continue;
                }
                Err(e) => {
                    catalog.state_delete(NAMESPACE, &key)?;
                    return Err(err(&uri, e));
                }
            }
            let others = handle
                .block_on(store.list(Some(&prefix)))
                .map_err(|e| err(&uri, e))?
                .into_iter()
                .any(|o| o.key != claim);
            if others {
                // A backup finished under this name between the listing and the claim.
                let _ = handle.block_on(store.delete(&claim));
                catalog.state_delete(NAMESPACE, &key)?;
                continue;
            }
            note.owned = true;
            put_note(catalog.as_ref(), &key, &note)?;
            let taken = (n > 1).then(|| name.to_string());
            if let Some(t) = &taken {
                tracing::warn!(taken = %t, written = %folder,
                    "backup folder name already taken (another rule or run wrote it); writing under a new name");
            }
            let dir = RemoteDir { handle: handle.clone(), catalog, store, prefix, uri, note, uploaded: Vec::new() };
            return Ok((dir, taken));
        }
        Err(LifecycleError::Other(format!("{loc}/{name}: no free folder name")))
    }

    /// Uploads one file, create-only; `fill` writes its bytes. Returns (CRC-32, size).
    pub fn add(
        &mut self,
        name: &str,
        fill: &mut dyn FnMut(&mut dyn Write) -> Result<(), LifecycleError>,
    ) -> Result<(u32, u64), LifecycleError> {
        // An object key has no empty segment: GIR's `http://host/x` is stored as `http:/host/x`,
        // the path a folder on disk gives it too.
        let key = self.prefix.join(&Key::parse(&name.replace("//", "/"))?);
        let mut up = UploadWriter::start(&self.handle, self.store.clone(), key.clone(), true);
        let mut w = super::backup::CrcWrite { inner: &mut up, crc: crc32fast::Hasher::new(), n: 0 };
        fill(&mut w)?;
        let (crc, n) = (w.crc.finalize(), w.n);
        let uri = format!("{}/{name}", self.uri);
        let stored = up.finish().map_err(|e| err(&uri, e))?;
        self.uploaded.push(key);
        if stored.size != n {
            return Err(LifecycleError::Verify {
                path: uri.into(),
                why: format!("{} bytes stored, {n} sent", stored.size),
            });
        }
        Ok((crc, n))
    }

    /// Verifies the folder (exactly the files written, with their sizes, beside the claim) and
    /// publishes it by removing the claim. On failure the folder is removed.
    pub fn finish(self, written: &[(String, u64)]) -> Result<String, LifecycleError> {
        let listed = self.handle.block_on(self.store.list(Some(&self.prefix))).map_err(|e| err(&self.uri, e));
        let check = listed.and_then(|listed| {
            let claim = self.prefix.join(&Key::parse(CLAIM)?);
            let mut got: Vec<(String, u64)> = listed
                .into_iter()
                .filter(|o| o.key != claim)
                .map(|o| (o.key.as_str()[self.prefix.as_str().len() + 1..].to_string(), o.size))
                .collect();
            got.sort();
            let mut want = written.to_vec();
            want.sort();
            if got != want {
                let missing = want.iter().find(|w| !got.contains(w)).map(|w| w.0.clone());
                let extra = got.iter().find(|g| !want.contains(g)).map(|g| g.0.clone());
                return Err(LifecycleError::Verify {
                    path: self.uri.clone().into(),
                    why: format!(
                        "{} files listed, {} written (first missing or of another size: {}; first unexpected: {})",
                        got.len(),
                        want.len(),
                        missing.as_deref().unwrap_or("none"),
                        extra.as_deref().unwrap_or("none")
                    ),
                });
            }
            Ok(claim)
        });
        match check {
            Ok(claim) => {
                super::failpoint::hit("backup.before_rename");
                self.handle.block_on(self.store.delete(&claim)).map_err(|e| err(&self.uri, e))?;
                self.catalog.state_delete(NAMESPACE, &note_key(&self.note))?;
                Ok(self.uri)
            }
            Err(e) => {
                self.abandon();
                Err(e)
            }
        }
    }

    /// Removes what this backup uploaded, its claim and its note.
    pub fn abandon(self) {
        let mut left = false;
        for k in self.uploaded.iter().chain(std::iter::once(&self.prefix.join(&claim_key()))) {
            match self.handle.block_on(self.store.delete(k)) {
                Ok(()) | Err(StorageError::NotFound { .. }) => {}
                Err(e) => {
                    tracing::error!(folder = %self.uri, key = %k, error = %e, "could not remove a file of an unfinished backup folder");
                    left = true;
                }
            }
        }
        // With something left, the note stays: recovery removes the rest once this process is gone.
        if !left {
            if let Err(e) = self.catalog.state_delete(NAMESPACE, &note_key(&self.note)) {
                tracing::warn!(folder = %self.uri, error = %e, "could not drop the note of an unfinished backup folder");
            }
        }
    }
}

fn claim_key() -> Key {
    Key::parse(CLAIM).expect("a valid name")
}

fn note_key(n: &Note) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(n.token.as_bytes())[..12])
}

fn put_note(c: &dyn Catalog, key: &str, n: &Note) -> Result<(), LifecycleError> {
    let text = serde_json::to_string(n).map_err(|e| LifecycleError::Other(e.to_string()))?;
    Ok(c.state_put(NAMESPACE, key, &text)?)
}

/// Notes of folders whose writer is gone (a dead process of this host, or a note older than a
/// week from another host).
pub async fn abandoned(ctx: &Context) -> Result<Vec<(String, Note)>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let notes = super::blocking(move || Ok(catalog.state_list(NAMESPACE)?)).await?;
    let now = Utc::now();
    Ok(notes
        .into_iter()
        .filter_map(|(k, text)| serde_json::from_str::<Note>(&text).ok().map(|n| (k, n)))
        .filter(|(_, n)| super::lease::holder_dead(&n.holder) || now - n.at > chrono::Duration::days(7))
        .collect())
}

/// Removes the partial folders of backups whose process is gone. Returns how many notes it
/// closed; a store it cannot reach keeps its notes for the next time.
pub async fn recover(ctx: &Context) -> Result<usize, LifecycleError> {
    let mut closed = 0;
    for (key, note) in abandoned(ctx).await? {
        match recover_one(ctx, &note).await {
            Ok(()) => {
                let catalog = ctx.catalog.clone();
                super::blocking(move || Ok(catalog.state_delete(NAMESPACE, &key)?)).await?;
                closed += 1;
            }
            Err(e) => tracing::warn!(folder = %format!("{}/{}", note.location, note.folder), error = %e,
                "cannot clean up a backup folder left unfinished; will retry"),
        }
    }
    Ok(closed)
}

async fn recover_one(ctx: &Context, note: &Note) -> Result<(), LifecycleError> {
    let location = Location::parse(&note.location)?;
    let store = crate::storage::open_with(&location, &ctx.config.storage())?;
    let prefix = Key::parse(&note.folder)?;
    let claim = prefix.join(&claim_key());
    let ours = match store.get_bytes(&claim).await {
        Ok(b) => b == note.token.as_bytes(),
        Err(StorageError::NotFound { .. }) => false,
        Err(e) => return Err(e.into()),
    };
    // No claim of ours: the folder was published (or never claimed); nothing to remove.
    if !ours {
        return Ok(());
    }
    if note.owned {
        let uri = format!("{}/{}", note.location, note.folder);
        let mut n = 0;
        for o in store.list(Some(&prefix)).await? {
            if o.key != claim {
                store.delete(&o.key).await.or_else(|e| {
                    if matches!(e, StorageError::NotFound { .. }) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
                n += 1;
            }
        }
        tracing::warn!(folder = %uri, files = n, "removed a backup folder its writer left unfinished");
    }
    match store.delete(&claim).await {
        Ok(()) | Err(StorageError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// True for a task whose backup goes to a remote folder.
pub fn is_remote_folder(task: &Task, dest: &Location) -> bool {
    !task.zip && !matches!(dest, Location::File(_))
}
