//! Plans and jobs: a filter form builds a plan and shows its preview before anything runs;
//! "Start" executes exactly that plan (`POST /api/v1/jobs` and `…/start` underneath, the same
//! functions); a job's page follows its progress live (the API's server-sent events), lists
//! failed and skipped items with their reasons, and cancels; the history pages by job id.

use super::csrf::Form;
use super::rules::{filter_text, op_name, state_badge, tasks_table};
use super::{bytes, csrf_field, layout, notice, opt_time, see_other, seg, time, Section, WebError};
use crate::api::auth::{Caller, Role};
use crate::api::v1::{plan_new, start_planned, NewJob, NewTask};
use crate::api::Shared;
use crate::lifecycle::jobs::{self, JobRecord, JobState};
use crate::lifecycle::plan::Plan;
use crate::lifecycle::{runner, Filter, OnFailure, Op};
use crate::model::Kind;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};

/// Jobs per history page.
const PAGE: usize = 50;

#[derive(Debug, serde::Deserialize)]
pub struct HistoryParams {
    before: Option<String>,
    #[serde(flatten)]
    notice: super::Notice,
}

/// `GET /jobs[?before=ID]`: running jobs, then the history, newest first, [`PAGE`] at a time.
pub async fn history(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Query(p): Query<HistoryParams>,
) -> Result<Markup, WebError> {
    // One more than shown tells whether there is an older page.
    let mut page = jobs::page_before(&s.ctx, p.before.as_deref(), PAGE + 1).await?;
    let more = page.len() > PAGE;
    page.truncate(PAGE);
    let catalog = s.ctx.catalog.clone();
    let running_ids = crate::api::blocking(move || Ok(catalog.state_list(jobs::RUNNING)?)).await?;
    let mut running = Vec::new();
    for (id, _) in running_ids {
        if let Ok(j) = jobs::load(&s.ctx, &id).await {
            running.push(j);
        }
    }
    let body = html! {
        (notice(&s, &p.notice))
        @if who.role >= Role::Ops { p { a class="button" href="/jobs/new" { "Plan a job" } } }
        section aria-labelledby="running" {
            h2 id="running" { "Running now" }
            @if running.is_empty() { p class="muted" { "No job is running." } } @else { (job_table(&running)) }
        }
        section aria-labelledby="history" {
            h2 id="history" { "History" }
            p class="muted" { "Newest first; jobs older than " (s.ctx.config.job_retention_days) " days are forgotten." }
            @if page.is_empty() { p { "No jobs." } } @else { (job_table(&page)) }
            nav aria-label="History pages" class="pager" {
                @if p.before.is_some() { a href="/jobs" { "Newest" } }
                @if more { @if let Some(last) = page.last() {
                    a href={ "/jobs?before=" (seg(&last.id)) } rel="next" { "Older" }
                } }
            }
        }
    };
    Ok(layout("Plans and jobs", &who, Section::Jobs, body))
}

