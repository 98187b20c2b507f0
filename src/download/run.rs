//! One run: lock, period; the period's whole listing spooled, in whatever order the API gives
//! it, into one file per slice (totals); the recordings of all slices downloaded `numThreads`
//! at a time in one pipeline, slices finished in order (folder syncs, checkpoint).

use super::api::Api;
use super::fetch::{fetch, Fetched, Local, Stores};
use super::lock::TargetLock;
use super::period::{self, Period};
use super::record::{self, Planned, Source};
use super::{fsio, layout, DownloadError, DownloadProgress, Failure, Job, Report};
use futures::StreamExt;
use serde_json::value::RawValue;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Listing paths below the prefix: calls (`gwsRecordingsUri`) and screen recordings.
pub const SCREEN_RECORDINGS_URI: &str = "/screen-recordings";
/// Work files of a run (the spooled listing) live here, inside the target folder.
pub const WORK_DIR: &str = ".reclife-download";

pub(crate) fn target(job: &Job) -> Result<PathBuf, DownloadError> {
    job.settings.target_dir.clone().ok_or_else(|| DownloadError::Config("targetDir is not set".into()))
}

pub(crate) fn api(job: &Job) -> Result<Api, DownloadError> {
    let s = &job.settings;
    let prefix = s.gws_uri_prefix.as_deref().ok_or_else(|| DownloadError::Config("gwsUriPrefix is not set".into()))?;
    Api::new(prefix, job.credentials.clone(), s.gws_proxy.as_deref())
}

