//! Plans: what a task would do, computed by scrolling the catalog page by page (memory stays
//! flat however many recordings match). Given a job id, the plan is also written as that job's
//! durable manifest (one row per recording with its screens and the versions seen), page by
//! page while scrolling; execution consumes exactly those rows. A dry run prints the plan and
//! keeps the job as `planned` for `reclife jobs start`.

use super::{blocking, LifecycleError, Op, Task};
use crate::archive::archive_name;
use crate::catalog::{Catalog, CatalogExt, Doom, ManifestRow, Query, RowState};
use crate::config::Context;
use crate::progress::Progress;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// Rows fetched per catalog page.
pub const PAGE: usize = 1000;

/// What one task would do.
#[derive(Debug, Clone, Serialize)]
pub struct TaskPlan {
    /// 1-based position in its rule (1 for a job).
    pub task: usize,
    pub op: Op,
    pub filter: super::Filter,
    pub include_screen: bool,
    /// Selected recordings it would act on (held ones excluded for a purge).
    pub recordings: u64,
    /// Screen recordings taken along with their calls.
    pub screens: u64,
    pub media: u64,
    pub bytes: u64,
    /// Held recordings that match but a purge leaves alone.
    pub held: u64,
    /// Backup: the archive it would write (`<location>/<name>[.zip]`).
    pub destination: Option<String>,
    /// Purge after a backup: it deletes only what that task archived.
    pub after_backup: Option<usize>,
    /// The first recording ids, up to the sample size asked for.
    pub sample: Vec<String>,
    /// Import: the source it runs (it selects nothing in the catalog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A rule's or a job's plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub name: String,
    pub now: DateTime<Utc>,
    pub tasks: Vec<TaskPlan>,
}

/// The archive a backup task started at `started` writes: `(location of its folder, name
/// without .zip)`.
pub fn destination(
    ctx: &Context,
    task: &Task,
    started: DateTime<Utc>,
) -> Result<(crate::storage::Location, String), LifecycleError> {
    let uri = task.location.as_deref().or(ctx.config.default_backup_location.as_deref()).ok_or_else(|| {
        LifecycleError::Location { location: "(none)".into(), why: "no location and no default_backup_location".into() }
    })?;
    let dest = super::rules::check_location(uri, false)
        .map_err(|why| LifecycleError::Location { location: uri.to_string(), why })?;
    let f = &task.filter;
    Ok((dest, archive_name(&ctx.config.tenant, f.recording_type, f.max_age, f.min_age, started)))
}

/// The catalog query of a task on this node at `now`.
pub fn task_query(ctx: &Context, task: &Task, now: DateTime<Utc>) -> Query {
    task.filter.query(now, ctx.config.region.as_deref(), ctx.config.scan_intervals_per_day)
}

/// Plans one task. `after_backup` is the task number of the backup a purge follows. With
/// `manifest = Some(job)`, writes the rows as the manifest of `(job, n)`.
#[allow(clippy::too_many_arguments)]
pub async fn plan_task(
    ctx: &Context,
    n: usize,
    task: &Task,
    now: DateTime<Utc>,
    after_backup: Option<usize>,
    sample: usize,
    progress: Arc<dyn Progress>,
    manifest: Option<&str>,
) -> Result<TaskPlan, LifecycleError> {
    let destination = match task.op {
        Op::Backup => {
            let (dest, name) = destination(ctx, task, now)?;
            let file = if task.zip { format!("{name}.zip") } else { name };
            Some(match dest {
                crate::storage::Location::File(dir) => dir.join(file).display().to_string(),
                remote => format!("{}/{file}", remote.to_string().trim_end_matches('/')),
            })
        }
        Op::Purge | Op::Import => None,
    };
    let empty = TaskPlan {
        task: n,
        op: task.op,
        filter: task.filter.clone(),
        include_screen: task.include_screen,
        recordings: 0,
        screens: 0,
        media: 0,
        bytes: 0,
        held: 0,
        destination,
        after_backup,
        sample: Vec::new(),
        source: task.source.clone(),
    };
    if task.op == Op::Import {
        // An import brings recordings in; it has nothing to select or to write in a manifest.
        return Ok(empty);
    }
    let q = task_query(ctx, task, now);
    let catalog = ctx.catalog.clone();
    let purge = task.op == Op::Purge;
    let screens = task.include_screen && task.filter.recording_type == crate::model::Kind::Voice;
    let mut plan = empty;
    let job = manifest.map(str::to_string);
    let task_no = n as u32;
    blocking(move || {
        let mut seq = 0u64;
        for page in catalog.scroll(&q, PAGE) {
            let page = page?;
            progress.inc(page.rows.len() as u64);
            let mut rows = Vec::with_capacity(page.rows.len());
            let mut linked =
                if screens { catalog.screens_of_calls(&page.rows)? } else { Vec::new() }.into_iter().peekable();
            for row in page.rows {
                let mine: Vec<crate::catalog::Row> =
                    std::iter::from_fn(|| linked.next_if(|(c, _)| *c == row.id)).map(|(_, s)| s).collect();
                if purge && row.held {
                    plan.held += 1;
                    continue;
                }
                plan.recordings += 1;
                plan.media += u64::from(row.media_count);
                plan.bytes += row.bytes;
                let mut m = ManifestRow {
                    seq: 0,
                    id: row.id.clone(),
                    version: row.version,
                    screens: Vec::new(),
                    state: RowState::Planned,
                    archive: None,
                    note: None,
                    bytes: row.bytes,
                };
                for s in mine {
                    if purge && s.held {
                        plan.held += 1;
                        continue;
                    }
                    plan.screens += 1;
                    plan.media += u64::from(s.media_count);
                    plan.bytes += s.bytes;
                    m.bytes += s.bytes;
                    m.screens.push(Doom { id: s.id, version: s.version, parent: None });
                }
                if plan.sample.len() < sample {
                    plan.sample.push(row.id);
                }
                if job.is_some() {
                    seq += 1;
                    m.seq = seq;
                    rows.push(m);
                }
            }
            if let Some(j) = &job {
                catalog.manifest_add(j, task_no, &rows)?;
            }
        }
        Ok(plan)
    })
    .await
}

