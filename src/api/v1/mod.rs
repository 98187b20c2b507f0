//! reclife's own API under `/api/v1`: jobs and rules, over `lifecycle::jobs` and
//! `lifecycle::rules`.
//!
//! - `GET /api/v1/jobs?limit=N&after=ID`: job records, oldest first, `limit` (default 100,
//!   at most 1000) after the job `after`; `next` names the `after` of the next page;
//! - `GET /api/v1/jobs/{id}`: one job with its tasks, counts and failed items;
//! - `GET /api/v1/rules`: the rules of `rules_dir`, whether this node runs them, and problems;
//! - `POST /api/v1/rules/validate`: a rule file's TOML text in the body; answers the parsed rule
//!   or every problem with its line (`ops`: checking a backup location probes the disk).
//!
//! Every answer is `{"statusCode":0, …}` like the RWS endpoints, and errors share their envelope.

use super::{ApiFailure, Shared};
use crate::lifecycle::{jobs, rules};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(show_job))
        .route("/api/v1/rules", get(list_rules))
        .route("/api/v1/rules/validate", post(validate_rule))
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

async fn list_rules(State(s): State<Shared>) -> Result<Json<Value>, ApiFailure> {
    let cfg = s.ctx.config.clone();
    let (rs, problems) =
        super::blocking(move || Ok(rules::load_dir(&cfg.rules_dir, cfg.default_backup_location.as_deref(), false)))
            .await?;
    let node = s.ctx.config.node_path.as_deref();
    let list: Vec<Value> = rs.iter().map(|r| json!({ "rule": r, "runs_here": r.runs_on(node) })).collect();
    Ok(Json(json!({ "statusCode": 0, "rules": list, "problems": problems })))
}

async fn validate_rule(State(s): State<Shared>, text: String) -> Result<Json<Value>, ApiFailure> {
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