/// Downloads the period. Fails as a whole only on configuration, authentication, a held lock,
/// an API that keeps failing or misbehaves past its bounds (an oversized listing page, a
/// `nextUri` loop), or the local disk; anything else is a [`Failure`] in the report.
///
/// The listing's order is not trusted: the whole period is listed first, each recording spooled
/// to the slice holding its start wherever it appears, so a slice is complete only when every
/// recording listed for it is done. One listed outside the period is reported in
/// [`Report::skipped`] and nothing else happens to it.
pub async fn run(job: &Job, progress: &dyn DownloadProgress) -> Result<Report, DownloadError> {
    let s = &job.settings;
    let target = target(job)?;
    let api = api(job)?;
    fsio::create_dirs(&target)?;
    let _lock = TargetLock::acquire(&target)?;
    let stores = stores(job);
    fsio::remove_temp(&target.join(period::CHECKPOINT_FILE));
    let existing = period::read_checkpoint(&target)?;
    let period = Period::compute(s, job.now, existing);
    let work = target.join(WORK_DIR);
    fsio::create_dirs(&work)?;
    let step = s.shard_by.approx().num_milliseconds().max(60_000);
    let spool_at = |edge: i64| work.join(format!("listing-{edge}.spool"));
    // Spools of an earlier, killed run are stale.
    if let Ok(rd) = std::fs::read_dir(&work) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".spool") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let mut report = Report { period: Some(period), checkpoint: existing, ..Report::default() };
    let listed = list_period(job, &api, &period, step, &spool_at, &mut report).await?;
    // With `maxAge=0` the period starts in 1970: slicing begins at the slice edge before the
    // earliest recording listed (wherever it was in the listing); with none, at the last slice
    // (decades of empty slices would each write the checkpoint).
    let first_edge = match listed.keys().next() {
        Some(&edge) => edge,
        None => (period.end.timestamp_millis() - 1).div_euclid(step),
    };
    let effective = Period {
        start: period.start.max(chrono::DateTime::from_timestamp_millis(first_edge * step).unwrap_or(period.start)),
        end: period.end,
    };
    let slices = effective.slices(s.shard_by.approx());
    report.slices = slices.len();
    tracing::info!(start = %period.start, end = %period.end, slices = slices.len(), "download period");
    // The checkpoint may only advance over a stretch downloaded without a gap from it; a one-time
    // run (maxDate) does not start one.
    let mut contiguous = match existing {
        Some(c) => period.start <= c,
        None => s.max_date.is_none(),
    };
    let edge_of = |p: &Period| p.start.timestamp_millis().div_euclid(step);
    let spool_of = |i: usize| spool_at(edge_of(&slices[i]));
    // One pipeline over every slice: a slice's recordings start as soon as the previous one's
    // are all under way, so no slice waits for another's slowest file. Slices are finished
    // (folders synced, checkpoint) in order.
    #[derive(Default)]
    struct Slice {
        read: bool,
        in_flight: u64,
        failed: bool,
        parents: std::collections::BTreeSet<PathBuf>,
        /// Ids started in this slice: one listed twice is fetched once.
        ids: std::collections::HashSet<String>,
    }
    let n = slices.len();
    let threads = s.num_threads.max(1) as usize;
    let mut state: Vec<Slice> = (0..n).map(|_| Slice::default()).collect();
    let mut ready: std::collections::VecDeque<usize> = (0..n).collect();
    let mut reader: Option<(usize, SpoolReader)> = None;
    let budget = super::budget::Budget::new(s.disk_budget);
    let mut in_flight = futures::stream::FuturesUnordered::new();
    let mut finished = 0;
    // A recording read but not yet admitted by the budget: (slice, document, id, need).
    let mut held: Option<(usize, Spooled, String, u64)> = None;
    while finished < n {
        if reader.is_none() {
            if let Some(i) = ready.pop_front() {
                let (recordings, bytes) = listed.get(&edge_of(&slices[i])).copied().unwrap_or((0, 0));
                progress.slice(i, n, &slices[i], recordings, bytes);
                let path = spool_of(i);
                if recordings == 0 {
                    state[i].read = true;
                } else {
                    let f = std::fs::File::open(&path).map_err(|e| DownloadError::io(&path, e))?;
                    reader = Some((i, SpoolReader { r: std::io::BufReader::with_capacity(256 << 10, f), path }));
                }
            }
        }
        while in_flight.len() < threads && report.budget_stop.is_none() {
            let (i, raw, id, need) = match held.take() {
                Some(h) => h,
                None => {
                    let Some((i, r)) = reader.as_mut() else { break };
                    let i = *i;
                    let Some(next) = r.next() else {
                        state[i].read = true;
                        let _ = std::fs::remove_file(spool_of(i));
                        reader = None;
                        continue;
                    };
                    let (raw, in_call) = next?;
                    let doc = serde_json::from_str::<serde_json::Value>(raw.get()).ok();
                    let id = doc
                        .as_ref()
                        .and_then(|d| d.get("id").and_then(|v| v.as_str()).map(str::to_string))
                        .unwrap_or_default();
                    if !state[i].ids.insert(id.clone()) {
                        progress.advance(i, 1, 0);
                        continue;
                    }
                    let media = doc.as_ref().map(|d| media_bytes(s, d)).unwrap_or(0);
                    let copies = if job.decrypt.is_some() { 2 } else { 1 };
                    let need = media.saturating_mul(copies).saturating_add(raw.get().len() as u64);
                    (i, (raw, in_call), id, need)
                }
            };
            if !budget.admit(need) {
                if !in_flight.is_empty() {
                    // What is under way may give back part of its charge: wait for it.
                    held = Some((i, raw, id, need));
                    break;
                }
                let reason = format!(
                    "the disk budget of {} bytes would be passed ({} written in this run, {need} more needed); \
                     the run stopped here: this recording and the ones after it are left for a later run",
                    budget.limit().unwrap_or(0),
                    budget.charged()
                );
                tracing::warn!(recording = %id, "{reason}");
                report.budget_stop = Some(Failure { recording: id, file: String::new(), reason });
                state[i].failed = true;
                reader = None;
                ready.clear();
                break;
            }
            state[i].in_flight += 1;
            let target = &target;
            let stores = &stores;
            let api = &api;
            let budget = &budget;
            in_flight.push(async move {
                (i, need, one_recording(job, Sources { api, stores, budget }, target, raw, progress, i).await)
            });
        }
        // Finish slices in order once everything of theirs is done.
        while finished < n && state[finished].read && state[finished].in_flight == 0 {
            let i = finished;
            sync_dirs(std::mem::take(&mut state[i].parents), threads).await?;
            state[i].ids = Default::default();
            progress.slice_done(i);
            if state[i].failed {
                contiguous = false;
            }
            if contiguous && report.checkpoint.is_none_or(|c| slices[i].end > c) {
                period::write_checkpoint(&target, slices[i].end)?;
                report.checkpoint = Some(slices[i].end);
            }
            finished += 1;
        }
        if in_flight.is_empty() && report.budget_stop.is_some() {
            break;
        }
        if finished >= n || in_flight.is_empty() {
            continue;
        }
        if let Some((i, need, r)) = in_flight.next().await {
            let mut o = r?;
            budget.settle(need, o.charged);
            let slice = &mut state[i];
            slice.in_flight -= 1;
            if let Some(pos) = o.failures.iter().position(|f| f.reason.starts_with(super::budget::OVER)) {
                // A file of unstated size reached the budget: the run stops as for a recording
                // that does not fit.
                let f = o.failures.remove(pos);
                slice.failed = true;
                reader = None;
                ready.clear();
                held = None;
                report.budget_stop.get_or_insert(f);
            }
            if !o.failures.is_empty() {
                slice.failed = true;
            }
            if let Some(d) = &o.dir {
                // The folders above the recording folder: their new entries are made durable
                // before the checkpoint may cover the slice.
                for a in d.ancestors().skip(1) {
                    if !a.starts_with(&target) || !slice.parents.insert(a.to_path_buf()) {
                        break;
                    }
                }
            }
            report.files_downloaded += o.downloaded;
            report.bytes_downloaded += o.bytes;
            report.files_present += o.present;
            report.metadata_written += u64::from(o.meta_written);
            report.metadata_unchanged += u64::from(o.meta_unchanged);
            report.decrypted += o.decrypted;
            report.passed_through += o.passed_through;
            report.failures.extend(o.failures);
        }
    }
    Ok(report)
}

