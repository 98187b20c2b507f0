//! `reclife check` (in the spirit of `restic check`): verifies, after any run, the invariants
//! the lifecycle engine promises, and with `repair` puts right what can be put right safely.
//!
//! Findings:
//! - `orphan-media`: a stored media file that no document points at (its recording is gone,
//!   or its document does not list it), that no open purge will delete, that no live writer
//!   is storing (no intent names its recording, [`crate::ingest::intent`]) and that is older
//!   than `orphan_grace_seconds`. Media a writer is storing, or younger than the grace (an
//!   upload of a writer that announces nothing, such as a Recording Processor before its
//!   `/internal-api` call), is not a problem: the report counts it as `in_flight`;
//! - `missing-media`: a document pointing at a media file the store does not have;
//! - `open-journal`: a purge journal entry no live process is executing;
//! - `open-manifest`: plan rows of a job that is not planned and not running;
//! - `invalid-plan`: a planned job whose tasks fail the task check ([`super::validate`]; a plan
//!   an older build stored): it can never start; repair cancels it and drops its plan;
//! - `stale-job`: a job marked running whose process is gone;
//! - `stale-lease`: an expired lease;
//! - `temp-file`: a leftover temporary file (media store puts, backup `.part` files of dead
//!   processes);
//! - `outbox`: purge notifications not yet delivered;
//! - `open-remote-folder`: a folder backup to S3 or WebDAV whose process died mid-way, its
//!   partial folder still under its final name (repair, or the next remote backup, removes it);
//! - `audit-line`: a line of `audit/deletions.jsonl` that is not a whole audit record (a write
//!   torn by a crash; the interrupted purge's recovery cuts it off and writes it whole), or of
//!   `audit/plays.jsonl`, the playback audit log (its next append cuts it off);
//! - `unknown-state`: catalog state in a namespace the registry
//!   ([`crate::catalog::namespaces`]) does not know (written by another version of reclife):
//!   nothing here reads it and `catalog migrate` refuses to leave it behind. Needs a person.
//!
//! Repair removes an orphan only after looking again, right before deleting it, first for a
//! live writer's intent and then for a document that lists it (in that order: a writer that
//! wrote its document and let go is seen by the second look), and never while a purge
//! journal names it; it finishes open journal entries, marks stale jobs,
//! drops orphaned manifests, breaks expired leases and removes leftover temporary files.
//! `missing-media` is never "repaired": it needs a person (restore from a backup).

use super::{blocking, jobs, journal, LifecycleError};
use crate::config::Context;
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: &'static str,
    pub item: String,
    pub detail: String,
    /// True when `--repair` put it right.
    pub repaired: bool,
}

/// What a check found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub recordings: u64,
    pub media_objects: u64,
    /// Media objects no document lists yet that a live writer is storing, or that are
    /// younger than `orphan_grace_seconds`: not problems (see the module doc).
    pub in_flight: u64,
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Findings that are still there.
    pub fn unrepaired(&self) -> usize {
        self.findings.iter().filter(|f| !f.repaired).count()
    }
    fn add(&mut self, kind: &'static str, item: impl Into<String>, detail: impl Into<String>, repaired: bool) {
        self.findings.push(Finding { kind, item: item.into(), detail: detail.into(), repaired });
    }
}

/// Runs every check; with `repair`, repairs what is safe to repair.
pub async fn run(ctx: &Context, repair: bool) -> Result<CheckReport, LifecycleError> {
    let mut rep = CheckReport::default();
    // Journals first: a repair finishes them, which may remove media the other checks see.
    check_journal(ctx, repair, &mut rep).await?;
    check_audit(ctx, &mut rep).await?;
    check_remote_folders(ctx, repair, &mut rep).await?;
    check_jobs(ctx, repair, &mut rep).await?;
    check_plans(ctx, repair, &mut rep).await?;
    check_state(ctx, &mut rep).await?;
    let pending = pending_media(ctx).await?;
    check_media(ctx, repair, &pending, &mut rep).await?;
    check_documents(ctx, &mut rep).await?;
    check_leases(ctx, repair, &mut rep).await?;
    check_temp(ctx, repair, &mut rep)?;
    let n = super::outbox::pending(ctx).await?;
    if n > 0 {
        let left = if repair { super::outbox::deliver(ctx).await } else { n };
        rep.add("outbox", format!("{n} notification(s)"), "purge notifications not yet delivered", left == 0);
    }
    Ok(rep)
}

