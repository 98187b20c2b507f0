//! The operator endpoints of `/api/v1` beyond jobs: the shared rules (list, one, put, delete),
//! a rule's enable/disable override, the
//! muxer's status and retries, `reclife check` (a GET reads, a POST repairs), and a job's live
//! progress stream.

use super::super::{blocking, ApiFailure, Shared};
use crate::api::auth::Caller;
use crate::lifecycle::{check, jobs, rule_store, rules};
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Duration;

/// The catalog's shared rules with the operators' overrides applied (`rules::apply_overrides`,
/// as the scheduler does), each with its latest version; the problems of stored rules that no
/// longer validate and of this node's rule files left out; which rules are overridden.
pub(crate) type Loaded =
    (Vec<(rules::Rule, rule_store::Version)>, Vec<rules::RuleProblem>, std::collections::BTreeMap<String, bool>);

pub(crate) async fn load(s: &Shared) -> Result<Loaded, ApiFailure> {
    let (cfg, catalog) = (s.ctx.config.clone(), s.ctx.catalog.clone());
    blocking(move || {
        let (stored, mut problems) = rule_store::load(catalog.as_ref(), cfg.default_backup_location.as_deref())?;
        let (mut rs, versions): (Vec<rules::Rule>, Vec<rule_store::Version>) = stored.into_iter().unzip();
        rules::apply_overrides(catalog.as_ref(), &mut rs)?;
        // Files of this node's folder that cannot be applied (the daemon logs them too).
        problems.extend(rules::load_dir(&cfg.rules_dir, cfg.default_backup_location.as_deref(), false).1);
        Ok((rs.into_iter().zip(versions).collect(), problems, rules::overrides(catalog.as_ref())?))
    })
    .await
}

/// A version as the API shows it: number, who, when, from where (the text only on request).
fn version_json(v: &rule_store::Version, with_text: bool) -> Value {
    let mut out = json!({ "version": v.version, "by": v.by, "at": v.at, "source": v.source, "deleted": v.deleted() });
    if with_text {
        out["text"] = json!(v.text);
    }
    out
}

/// A rule as the API shows it: the rule (with `enabled` as in force), its latest version, the
/// operator's override if any, and whether this node runs it.
fn rule_json(
    s: &Shared,
    r: &rules::Rule,
    v: &rule_store::Version,
    overrides: &std::collections::BTreeMap<String, bool>,
) -> Value {
    let runs_here = r.runs_on(s.ctx.config.node_path.as_deref());
    json!({ "rule": r, "version": version_json(v, false), "override": overrides.get(&r.name), "runs_here": runs_here })
}

/// Every rule of the catalog with its version and override, and the problems.
pub async fn list_rules(State(s): State<Shared>) -> Result<Json<Value>, ApiFailure> {
    let (rs, problems, o) = load(&s).await?;
    let list: Vec<Value> = rs.iter().map(|(r, v)| rule_json(&s, r, v, &o)).collect();
    Ok(Json(json!({ "statusCode": 0, "rules": list, "problems": problems })))
}

/// `GET /api/v1/rules/{name}`: the rule, its text, and every version (tombstones included).
pub async fn show_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    let (rs, _, o) = load(&s).await?;
    let (rule, v) = rs
        .iter()
        .find(|(r, _)| r.name == name)
        .ok_or_else(|| ApiFailure::not_found(format!("no rule named {name} in the catalog")))?;
    let catalog = s.ctx.catalog.clone();
    let n = name.clone();
    let history = blocking(move || Ok(rule_store::history(catalog.as_ref(), &n)?)).await?;
    let mut body = rule_json(&s, rule, v, &o);
    body["statusCode"] = json!(0);
    body["text"] = json!(v.text);
    body["history"] = history.iter().map(|h| version_json(h, true)).collect();
    Ok(Json(body))
}

/// The body of `PUT /api/v1/rules/{name}`: a rule file's TOML text, or the same fields as a
/// JSON object (turned into TOML and validated alike).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    text: Option<String>,
    rule: Option<toml::Table>,
}

