//! `reclife download`: the cloud backup downloader (GIR's RCBS), over `reclife::download`.
//!
//! Exit status: 0 all done; 1 some recordings or files failed (listed), or the disk budget
//! stopped the run (the recording named); 2 configuration or
//! authentication; 3 another download holds the target folder.

use super::Cli;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use reclife::download::{self, DownloadError, DownloadProgress, Period, Settings};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  GWS_USERNAME=rcbs@tenant.com GWS_PASSWORD=… AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\
    reclife download --properties config.properties
  reclife download --properties config.properties --verify s3
  reclife download --gws-uri-prefix https://gir.example/api/v2 --target-dir /backup --max-age 7
  reclife download --properties config.properties --decrypt --key-dir keys --plain-dir /plain
  reclife download --properties config.properties --check

Every option is also a config.properties key (the RCBS name: maxAge, shardBy, …) and a
[download] key of the node config (max_age, shard_by, …). Precedence: [download] < properties
file < flags. Credentials: GWS_USERNAME/GWS_PASSWORD for the API, the AWS variables for S3.

Exit status: 0 all done; 1 some recordings failed (listed with reasons) or the disk budget
stopped the run (\"stopped: recording …\"); 2 configuration or
authentication; 3 another download is running on the target folder.")]
pub struct Args {
    /// An RCBS config.properties file, read as RCBS reads it.
    #[arg(long)]
    pub properties: Option<PathBuf>,
    /// Only check the S3 connection and credentials (s3), or the API's (api).
    #[arg(long, value_enum)]
    pub verify: Option<Verify>,
    /// Re-verify the target folder against the API (missing, extra, size mismatches); no download.
    #[arg(long, conflicts_with = "verify")]
    pub check: bool,
    /// Fetch media from the API's play URL even where an S3 descriptor is given.
    #[arg(long)]
    pub via_api: bool,
    /// Decrypt each media file once downloaded, into --plain-dir (0600).
    #[arg(long, requires = "plain_dir")]
    pub decrypt: bool,
    /// Where --decrypt writes plaintext (same folder layout as the target).
    #[arg(long)]
    pub plain_dir: Option<PathBuf>,
    /// With --decrypt: keep only the plaintext (the encrypted download is removed once decrypted).
    #[arg(long, requires = "decrypt")]
    pub plain_only: bool,
    /// Key folder for --decrypt (default: config keys_dir).
    #[arg(long)]
    pub key_dir: Option<PathBuf>,
    /// gwsUriPrefix: the RWS API base URL (https://gir.example/api/v2).
    #[arg(long)]
    pub gws_uri_prefix: Option<String>,
    /// gwsRecordingsUri: the recordings listing path below the prefix (default /recordings).
    #[arg(long)]
    pub gws_recordings_uri: Option<String>,
    /// gwsSettingsUri: accepted for RCBS compatibility; not used.
    #[arg(long, hide = true)]
    pub gws_settings_uri: Option<String>,
    /// targetDir: where recordings are written.
    #[arg(long)]
    pub target_dir: Option<String>,
    /// minAge: recordings older than this (days, or ISO 8601 such as PT30M); default 0.
    #[arg(long)]
    pub min_age: Option<String>,
    /// maxAge: recordings newer than this (days or ISO 8601; 0 = no limit); default 2.
    #[arg(long)]
    pub max_age: Option<String>,
    /// minDate: the newer end of a fixed period (YYYY-MM-DD GMT, exclusive, or epoch ms).
    #[arg(long)]
    pub min_date: Option<String>,
    /// maxDate: the older end of a fixed period (YYYY-MM-DD GMT or epoch ms); overrides the checkpoint.
    #[arg(long)]
    pub max_date: Option<String>,
    /// skipLastRecordingCheck: ignore last_recording_endtime.txt (true/false).
    #[arg(long)]
    pub skip_last_recording_check: Option<String>,
    /// shardBy: slice length per API query (days or ISO 8601); default 1.
    #[arg(long)]
    pub shard_by: Option<String>,
    /// overlap: rescanned before the checkpoint (hours or ISO 8601); default 6.
    #[arg(long)]
    pub overlap: Option<String>,
    /// mediaTypePattern: regular expression on mediaFiles[].type (whole match); default audio/mp3|video/mp4.
    #[arg(long)]
    pub media_type_pattern: Option<String>,
    /// recordingFolderFormat: Java date letters on the start time (UTC); default yyyy/MM/dd/HH.
    #[arg(long)]
    pub recording_folder_format: Option<String>,
    /// metadataOnly: metadata without media (true/false).
    #[arg(long)]
    pub metadata_only: Option<String>,
    /// downloadMode: single (one at a time) or multithread.
    #[arg(long)]
    pub download_mode: Option<String>,
    /// numThreads: downloads at once; default 16.
    #[arg(long)]
    pub num_threads: Option<String>,
    /// totalRcbsInstances: instances sharing the work (by a hash of the recording id).
    #[arg(long)]
    pub total_rcbs_instances: Option<String>,
    /// rcbsInstanceId: this instance, from 0.
    #[arg(long)]
    pub rcbs_instance_id: Option<String>,
    /// awsProxyHost: proxy for S3 (host or address).
    #[arg(long)]
    pub aws_proxy_host: Option<String>,
    /// awsProxyPort.
    #[arg(long)]
    pub aws_proxy_port: Option<String>,
    /// gwsProxyHost: proxy for the API (http://address).
    #[arg(long)]
    pub gws_proxy_host: Option<String>,
    /// gwsProxyPort.
    #[arg(long)]
    pub gws_proxy_port: Option<String>,
    /// diskBudget (reclife's own): the most bytes one run may add to the disk (500G, 20GiB,
    /// bytes; 0: none). A run that would pass it stops at the recording that does not fit.
    #[arg(long)]
    pub disk_budget: Option<String>,
    /// encryptionFormat: accepted for RCBS compatibility (downloads stay as stored).
    #[arg(long, hide = true)]
    pub encryption_format: Option<String>,
    /// usePayloadSigning: accepted for RCBS compatibility (no effect on downloads).
    #[arg(long, hide = true)]
    pub use_payload_signing: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verify {
    S3,
    Api,
}

impl Args {
    fn flags(&self) -> Vec<(&'static str, &Option<String>)> {
        vec![
            ("gwsUriPrefix", &self.gws_uri_prefix),
            ("gwsRecordingsUri", &self.gws_recordings_uri),
            ("gwsSettingsUri", &self.gws_settings_uri),
            ("targetDir", &self.target_dir),
            ("minAge", &self.min_age),
            ("maxAge", &self.max_age),
            ("minDate", &self.min_date),
            ("maxDate", &self.max_date),
            ("skipLastRecordingCheck", &self.skip_last_recording_check),
            ("shardBy", &self.shard_by),
            ("overlap", &self.overlap),
            ("mediaTypePattern", &self.media_type_pattern),
            ("recordingFolderFormat", &self.recording_folder_format),
            ("metadataOnly", &self.metadata_only),
            ("downloadMode", &self.download_mode),
            ("numThreads", &self.num_threads),
            ("totalRcbsInstances", &self.total_rcbs_instances),
            ("rcbsInstanceId", &self.rcbs_instance_id),
            ("awsProxyHost", &self.aws_proxy_host),
            ("awsProxyPort", &self.aws_proxy_port),
            ("gwsProxyHost", &self.gws_proxy_host),
            ("gwsProxyPort", &self.gws_proxy_port),
            ("encryptionFormat", &self.encryption_format),
            ("usePayloadSigning", &self.use_payload_signing),
            ("diskBudget", &self.disk_budget),
        ]
    }
}

const EXIT_FAILED: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const EXIT_LOCKED: u8 = 3;

fn exit_for(e: &DownloadError) -> u8 {
    match e {
        DownloadError::Config(_) | DownloadError::Auth(_) => EXIT_CONFIG,
        DownloadError::Locked { .. } => EXIT_LOCKED,
        _ => EXIT_FAILED,
    }
}

fn job(cli: &Cli, a: &Args) -> Result<download::Job, DownloadError> {
    let cfg = cli.load_config().map_err(|e| DownloadError::Config(format!("{e:#}")))?;
    let mut s = Settings::default();
    s.apply_toml(&cfg.download)?;
    if let Some(p) = &a.properties {
        s.apply_properties(p)?;
    }
    for (key, v) in a.flags() {
        if let Some(v) = v {
            s.set(key, v).map_err(|e| DownloadError::Config(format!("--{}: {e}", flag_name(key))))?;
        }
    }
    s.finish()?;
    let decrypt = if a.decrypt {
        let keys = match &a.key_dir {
            Some(dir) => reclife::crypto::KeyStore::load(dir, reclife::crypto::password_from_config(&cfg)?.as_deref()),
            None => reclife::crypto::KeyStore::from_config(&cfg),
        }
        .map_err(|e| DownloadError::Config(e.to_string()))?;
        Some(download::Decrypt {
            keys: std::sync::Arc::new(keys),
            plain_dir: a.plain_dir.clone().unwrap_or_default(),
            plain_only: a.plain_only,
        })
    } else {
        None
    };
    let now = cli.now.unwrap_or_else(chrono::Utc::now);
    Ok(download::Job {
        settings: s,
        credentials: download::GwsCredentials::from_env()?,
        s3: cfg.s3.clone(),
        via_api: a.via_api,
        decrypt,
        now,
    })
}

/// `gwsUriPrefix` → `gws-uri-prefix`.
fn flag_name(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('-');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

pub async fn run(cli: &Cli, a: &Args) -> Result<ExitCode> {
    let job = match job(cli, a) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(exit_for(&e)));
        }
    };
    let outcome = if let Some(v) = a.verify {
        let r = match v {
            Verify::S3 => download::verify_s3(&job).await,
            Verify::Api => download::verify_api(&job).await,
        };
        r.map(|msg| {
            println!("{msg}");
            ExitCode::SUCCESS
        })
    } else if a.check {
        download::check(&job).await.map(|r| {
            for l in &r.missing {
                println!("missing: {l}");
            }
            for l in &r.extra {
                println!("extra: {l}");
            }
            for l in &r.mismatched {
                println!("mismatch: {l}");
            }
            println!(
                "checked {} recording(s), {} media file(s): {} missing, {} extra, {} mismatched",
                r.recordings,
                r.files,
                r.missing.len(),
                r.extra.len(),
                r.mismatched.len()
            );
            if r.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILED)
            }
        })
    } else {
        let bar = Bar::new(cli.quiet);
        // A signal stops the run where it is (files land whole or not at all; the checkpoint
        // stays at the last finished slice) with a line saying how far it got.
        let stopped = tokio::select! {
            r = download::run(&job, &bar) => Ok(r),
            code = stop_signal() => Err(code),
        };
        bar.finish();
        match stopped {
            Ok(r) => r.map(|r| summary(&r)),
            Err((name, code)) => {
                eprintln!("{}", bar.stopped_line(name));
                return Ok(ExitCode::from(code));
            }
        }
    };
    Ok(outcome.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(exit_for(&e))
    }))
}

