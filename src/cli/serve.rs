//! `reclife serve`: the HTTP API alone (RWS-compatible recordings, jobs and rules, /metrics) and
//! the operators' pages at `/`, until SIGTERM or Ctrl-C; requests in flight are finished first.
//! At start it applies the rules folder to the catalog's shared rules (as `reclife run` does);
//! its API reads the catalog's rules at every request.

use super::Cli;
use anyhow::{Context as _, Result};
use std::process::ExitCode;

/// Listen address when neither `--listen` nor `[api] listen` gives one.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  reclife serve --listen 127.0.0.1:8080 --config /etc/reclife/reclife.toml
  curl -u ops:PASSWORD 'http://127.0.0.1:8080/api/v2/recordings?startTime=0&limit=100'
  open http://127.0.0.1:8080/ in a browser for the operators' pages (same users)

The users file ([api] users_file) is an Apache htpasswd file: htpasswd -B -c users ops")]
pub struct Args {
    /// Address to listen on (default: [api] listen, else 127.0.0.1:8080). Port 0 picks a free
    /// port; the bound address is printed on stdout.
    #[arg(long)]
    pub listen: Option<String>,
}

/// Resolves when the process is asked to stop (SIGTERM or Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term.recv() => {} },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let ctx = cli.context_create()?;
    // The rules folder is a source of the shared rules: applied at start, as `reclife run` does.
    match reclife::lifecycle::schedule::sync_rules_dir(&ctx).await {
        Ok(problems) => {
            for p in &problems {
                tracing::error!("rule file left out: {p}");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot apply the rules folder to the catalog's rules"),
    }
    let listen = a.listen.clone().or_else(|| ctx.config.api.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.into());
    let api = reclife::api::bind(ctx, &listen).await?;
    println!("listening on {}://{}", api.scheme(), api.addr);
    api.serve(shutdown_signal()).await.context("the API stopped")?;
    Ok(ExitCode::SUCCESS)
}
