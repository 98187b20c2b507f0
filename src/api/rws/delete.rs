//! `DELETE /api/v2/recordings/{id}` and `DELETE /api/v2/screen-recordings/{id}`: one recording
//! deleted the way a purge deletes, journaled and audited.
//!
//! A call goes with its screen recordings. Nothing is deleted when the recording, or one of
//! those screens, is held (`nonDelete` or a hold): 409, naming it. The deletion is one purge
//! journal entry (`lifecycle::journal`), so a crash midway is finished by the next run, and
//! `<data dir>/audit/deletions.jsonl` gets one line per recording with job `api:<user>`.
//!
//! This composes public lifecycle calls (journal open and execute); when `lifecycle::purge`
//! gains a single-recording delete, this should call it instead.

use super::super::auth::Caller;
use super::super::{blocking, ApiFailure, Shared};
use crate::catalog::Entry;
use crate::lifecycle::journal::{self, Doomed, DoomedMedia, JournalEntry};
use crate::model::Kind;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

fn doomed(e: &Entry, call: Option<&str>) -> Doomed {
    Doomed {
        id: e.recording.id.clone(),
        // Deleted only if still at the version read here, and not held, in the deleting
        // transaction: a hold or an edit that lands in between wins.
        version: e.version,
        kind: e.recording.kind,
        call: call.map(str::to_string),
        media: e.recording.media.iter().map(|m| DoomedMedia { media_id: m.media_id.clone(), size: m.size }).collect(),
    }
}

/// The recording and, for a call, its screens; refused when any of them is held.
fn gather(s: &Shared, id: &str, kind: Kind) -> Result<Vec<Doomed>, ApiFailure> {
    let catalog = s.ctx.catalog.as_ref();
    let what = if kind == Kind::Voice { "recording" } else { "screen recording" };
    let e = match catalog.get(id)? {
        Some(e) if e.recording.kind == kind => e,
        _ => return Err(ApiFailure::not_found(format!("no {what} {id}"))),
    };
    let held = |e: &Entry| match &e.hold {
        Some(h) => format!("it is held ({})", h.reason),
        None => "its metadata says nonDelete".to_string(),
    };
    if e.held() {
        return Err(ApiFailure::conflict(format!("{what} {id} is not deleted: {}", held(&e))));
    }
    let mut out = vec![doomed(&e, None)];
    if kind == Kind::Voice {
        for row in catalog.screens_of(id)? {
            let Some(se) = catalog.get(&row.id)? else { continue };
            if se.held() {
                return Err(ApiFailure::conflict(format!(
                    "recording {id} is not deleted: its screen recording {} is protected: {}",
                    row.id,
                    held(&se)
                )));
            }
            out.push(doomed(&se, Some(id)));
        }
    }
    Ok(out)
}

async fn delete(s: Shared, caller: Caller, id: String, kind: Kind) -> Result<Json<Value>, ApiFailure> {
    let s2 = s.clone();
    let id2 = id.clone();
    let items = blocking(move || gather(&s2, &id2, kind)).await?;
    let now = s.ctx.clock.now();
    let entry = JournalEntry {
        id: format!("{}-api", crate::lifecycle::jobs::new_id(now)),
        job: format!("api:{}", caller.user),
        rule: None,
        task: 0,
        archive: None,
        at: now,
        items,
    };
    let claim = crate::lifecycle::lease::Held::take(
        s.ctx.catalog.clone(),
        &journal::lease_name(&entry.id),
        s.ctx.config.lease_seconds,
    )
    .await?
    .ok_or_else(|| ApiFailure::internal(format!("journal entry {} is claimed elsewhere", entry.id)))?;
    journal::open(&s.ctx, &entry).await?;
    let done = journal::execute(&s.ctx, &entry, false).await?;
    drop(claim);
    if let Some(k) = done.skipped.first() {
        return Err(ApiFailure::conflict(format!("{} was not deleted: {}", k.item, k.reason)));
    }
    if let Some(f) = done.failed.first() {
        return Err(ApiFailure::internal(format!(
            "deleting {}: {} (the journal entry {} stays open; the next run finishes it)",
            f.item, f.reason, entry.id
        )));
    }
    tracing::info!(recording = %id, user = %caller.user, journal = %entry.id, "deleted through the API");
    let ids: Vec<&str> = done.deleted.iter().map(|d| d.id.as_str()).collect();
    Ok(Json(json!({ "statusCode": 0, "deleted": ids })))
}

pub async fn delete_call(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    delete(s, c, id, Kind::Voice).await
}

pub async fn delete_screen(
    State(s): State<Shared>,
    Extension(c): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    delete(s, c, id, Kind::Screen).await
}