/// fsyncs folders, concurrently (the file system commits concurrent syncs together).
async fn sync_dirs(dirs: std::collections::BTreeSet<PathBuf>, threads: usize) -> Result<(), DownloadError> {
    let mut syncs = futures::stream::iter(dirs)
        .map(|d| tokio::task::spawn_blocking(move || fsio::sync_dir(&d)))
        .buffer_unordered(threads.clamp(1, 16));
    while let Some(r) = syncs.next().await {
        r.map_err(|e| DownloadError::Config(format!("folder sync task: {e}")))??;
    }
    Ok(())
}

/// The S3 stores of a run: `[s3]`, through `awsProxyHost:awsProxyPort` when set.
pub(crate) fn stores(job: &Job) -> Stores {
    let mut cfg = job.s3.clone();
    cfg.proxy = job.settings.aws_proxy.clone();
    Stores::new(cfg)
}

/// Media bytes of a listed recording that match the pattern.
fn media_bytes(s: &super::Settings, doc: &serde_json::Value) -> u64 {
    if s.metadata_only {
        return 0;
    }
    let files = doc.get("mediaFiles").or_else(|| doc.get("mediaFile")).and_then(|v| v.as_array());
    files
        .into_iter()
        .flatten()
        .filter(|m| s.media_type_pattern.is_match(m.get("type").and_then(|v| v.as_str()).unwrap_or("")))
        .map(|m| m.get("size").and_then(crate::model::parse_u64).unwrap_or(0))
        .sum()
}

