//! The operator endpoints of `/api/v1` beyond jobs: one rule, its enable/disable override, the
//! muxer's status and retries, `reclife check` (a GET reads, a POST repairs), and a job's live
//! progress stream.

use super::super::{blocking, ApiFailure, Shared};
use crate::lifecycle::{check, jobs, rules};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

/// The rules of `rules_dir` with the operators' overrides applied (`rules::apply_overrides`, as
/// the scheduler does), the files' problems, and which rules are overridden.
pub(crate) type Loaded = (Vec<rules::Rule>, Vec<rules::RuleProblem>, std::collections::BTreeMap<String, bool>);

pub(crate) async fn load(s: &Shared) -> Result<Loaded, ApiFailure> {
    let (cfg, catalog) = (s.ctx.config.clone(), s.ctx.catalog.clone());
    blocking(move || {
        let (mut rs, problems) = rules::load_dir(&cfg.rules_dir, cfg.default_backup_location.as_deref(), false);
        rules::apply_overrides(catalog.as_ref(), &mut rs)?;
        Ok((rs, problems, rules::overrides(catalog.as_ref())?))
    })
    .await
}

/// A rule as the API shows it: the rule (with `enabled` as in force), the operator's override if
/// any, and whether this node runs it.
fn rule_json(s: &Shared, r: &rules::Rule, overrides: &std::collections::BTreeMap<String, bool>) -> Value {
    let runs_here = r.runs_on(s.ctx.config.node_path.as_deref());
    json!({ "rule": r, "override": overrides.get(&r.name), "runs_here": runs_here })
}

/// Every rule of `rules_dir` with its override, and the files' problems.
pub async fn list_rules(State(s): State<Shared>) -> Result<Json<Value>, ApiFailure> {
    let (rs, problems, o) = load(&s).await?;
    let list: Vec<Value> = rs.iter().map(|r| rule_json(&s, r, &o)).collect();
    Ok(Json(json!({ "statusCode": 0, "rules": list, "problems": problems })))
}

/// `GET /api/v1/rules/{name}`.
pub async fn show_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    let (rs, _, o) = load(&s).await?;
    let rule = rs
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| ApiFailure::not_found(format!("no rule named {name} in the rules folder")))?;
    let mut body = rule_json(&s, rule, &o);
    body["statusCode"] = json!(0);
    Ok(Json(body))
}

async fn set(s: Shared, name: String, on: Option<bool>) -> Result<Json<Value>, ApiFailure> {
    let rule = set_override(&s, &name, on).await?;
    Ok(Json(json!({ "statusCode": 0, "rule": rule, "override": on })))
}

/// Sets or drops a rule's operator override (`rules::set_enabled`); a rule that does not
/// validate cannot be enabled (409). Shared by the API and the operators' pages.
pub(crate) async fn set_override(s: &Shared, name: &str, on: Option<bool>) -> Result<rules::Rule, ApiFailure> {
    rules::set_enabled(&s.ctx, name, on).await.map_err(|e| match e {
        crate::lifecycle::LifecycleError::Rule { .. } => ApiFailure::conflict(e.to_string()),
        e => e.into(),
    })
}

/// `POST /api/v1/rules/{name}/enable` (`ops`): runs the rule on every node that has it, whatever
/// its file says, until reset. Refused (409) when the file does not validate with its backup
/// locations probed.
pub async fn enable_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    set(s, name, Some(true)).await
}

/// `POST /api/v1/rules/{name}/disable` (`ops`): a fire that comes after it is skipped.
pub async fn disable_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    set(s, name, Some(false)).await
}

/// `POST /api/v1/rules/{name}/reset` (`ops`): drops the override; the file's flag rules again.
pub async fn reset_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    set(s, name, None).await
}

/// `GET /api/v1/muxer`: pairs muxed, pairs failed with their reasons and attempts.
pub async fn muxer_status(State(s): State<Shared>) -> Result<Json<Value>, ApiFailure> {
    let ctx = s.ctx.clone();
    let st = blocking(move || crate::muxer::status(&ctx).map_err(ApiFailure::internal)).await?;
    let failed: Vec<Value> =
        st.failed.iter().map(|r| json!({ "pair": r, "given_up": r.given_up(st.max_retries) })).collect();
    Ok(Json(json!({
        "statusCode": 0,
        "muxed": st.muxed,
        "failed": failed,
        "max_retries": st.max_retries,
    })))
}