/// The first of SIGINT (exit 130) and SIGTERM (exit 143), by name.
async fn stop_signal() -> (&'static str, u8) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => ("SIGINT", 130),
                _ = term.recv() => ("SIGTERM", 143),
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    ("SIGINT", 130)
}

fn summary(r: &download::Report) -> ExitCode {
    for f in &r.failures {
        eprintln!("failed: {f}");
    }
    for f in &r.skipped {
        eprintln!("skipped: {f}");
    }
    if let Some(f) = &r.budget_stop {
        eprintln!("stopped: {f}");
    }
    let period = r
        .period
        .map(|p| format!(" from {} to {}", super::show_time(p.start), super::show_time(p.end)))
        .unwrap_or_default();
    let checkpoint = r.checkpoint.map(super::show_time).unwrap_or_else(|| "none".into());
    println!(
        "downloaded {} file(s) ({} bytes), {} already present, metadata {} written / {} unchanged, {} decrypted, {} plain passed through; \
         {} recording(s) in {} slice(s){period} ({} left to other instances); {} failed; checkpoint {checkpoint}",
        r.files_downloaded,
        r.bytes_downloaded,
        r.files_present,
        r.metadata_written,
        r.metadata_unchanged,
        r.decrypted,
        r.passed_through,
        r.recordings,
        r.slices,
        r.other_instances,
        r.failures.len()
    );
    if r.failures.is_empty() && r.budget_stop.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    }
}