async fn check_journal(ctx: &Context, repair: bool, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let catalog = ctx.catalog.clone();
    let now = chrono::Utc::now();
    let open = blocking(move || {
        let mut out = Vec::new();
        for (k, _) in catalog.state_list(journal::NAMESPACE)? {
            let name = journal::lease_name(&k);
            let live = catalog.lease_list(&name)?.iter().any(|l| l.name == name && super::lease::is_live(l, now));
            if !live {
                out.push(k);
            }
        }
        Ok(out)
    })
    .await?;
    if open.is_empty() {
        return Ok(());
    }
    if repair {
        journal::recover(ctx).await?;
    }
    let catalog = ctx.catalog.clone();
    let still: HashSet<String> =
        blocking(move || Ok(catalog.state_list(journal::NAMESPACE)?)).await?.into_iter().map(|(k, _)| k).collect();
    for k in open {
        let fixed = repair && !still.contains(&k);
        rep.add("open-journal", k, "a purge batch was interrupted (the next task finishes it)", fixed);
    }
    Ok(())
}

async fn check_audit(ctx: &Context, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let path = journal::audit_path(ctx);
    let p = path.clone();
    let broken = blocking(move || journal::broken_audit_lines(&p)).await?;
    for n in broken {
        rep.add("audit-line", format!("{}:{n}", path.display()), "not a whole audit record (torn by a crash)", false);
    }
    // The playback audit log, likewise (its next append cuts a torn last line).
    let path = crate::playback::plays_path(ctx);
    let p = path.clone();
    let broken = blocking(move || crate::playback::broken_play_lines(&p)).await?;
    for n in broken {
        rep.add(
            "audit-line",
            format!("{}:{n}", path.display()),
            "not a whole playback audit record (torn by a crash)",
            false,
        );
    }
    Ok(())
}

async fn check_remote_folders(ctx: &Context, repair: bool, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let open = super::remote_dir::abandoned(ctx).await?;
    if open.is_empty() {
        return Ok(());
    }
    if repair {
        super::remote_dir::recover(ctx).await?;
    }
    let left: HashSet<String> = super::remote_dir::abandoned(ctx).await?.into_iter().map(|(k, _)| k).collect();
    for (k, n) in open {
        rep.add(
            "open-remote-folder",
            format!("{}/{}", n.location, n.folder),
            "a folder backup died mid-way; its partial folder is removed by the next remote backup or --repair",
            repair && !left.contains(&k),
        );
    }
    Ok(())
}

/// State in namespaces the registry does not know.
async fn check_state(ctx: &Context, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let catalog = ctx.catalog.clone();
    for ns in blocking(move || Ok(catalog.state_namespaces()?)).await? {
        if crate::catalog::namespaces::find(&ns).is_none() {
            rep.add(
                "unknown-state",
                ns,
                "catalog state this reclife does not know (another version wrote it); `catalog migrate` refuses to leave it behind",
                false,
            );
        }
    }
    Ok(())
}

async fn check_jobs(ctx: &Context, repair: bool, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let catalog = ctx.catalog.clone();
    let now = chrono::Utc::now();
    let (stale, manifests) = blocking(move || {
        let mut stale = Vec::new();
        for (id, _) in catalog.state_list(jobs::RUNNING)? {
            let name = jobs::lease_name(&id);
            if !catalog.lease_list(&name)?.iter().any(|l| l.name == name && super::lease::is_live(l, now)) {
                stale.push(id);
            }
        }
        Ok((stale, catalog.manifest_jobs()?))
    })
    .await?;
    let reaped: HashSet<String> =
        if repair && !stale.is_empty() { jobs::reap(ctx).await?.into_iter().collect() } else { HashSet::new() };
    for id in &stale {
        rep.add("stale-job", id.clone(), "marked running, but its process is gone", reaped.contains(id));
    }
    for id in manifests {
        if stale.contains(&id) {
            continue;
        }
        let state = match jobs::load(ctx, &id).await {
            Ok(j) => Some(j.state),
            Err(LifecycleError::NoJob(_)) => None,
            Err(e) => return Err(e),
        };
        if matches!(state, Some(jobs::JobState::Planned) | Some(jobs::JobState::Running)) {
            continue;
        }
        let mut fixed = false;
        if repair {
            let (catalog, j) = (ctx.catalog.clone(), id.clone());
            blocking(move || Ok(catalog.manifest_drop(&j)?)).await?;
            fixed = true;
        }
        rep.add("open-manifest", id, "plan rows of a job that is neither planned nor running", fixed);
    }
    Ok(())
}

