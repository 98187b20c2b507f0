//! `reclife restore ARCHIVE…`: re-ingest backups (zip or folder) into the catalog and the media
//! store, which GIR cannot do once it has purged.

use super::Cli;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  reclife restore /var/backups/Environment-voice-0-365-20250625030000.zip\n  reclife restore s3://backups/recordings/Environment-voice-0-365-20250625030000.zip"
)]
pub struct Args {
    /// Backup archives: GIR MLM zips or unzipped backup folders, local or as s3://bucket/…/NAME[.zip]
    /// or webdav(s)://host/…/NAME[.zip] (fetched first, with the node's [s3]/[webdav] settings).
    #[arg(required = true)]
    pub archives: Vec<PathBuf>,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    // Remote archives are fetched first into an owner-only temporary folder of the data dir.
    let mut fetched: Option<tempfile::TempDir> = None;
    let mut archives = Vec::with_capacity(a.archives.len());
    for p in &a.archives {
        let s = p.to_string_lossy();
        if ["s3://", "webdav://", "webdavs://"].iter().any(|x| s.starts_with(x)) {
            let ctx = cli.context_create()?;
            let dir = match &fetched {
                Some(d) => d.path().to_path_buf(),
                None => fetched
                    .insert(tempfile::Builder::new().prefix(".restore-").tempdir_in(&ctx.data_dir)?)
                    .path()
                    .to_path_buf(),
            };
            archives.push(fetch(&ctx, &s, &dir).await?);
        } else {
            anyhow::ensure!(p.exists(), "{}: no such archive", p.display());
            archives.push(p.clone());
        }
    }
    let (code, report) =
        super::ingest::ingest_with_report(cli, &archives, "restore", ["restored", "updated", "already present"])
            .await?;
    drop(fetched);
    // Restored recordings that an enabled purge rule selects would be purged again at its
    // next fire: say so, so that the operator can hold them.
    let ctx = cli.context_create()?;
    let ids: std::collections::HashSet<String> = report.ids.into_iter().collect();
    for (rule, n) in reclife::lifecycle::plan::purge_rules_matching(&ctx, &ids).await? {
        eprintln!(
            "warning: {n} restored recording(s) match the purge of the enabled rule [{rule}] and will be purged again at its next run unless held (reclife recordings hold ID --reason …)"
        );
    }
    Ok(code)
}

/// Copies a remote archive (a zip, or a backup folder) into `dir` (0600 files, 0700 folders)
/// and returns the local path.
async fn fetch(ctx: &reclife::config::Context, uri: &str, dir: &std::path::Path) -> Result<PathBuf> {
    use reclife::storage::{self, Location, MediaStoreExt, StorageError};
    let loc = Location::parse(uri)?;
    let (folder, key) =
        storage::split_object(&loc).ok_or_else(|| anyhow::anyhow!("{uri}: not the location of an archive"))?;
    let store = storage::open_with(&folder, &ctx.config.storage())?;
    let local = dir.join(key.as_str());
    match store.head(&key).await {
        Ok(_) => {
            store.get_to_file(&key, &local).await?;
            return Ok(local);
        }
        Err(StorageError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    // Not an object: a folder backup, one object per file.
    let files = store.list(Some(&key)).await?;
    anyhow::ensure!(!files.is_empty(), "{uri}: no such archive or backup folder");
    let claim = reclife::lifecycle::remote_dir::CLAIM;
    anyhow::ensure!(
        !files.iter().any(|f| f.key.segments().nth(1) == Some(claim)),
        "{uri}: a backup folder still being written (or left unfinished by a backup that died): not restored"
    );
    for f in files {
        let rel = &f.key.as_str()[key.as_str().len() + 1..];
        let path = local.join(rel);
        if let Some(p) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(p)?;
        }
        store.get_to_file(&f.key, &path).await?;
    }
    Ok(local)
}
