//! The rules page: each rule every node shares (kept in the catalog, `lifecycle::rule_store`)
//! with its version, schedule, next fire time, last run and outcome, and its tasks; the
//! operators' enable/disable override; validating a rule's text, saving it (a new version in
//! the catalog) and deleting a rule (a tombstone), through the API's own calls.

use super::csrf::Form;
use super::{csrf_field, layout, notice, opt_time, see_other, seg, time, Section, WebError};
use crate::api::auth::{Caller, Role};
use crate::api::v1::ops::{apply_rule, delete_rule_as, load, set_override as api_set_override};
use crate::api::Shared;
use crate::lifecycle::jobs::JobRecord;
use crate::lifecycle::{jobs, rule_store, rules, schedule, Filter, Op, Rule, RuleProblem, Task};
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
        table class="results" {
            caption class="sr-only" { "Tasks" }
            thead { tr { th scope="col" { "#" } th scope="col" { "Task" } th scope="col" { "Selects" }
                th scope="col" { "Screens" } th scope="col" { "Where / on failure" } } }
            tbody {
                @for (i, t) in tasks.iter().enumerate() {
                    tr {
                        td data-label="#" { (i + 1) }
                        td data-label="Task" { (op_name(t.op)) }
                        @if t.op == Op::Import {
                            @let src = t.source.as_deref().unwrap_or("");
                            td data-label="Selects" { "recordings of import source " a href={ "/import/" (crate::model::uri_segment(src)) } { (src) } }
                        } @else {
                            td data-label="Selects" { (filter_text(&t.filter)) }
                        }
                        td data-label="Screens" { @if t.include_screen { "included" } @else { "not included" } }
                        td data-label="Where / on failure" {
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
    for (r, _) in &rs {
        last_runs.insert(r.name.clone(), schedule::last_run(&s.ctx, &r.name).await?);
    }
    let node = s.ctx.config.node_path.as_deref();
    let ops = who.role >= Role::Ops;
    let body = html! {
        (notice(s, n))
        p { "Schedules are cron expressions with seconds, always in UTC. Times show UTC and your browser's local time."
            " This node's path: " code { (node.unwrap_or("(none)")) } "." }
        @if rs.is_empty() { p { "No rules in the catalog (this node's rules folder, " code { (s.ctx.config.rules_dir.display()) } ", adds its files at start and at each poll)." } }
        @for (r, v) in &rs {
            (rule_card(s, who, r, v, overrides.get(&r.name).copied(), last_runs.get(&r.name).copied().flatten(), last.get(&r.name), now, ops))
        }
        @if !problems.is_empty() {
            section aria-labelledby="problems" {
                h2 id="problems" { "Rules with problems (not run)" }
                (problem_list(&problems))
            }
        }
        section aria-labelledby="validate" {
            h2 id="validate" { "Write a rule: validate, then save" }
            p { "Paste or edit a rule's text (TOML, as in a rule file). Validate checks it as "
                code { "reclife rules validate" } " does (backup locations are probed); Save validates again and "
                "stores it in the catalog as the rule's next version (the one before is kept), shared by every node: "
                "each picks it up at its next poll and runs it if its node path names the node. "
                "Use Edit on a rule above to start from its text." }
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
    v: &rule_store::Version,
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
                        None => "none (the rule's own flag applies)",
                    }
                }
                dt { "Version" } dd { (v.version) ", by " (v.by) ", " (time(v.at)) ", from " code { (v.source) } }
                dt { "Nodes" } dd { @match &r.node_path { Some(p) => { "node path " code { (p) } } None => "every node" } }
            }
            (tasks_table(&r.tasks, s.ctx.config.default_backup_location.as_deref()))
            @if ops {
                div class="actions" {
                    @for (action, label) in [("enable", "Enable"), ("disable", "Disable"), ("reset", "Reset to the rule's flag")] {
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
                    form method="post" action={ "/rules/" (seg(&r.name)) "/delete" } {
                        (csrf_field(s, who))
                        button type="submit" aria-label={ "Delete rule " (r.name) } { "Delete" }
                    }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct ListParams {
    /// A rule whose text fills the editor.
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
            let text = rs.into_iter().find(|(r, _)| &r.name == name).and_then(|(_, v)| v.text).ok_or_else(|| {
                WebError::new(axum::http::StatusCode::NOT_FOUND, format!("no rule named {name} in the catalog"))
            })?;
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

/// `POST /rules/save` (ops): validates, then stores the rule in the catalog as the API's PUT
/// does (`rule_store::apply`, in the caller's name); a text that does not validate is shown
/// again with its problems (422) and nothing is stored.
pub async fn save(State(s): State<Shared>, form: Form) -> Result<Response, WebError> {
    use axum::response::IntoResponse as _;
    let text = form.raw("text").to_string();
    if let Err(problems) = check(&s, text.clone()).await? {
        let body = page(&s, &form.caller, &super::Notice::default(), Some(problems_box(&problems)), Some(text)).await?;
        return Ok((axum::http::StatusCode::UNPROCESSABLE_ENTITY, body).into_response());
    }
    let a = apply_rule(&s, "(pasted text)", text, format!("web:{}", form.caller.user)).await?;
    let how = match a.outcome {
        rule_store::Outcome::Created => "stored as a new rule",
        rule_store::Outcome::Updated => "stored as its next version",
        rule_store::Outcome::Unchanged => "unchanged (the same text as its latest version)",
    };
    Ok(see_other(&s, "/rules", &format!("Rule {} {how} (version {}).", a.rule.name, a.version.version)))
}

/// `POST /rules/{name}/enable|disable|reset` (ops): `rules::set_enabled`, as the API does;
/// `POST /rules/{name}/delete` (ops): `rule_store::delete` in the caller's name, as the API's
/// DELETE does.
pub async fn set_override(
    State(s): State<Shared>,
    Path((name, action)): Path<(String, String)>,
    form: Form,
) -> Result<Response, WebError> {
    if action == "delete" {
        let v = delete_rule_as(&s, &name, format!("web:{}", form.caller.user)).await?;
        return Ok(see_other(&s, "/rules", &format!("Rule {name} deleted (version {} is its tombstone).", v.version)));
    }
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
        None => "reset to its own flag",
    };
    Ok(see_other(&s, "/rules", &format!("Rule {name} {what}.")))
}