/// Pages through the period's listings (calls, screen recordings) in whatever order the API
/// gives, and spools each recording of this instance to the file of the slice holding its start
/// (`spool_at(slice edge index)`, appended page by page: memory is one page). Returns, per slice
/// edge index, the recordings spooled and their media bytes. A page already read (a `nextUri`
/// loop) is an error naming it.
async fn list_period(
    job: &Job,
    api: &Api,
    period: &Period,
    step: i64,
    spool_at: &dyn Fn(i64) -> PathBuf,
    report: &mut Report,
) -> Result<std::collections::BTreeMap<i64, (u64, u64)>, DownloadError> {
    let s = &job.settings;
    let mut out = std::collections::BTreeMap::<i64, (u64, u64)>::new();
    if period.is_empty() {
        return Ok(out);
    }
    // The calls of the period (id → start), for laying screen recordings in their call's
    // folder: one entry per call listed (about a hundred bytes each).
    let mut calls = std::collections::HashMap::<String, chrono::DateTime<chrono::Utc>>::new();
    for path in [s.recordings_uri.as_str(), SCREEN_RECORDINGS_URI] {
        let screens = path == SCREEN_RECORDINGS_URI;
        let mut walk = api::PageWalk::default();
        let mut next = Some(api.listing_url(path, period.start, period.end));
        let mut first = true;
        while let Some(u) = next.take() {
            walk.visit(&u)?;
            let page = match api.page(&u).await {
                // A server without screen recordings.
                Err(DownloadError::Api(m)) if first && path == SCREEN_RECORDINGS_URI && m.contains("HTTP 404") => {
                    tracing::debug!("no screen recordings listing: {m}");
                    break;
                }
                other => other?,
            };
            first = false;
            let mut by_slice = std::collections::BTreeMap::<i64, Vec<u8>>::new();
            for raw in page.recordings {
                let parsed = serde_json::from_str::<serde_json::Value>(raw.get())
                    .map_err(|e| format!("malformed recording in the listing: {e}"))
                    .and_then(|doc| record::id_and_start(&doc).map(|(id, start)| (id, start, doc)));
                let (id, start, doc) = match parsed {
                    Ok(x) => x,
                    Err(reason) => {
                        report.failures.push(Failure { recording: "?".into(), file: String::new(), reason });
                        continue;
                    }
                };
                if !period.contains(start) {
                    report.skipped.push(Failure {
                        recording: id,
                        file: String::new(),
                        reason: format!(
                            "listed with a start ({}) outside the period {} to {}; skipped",
                            start.to_rfc3339(),
                            period.start.to_rfc3339(),
                            period.end.to_rfc3339()
                        ),
                    });
                    continue;
                }
                // A screen recording whose call is in the download goes with it: to the call's
                // instance, slice and folder. One whose call is not stays in its own folder.
                let in_call = if screens {
                    record::call_of(&doc).and_then(|c| calls.get(c).map(|t| (c.to_string(), *t)))
                } else {
                    calls.insert(id.clone(), start);
                    None
                };
                let owner = in_call.as_ref().map_or(id.as_str(), |(c, _)| c.as_str());
                if layout::instance_of(owner, s.total_instances) != s.instance_id {
                    report.other_instances += 1;
                    continue;
                }
                let edge = in_call.as_ref().map_or(start, |(_, t)| *t).timestamp_millis().div_euclid(step);
                let e = out.entry(edge).or_default();
                e.0 += 1;
                e.1 += media_bytes(s, &doc);
                report.recordings += 1;
                let text = raw.get().as_bytes();
                let w = by_slice.entry(edge).or_default();
                match &in_call {
                    None => w.extend_from_slice(format!("{}\n", text.len()).as_bytes()),
                    Some((call, t)) => w.extend_from_slice(
                        format!(
                            "{} {} {}\n",
                            text.len(),
                            t.timestamp_millis(),
                            serde_json::to_string(call).unwrap_or_default()
                        )
                        .as_bytes(),
                    ),
                }
                w.extend_from_slice(text);
                w.push(b'\n');
            }
            for (edge, bytes) in by_slice {
                let p = spool_at(edge);
                let io = |e| DownloadError::io(&p, e);
                let mut f = std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(&p).map_err(io)?;
                f.write_all(&bytes).map_err(io)?;
            }
            next = page.next_uri;
        }
    }
    Ok(out)
}

/// A spooled recording: its document, and for a screen recording laid in its call's folder,
/// that call.
type Spooled = (Box<RawValue>, Option<record::InCall>);

/// The spooled recordings, one at a time. Each entry: a header line `<length>` (or `<length>
/// <call start ms> <call id as JSON>` for a screen recording in its call's folder), the
/// document, a newline.
struct SpoolReader {
    r: std::io::BufReader<std::fs::File>,
    path: PathBuf,
}