fn job_table(list: &[JobRecord]) -> Markup {
    html! {
        table class="results" {
            thead { tr { th scope="col" { "Job" } th scope="col" { "Kind" } th scope="col" { "State" }
                th scope="col" { "Created" } th scope="col" { "Finished" } th scope="col" { "Recordings" } th scope="col" { "Failed" } } }
            tbody {
                @for j in list {
                    tr {
                        td data-label="Job" { a class="id" href={ "/jobs/" (seg(&j.id)) } { (j.id) } }
                        td data-label="Kind" { (j.kind) @if let Some(r) = &j.rule { " " (r) } }
                        td data-label="State" { (state_badge(j.state)) }
                        td data-label="Created" { (time(j.created)) }
                        td data-label="Finished" { (opt_time(j.finished)) }
                        td data-label="Recordings" { (j.tasks.iter().map(|t| t.recordings).sum::<u64>()) }
                        td data-label="Failed" { (j.failed_total) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct NewParams {
    rule: Option<String>,
}

/// The plan form's fields: the API's name, the form's label (errors name the label).
const FIELDS: [(&str, &str); 9] = [
    ("labels_include", "With every label"),
    ("labels_exclude", "Without any label"),
    ("recording_type", "Recording type"),
    ("include_screen", "Include the calls' screen recordings"),
    ("call_type", "Call type"),
    ("all_ages", "Purge: every age"),
    ("location", "Backup location"),
    ("min_age", "Minimum age (days)"),
    ("max_age", "Maximum age (days, exclusive)"),
];

/// An error of the plan form: the field it is about (the first the message names), and the
/// message with every API field name replaced by its label.
fn form_error(message: &str) -> (Option<&'static str>, String) {
    let field = FIELDS
        .iter()
        .filter_map(|(name, _)| message.find(name).map(|at| (at, *name)))
        .min()
        .map(|(_, name)| name)
        .or_else(|| message.starts_with("task type").then_some("type"));
    let mut text = message.to_string();
    for (name, label) in FIELDS {
        text = text.replace(name, &format!("\u{201c}{label}\u{201d}"));
    }
    (field, text)
}

/// The plan form, with what was typed (`given`) and an error shown at its field.
fn plan_form(s: &Shared, who: &Caller, given: Option<&Form>, error: Option<(Option<&str>, &str)>) -> Markup {
    let default_loc = s.ctx.config.default_backup_location.as_deref().unwrap_or("");
    let val = |name: &str| given.map(|f| f.raw(name).to_string()).unwrap_or_default();
    // Checkboxes: as given after an error; their defaults on a fresh form.
    let checked = |name: &str, default: bool| given.map_or(default, |f| f.checked(name));
    let purge = given.and_then(|f| f.get("type")) == Some("purge");
    let screen = given.and_then(|f| f.get("recording_type")) == Some("screen");
    let (err_field, err_text) = match error {
        Some((f, t)) => (f, Some(t)),
        None => (None, None),
    };
    // The error beside its field, tied to it for screen readers.
    let err_at = |name: &str| -> Markup {
        html! { @if err_field == Some(name) { @if let Some(t) = err_text {
        p class="field-error" id={ (name) "-error" } role="alert" { (t) } } } }
    };
    let invalid = |name: &str| err_field == Some(name);
    let described = |name: &str, help: Option<&str>| -> Option<String> {
        let mut ids: Vec<String> = help.map(str::to_string).into_iter().collect();
        if invalid(name) {
            ids.push(format!("{name}-error"));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    };
    let text_field =
        |name: &str, label: &str, kind: &str, extra_min: Option<&str>, placeholder: Option<&str>| -> Markup {
            html! {
                div { label for=(name) { (label) }
                    input id=(name) name=(name) type=(kind) value=(val(name)) min=[extra_min]
                        max=[(kind == "number").then_some(crate::lifecycle::rules::MAX_AGE_DAYS)]
                        inputmode=[(kind == "number").then_some("numeric")] placeholder=[placeholder]
                        aria-invalid=[invalid(name).then_some("true")] aria-describedby=[described(name, None)];
                    (err_at(name)) }
            }
        };
    html! {
        @if let (None, Some(t)) = (err_field, err_text) { p class="error" role="alert" { (t) } }
        form method="post" action="/jobs" class="stack" {
            (csrf_field(s, who))
            fieldset aria-describedby=[described("type", None)] {
                legend { "Task" }
                label { input type="radio" name="type" value="backup" checked[!purge]; " Back up" }
                label { input type="radio" name="type" value="purge" checked[purge]; " Purge (needs a minimum age)" }
                (err_at("type"))
            }
            div class="grid" {
                div { label for="recording_type" { "Recording type" }
                    select id="recording_type" name="recording_type" aria-invalid=[invalid("recording_type").then_some("true")]
                        aria-describedby=[described("recording_type", None)] {
                        option value="voice" selected[!screen] { "voice (calls)" } option value="screen" selected[screen] { "screen" } }
                    (err_at("recording_type")) }
                (text_field("min_age", "Minimum age (days)", "number", Some("0"), None))
                (text_field("max_age", "Maximum age (days, exclusive)", "number", Some("1"), None))
                (text_field("call_type", "Call type", "text", None, Some("inbound, outbound, internal, consult")))
                (text_field("labels_include", "With every label (space-separated)", "text", None, None))
                (text_field("labels_exclude", "Without any label (space-separated)", "text", None, None))
                div { label for="region" { "Region" }
                    input id="region" type="text" readonly value=(s.ctx.config.region.as_deref().unwrap_or("all regions"))
                        aria-describedby="region-help";
                    small id="region-help" { "This node acts only on its own region (" code { "region" } " in its config)." } }
                div { label for="location" { "Backup location" }
                    input id="location" name="location" type="text" placeholder=(default_loc) value=(val("location"))
                        aria-invalid=[invalid("location").then_some("true")] aria-describedby=(described("location", Some("location-help")).unwrap_or_default());
                    small id="location-help" { "Empty: the node's default_backup_location." }
                    (err_at("location")) }
            }
            label { input type="checkbox" name="include_screen" value="1" checked[checked("include_screen", true)]; " Include the calls' screen recordings" }
            (err_at("include_screen"))
            label { input type="checkbox" name="zip" value="1" checked[checked("zip", true)]; " Zip the backup" }
            label { input type="checkbox" name="all_ages" value="1" checked[checked("all_ages", false)]
                aria-describedby=[described("all_ages", None)]; " Purge: every age (no minimum age; the newest recordings too)" }
            (err_at("all_ages"))
            button type="submit" { "Build the plan" }
            p class="muted" { "Nothing runs yet: the next page shows what the plan would do, and Start executes exactly that plan." }
        }
    }
}

/// `GET /jobs/new[?rule=NAME]`: the plan form, or a rule's plan button.
pub async fn form(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Query(p): Query<NewParams>,
) -> Result<Markup, WebError> {
    let body = html! {
        @if who.role < Role::Ops {
            p class="muted" { "Planning writes the plan into the catalog: the ops role may." }
        } @else if let Some(rule) = &p.rule {
            form method="post" action="/jobs" {
                (csrf_field(&s, &who))
                input type="hidden" name="rule" value=(rule);
                p { "Plan rule " strong { (rule) } " now, with its own tasks." }
                button type="submit" { "Build the plan" }
            }
        } @else {
            (plan_form(&s, &who, None, None))
        }
    };
    Ok(layout("Plan a job", &who, Section::Jobs, body))
}

fn age(f: &Form, name: &str) -> Result<Option<u32>, WebError> {
    f.get(name)
        .map(|v| {
            v.parse::<u32>()
                .map_err(|_| WebError::bad_request(format!("{name} {v:?}: expected a whole number of days")))
        })
        .transpose()
}

fn words(f: &Form, name: &str) -> Vec<String> {
    f.get(name).map(|v| v.split([' ', ',']).filter(|w| !w.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// The form as the API's job body: one task, or a rule.
fn new_job(f: &Form) -> Result<NewJob, WebError> {
    if let Some(rule) = f.get("rule") {
        return Ok(NewJob { rule: Some(rule.to_string()), tasks: None, all_ages: false });
    }
    let op = match f.get("type") {
        Some("backup") => Op::Backup,
        Some("purge") => Op::Purge,
        other => return Err(WebError::bad_request(format!("task type {other:?}: expected backup or purge"))),
    };
    let recording_type: Kind =
        f.get("recording_type").unwrap_or("voice").parse().map_err(|e: String| WebError::bad_request(e))?;
    let filter = Filter {
        recording_type,
        min_age: age(f, "min_age")?,
        max_age: age(f, "max_age")?,
        call_type: f.get("call_type").map(str::to_string),
        labels_include: words(f, "labels_include"),
        labels_exclude: words(f, "labels_exclude"),
        ..Filter::default()
    };
    let task = NewTask {
        op,
        filter,
        include_screen: f.checked("include_screen"),
        on_failure: OnFailure::Stop,
        location: if op == Op::Backup { f.get("location").map(str::to_string) } else { None },
        zip: if op == Op::Backup { Some(f.checked("zip")) } else { None },
        use_full_path: false,
        all_ages: op == Op::Purge && f.checked("all_ages"),
    };
    Ok(NewJob { rule: None, tasks: Some(vec![task]), all_ages: false })
}

fn preview(s: &Shared, who: &Caller, job: &JobRecord, plan: &Plan) -> Markup {
    html! {
        p { "Job " a href={ "/jobs/" (seg(&job.id)) } { (job.id) } " is planned at " (time(plan.now))
            ". Nothing has run: held recordings are left alone, and Start executes exactly this plan (its list of recordings is kept in the catalog)." }
        @for t in &plan.tasks {
            section class="card" aria-labelledby={ "task-" (t.task) } {
                h2 id={ "task-" (t.task) } { "Task " (t.task) ": " (op_name(t.op)) }
                p { (filter_text(&t.filter)) @if t.include_screen { ", with screen recordings" } }
                dl class="facts plan" {
                    dt { "Recordings" } dd data-plan="recordings" { (t.recordings) }
                    dt { "Screen recordings" } dd data-plan="screens" { (t.screens) }
                    dt { "Media files" } dd { (t.media) }
                    dt { "Bytes" } dd { (bytes(t.bytes)) }
                    dt { "Held, left alone" } dd data-plan="held" { (t.held) }
                    @if let Some(d) = &t.destination { dt { "Archive" } dd { code { (d) } } }
                    @if let Some(b) = t.after_backup { dt { "Deletes" } dd { "only what task " (b) " archives and verifies" } }
                }
                @if !t.sample.is_empty() {
                    details open {
                        summary { "Sample of ids (" (t.sample.len()) ")" }
                        ul class="ids" { @for id in &t.sample { li { a href={ "/recordings/" (seg(id)) } { code { (id) } } } } }
                    }
                }
            }
        }
        div class="actions" {
            form method="post" action={ "/jobs/" (seg(&job.id)) "/start" } {
                (csrf_field(s, who))
                button type="submit" class="primary" { "Start this plan" }
            }
            form method="post" action={ "/jobs/" (seg(&job.id)) "/cancel" } {
                (csrf_field(s, who))
                button type="submit" { "Discard the plan" }
            }
        }
    }
}

/// The previews of the plans this process made lately, by job id: `GET /jobs/{id}/preview`
/// shows one again (a reload re-plans nothing). Bounded; older ones fall back to the job's page.
static PREVIEWS: std::sync::LazyLock<std::sync::Mutex<std::collections::VecDeque<(String, Plan)>>> =
    std::sync::LazyLock::new(Default::default);
const PREVIEWS_KEPT: usize = 64;

/// `POST /jobs` (ops): plans the form's task (or a rule), then redirects to its preview
/// (POST-redirect-GET: reloading the preview does not plan a second job).
pub async fn plan(State(s): State<Shared>, form: Form) -> Result<Response, WebError> {
    let planned = match new_job(&form) {
        Ok(body) => plan_new(&s, body).await.map_err(WebError::from),
        Err(e) => Err(e),
    };
    let (job, plan) = match planned {
        Ok(x) => x,
        // The task form again, as typed, with the error at its field (a rule's button has
        // no fields: its error is a page).
        Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST && form.get("rule").is_none() => {
            let (field, text) = form_error(&e.message);
            let body = plan_form(&s, &form.caller, Some(&form), Some((field, &text)));
            let page = layout("Plan a job", &form.caller, Section::Jobs, body);
            return Ok((axum::http::StatusCode::BAD_REQUEST, page).into_response());
        }
        Err(e) => return Err(e),
    };
    {
        let mut kept = PREVIEWS.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= PREVIEWS_KEPT {
            kept.pop_front();
        }
        kept.push_back((job.id.clone(), plan));
    }
    Ok(axum::response::Redirect::to(&format!("/jobs/{}/preview", seg(&job.id))).into_response())
}

/// `GET /jobs/{id}/preview`: the preview of a plan made here lately, while it is still planned;
/// otherwise the job's page.
pub async fn show_preview(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let job = jobs::load(&s.ctx, &id).await?;
    let plan =
        PREVIEWS.lock().unwrap_or_else(|e| e.into_inner()).iter().find(|(j, _)| *j == id).map(|(_, p)| p.clone());
    match plan {
        Some(plan) if job.state == JobState::Planned => {
            Ok(layout("Plan preview", &who, Section::Jobs, preview(&s, &who, &job, &plan)).into_response())
        }
        _ => Ok(axum::response::Redirect::to(&format!("/jobs/{}", seg(&id))).into_response()),
    }
}

/// `POST /jobs/{id}/start` (ops).
pub async fn start(State(s): State<Shared>, Path(id): Path<String>, _form: Form) -> Result<Response, WebError> {
    start_planned(&s, &id).await?;
    Ok(see_other(&s, &format!("/jobs/{}", seg(&id)), "Started: the plan is executing."))
}

/// `POST /jobs/{id}/cancel` (ops): drops a planned job, or stops a running one at its next safe
/// point.
pub async fn cancel(State(s): State<Shared>, Path(id): Path<String>, _form: Form) -> Result<Response, WebError> {
    let j = runner::request_cancel(&s.ctx, &id).await?;
    let what = match j.state {
        JobState::Cancelled => "Cancelled; its plan is dropped.",
        JobState::Running => "Asked to stop at its next safe point.",
        _ => "Already ended; nothing to cancel.",
    };
    Ok(see_other(&s, &format!("/jobs/{}", seg(&id)), what))
}

/// The manifest states, in the order a row moves through them.
const ROW_STATES: [&str; 6] = ["planned", "written", "archived", "deleted", "skipped", "failed"];

/// `GET /jobs/{id}`: the job, live while it runs.
pub async fn show(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    Query(n): Query<super::Notice>,
) -> Result<Markup, WebError> {
    let prog = jobs::progress(&s.ctx, &id).await?;
    let j = &prog.job;
    let ops = who.role >= Role::Ops;
    let live = !j.state.is_final();
    let body = html! {
        (notice(&s, &n))
        div id="job" data-job=(j.id) data-live=(if live { "1" } else { "0" }) {
            dl class="facts" {
                dt { "State" } dd { span id="job-state" { (state_badge(j.state)) } }
                dt { "Kind" } dd { (j.kind) @if let Some(r) = &j.rule { " of rule " (r) } }
                dt { "Created" } dd { (time(j.created)) }
                dt { "Started" } dd id="job-started" { @if live && j.started.is_none() { span class="muted" { "not yet" } } @else { (opt_time(j.started)) } }
                dt { "Finished" } dd id="job-finished" { @if live { span class="muted" { "not yet" } } @else { (opt_time(j.finished)) } }
                @if let Some(n) = &j.note { dt { "Note" } dd { (n) } }
            }
            p id="live-status" role="status" aria-live="polite" class="muted" {
                @if live { "Following the job live… (without JavaScript, reload to update)" }
            }
            @if live {
            h2 { "Progress" }
            p id="live-task" class="muted" {
                @if let Some(l) = &prog.live { "Task " (l.task) ": " (l.recordings) " of " (l.total) " recordings, " (bytes(l.bytes)) }
            }
            table id="progress" class="results" {
                thead { tr { th scope="col" { "Task" } @for st in ROW_STATES { th scope="col" { (st) } } th scope="col" { "Done" } } }
                tbody {
                    @for (i, row) in prog.rows.iter().enumerate() {
                        @let total: u64 = row.values().sum();
                        @let done = total - row.get("planned").copied().unwrap_or(0);
                        tr data-task=(i) {
                            th scope="row" data-label="Task" { (i + 1) }
                            @for st in ROW_STATES { td data-count=(st) data-label=(st) { (row.get(st).copied().unwrap_or(0)) } }
                            td data-label="Done" { progress data-bar="" max=(total.max(1)) value=(done) aria-label={ "Task " (i + 1) " progress" } { (done) " of " (total) } }
                        }
                    }
                }
            }
            }
            @if !j.tasks.is_empty() {
                h2 { "Outcome per task" }
                table class="results" {
                    thead { tr { th scope="col" { "Task" } th scope="col" { "State" } th scope="col" { "Recordings" } th scope="col" { "Screens" }
                        th scope="col" { "Bytes" } th scope="col" { "Held" } th scope="col" { "Changed" } th scope="col" { "Failed" } th scope="col" { "Archive / note" } } }
                    tbody { @for t in &j.tasks { tr {
                        td data-label="Task" { (t.task) " " (t.op.map(op_name).unwrap_or("")) } td data-label="State" { (t.state) }
                        td data-label="Recordings" { (t.recordings) } td data-label="Screens" { (t.screens) }
                        td data-label="Bytes" { (bytes(t.bytes)) } td data-label="Held" { (t.held) } td data-label="Changed" { (t.changed) }
                        td data-label="Failed" { (t.failed) }
                        td data-label="Archive / note" { @if let Some(a) = &t.archive { code { (a) } " " } @if let Some(n) = &t.note { (n) } }
                    } } }
                }
            }
            h2 { "Tasks as planned" }
            (tasks_table(&j.spec, s.ctx.config.default_backup_location.as_deref()))
            @if j.failed_total > 0 {
                h2 { "Failed items (" (j.failed_total) ")" }
                ul class="failures" { @for f in &j.failed { li { code { (f.item) } ": " (f.reason) } } }
            }
            @if j.skipped_total > 0 {
                h2 { "Left alone (" (j.skipped_total) ")" }
                ul class="failures" { @for f in &j.skipped { li { code { (f.item) } ": " (f.reason) } } }
            }
            @if ops && live {
                div class="actions" {
                    @if j.state == JobState::Planned {
                        form method="post" action={ "/jobs/" (seg(&j.id)) "/start" } data-stay="Started: following it live…" data-stay-hide="" {
                            (csrf_field(&s, &who)) button type="submit" class="primary" { "Start this plan" } }
                    }
                    form method="post" action={ "/jobs/" (seg(&j.id)) "/cancel" } data-stay="Cancel asked: a planned job is dropped, a running one stops at its next safe point." {
                        (csrf_field(&s, &who)) button type="submit" { "Cancel" } }
                }
            }
        }
    };
    Ok(layout(&format!("Job {}", j.id), &who, Section::Jobs, body))
}