#[derive(Default)]
struct State {
    index: usize,
    count: usize,
    range: String,
    recordings: (u64, u64),
    bytes: (u64, u64),
    last_tenth: u64,
}

/// A bar in bytes on a terminal (the newest slice); elsewhere a plain line per slice at every
/// 10% (none for an empty slice; bytes whose total the listing did not give are shown as
/// unknown). Slices overlap briefly (the next starts while the last files of one finish), so each
/// keeps its own counts until it is done.
struct Bar {
    bar: Option<ProgressBar>,
    lines: bool,
    state: Mutex<(usize, std::collections::BTreeMap<usize, State>)>,
    /// The whole run so far: (recordings, bytes, slices finished, slices).
    run: Mutex<(u64, u64, usize, usize)>,
}

impl Bar {
    fn new(quiet: bool) -> Bar {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let pb = ProgressBar::new(0);
            pb.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            pb
        });
        Bar { bar, lines: !quiet && !tty, state: Mutex::new((0, Default::default())), run: Mutex::new((0, 0, 0, 0)) }
    }

    /// What a stopped run had done.
    fn stopped_line(&self, signal: &str) -> String {
        let (recordings, bytes, done, count) = *self.run.lock().unwrap_or_else(|e| e.into_inner());
        format!(
            "stopped by {signal}: {recordings} recording(s) done, {bytes} bytes of media, {done} of {count} slice(s) \
             finished; the checkpoint stays at the last finished slice: run again to go on"
        )
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }

    fn print_line(&self, st: &mut State, force: bool) {
        let pct = percent(st);
        let tenth = pct / 10;
        if !self.lines || (!force && tenth <= st.last_tenth) {
            return;
        }
        st.last_tenth = tenth;
        eprintln!(
            "slice {}/{} {}: {pct}% ({}/{} recordings, {})",
            st.index + 1,
            st.count,
            st.range,
            st.recordings.0,
            st.recordings.1,
            bytes_text(st.bytes)
        );
    }
}

