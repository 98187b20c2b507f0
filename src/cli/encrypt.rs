//! `reclife encrypt --cert CERT… IN… --out DIR [--cipher aes-256-cbc]`

use super::Cli;
use anyhow::{anyhow, Context as _, Result};
use chrono::Utc;
use rayon::prelude::*;
use reclife::crypto::{check_chain, load_recipients, seal_file, Cipher};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  reclife encrypt --cert gir-2025.pem --cert gir-2026.pem call.mp3 --out /tmp/sealed
  openssl cms -decrypt -inform DER -binary -inkey key.pem -in /tmp/sealed/call.mp3 -out call.mp3

Each certificate must be valid now (--now fixes \"now\"), and chain to config ca_bundle when set.")]
pub struct Args {
    /// Recipient certificate (PEM or DER); repeat for several. Each recipient can open the result.
    #[arg(long = "cert", required = true)]
    pub certs: Vec<PathBuf>,
    /// Files to seal.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; each file keeps its name.
    #[arg(long)]
    pub out: PathBuf,
    /// Content cipher: aes-128-cbc, aes-192-cbc or aes-256-cbc.
    #[arg(long, default_value = "aes-256-cbc")]
    pub cipher: Cipher,
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let cfg = cli.load_config()?;
    let now = cli.now.unwrap_or_else(Utc::now);
    let recipients = load_recipients(&a.certs)?;
    for r in &recipients {
        r.check_valid(now)?;
    }
    if let Some(bundle) = &cfg.ca_bundle {
        check_chain(&recipients, bundle, now)?;
    }
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let jobs = super::file_batch::plan_outputs(&a.inputs, &a.out);
    let cipher = a.cipher;
    let failed = tokio::task::spawn_blocking(move || {
        jobs.par_iter()
            .filter_map(|(input, output)| {
                // One file's panic (a bug) fails that file only; the batch goes on.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match output {
                    Ok(output) => seal_file(input, output, &recipients, cipher, now).map_err(Into::into),
                    Err(e) => Err(anyhow!("{e}")),
                }))
                .unwrap_or_else(|_| Err(anyhow!("internal error while sealing this file (a bug; please report it)")));
                res.err().map(|e: anyhow::Error| (input.clone(), e))
            })
            .collect::<Vec<_>>()
    })
    .await?;
    reclife::crypto::sync_dir(&a.out)?;
    super::file_batch::report("encrypted", a.inputs.len(), &failed, &a.out)
}