/// For each enabled rule of this node with a purge task: how many of `ids` that purge would
/// select now (held ones left out). Rules that select none are not listed.
pub async fn purge_rules_matching(
    ctx: &Context,
    ids: &std::collections::HashSet<String>,
) -> Result<Vec<(String, u64)>, LifecycleError> {
    let (rules, _) = super::schedule::node_rules_async(ctx).await?;
    let now = ctx.clock.now();
    let mut out = Vec::new();
    for r in rules {
        for t in r.tasks.iter().filter(|t| t.op == Op::Purge) {
            let (catalog, q, ids) = (ctx.catalog.clone(), task_query(ctx, t, now), ids.clone());
            let n = blocking(move || {
                let mut n = 0u64;
                for page in catalog.scroll(&q, PAGE) {
                    n += page?.rows.iter().filter(|row| !row.held && ids.contains(&row.id)).count() as u64;
                }
                Ok(n)
            })
            .await?;
            if n > 0 {
                out.push((r.name.clone(), n));
            }
        }
    }
    Ok(out)
}

/// Counts what a query matches (the true total for progress bars).
pub async fn count(catalog: Arc<dyn Catalog>, q: Query) -> Result<u64, LifecycleError> {
    blocking(move || Ok(catalog.count(&q)?)).await
}

/// Plans every task of a rule.
pub async fn plan_rule(
    ctx: &Context,
    rule: &super::Rule,
    now: DateTime<Utc>,
    sample: usize,
) -> Result<Plan, LifecycleError> {
    let mut tasks = Vec::new();
    let mut last_backup = None;
    for (i, t) in rule.tasks.iter().enumerate() {
        let after = if t.op == Op::Purge { last_backup } else { None };
        tasks.push(plan_task(ctx, i + 1, t, now, after, sample, Arc::new(crate::progress::NoProgress), None).await?);
        if t.op == Op::Backup {
            last_backup = Some(i + 1);
        }
    }
    Ok(Plan { name: rule.name.clone(), now, tasks })
}

impl std::fmt::Display for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "plan for {} at {}", self.name, self.now.format("%Y-%m-%dT%H:%M:%SZ"))?;
        for t in &self.tasks {
            let what = match t.op {
                Op::Backup => "back up",
                Op::Purge => "purge",
                Op::Import => {
                    writeln!(f, "  task {}: import from source {}", t.task, t.source.as_deref().unwrap_or("?"))?;
                    continue;
                }
            };
            write!(f, "  task {}: {what} {} {} recording(s)", t.task, t.recordings, t.filter.recording_type)?;
            if t.screens > 0 {
                write!(f, " + {} screen recording(s)", t.screens)?;
            }
            write!(f, ", {} media file(s), {} bytes", t.media, t.bytes)?;
            if t.held > 0 {
                write!(f, "; {} held recording(s) left alone", t.held)?;
            }
            if let Some(d) = &t.destination {
                write!(f, "\n    into {d}")?;
            }
            if let Some(b) = t.after_backup {
                write!(f, "\n    deletes only what task {b} archives and verifies")?;
            }
            writeln!(f)?;
            for id in &t.sample {
                writeln!(f, "    {id}")?;
            }
            if (t.sample.len() as u64) < t.recordings && !t.sample.is_empty() {
                writeln!(f, "    … and {} more", t.recordings - t.sample.len() as u64)?;
            }
        }
        Ok(())
    }
}