/// True when the listing did not give every file's size: no total, or fewer bytes than done.
fn bytes_unknown((done, total): (u64, u64)) -> bool {
    total == 0 && done > 0 || done > total
}

/// `done/total bytes`, or `done bytes (total unknown)` when the listing did not give the sizes.
fn bytes_text(b: (u64, u64)) -> String {
    if bytes_unknown(b) {
        format!("{} bytes (total unknown)", b.0)
    } else {
        format!("{}/{} bytes", b.0, b.1)
    }
}

/// The smaller of the two shares (bytes, recordings): 100% only when both are done. Bytes
/// whose total is unknown count by recordings only.
fn percent(st: &State) -> u64 {
    let share = |(done, total): (u64, u64)| (done.min(total) * 100).checked_div(total).unwrap_or(100);
    if bytes_unknown(st.bytes) {
        return share(st.recordings);
    }
    share(st.bytes).min(share(st.recordings))
}

impl DownloadProgress for Bar {
    fn slice(&self, index: usize, count: usize, slice: &Period, recordings: u64, bytes: u64) {
        self.run.lock().unwrap_or_else(|e| e.into_inner()).3 = count;
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = index;
        g.1.insert(
            index,
            State {
                index,
                count,
                range: format!("{} .. {}", slice.start.format("%Y-%m-%d %H:%M"), slice.end.format("%Y-%m-%d %H:%M")),
                recordings: (0, recordings),
                bytes: (0, bytes),
                last_tenth: 0,
            },
        );
        if let Some(b) = &self.bar {
            b.set_prefix(format!("slice {}/{count}", index + 1));
            b.set_length(bytes);
            b.set_position(0);
            b.set_message(format!("0/{recordings} recordings"));
        }
    }

    fn advance(&self, index: usize, recordings: u64, bytes: u64) {
        {
            let mut run = self.run.lock().unwrap_or_else(|e| e.into_inner());
            run.0 += recordings;
            run.1 += bytes;
        }
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let current = g.0 == index;
        let Some(st) = g.1.get_mut(&index) else { return };
        st.recordings.0 += recordings;
        st.bytes.0 += bytes;
        if let (Some(b), true) = (&self.bar, current) {
            b.inc(bytes);
            if recordings > 0 {
                b.set_message(format!("{}/{} recordings", st.recordings.0, st.recordings.1));
            }
        }
        let mut st = std::mem::take(st);
        self.print_line(&mut st, false);
        g.1.insert(index, st);
    }

    fn slice_done(&self, index: usize) {
        let mut g = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.run.lock().unwrap_or_else(|e| e.into_inner()).2 += 1;
        let Some(mut st) = g.1.remove(&index) else { return };
        st.bytes.0 = st.bytes.0.max(st.bytes.1);
        st.recordings.0 = st.recordings.0.max(st.recordings.1);
        // An empty slice is quiet: nothing to say about it.
        if st.recordings.1 == 0 {
            return;
        }
        if st.last_tenth < 10 {
            self.print_line(&mut st, true);
        }
    }
}
