//! The import sources: a list, and a page per source with its cursor, retry buffer, last batch
//! and alerts ([`crate::import::status`], the call the API and `/metrics` make too). `ops` sets
//! the cursor and edits the retry buffer through the calls `reclife import cursor|retry` makes.
//! Everything that came from Genesys Cloud (ids, numbers, names, alert details) is text that
//! maud escapes; times are shown in UTC and in the source's "Recording Timezone".

use super::csrf::Form;
use super::{csrf_field, layout, notice, see_other, seg, Section, WebError};
use crate::api::auth::{Caller, Role};
use crate::api::Shared;
use crate::import::{self, SourceStatus};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use chrono::{DateTime, Utc};
use maud::{html, Markup};

/// A time in UTC, and in the source's zone when it is not UTC.
fn when(t: DateTime<Utc>, zone: &str) -> Markup {
    let local = import::zone::show(t, zone);
    html! {
        time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
            (t.format("%Y-%m-%d %H:%M:%S UTC"))
        }
        @if let Some(l) = local { " " span class="muted" { "(" (l) ")" } }
    }
}

/// The error as the API would answer it (404 no such source, 409 a run holds it, 400 bad input).
fn failed(e: import::ImportError) -> WebError {
    crate::api::ApiFailure::from(e).into()
}

fn flag(on: bool) -> &'static str {
    if on {
        "yes"
    } else {
        "no"
    }
}

/// `GET /import`: every configured source.
pub async fn list(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Query(n): Query<super::Notice>,
) -> Result<Markup, WebError> {
    let all = import::statuses(&s.ctx).await.map_err(failed)?;
    let body = html! {
        (notice(&s, &n))
        @if all.is_empty() {
            p { "No import source is configured on this node ([import.NAME] in the configuration)." }
        } @else {
            table {
                caption class="sr-only" { "Import sources" }
                thead { tr { th scope="col" { "Source" } th scope="col" { "Type" } th scope="col" { "Cursor" }
                    th scope="col" { "Retry buffer" } th scope="col" { "Last batch" } th scope="col" { "Imported (total)" }
                    th scope="col" { "Latest alert" } } }
                tbody { @for st in &all { tr {
                    td { a href={ "/import/" (seg(&st.name)) } { (st.name) } }
                    td { (st.kind) }
                    td { code { (st.cursor) } }
                    td { (st.retry_buffer.len()) }
                    td { @match st.last_batch.as_ref().and_then(|b| b.finished.or(b.started)) {
                        Some(t) => (when(t, &st.timezone)),
                        None => span class="muted" { "never" },
                    } }
                    td { (st.totals.get("imported").copied().unwrap_or(0)) }
                    td { @if let Some(a) = st.alerts.first() { (a.message) } }
                } } }
            }
        }
    };
    Ok(layout("Import sources", &who, Section::Import, body))
}