/// Stores a rule's text as the caller (`api:<user>` or `web:<user>`): [`rule_store::apply`]
/// with backup locations probed. Shared by the API and the operators' pages.
pub(crate) async fn apply_rule(
    s: &Shared,
    source: &str,
    text: String,
    by: String,
) -> Result<rule_store::Applied, ApiFailure> {
    let (catalog, default, at) =
        (s.ctx.catalog.clone(), s.ctx.config.default_backup_location.clone(), s.ctx.clock.now());
    let source = source.to_string();
    blocking(move || {
        Ok(rule_store::apply(
            catalog.as_ref(),
            std::path::Path::new(&source),
            &text,
            default.as_deref(),
            true,
            &by,
            at,
        )?)
    })
    .await
}

/// Deletes a rule in the caller's name ([`rule_store::delete`]: a tombstone). Shared by the
/// API and the operators' pages.
pub(crate) async fn delete_rule_as(s: &Shared, name: &str, by: String) -> Result<rule_store::Version, ApiFailure> {
    let (catalog, at, n) = (s.ctx.catalog.clone(), s.ctx.clock.now(), name.to_string());
    blocking(move || Ok(rule_store::delete(catalog.as_ref(), &n, &by, at)?)).await
}

/// `PUT /api/v1/rules/{name}` (`ops`): `{"text":"<TOML>"}` or `{"rule":{…}}`; the rule's name
/// must be `{name}`. A changed rule is a new version, the same text a no-op (`outcome`).
pub async fn put_rule(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<Value>, ApiFailure> {
    let b: PutBody = serde_json::from_str(&body).map_err(|e| {
        ApiFailure::bad_request(format!(
            "request body: {e}; expected {{\"text\": \"<rule file>\"}} or {{\"rule\": {{…the rule file's fields…}}}}"
        ))
    })?;
    let text = match (b.text, b.rule) {
        (Some(t), None) => t,
        (None, Some(r)) => toml::to_string(&r).map_err(|e| ApiFailure::bad_request(format!("rule: {e}")))?,
        _ => return Err(ApiFailure::bad_request("give either \"text\" or \"rule\"")),
    };
    // The name is checked before anything is stored (the text is validated again by apply).
    let stated = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| t.get("name").and_then(|n| n.as_str()).map(|n| n.trim().to_string()));
    if stated.as_deref().is_some_and(|n| n != name) {
        return Err(ApiFailure::bad_request(format!(
            "the rule is named {:?}, the path {name:?}: PUT a rule at its own name",
            stated.unwrap_or_default()
        )));
    }
    let a = apply_rule(&s, "(request body)", text, format!("api:{}", who.user)).await?;
    Ok(Json(json!({
        "statusCode": 0,
        "outcome": a.outcome,
        "rule": a.rule,
        "version": version_json(&a.version, false),
    })))
}

/// `DELETE /api/v1/rules/{name}` (`ops`): a tombstone version naming the caller; the rule stops
/// on every node at its next poll.
pub async fn delete_rule(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiFailure> {
    let v = delete_rule_as(&s, &name, format!("api:{}", who.user)).await?;
    Ok(Json(json!({ "statusCode": 0, "deleted": name, "version": version_json(&v, false) })))
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

/// `POST /api/v1/rules/{name}/enable` (`ops`): runs the rule on the nodes it names, whatever
/// its text says, until reset. Refused (409) when the text does not validate with its backup
/// locations probed.
pub async fn enable_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    set(s, name, Some(true)).await
}

/// `POST /api/v1/rules/{name}/disable` (`ops`): a fire that comes after it is skipped.
pub async fn disable_rule(State(s): State<Shared>, Path(name): Path<String>) -> Result<Json<Value>, ApiFailure> {
    set(s, name, Some(false)).await
}

/// `POST /api/v1/rules/{name}/reset` (`ops`): drops the override; the rule's own flag rules again.
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
/// and ends. Any process may run the job: progress comes from the catalog (with the live
/// recordings and bytes while this process runs it), looked at as often as every 50 ms and at
/// least every 500 ms, but never spending more than a fifth of the time reading counts (a large
/// manifest's counts cost more, and share the catalog with the job itself).
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
                        // Whether this process or another runs it (or it is about to start),
                        // the counts are read as often as their cost allows.
                        let wait = (cost * 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
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
