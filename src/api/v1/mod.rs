//! reclife's own API under `/api/v1`: jobs and rules, over `lifecycle::jobs` and
//! `lifecycle::rules`.
//!
//! - `GET /api/v1/jobs?limit=N&after=ID`: job records, oldest first, `limit` (default 100,
//!   at most 1000) after the job `after`; `next` names the `after` of the next page;
//! - `GET /api/v1/jobs/{id}`: one job with its tasks, counts, failed and skipped items;
//! - `POST /api/v1/jobs` (`ops`): plans a job and keeps it `planned` (its manifest in the
//!   catalog), answering the plan (counts, bytes, held left alone, a sample of ids). The body is
//!   `{"rule":"<name>"}` (that rule's tasks) or `{"tasks":[{"type":"backup"|"purge",
//!   "filter":{…}, "include_screen":…, "location":…, "zip":…, "on_failure":…}]}`, the fields of
//!   a rule file's tasks, checked by the one check of every face (`lifecycle::validate`): a
//!   purge is last and alone, has the filter of the backup before it, and needs `min_age` of 1
//!   or more unless `"all_ages": true` (in the task, or in the body for every purge) confirms a
//!   purge of every age;
//! - `POST /api/v1/jobs/{id}/start` (`ops`): executes exactly that plan in the background (202);
//!   follow it with `GET /api/v1/jobs/{id}`;
//! - `POST /api/v1/jobs/{id}/cancel` (`ops`): drops a planned job, or stops a running one at its
//!   next safe point;
//! - `GET /api/v1/jobs/{id}/events`: the job's live progress as server-sent events;
//! - `GET /api/v1/rules`, `GET /api/v1/rules/{name}`: the rules every node shares (kept in the
//!   catalog, `lifecycle::rule_store`), each with its latest version (who, when, from where; one
//!   rule also with its text and every version), the operator override of each
//!   (`POST /api/v1/rules/{name}/enable|disable|reset`, `ops`), whether this node runs them, and
//!   the problems (stored rules that no longer validate, this node's rule files left out);
//! - `PUT /api/v1/rules/{name}` (`ops`): `{"text":"<a rule file's TOML>"}` or `{"rule":{<the
//!   same fields as JSON>}}`, validated as `rules validate` does; a changed rule is a new
//!   version (`outcome`: created, updated, unchanged); problems are a 400 naming each line;
//! - `DELETE /api/v1/rules/{name}` (`ops`): a tombstone version naming the caller; every node
//!   stops the rule at its next poll;
//! - `POST /api/v1/rules/validate`: `{"text":"<a rule file's TOML>"}`; answers the parsed rule
//!   or every problem with its line (`ops`: checking a backup location probes the disk). A POST
//!   like every other, so JSON like every other ([`crate::api::origin`]);
//! - `GET /api/v1/muxer`, `POST /api/v1/muxer/retry/{screen}` (`ops`): the muxer's pairs;
//! - `GET /api/v1/check` (`ops`): what `reclife check` finds; `POST /api/v1/check/repair`
//!   (`ops`): `reclife check --repair` (a GET never repairs: `?repair=` is a 400);
//! - `GET /api/v1/import/sources`, `GET /api/v1/import/sources/{name}`: each import source's
//!   cursor, retry buffer, last batch, alerts and totals (`import::status`);
//!   `POST /api/v1/import/sources/{name}/cursor` `{"cursor":"id;yyyy.MM.dd HH:mm:ss.SSS"}`,
//!   `POST …/retry` `{"conversation_id":…}`, `DELETE …/retry/{conversation}` (`ops`): the calls
//!   `reclife import cursor|retry` makes;
//! - `GET /api/v1/openapi.json`: the OpenAPI document of every route.
//!
//! Holds and labels are the RWS paths (`/api/v2/recordings/{id}/hold`, `…/labels`).
//!
//! Every answer is `{"statusCode":0, …}` like the RWS endpoints, and errors share their envelope.
//! Every POST says `Content-Type: application/json`, with an empty body (or any JSON, ignored)
//! where the route reads none.

pub(crate) mod import;
pub(crate) mod ops;

