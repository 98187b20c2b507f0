//! Purge: delete the selected recordings' metadata and media (and their screen recordings,
//! with `include_screen`), never a held one, each deletion journaled and audited.
//!
//! In: a purge task and where its recordings come from: the task's own filter, or the list a
//! backup of the same rule archived and verified. Out: counts, and the items set aside.

use super::backup::Archived;
use super::journal::{self, Doomed, DoomedMedia, JournalEntry};
use super::{blocking, Failure, LifecycleError, Task};
use crate::catalog::{Catalog, CatalogExt, Entry};
use crate::config::Context;
use crate::progress::Progress;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;

/// Recordings per journal entry.
pub const BATCH: usize = 500;

/// Where a purge's recordings come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The task's own filter, at the task's start time.
    Filter,
    /// Exactly what a backup archived and verified.
    Archived { archive: String, items: Vec<Archived> },
}

/// Who purges, for the journal and the audit log.
#[derive(Debug, Clone)]
pub struct Who {
    pub job: String,
    pub rule: Option<String>,
    pub task: usize,
}

/// What a purge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PurgeOutcome {
    /// Recordings deleted (calls, or screens for a screen task).
    pub deleted: u64,
    /// Screen recordings deleted with their calls.
    pub screens: u64,
    pub media: u64,
    pub bytes: u64,
    /// Held recordings left alone.
    pub held: u64,
    pub failed: Vec<Failure>,
}

fn doomed(e: &Entry, call: Option<&str>) -> Doomed {
    Doomed {
        id: e.recording.id.clone(),
        kind: e.recording.kind,
        call: call.map(str::to_string),
        media: e.recording.media.iter().map(|m| DoomedMedia { media_id: m.media_id.clone(), size: m.size }).collect(),
    }
}

/// Looks up one candidate and the screens that go with it; held ones are counted and left.
fn gather(
    catalog: &dyn Catalog,
    id: &str,
    screens: Option<&[String]>,
    with_screens: bool,
    held: &mut u64,
) -> Result<Vec<Doomed>, LifecycleError> {
    let Some(e) = catalog.get(id)? else { return Ok(Vec::new()) };
    if e.held() {
        *held += 1;
        return Ok(Vec::new());
    }
    let mut out = vec![doomed(&e, None)];
    let screen_ids: Vec<String> = match screens {
        Some(s) => s.to_vec(),
        None if with_screens => catalog.screens_of(id)?.into_iter().map(|r| r.id).collect(),
        None => Vec::new(),
    };
    for s in screen_ids {
        match catalog.get(&s)? {
            Some(se) if se.held() => *held += 1,
            Some(se) => out.push(doomed(&se, Some(id))),
            None => {}
        }
    }
    Ok(out)
}

/// Runs a purge task started at `started`. Progress counts candidates.
pub async fn run_purge(
    ctx: &Context,
    task: &Task,
    started: DateTime<Utc>,
    source: Source,
    who: &Who,
    progress: Arc<dyn Progress>,
) -> Result<PurgeOutcome, LifecycleError> {
    let mut out = PurgeOutcome::default();
    let with_screens = task.include_screen && task.filter.recording_type == crate::model::Kind::Voice;
    let (archive, batches) = match source {
        Source::Archived { archive, items } => (Some(archive), Batches::List(items.into_iter())),
        Source::Filter => {
            let q = super::plan::task_query(ctx, task, started);
            (None, Batches::Query { q: Box::new(q), cursor: Some(crate::catalog::Cursor::start()) })
        }
    };
    let mut batches = batches;
    let mut seq = 0u32;
    loop {
        let catalog = ctx.catalog.clone();
        let (b, doomed, held) = blocking(move || {
            let mut b = batches;
            let mut held = 0;
            let mut doomed = Vec::new();
            for (id, screens) in b.next_batch(catalog.as_ref())? {
                doomed.extend(gather(catalog.as_ref(), &id, screens.as_deref(), with_screens, &mut held)?);
            }
            Ok((b, doomed, held))
        })
        .await?;
        batches = b;
        out.held += held;
        progress.inc(held);
        if doomed.is_empty() {
            if batches.done() {
                break;
            }
            continue;
        }
        seq += 1;
        let entry = JournalEntry {
            id: format!("{}-{seq:06}", who.job),
            job: who.job.clone(),
            rule: who.rule.clone(),
            task: who.task,
            archive: archive.clone(),
            at: ctx.clock.now(),
            items: doomed,
        };
        journal::open(ctx, &entry).await?;
        let r = journal::execute(ctx, &entry, false).await?;
        for d in &r.deleted {
            if d.call.is_some() {
                out.screens += 1;
            } else {
                out.deleted += 1;
                progress.inc(1);
            }
            out.media += d.media.len() as u64;
            out.bytes += d.media.iter().filter_map(|m| m.size).sum::<u64>();
        }
        out.failed.extend(r.failed);
        if batches.done() {
            break;
        }
    }
    Ok(out)
}

/// Candidates in batches: from a list, or from a scroll. Deleting rows the scroll has passed
/// does not disturb it (the cursor is a keyset position, not an offset).
enum Batches {
    List(std::vec::IntoIter<Archived>),
    Query { q: Box<crate::catalog::Query>, cursor: Option<crate::catalog::Cursor> },
}

type Candidate = (String, Option<Vec<String>>);

impl Batches {
    fn done(&self) -> bool {
        match self {
            Batches::List(it) => it.len() == 0,
            Batches::Query { cursor, .. } => cursor.is_none(),
        }
    }

    fn next_batch(&mut self, catalog: &dyn Catalog) -> Result<Vec<Candidate>, LifecycleError> {
        match self {
            Batches::List(it) => Ok(it.by_ref().take(BATCH).map(|a| (a.id, Some(a.screens))).collect()),
            Batches::Query { q, cursor } => {
                let Some(c) = cursor.take() else { return Ok(Vec::new()) };
                let page = catalog.scroll_page(q, &c, BATCH)?;
                *cursor = page.next;
                Ok(page.rows.into_iter().map(|r| (r.id, None)).collect())
            }
        }
    }
}