impl Iterator for SpoolReader {
    type Item = Result<Spooled, DownloadError>;
    fn next(&mut self) -> Option<Self::Item> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(DownloadError::io(&self.path, e))),
        }
        let bad = |m: &str| Some(Err(DownloadError::io(&self.path, std::io::Error::other(m.to_string()))));
        let mut head = line.trim().splitn(3, ' ');
        let Some(n) = head.next().and_then(|n| n.parse::<usize>().ok()) else { return bad("damaged spool file") };
        let in_call = match (head.next(), head.next()) {
            (Some(ms), Some(call)) => {
                let start = ms.parse::<i64>().ok().and_then(chrono::DateTime::from_timestamp_millis);
                let call = serde_json::from_str::<String>(call).ok();
                match (start, call) {
                    (Some(start), Some(call)) => Some(record::InCall { call, start }),
                    _ => return bad("damaged spool file"),
                }
            }
            _ => None,
        };
        let mut buf = vec![0u8; n + 1];
        if let Err(e) = self.r.read_exact(&mut buf) {
            return Some(Err(DownloadError::io(&self.path, e)));
        }
        buf.pop();
        let Ok(text) = String::from_utf8(buf) else { return bad("damaged spool file") };
        Some(
            RawValue::from_string(text)
                .map(|raw| (raw, in_call))
                .map_err(|e| DownloadError::io(&self.path, std::io::Error::other(e))),
        )
    }
}

/// What one recording came to.
#[derive(Default)]
struct Outcome {
    downloaded: u64,
    bytes: u64,
    present: u64,
    meta_written: bool,
    meta_unchanged: bool,
    decrypted: u64,
    passed_through: u64,
    /// Bytes written that its budget admission covered (media of stated size, metadata,
    /// plaintext); media of unstated size are charged as they arrive.
    charged: u64,
    failures: Vec<Failure>,
    /// The recording folder, whose ancestors are synced at the end of the slice.
    dir: Option<PathBuf>,
}

/// Where a recording's media come from, and the budget they are charged to.
struct Sources<'a> {
    api: &'a Api,
    stores: &'a Stores,
    budget: &'a super::budget::Budget,
}

async fn one_recording(
    job: &Job,
    Sources { api, stores, budget }: Sources<'_>,
    target: &Path,
    (raw, in_call): Spooled,
    progress: &dyn DownloadProgress,
    slice: usize,
) -> Result<Outcome, DownloadError> {
    let mut o = Outcome::default();
    let p = match job.plan_record(raw, in_call.as_ref()) {
        Ok(p) => p,
        Err(reason) => {
            o.failures.push(Failure { recording: "?".into(), file: String::new(), reason });
            progress.advance(slice, 1, 0);
            return Ok(o);
        }
    };
    let dir = p.dir(target);
    o.dir = Some(dir.clone());
    // The folder, and what of each file is already there, in one trip to the blocking pool.
    let d2 = dir.clone();
    let names: Vec<String> = p.files.iter().map(|m| m.name.clone()).collect();
    let local = tokio::task::spawn_blocking(move || {
        fsio::create_dirs(&d2)?;
        fsio::remove_temp(&d2.join(layout::META_FILE));
        Ok::<_, DownloadError>(names.iter().map(|n| Local::of(&d2.join(n))).collect::<Vec<_>>())
    })
    .await
    .map_err(|e| DownloadError::Config(format!("folder task: {e}")))??;
    for (file, reason) in &p.bad_files {
        o.failures.push(Failure { recording: p.id.clone(), file: file.clone(), reason: reason.clone() });
    }
    let mut renamed = false;
    let mut decrypt_failures = Vec::new();
    for (m, local) in p.files.iter().zip(local) {
        let fail = |reason: String| Failure { recording: p.id.clone(), file: m.name.clone(), reason };
        if let Some(d) = job.decrypt.as_ref().filter(|d| d.plain_only) {
            if let Ok(md) = std::fs::metadata(d.plain_dir.join(&p.rel_dir).join(&m.name)) {
                o.present += 1;
                progress.advance(slice, 0, m.size.unwrap_or(md.len()));
                continue;
            }
        }
        let on_bytes = |n: u64| progress.advance(slice, 0, n);
        match fetch(m, &dir, local, api, stores, budget, &on_bytes).await? {
            Ok(Fetched::Present(n)) => {
                o.present += 1;
                progress.advance(slice, 0, n);
            }
            Ok(Fetched::Downloaded(n)) => {
                o.downloaded += 1;
                o.bytes += n;
                if m.size.is_some() {
                    o.charged += n;
                }
                renamed = true;
            }
            Err(reason) => {
                o.failures.push(fail(reason));
                continue;
            }
        }
        if let Some(d) = &job.decrypt {
            match decrypt_one(d, &p, m, &dir).await? {
                Ok(Decrypted::Opened) => {
                    o.decrypted += 1;
                    let plain = d.plain_dir.join(&p.rel_dir).join(&m.name);
                    o.charged += std::fs::metadata(plain).map(|x| x.len()).unwrap_or(0);
                }
                // A plain file is passed through as a hard link (no new bytes on disk), or
                // copied where a link fails: then the copy is charged.
                Ok(Decrypted::Plain) => {
                    o.passed_through += 1;
                    let plain = d.plain_dir.join(&p.rel_dir).join(&m.name);
                    if let Ok(x) = std::fs::metadata(plain) {
                        if std::os::unix::fs::MetadataExt::nlink(&x) == 1 {
                            o.charged += x.len();
                        }
                    }
                }
                Ok(Decrypted::There) => {}
                Err(reason) => decrypt_failures.push(fail(reason)),
            }
        }
    }
    // Metadata last: a folder with meta-data.json holds all its media. Then one folder sync
    // for every rename into it. Off the async workers: fsync blocks. A file that did not
    // decrypt is still downloaded whole: its recording's metadata is written all the same (the
    // failure is reported, and holds the checkpoint so the next run tries the decryption again).
    let complete = o.failures.is_empty();
    o.failures.extend(decrypt_failures);
    let raw = p.raw;
    let meta_len = raw.get().len() as u64;
    let (written, unchanged) = tokio::task::spawn_blocking(move || -> Result<(bool, bool), DownloadError> {
        let mut written = false;
        let mut unchanged = false;
        if complete {
            let meta = dir.join(layout::META_FILE);
            let bytes = raw.get().as_bytes();
            if fsio::same_content(&meta, bytes) {
                unchanged = true;
            } else {
                fsio::replace(&meta, bytes)?;
                written = true;
            }
        }
        if renamed || written {
            fsio::sync_dir(&dir)?;
        }
        Ok((written, unchanged))
    })
    .await
    .map_err(|e| DownloadError::Config(format!("metadata task: {e}")))??;
    o.meta_written = written;
    o.meta_unchanged = unchanged;
    if written {
        o.charged += meta_len;
    }
    progress.advance(slice, 1, 0);
    Ok(o)
}