use super::{ApiFailure, Shared};
use crate::lifecycle::{jobs, rules, runner, Filter, OnFailure, Op, Task};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs).post(create_job))
        .route("/api/v1/jobs/{id}", get(show_job))
        .route("/api/v1/jobs/{id}/start", post(start_job))
        .route("/api/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/api/v1/jobs/{id}/events", get(ops::job_events))
        .route("/api/v1/rules", get(ops::list_rules))
        .route("/api/v1/rules/validate", post(validate_rule))
        .route("/api/v1/rules/{name}", get(ops::show_rule).put(ops::put_rule).delete(ops::delete_rule))
        .route("/api/v1/rules/{name}/enable", post(ops::enable_rule))
        .route("/api/v1/rules/{name}/disable", post(ops::disable_rule))
        .route("/api/v1/rules/{name}/reset", post(ops::reset_rule))
        .route("/api/v1/muxer", get(ops::muxer_status))
        .route("/api/v1/muxer/retry/{screen}", post(ops::muxer_retry))
        .route("/api/v1/check", get(ops::run_check))
        .route("/api/v1/check/repair", post(ops::repair_check))
        .route("/api/v1/import/sources", get(import::list))
        .route("/api/v1/import/sources/{name}", get(import::show))
        .route("/api/v1/import/sources/{name}/cursor", post(import::set_cursor))
        .route("/api/v1/import/sources/{name}/retry", post(import::retry_add))
        .route("/api/v1/import/sources/{name}/retry/{conversation}", axum::routing::delete(import::retry_remove))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsPage {
    limit: Option<usize>,
    after: Option<String>,
}