/// Planned jobs whose tasks fail the task check: `runner::claim` refuses to start them (a plan
/// an older build stored, or written by hand); repair cancels them and drops their plans.
async fn check_plans(ctx: &Context, repair: bool, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let mut planned = Vec::new();
    jobs::for_each(ctx, |j| {
        if j.state == jobs::JobState::Planned {
            planned.push(j);
        }
    })
    .await?;
    for job in planned {
        if let Err(LifecycleError::Invalid(problems)) = super::runner::check(ctx, &job.spec, false) {
            let mut fixed = false;
            if repair {
                fixed = super::runner::request_cancel(ctx, &job.id).await?.state == jobs::JobState::Cancelled;
            }
            let why = super::validate::describe(&problems).replace('\n', "; ");
            rep.add("invalid-plan", job.id, format!("a planned job that can never start: {why}"), fixed);
        }
    }
    Ok(())
}

/// `(recording, mediaId)` pairs that an open purge journal entry will delete.
async fn pending_media(ctx: &Context) -> Result<HashSet<(String, String)>, LifecycleError> {
    let catalog = ctx.catalog.clone();
    let open = blocking(move || Ok(catalog.state_list(journal::NAMESPACE)?)).await?;
    let mut out = HashSet::new();
    for (_, text) in open {
        if let Ok(e) = serde_json::from_str::<journal::JournalEntry>(&text) {
            for d in e.items {
                for m in d.media {
                    out.insert((d.id.clone(), m.media_id));
                }
            }
        }
    }
    Ok(out)
}

/// Is `media_id` of `recording` referenced by a document in the catalog?
fn referenced(catalog: &dyn crate::catalog::Catalog, recording: &str, media_id: &str) -> Result<bool, LifecycleError> {
    Ok(catalog.get(recording)?.is_some_and(|e| e.recording.media.iter().any(|m| m.media_id == media_id)))
}

async fn check_media(
    ctx: &Context,
    repair: bool,
    pending: &HashSet<(String, String)>,
    rep: &mut CheckReport,
) -> Result<(), LifecycleError> {
    let objects = ctx.media.list(None).await?;
    rep.media_objects = objects.len() as u64;
    let catalog = ctx.catalog.clone();
    let writing = blocking(move || Ok(crate::ingest::intent::live(catalog.as_ref())?)).await?;
    let grace = std::time::Duration::from_secs(ctx.config.orphan_grace_seconds);
    for o in objects {
        let segs: Vec<&str> = o.key.segments().collect();
        let (rec, media_id) = match segs.as_slice() {
            [r, m] => (r.to_string(), m.to_string()),
            _ => {
                rep.add("orphan-media", o.key.to_string(), "not in the <recording>/<mediaId> layout", false);
                continue;
            }
        };
        if pending.contains(&(rec.clone(), media_id.clone())) {
            continue;
        }
        let catalog = ctx.catalog.clone();
        let (r2, m2) = (rec.clone(), media_id.clone());
        if blocking(move || referenced(catalog.as_ref(), &r2, &m2)).await? {
            continue;
        }
        if writing.contains(&rec) || o.age().is_some_and(|a| a < grace) {
            rep.in_flight += 1;
            continue;
        }
        let mut fixed = false;
        if repair {
            // Look again right before deleting: a writer may have started since (its intent),
            // or just written its document and let go (the document, looked at second).
            let catalog = ctx.catalog.clone();
            let (r2, m2) = (rec.clone(), media_id.clone());
            let still_orphan = blocking(move || {
                Ok(!crate::ingest::intent::is_live(catalog.as_ref(), &r2)? && !referenced(catalog.as_ref(), &r2, &m2)?)
            })
            .await?;
            if still_orphan {
                match ctx.media.delete(&o.key).await {
                    Ok(()) | Err(crate::storage::StorageError::NotFound { .. }) => fixed = true,
                    Err(e) => tracing::warn!(key = %o.key, error = %e, "cannot remove orphan media"),
                }
            } else {
                continue;
            }
        }
        rep.add("orphan-media", o.key.to_string(), format!("{} bytes that no document points at", o.size), fixed);
    }
    Ok(())
}

