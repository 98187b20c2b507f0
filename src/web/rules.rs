//! The rules page: each rule of `rules_dir` with its schedule, next fire time, last run and
//! outcome, and its tasks; the operators' enable/disable override; validating a rule file's text.

use super::csrf::Form;
use super::{csrf_field, layout, notice, opt_time, see_other, seg, time, Section, WebError};
use crate::api::auth::{Caller, Role};
use crate::api::v1::ops::{load, set_override as api_set_override};
use crate::api::Shared;
use crate::lifecycle::jobs::JobRecord;
use crate::lifecycle::{jobs, rules, schedule, Filter, Op, Rule, RuleProblem, Task};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use std::collections::{BTreeMap, HashMap};

/// A filter in words: `voice, age ≥ 365 d, call type inbound, labels +a −b`.
pub(crate) fn filter_text(f: &Filter) -> String {
    let mut parts = vec![f.recording_type.to_string()];
    match (f.min_age, f.max_age) {
        (Some(a), Some(b)) => parts.push(format!("age {a} to {b} days")),
        (Some(a), None) => parts.push(format!("age ≥ {a} days")),
        (None, Some(b)) => parts.push(format!("age < {b} days")),
        (None, None) => parts.push("any age".into()),
    }
    if let Some(c) = &f.call_type {
        parts.push(format!("call type {c}"));
    }
    for l in &f.labels_include {
        parts.push(format!("label {l}"));
    }
    for l in &f.labels_exclude {
        parts.push(format!("without label {l}"));
    }
    for (k, v) in &f.attached_data {
        parts.push(format!("{k} = {v}"));
    }
    if !f.partitions.is_empty() {
        parts.push(format!("partitions {}", f.partitions.join(" ")));
    }
    parts.join(", ")
}