async fn list_jobs(
    State(s): State<Shared>,
    q: Result<Query<JobsPage>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiFailure> {
    let Query(p) = q.map_err(|e| ApiFailure::bad_request(e.body_text()))?;
    let limit = match p.limit {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(n) => return Err(ApiFailure::bad_request(format!("limit={n}: expected 1 to 1000"))),
    };
    if let Some(a) = p.after.as_deref().filter(|a| a.len() > 256) {
        return Err(ApiFailure::bad_request(format!("after is {} bytes long; a job id is at most 256", a.len())));
    }
    // Job ids sort by creation time; the catalog pages them in id order (one more than asked
    // tells whether there is a next page).
    let mut page = jobs::page(&s.ctx, p.after.as_deref(), limit + 1).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let mut body = json!({ "statusCode": 0, "jobs": page });
    if more {
        if let Some(last) = page.last() {
            body["next"] = Value::String(last.id.clone());
        }
    }
    Ok(Json(body))
}

async fn show_job(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiFailure> {
    let j = jobs::load(&s.ctx, &id).await?;
    Ok(Json(json!({ "statusCode": 0, "job": j })))
}

/// The body of `POST /api/v1/rules/validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateBody {
    /// A rule file's TOML text.
    text: String,
}

async fn validate_rule(State(s): State<Shared>, body: String) -> Result<Json<Value>, ApiFailure> {
    let ValidateBody { text } = serde_json::from_str(&body)
        .map_err(|e| ApiFailure::bad_request(format!("request body: {e}; expected {{\"text\": \"<rule file>\"}}")))?;
    let default = s.ctx.config.default_backup_location.clone();
    let res = super::blocking(move || {
        Ok(rules::parse_rule(std::path::Path::new("(request body)"), &text, default.as_deref(), true))
    })
    .await?;
    Ok(Json(match res {
        Ok(rule) => json!({ "statusCode": 0, "valid": true, "rule": rule, "problems": [] }),
        Err(problems) => json!({ "statusCode": 0, "valid": false, "problems": problems }),
    }))
}

/// A task as a client posts it: a rule file's task fields. The operators' pages build one from
/// their form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTask {
    #[serde(rename = "type")]
    pub op: Op,
    #[serde(default)]
    pub filter: Filter,
    #[serde(default)]
    pub include_screen: bool,
    #[serde(default)]
    pub on_failure: OnFailure,
    pub location: Option<String>,
    pub zip: Option<bool>,
    #[serde(default)]
    pub use_full_path: bool,
    /// Confirms a purge of every age (`min_age` unset or 0).
    #[serde(default)]
    pub all_ages: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewJob {
    pub rule: Option<String>,
    pub tasks: Option<Vec<NewTask>>,
    /// Confirms a purge of every age for every purge task of the job.
    #[serde(default)]
    pub all_ages: bool,
}

/// The tasks of a posted job, checked by the one check every face uses
/// ([`crate::lifecycle::validate::check_tasks`], inside [`runner::plan_job`]).
fn job_tasks(s: &Shared, body: NewJob) -> Result<(Option<String>, Vec<Task>), ApiFailure> {
    let tasks = match (body.rule, body.tasks) {
        (Some(name), None) => {
            let (all, _) = crate::lifecycle::rule_store::load(
                s.ctx.catalog.as_ref(),
                s.ctx.config.default_backup_location.as_deref(),
            )?;
            let (r, _) = all
                .into_iter()
                .find(|(r, _)| r.name == name)
                .ok_or_else(|| ApiFailure::not_found(format!("no rule {name}")))?;
            return Ok((Some(r.name), r.tasks));
        }
        (None, Some(t)) if !t.is_empty() => t,
        _ => return Err(ApiFailure::bad_request("give either \"rule\" or a non-empty \"tasks\"")),
    };
    let mut out = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.into_iter().enumerate() {
        if t.op == Op::Purge && t.zip.is_some() {
            return Err(ApiFailure::bad_request(format!(
                "task {}: {}",
                i + 1,
                crate::lifecycle::validate::BACKUP_ONLY
            )));
        }
        out.push(Task {
            op: t.op,
            filter: t.filter,
            include_screen: t.include_screen,
            on_failure: t.on_failure,
            location: t.location,
            zip: t.zip.unwrap_or(true),
            use_full_path: t.use_full_path,
            all_ages: t.all_ages || (body.all_ages && t.op == Op::Purge),
            source: None,
        });
    }
    Ok((None, out))
}

async fn create_job(State(s): State<Shared>, body: String) -> Result<Json<Value>, ApiFailure> {
    // Parsed here rather than by axum's `Json`, so that any bad body is a 400 in the envelope,
    // naming the problem (the Content-Type was checked by `api::origin`).
    let body: NewJob =
        serde_json::from_str(&body).map_err(|e| ApiFailure::bad_request(format!("request body: {e}")))?;
    let (job, plan) = plan_new(&s, body).await?;
    Ok(Json(json!({ "statusCode": 0, "job": job, "plan": plan })))
}

/// Checks a posted job, plans it and keeps it `planned` (`POST /api/v1/jobs`, and the
/// operators' plan form). Returns the job and its plan (a sample of 20 ids per task).
pub(crate) async fn plan_new(
    s: &Shared,
    body: NewJob,
) -> Result<(jobs::JobRecord, crate::lifecycle::plan::Plan), ApiFailure> {
    let s2 = s.clone();
    let (rule, tasks) = super::blocking(move || job_tasks(&s2, body)).await?;
    let kind = match (&rule, tasks.as_slice()) {
        (Some(_), _) => "rule",
        (None, [t]) if t.op == Op::Backup => "backup",
        (None, [t]) if t.op == Op::Purge => "purge",
        _ => "job",
    };
    let mut job = jobs::JobRecord::new(kind, rule.as_deref(), s.ctx.clock.now());
    job.spec = tasks;
    let plan = runner::plan_job(&s.ctx, &mut job, 20, true).await?;
    Ok((job, plan))
}

async fn start_job(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Value>), ApiFailure> {
    start_planned(&s, &id).await?;
    Ok((axum::http::StatusCode::ACCEPTED, Json(json!({ "statusCode": 0, "job": id, "state": "running" }))))
}

/// Executes exactly the plan of the planned job `id` in the background, as a job this server
/// waits for at shutdown (`POST /api/v1/jobs/{id}/start`, and the operators' Start button).
/// The job is claimed before the answer ([`runner::claim`]: its lease taken, its record read
/// again), so of concurrent starts one answers 202 and the others 409, and a job that is not
/// `planned` (or whose tasks fail the task check) is refused here, not in the background.
pub(crate) async fn start_planned(s: &Shared, id: &str) -> Result<(), ApiFailure> {
    let job = jobs::load(&s.ctx, id).await?;
    let claimed = runner::claim(&s.ctx, job).await?;
    let ctx = s.ctx.clone();
    let cancel = s.stop.child_token();
    s.jobs.spawn(async move {
        let guard = crate::lifecycle::guard::OverlapGuard::new();
        let progress = runner::no_progress();
        match runner::run_claimed(&ctx, claimed, &guard, progress.as_ref(), cancel).await {
            Ok(j) => tracing::info!(job = %j.id, state = %j.state, "job started through the API ended"),
            Err(e) => tracing::error!(error = %e, "job started through the API failed"),
        }
    });
    Ok(())
}

async fn cancel_job(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiFailure> {
    let j = runner::request_cancel(&s.ctx, &id).await?;
    let what = match j.state {
        jobs::JobState::Cancelled => "cancelled; its plan is dropped",
        jobs::JobState::Running => "asked to stop at its next safe point",
        _ => "already ended; nothing to cancel",
    };
    Ok(Json(json!({ "statusCode": 0, "job": id, "state": j.state, "message": what })))
}