async fn check_documents(ctx: &Context, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let catalog = ctx.catalog.clone();
    let c = ctx.clone();
    let any_in_place = blocking(move || Ok(crate::ingest::in_place::any(&c)?)).await?;
    let q = crate::catalog::Query::default();
    let mut cursor = Some(crate::catalog::Cursor::start());
    while let Some(c) = cursor.take() {
        let (cat, q2) = (catalog.clone(), q.clone());
        let page = blocking(move || Ok(cat.scroll_page(&q2, &c, 1000)?)).await?;
        cursor = page.next;
        rep.recordings += page.rows.len() as u64;
        for row in page.rows {
            let cat = catalog.clone();
            let id = row.id.clone();
            let Some(e) = blocking(move || Ok(cat.get(&id)?)).await? else { continue };
            let placed = if any_in_place {
                let (c, id) = (ctx.clone(), row.id.clone());
                blocking(move || Ok(crate::ingest::in_place::placed(&c, &id)?)).await?
            } else {
                Default::default()
            };
            for m in &e.recording.media {
                let (store, key) = match crate::ingest::in_place::locate_in(ctx, &placed, &row.id, &m.media_id) {
                    Ok(k) => k,
                    Err(err) => {
                        rep.add("missing-media", format!("{}/{}", row.id, m.media_id), err.to_string(), false);
                        continue;
                    }
                };
                if let Err(err) = store.head(&key).await {
                    rep.add("missing-media", key.to_string(), format!("the document points at it: {err}"), false);
                }
            }
        }
    }
    Ok(())
}

async fn check_leases(ctx: &Context, repair: bool, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    let catalog = ctx.catalog.clone();
    let now = chrono::Utc::now();
    let stale =
        blocking(move || Ok(catalog.lease_list("")?.into_iter().filter(|l| l.until <= now).collect::<Vec<_>>()))
            .await?;
    for l in stale {
        let mut fixed = false;
        if repair {
            let (catalog, n) = (ctx.catalog.clone(), l.name.clone());
            fixed = blocking(move || Ok(super::lease::break_expired(catalog.as_ref(), &n)?)).await?;
        }
        rep.add("stale-lease", l.name, format!("held by {} until {}", l.holder, l.until.to_rfc3339()), fixed);
    }
    Ok(())
}

/// Folders where temporary files may be left: the local media store's, and every backup
/// location of the node's rules.
fn temp_places(ctx: &Context) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let d = ctx.media.describe();
    if let Some(root) = d.strip_prefix("file://") {
        out.push(Path::new(root).join(".reclife-tmp"));
    }
    let rules = super::rule_store::load(ctx.catalog.as_ref(), ctx.config.default_backup_location.as_deref())
        .map(|(r, _)| r)
        .unwrap_or_default();
    let mut locs: Vec<String> =
        rules.iter().flat_map(|(r, _)| r.tasks.iter().filter_map(|t| t.location.clone())).collect();
    locs.extend(ctx.config.default_backup_location.clone());
    for l in locs {
        if let Some(p) = super::rules::local_dir(&l) {
            out.push(p);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The pid in a backup's temporary name `.<name>.<pid>.part`.
fn part_pid(name: &str) -> Option<u32> {
    let stem = name.strip_prefix('.')?.strip_suffix(".part")?;
    stem.rsplit('.').next()?.parse().ok()
}

/// Removes backup `.part` files in `dir` left by processes that no longer run; returns how
/// many. Backups call it at task start, so a crash never leaves them for good.
pub fn remove_dead_parts(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if part_pid(&name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let p = e.path();
            let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            match r {
                Ok(()) => {
                    tracing::info!(file = %p.display(), "removed a partial archive left by a process that stopped");
                    n += 1;
                }
                Err(err) => tracing::warn!(file = %p.display(), error = %err, "cannot remove a stale partial archive"),
            }
        }
    }
    n
}

fn check_temp(ctx: &Context, repair: bool, rep: &mut CheckReport) -> Result<(), LifecycleError> {
    for dir in temp_places(ctx) {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let media_tmp = dir.ends_with(".reclife-tmp");
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let path = e.path();
            let leftover = if media_tmp {
                // A put in progress is seconds old; an hour-old one belongs to a dead process.
                e.metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|a| a > std::time::Duration::from_secs(3600))
            } else {
                part_pid(&name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
            };
            if !leftover {
                continue;
            }
            let mut fixed = false;
            if repair {
                let r = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                fixed = r.is_ok();
            }
            rep.add("temp-file", path.display().to_string(), "left by a process that stopped", fixed);
        }
    }
    Ok(())
}