/// What `--decrypt` did with one downloaded file.
enum Decrypted {
    /// An envelope, opened into the plain folder.
    Opened,
    /// Not encrypted (a mixed estate: plain screens, encrypted voice): passed through to the
    /// plain folder as is (a hard link, or a 0600 copy where a link cannot be made).
    Plain,
    /// The plain file was there already.
    There,
}

/// Decrypts a downloaded file into the plain folder, or passes a plain one through.
async fn decrypt_one(
    d: &super::Decrypt,
    p: &Planned,
    m: &record::MediaPlan,
    dir: &Path,
) -> Result<Result<Decrypted, String>, DownloadError> {
    let plain_dir = d.plain_dir.join(&p.rel_dir);
    let plain = plain_dir.join(&m.name);
    let enc = dir.join(&m.name);
    if plain.exists() {
        if d.plain_only {
            let _ = std::fs::remove_file(&enc);
        }
        return Ok(Ok(Decrypted::There));
    }
    fsio::create_dirs(&plain_dir)?;
    // What a killed run left half-decrypted (the key store's temporaries) goes.
    if let Ok(rd) = std::fs::read_dir(&plain_dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".reclife-") && n.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    // Encrypted: the metadata carries a detached envelope, or the file is a CMS envelope.
    let enveloped = m.pkcs7.is_some() || {
        use std::io::Read;
        let mut head = [0u8; 16];
        let mut f = std::fs::File::open(&enc).map_err(|e| DownloadError::io(&enc, e))?;
        let n = f.read(&mut head).map_err(|e| DownloadError::io(&enc, e))?;
        crate::crypto::looks_enveloped(&head[..n])
    };
    if !enveloped {
        let (enc2, plain2) = (enc.clone(), plain.clone());
        tokio::task::spawn_blocking(move || pass_through(&enc2, &plain2))
            .await
            .map_err(|e| DownloadError::Config(format!("pass-through task: {e}")))??;
        fsio::sync_dir(&plain_dir)?;
        if d.plain_only {
            std::fs::remove_file(&enc).map_err(|e| DownloadError::io(&enc, e))?;
        }
        return Ok(Ok(Decrypted::Plain));
    }
    let (keys, pkcs7, alias, enc2, plain2) =
        (d.keys.clone(), m.pkcs7.clone(), m.cert_alias.clone(), enc.clone(), plain.clone());
    let r = tokio::task::spawn_blocking(move || keys.decrypt_file(&enc2, &plain2, pkcs7.as_deref(), &alias))
        .await
        .map_err(|e| DownloadError::Config(format!("decrypt task: {e}")))?;
    if let Err(e) = r {
        return Ok(Err(format!("decrypting: {e}")));
    }
    fsio::sync_dir(&plain_dir)?;
    if d.plain_only {
        std::fs::remove_file(&enc).map_err(|e| DownloadError::io(&enc, e))?;
    }
    Ok(Ok(Decrypted::Opened))
}