pub(crate) fn tasks_table(tasks: &[Task], default_location: Option<&str>) -> Markup {
    html! {
        table {
            caption class="sr-only" { "Tasks" }
            thead { tr { th scope="col" { "#" } th scope="col" { "Task" } th scope="col" { "Selects" }
                th scope="col" { "Screens" } th scope="col" { "Where / on failure" } } }
            tbody {
                @for (i, t) in tasks.iter().enumerate() {
                    tr {
                        td { (i + 1) }
                        td { (op_name(t.op)) }
                        @if t.op == Op::Import {
                            @let src = t.source.as_deref().unwrap_or("");
                            td { "recordings of import source " a href={ "/import/" (crate::model::uri_segment(src)) } { (src) } }
                        } @else {
                            td { (filter_text(&t.filter)) }
                        }
                        td { @if t.include_screen { "included" } @else { "not included" } }
                        td {
                            @if t.op == Op::Backup {
                                code { (t.location.as_deref().or(default_location).unwrap_or("(no location)")) }
                                @if t.zip { " (zip)" }
                                ", "
                            }
                            "on failure: " (match t.on_failure { rules::OnFailure::Stop => "stop", rules::OnFailure::Continue => "continue" })
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn op_name(op: Op) -> &'static str {
    match op {
        Op::Backup => "backup",
        Op::Purge => "purge",
        Op::Import => "import",
    }
}

/// The next fire time of a schedule after `now` (UTC), if the expression parses.
fn next_fire(schedule: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    rules::parse_cron(schedule).ok()?.find_next_occurrence(&now, false).ok()
}

/// The latest job of each rule (the job ids sort by creation time).
async fn last_jobs(s: &Shared) -> Result<HashMap<String, JobRecord>, WebError> {
    let mut out = HashMap::new();
    jobs::for_each(&s.ctx, |j| {
        if let Some(r) = j.rule.clone() {
            out.insert(r, j);
        }
    })
    .await?;
    Ok(out)
}

pub(crate) fn state_badge(state: jobs::JobState) -> Markup {
    html! { span class={ "badge " (state) } { (state) } }
}

async fn page(
    s: &Shared,
    who: &Caller,
    n: &super::Notice,
    validated: Option<Markup>,
    text: Option<String>,
) -> Result<Markup, WebError> {
    let (rs, problems, overrides) = load(s).await?;
    let last = last_jobs(s).await?;
    let now = s.ctx.clock.now();
    let mut last_runs = BTreeMap::new();
    for r in &rs {
        last_runs.insert(r.name.clone(), schedule::last_run(&s.ctx, &r.name).await?);
    }
    let node = s.ctx.config.node_path.as_deref();
    let ops = who.role >= Role::Ops;
    let body = html! {
        (notice(s, n))
        p { "Schedules are cron expressions with seconds, always in UTC. Times show UTC and your browser's local time."
            " This node's path: " code { (node.unwrap_or("(none)")) } "." }
        @if rs.is_empty() { p { "No rules in " code { (s.ctx.config.rules_dir.display()) } "." } }
        @for r in &rs {
            (rule_card(s, who, r, overrides.get(&r.name).copied(), last_runs.get(&r.name).copied().flatten(), last.get(&r.name), now, ops))
        }
        @if !problems.is_empty() {
            section aria-labelledby="problems" {
                h2 id="problems" { "Rule files with problems (not run)" }
                (problem_list(&problems))
            }
        }
        section aria-labelledby="validate" {
            h2 id="validate" { "Write a rule: validate, then save" }
            p { "Paste or edit a rule file's text. Validate checks it as "
                code { "reclife rules validate" } " does (backup locations are probed); Save validates again and "
                "writes it into " code { (s.ctx.config.rules_dir.display()) } ": over the file of the rule with that name, "
                "or as a new file. The scheduler picks it up at its next reload of the folder. "
                "Use Edit on a rule above to start from its file." }
            @if let Some(v) = validated { (v) }
            @if ops {
                form method="post" action="/rules/validate" {
                    (csrf_field(s, who))
                    label for="rule-text" { "Rule file (TOML)" }
                    textarea id="rule-text" name="text" rows="12" required
                        placeholder="name = \"Daily backup\"\nschedule = \"0 0 22 * * *\"\n[[tasks]]\ntype = \"backup\"\nfilter = { recording_type = \"voice\", min_age = 1, max_age = 2 }" {
                        (text.unwrap_or_default())
                    }
                    div class="actions" {
                        button type="submit" { "Validate" }
                        button type="submit" formaction="/rules/save" class="primary" { "Save" }
                    }
                }
            } @else {
                p class="muted" { "Validating probes backup locations and saving writes rule files: the ops role may." }
            }
        }
    };
    Ok(layout("Rules", who, Section::Rules, body))
}

fn problem_list(problems: &[RuleProblem]) -> Markup {
    html! {
        ul class="problems" {
            @for p in problems { li { (p.to_string()) } }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn rule_card(
    s: &Shared,
    who: &Caller,
    r: &Rule,
    over: Option<bool>,
    last_run: Option<DateTime<Utc>>,
    last_job: Option<&JobRecord>,
    now: DateTime<Utc>,
    ops: bool,
) -> Markup {
    let id = format!("rule-{}", seg(&r.name).replace('%', "_"));
    let runs_here = r.runs_on(s.ctx.config.node_path.as_deref());
    html! {
        section class="card rule" aria-labelledby=(id) {
            h2 id=(id) { (r.name) " "
                @if r.enabled { span class="badge succeeded" { "enabled" } } @else { span class="badge cancelled" { "disabled" } }
            }
            dl class="facts" {
                dt { "Schedule" } dd { code { (r.schedule) } " (UTC)" }
                dt { "Next fire" } dd {
                    @if !r.enabled { span class="muted" { "none: disabled" } }
                    @else if !runs_here { span class="muted" { "none on this node (node path " (r.node_path.as_deref().unwrap_or("")) ")" } }
                    @else { (opt_time(next_fire(&r.schedule, now))) }
                }
                dt { "Last run" } dd { (opt_time(last_run)) }
                dt { "Last outcome" } dd {
                    @match last_job {
                        Some(j) => { (state_badge(j.state)) " " a href={ "/jobs/" (seg(&j.id)) } { (j.id) }
                            @if let Some(f) = j.finished { " ended " (time(f)) } }
                        None => { span class="muted" { "no job on record" } }
                    }
                }
                dt { "Override" } dd {
                    @match over {
                        Some(true) => "enabled by an operator",
                        Some(false) => "disabled by an operator",
                        None => "none (the file's flag applies)",
                    }
                }
                @if let Some(f) = &r.file { dt { "File" } dd { code { (f.display()) } } }
            }
            (tasks_table(&r.tasks, s.ctx.config.default_backup_location.as_deref()))
            @if ops {
                div class="actions" {
                    @for (action, label) in [("enable", "Enable"), ("disable", "Disable"), ("reset", "Reset to the file's flag")] {
                        // Only what would change something: enable a disabled rule, disable an
                        // enabled one, reset an override.
                        @if (action == "enable" && !r.enabled) || (action == "disable" && r.enabled) || (action == "reset" && over.is_some()) {
                        form method="post" action={ "/rules/" (seg(&r.name)) "/" (action) } {
                            (csrf_field(s, who))
                            button type="submit" aria-label={ (label) " rule " (r.name) } { (label) }
                        }
                        }
                    }
                    a class="button" href={ "/jobs/new?rule=" (seg(&r.name)) } { "Plan a run now" }
                    a class="button" href={ "/rules?edit=" (seg(&r.name)) "#validate" } aria-label={ "Edit rule " (r.name) } { "Edit" }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ListParams {
    /// A rule whose file's text fills the editor.
    edit: Option<String>,
    #[serde(flatten)]
    notice: super::Notice,
}

/// `GET /rules[?edit=NAME]`.
pub async fn list(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Query(p): Query<ListParams>,
) -> Result<Markup, WebError> {
    let text = match &p.edit {
        None => None,
        Some(name) => {
            let (rs, _, _) = load(&s).await?;
            let file = rs.into_iter().find(|r| &r.name == name).and_then(|r| r.file).ok_or_else(|| {
                WebError::new(axum::http::StatusCode::NOT_FOUND, format!("no rule named {name} in the rules folder"))
            })?;
            let text = crate::api::blocking(move || {
                std::fs::read_to_string(&file)
                    .map_err(|e| crate::api::ApiFailure::internal(format!("{}: {e}", file.display())))
            })
            .await?;
            Some(text)
        }
    };
    page(&s, &who, &p.notice, None, text).await
}

/// Checks a rule file's text as `reclife rules validate` does (backup locations probed).
async fn check(s: &Shared, text: String) -> Result<Result<Rule, Vec<RuleProblem>>, WebError> {
    let default = s.ctx.config.default_backup_location.clone();
    Ok(crate::api::blocking(move || {
        Ok(rules::parse_rule(std::path::Path::new("(pasted text)"), &text, default.as_deref(), true))
    })
    .await?)
}

fn problems_box(problems: &[RuleProblem]) -> Markup {
    html! {
        div class="error" role="alert" {
            p { "Not valid: " (problems.len()) " problem(s)." }
            (problem_list(problems))
        }
    }
}

/// `POST /rules/validate` (ops): the rules page with the validation's outcome, the text kept.
pub async fn validate(State(s): State<Shared>, form: Form) -> Result<Markup, WebError> {
    let text = form.raw("text").to_string();
    let out = match check(&s, text.clone()).await? {
        Ok(rule) => html! {
            div class="notice" role="status" {
                p { "Valid: rule " strong { (rule.name) } ", schedule " code { (rule.schedule) } ", "
                    (rule.tasks.len()) " task(s)." }
                (tasks_table(&rule.tasks, s.ctx.config.default_backup_location.as_deref()))
                @for w in rule.warnings() { p class="warning" { (w) } }
            }
        },
        Err(problems) => problems_box(&problems),
    };
    page(&s, &form.caller, &super::Notice::default(), Some(out), Some(text)).await
}

/// `POST /rules/save` (ops): validates, then writes the rule file (`rules::save_rule`); a text
/// that does not validate is shown again with its problems (422) and nothing is written.
pub async fn save(State(s): State<Shared>, form: Form) -> Result<Response, WebError> {
    use axum::response::IntoResponse as _;
    let text = form.raw("text").to_string();
    if let Err(problems) = check(&s, text.clone()).await? {
        let body = page(&s, &form.caller, &super::Notice::default(), Some(problems_box(&problems)), Some(text)).await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
    }
    let (dir, default) = (s.ctx.config.rules_dir.clone(), s.ctx.config.default_backup_location.clone());
    let saved = crate::api::blocking(move || {
        rules::save_rule(&dir, &text, default.as_deref()).map_err(|e| match e {
            crate::lifecycle::LifecycleError::Rule { .. } => crate::api::ApiFailure::bad_request(e.to_string()),
            e => e.into(),
        })
    })
    .await?;
    tracing::info!(user = %form.caller.user, rule = %saved.rule.name, file = %saved.file.display(),
        replaced = saved.replaced, "rule file saved from the operators' pages");
    let how = if saved.replaced { "replacing its file" } else { "as a new file" };
    Ok(see_other(&s, "/rules", &format!("Rule {} saved in {}, {how}.", saved.rule.name, saved.file.display())))
}

/// `POST /rules/{name}/enable|disable|reset` (ops): `rules::set_enabled`, as the API does.
pub async fn set_override(
    State(s): State<Shared>,
    Path((name, action)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, WebError> {
    let on = match action.as_str() {
        "enable" => Some(true),
        "disable" => Some(false),
        "reset" => None,
        _ => return Err(WebError::new(axum::http::StatusCode::NOT_FOUND, format!("no action {action}"))),
    };
    api_set_override(&s, &name, on).await?;
    let what = match on {
        Some(true) => "enabled",
        Some(false) => "disabled",
        None => "reset to its file's flag",
    };
    Ok(see_other(&s, "/rules", &format!("Rule {name} {what}.")))
}