fn source_page(s: &Shared, who: &Caller, st: &SourceStatus, n: &super::Notice) -> Markup {
    let ops = who.role >= Role::Ops;
    let zone = st.timezone.as_str();
    let base = format!("/import/{}", seg(&st.name));
    html! {
        (notice(s, n))
        @if let Some(p) = &st.problem { p class="error" role="alert" { (p) } }
        section class="card" aria-labelledby="state" {
            h2 id="state" { "State" }
            dl class="facts" {
                dt { "Type" } dd { (st.kind) }
                dt { "Cursor" } dd { code { (st.cursor) } }
                dt { "Recording Timezone" } dd { (zone) }
                dt { "Running now" } dd { (st.running.as_deref().unwrap_or("no")) }
                @for (k, v) in &st.totals { dt { (k) } dd { (v) } }
            }
            @if ops {
                form method="post" action={ (base) "/cursor" } {
                    (csrf_field(s, who))
                    label for="cursor" { "Set the cursor (id;yyyy.MM.dd HH:mm:ss.SSS, UTC)" }
                    input id="cursor" name="cursor" type="text" value=(st.cursor) required;
                    button type="submit" { "Set cursor" }
                }
            }
        }
        section aria-labelledby="retry" {
            h2 id="retry" { "Retry buffer (" (st.retry_buffer.len()) ")" }
            @if st.retry_buffer.is_empty() { p { "Empty." } } @else {
                table { thead { tr { th scope="col" { "Conversation" } th scope="col" { "Added" } th scope="col" { "Attempts" }
                    th scope="col" { "Reason" } @if ops { th scope="col" { "Remove" } } } }
                tbody { @for e in &st.retry_buffer { tr {
                    td { code { (e.conversation_id) } }
                    td { (when(e.added, zone)) }
                    td { (e.attempts) }
                    td { (e.reason) }
                    @if ops { td {
                        form method="post" action={ (base) "/retry/" (seg(&e.conversation_id)) "/remove" } {
                            (csrf_field(s, who))
                            button type="submit" aria-label={ "Remove " (e.conversation_id) } { "Remove" }
                        }
                    } }
                } } }
                }
            }
            @if ops {
                form method="post" action={ (base) "/retry" } {
                    (csrf_field(s, who))
                    label for="conversation_id" { "Add a conversation" }
                    input id="conversation_id" name="conversation_id" type="text" required;
                    button type="submit" { "Add to the retry buffer" }
                }
            }
        }
        section aria-labelledby="batch" {
            h2 id="batch" { "Last batch" }
            @match &st.last_batch {
                None => p { "No run has finished yet." },
                Some(b) => {
                    p {
                        @if let Some(t) = b.started { "Started " (when(t, zone)) }
                        @if let Some(t) = b.finished { ", ended " (when(t, zone)) }
                        "; cursor " code { (b.cursor_before) } " → " code { (b.cursor_after) }
                        "; " (b.buffered.len()) " to the retry buffer, " (b.retried) " retried (" (b.failed) " failed again)."
                    }
                    @if b.conversations.is_empty() { p { "No conversations imported" } } @else {
                        table { thead { tr { th scope="col" { "Conversation" } th scope="col" { "Extension" }
                            th scope="col" { "Participant" } th scope="col" { "reclife id" } th scope="col" { "Newly imported" }
                            th scope="col" { "Media downloaded" } th scope="col" { "Already imported" } } }
                        tbody { @for c in &b.conversations { tr {
                            td { code { (c.conversation_id) } }
                            td { (c.extension.as_deref().unwrap_or("")) }
                            td { (c.participant.as_deref().unwrap_or("")) }
                            td { @if let Some(id) = &c.reclife_id { a href={ "/recordings/" (seg(id)) } { code { (id) } } } }
                            td { (flag(c.newly_imported)) }
                            td { (flag(c.media_downloaded)) }
                            td { (flag(c.already_imported)) }
                        } } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="alerts" {
            h2 id="alerts" { "Alerts (newest first)" }
            @if st.alerts.is_empty() { p { "None." } } @else {
                table { thead { tr { th scope="col" { "When" } th scope="col" { "Alert" } th scope="col" { "Detail" } } }
                tbody { @for a in &st.alerts { tr {
                    td { (when(a.at, zone)) }
                    td { (a.message) }
                    td { pre class="detail" { (a.detail) } }
                } } }
                }
            }
        }
    }
}

/// `GET /import/{name}`.
pub async fn show(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(name): Path<String>,
    Query(n): Query<super::Notice>,
) -> Result<Markup, WebError> {
    let st = import::status(&s.ctx, &name).await.map_err(failed)?;
    let title = format!("Import source {}", st.name);
    Ok(layout(&title, &who, Section::Import, source_page(&s, &who, &st, &n)))
}

/// `POST /import/{name}/cursor` (ops).
pub async fn set_cursor(State(s): State<Shared>, Path(name): Path<String>, form: Form) -> Result<Response, WebError> {
    let text = form.get("cursor").unwrap_or_default().to_string();
    let c = import::set_cursor(&s.ctx, &name, &text).await.map_err(failed)?;
    tracing::info!(source = %name, cursor = %c, user = %form.caller.user, "import cursor set from the pages");
    Ok(see_other(&s, &format!("/import/{}", seg(&name)), &format!("Cursor set to {c}.")))
}

/// `POST /import/{name}/retry` (ops).
pub async fn retry_add(State(s): State<Shared>, Path(name): Path<String>, form: Form) -> Result<Response, WebError> {
    let id = form.get("conversation_id").unwrap_or_default().to_string();
    import::retry_add(&s.ctx, &name, &id).await.map_err(failed)?;
    Ok(see_other(&s, &format!("/import/{}", seg(&name)), &format!("Conversation {id} is in the retry buffer.")))
}

/// `POST /import/{name}/retry/{conversation}/remove` (ops).
pub async fn retry_remove(
    State(s): State<Shared>,
    Path((name, id)): Path<(String, String)>,
    _form: Form,
) -> Result<Response, WebError> {
    import::retry_remove(&s.ctx, &name, &id).await.map_err(failed)?;
    Ok(see_other(&s, &format!("/import/{}", seg(&name)), &format!("Conversation {id} left the retry buffer.")))
}