/// A plain (unencrypted) download into the plain folder: a hard link to the downloaded file
/// (no second copy of the bytes), else (another file system) a 0600 copy written beside its
/// name, synced and renamed into place.
fn pass_through(from: &Path, to: &Path) -> Result<(), DownloadError> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    let parent = to.parent().unwrap_or(Path::new("."));
    let io = |e| DownloadError::io(to, e);
    let mut tmp = tempfile::Builder::new()
        .prefix(".reclife-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .tempfile_in(parent)
        .map_err(io)?;
    let mut src = std::fs::File::open(from).map_err(|e| DownloadError::io(from, e))?;
    std::io::copy(&mut src, tmp.as_file_mut()).map_err(io)?;
    tmp.as_file().sync_data().map_err(io)?;
    tmp.persist(to).map_err(|e| io(e.error))?;
    Ok(())
}

/// `--verify api`: one listing request with the credentials. Returns what it found.
pub async fn verify_api(job: &Job) -> Result<String, DownloadError> {
    let api = api(job)?;
    let now = job.now;
    let url = api.listing_url(&job.settings.recordings_uri, chrono::DateTime::<chrono::Utc>::UNIX_EPOCH, now);
    let page = api.page(&url).await?;
    Ok(format!(
        "API {}: credentials accepted, listing answered ({} recording(s) on the first page)",
        api::redact(&url),
        page.recordings.len()
    ))
}

/// `--verify s3`: reads one media object the API names (HEAD), to check the S3 endpoint and
/// credentials. The API is asked for one recording with an S3 descriptor in the period.
pub async fn verify_s3(job: &Job) -> Result<String, DownloadError> {
    let s = &job.settings;
    let api = api(job)?;
    let stores = stores(job);
    let period = Period::compute(s, job.now, None);
    let mut url = Some(api.listing_url(&s.recordings_uri, period.start, period.end));
    let mut walk = api::PageWalk::default();
    while let Some(u) = url.take() {
        walk.visit(&u)?;
        let page = api.page(&u).await?;
        for raw in page.recordings {
            let Ok(p) = record::plan(raw, &s.folder_format, &s.media_type_pattern, false, false, None) else {
                continue;
            };
            for m in &p.files {
                if let Source::S3 { bucket, prefix, key } = &m.source {
                    let store = stores.get(bucket, prefix)?;
                    use crate::storage::MediaStore;
                    return match store.head(key).await {
                        Ok(meta) => Ok(format!(
                            "S3 {}: credentials accepted, read {key} ({} bytes)",
                            store.describe(),
                            meta.size
                        )),
                        Err(e @ crate::storage::StorageError::NotFound { .. }) => {
                            Ok(format!("S3 {}: credentials accepted ({e})", store.describe()))
                        }
                        Err(crate::storage::StorageError::Auth { message, .. }) => Err(DownloadError::Auth(format!(
                            "S3 {} refused the credentials: {message}",
                            store.describe()
                        ))),
                        Err(e) => Err(DownloadError::Storage(e)),
                    };
                }
            }
        }
        url = page.next_uri;
    }
    Err(DownloadError::Config(format!(
        "no recording with an S3 media descriptor between {} and {} to check S3 against",
        period.start, period.end
    )))
}

use super::api;
