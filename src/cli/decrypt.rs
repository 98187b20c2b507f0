//! `reclife decrypt [--key-dir DIR] IN… --out DIR`

use super::Cli;
use anyhow::{Context as _, Result};
use rayon::prelude::*;
use reclife::crypto::{password_from_config, KeyStore};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  reclife decrypt --key-dir /etc/reclife/keys rec1.mp3 rec2.mp3 --out /tmp/plain
  reclife decrypt media.bin --pkcs7 envelope.pem --cert-alias recording-cert --out /tmp/plain

Keys: PEM files in the key folder (BEGIN RSA PRIVATE KEY, BEGIN PRIVATE KEY, BEGIN ENCRYPTED
PRIVATE KEY with the password from RECLIFE_KEY_PASSWORD or config key_password_file), each
beside its certificate. Output files are written 0600; a source file is never overwritten.")]
pub struct Args {
    /// Folder of PEM private keys and certificates (default: config keys_dir).
    #[arg(long)]
    pub key_dir: Option<PathBuf>,
    /// Encrypted files: attached CMS envelopes (DER or BER), or with --pkcs7 raw ciphertext.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; each file keeps its name.
    #[arg(long)]
    pub out: PathBuf,
    /// File holding a detached envelope (a metadata `pkcs7` value, PEM or base64) for the inputs.
    #[arg(long)]
    pub pkcs7: Option<PathBuf>,
    /// certAlias from the metadata: keys whose file is named so are tried first (repeatable).
    #[arg(long)]
    pub cert_alias: Vec<String>,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let cfg = cli.load_config()?;
    let store = match &a.key_dir {
        Some(dir) => KeyStore::load(dir, password_from_config(&cfg)?.as_deref())?,
        None => KeyStore::from_config(&cfg)?,
    };
    let pkcs7 = match &a.pkcs7 {
        Some(p) => Some(std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let jobs = super::file_batch::plan_outputs(&a.inputs, &a.out);
    let (cert_alias, out_dir) = (a.cert_alias.clone(), a.out.clone());
    let failed = tokio::task::spawn_blocking(move || {
        jobs.par_iter()
            .filter_map(|(input, output)| {
                // One file's panic (a bug) fails that file only; the batch goes on.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match output {
                    Ok(output) => store.decrypt_file(input, output, pkcs7.as_deref(), &cert_alias).map_err(Into::into),
                    Err(e) => Err(anyhow::anyhow!("{e}")),
                }))
                .unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("internal error while decrypting this file (a bug; please report it)"))
                });
                res.err().map(|e: anyhow::Error| (input.clone(), e))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    reclife::crypto::sync_dir(&a.out)?;
    super::file_batch::report("decrypted", a.inputs.len(), &failed, &out_dir)
}