/// `POST /api/v1/muxer/retry/{screen_id}` (`ops`): forgets a pair's failures so the next pass
/// tries it again (`reclife mux --retry`).
pub async fn muxer_retry(State(s): State<Shared>, Path(id): Path<String>) -> Result<Json<Value>, ApiFailure> {
    let catalog = s.ctx.catalog.clone();
    let i = id.clone();
    let found = blocking(move || Ok(crate::muxer::state::reset(catalog.as_ref(), &i)?)).await?;
    if !found {
        return Err(ApiFailure::not_found(format!("the muxer has no record of screen recording {id}")));
    }
    Ok(Json(json!({ "statusCode": 0, "screen": id, "message": "retried at the next pass" })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckParams {
    repair: Option<String>,
}

/// `GET /api/v1/check` (`ops`): what `reclife check` finds, repairing nothing. It reads the
/// whole catalog and media store, hence `ops` only. A GET never changes anything: `?repair=…`
/// is refused (400), naming `POST /api/v1/check/repair`.
pub async fn run_check(
    State(s): State<Shared>,
    q: Result<Query<CheckParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiFailure> {
    let Query(p) = q.map_err(|e| ApiFailure::bad_request(e.body_text()))?;
    if let Some(v) = p.repair {
        return Err(ApiFailure::bad_request(format!(
            "repair={v:.20}: a GET never repairs; POST /api/v1/check/repair (Content-Type: application/json) does"
        )));
    }
    check_report(&s, false).await
}

/// `POST /api/v1/check/repair` (`ops`; JSON, any body): `reclife check --repair`.
pub async fn repair_check(State(s): State<Shared>) -> Result<Json<Value>, ApiFailure> {
    check_report(&s, true).await
}

async fn check_report(s: &Shared, repair: bool) -> Result<Json<Value>, ApiFailure> {
    let rep = check::run(&s.ctx, repair).await?;
    Ok(Json(json!({ "statusCode": 0, "ok": rep.unrepaired() == 0, "report": rep })))
}

/// `GET /api/v1/jobs/{id}/events`: a server-sent event stream of the job's progress
/// ([`jobs::progress`]): an event `progress` whenever it changes, and a last event `end` once
/// the job is final, after which the stream closes. A planned job is followed until it starts
/// and ends. Any process may run the job: progress comes from the catalog, looked at each
/// 500 ms; while this process runs it (with its live recordings and bytes), as often as every
/// 50 ms, but never spending more than a fifth of the time reading counts (a large manifest's
/// counts cost more, and share the catalog with the job itself).
pub async fn job_events(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>, ApiFailure> {
    // Unknown ids are a 404 before the stream starts.
    let first = jobs::progress(&s.ctx, &id).await?;
    let ctx = s.ctx.clone();
    let start = (Some(first), None::<String>, false, Duration::ZERO);
    let stream = futures::stream::unfold(start, move |(next, last, done, mut cost)| {
        let (ctx, id) = (ctx.clone(), id.clone());
        async move {
            if done {
                return None;
            }
            let mut p = next;
            loop {
                let cur = match p.take() {
                    Some(p) => p,
                    None => {
                        let wait = match crate::progress::live::follow(&id) {
                            Some(_) => (cost * 4).clamp(Duration::from_millis(50), Duration::from_millis(500)),
                            None => Duration::from_millis(500),
                        };
                        tokio::time::sleep(wait).await;
                        let t = std::time::Instant::now();
                        let read = jobs::progress(&ctx, &id).await;
                        cost = t.elapsed();
                        match read {
                            Ok(p) => p,
                            Err(e) => {
                                let ev = Event::default().event("error").data(e.to_string());
                                return Some((Ok(ev), (None, last, true, cost)));
                            }
                        }
                    }
                };
                let text = serde_json::to_string(&cur).unwrap_or_default();
                let fin = cur.job.state.is_final();
                if fin || last.as_deref() != Some(text.as_str()) {
                    let ev = Event::default().event(if fin { "end" } else { "progress" }).data(text.clone());
                    return Some((Ok(ev), (None, Some(text), fin, cost)));
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
