//! Recordings: search (time range, caller or dialed number, agent, label, held), a recording's
//! page (metadata, without store paths for `user` as the API shows it; media with an audio or
//! video player when its type is on the API's allow-list, else a download link; an encrypted
//! file plays the same way, decrypted by the API, and the page names the key that opens it;
//! its screens or its call; for ops, its plays from the playback audit log), and holds and
//! labels. The search is the RWS listing's own parser and pager (same
//! parameters, same keyset cursor), plus the catalog's label and held filters; holds and labels
//! are the API's functions. A recording's page shows the hold in force (reason, since, by
//! whom), a screen held by its call, and the hold history (placed and released, when, by whom,
//! why). An imported recording's start and end show in its "Recording Timezone" beside UTC
//! ([`crate::import::zone::of_recording`]).

use super::csrf::Form;
use super::{csrf_field, layout, notice, see_other, seg, time, Section, WebError};
use crate::api::auth::{Caller, Role};
use crate::api::rws::recordings::{
    add_label, already_held, page, parse_listing, place_hold, release_hold, remove_label, without_store_paths,
};
use crate::api::rws::served_media_type;
use crate::api::{blocking, Shared};
use crate::catalog::{Entry, HoldAction, HoldOutcome};
use crate::model::{Kind, Recording};
use crate::playback;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use chrono::{DateTime, NaiveDateTime, Utc};
use maud::{html, Markup};

/// A recording's time in UTC and, when it has a "Recording Timezone", in that zone too.
fn when(t: DateTime<Utc>, zone: Option<&str>) -> Markup {
    let local = zone.and_then(|z| crate::import::zone::show(t, z));
    html! {
        (time(t))
        @if let Some(l) = local { " " span class="muted local-zone" { "(" (l) ")" } }
    }
}

/// Recordings per search page.
const PAGE: usize = 50;
/// Plays shown on a recording's page.
const PLAYS: usize = 50;

#[derive(Debug, Default, serde::Deserialize)]
pub struct SearchParams {
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    caller: Option<String>,
    dialed: Option<String>,
    agent: Option<String>,
    label: Option<String>,
    held: Option<String>,
    cursor: Option<String>,
}

fn filled(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// A `datetime-local` value (`2025-06-01T10:30`, seconds optional), read as UTC.
fn utc_input(name: &str, v: &str) -> Result<DateTime<Utc>, WebError> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(v, f).ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            WebError::bad_request(format!("{name} {v:?}: expected a date and time such as 2025-06-01T10:30"))
        })
}

/// The form's fields as RWS listing parameters (without the cursor).
fn rws_params(p: &SearchParams) -> Result<Vec<(&'static str, String)>, WebError> {
    let mut q = vec![("limit", PAGE.to_string())];
    if let Some(v) = filled(&p.from) {
        q.push(("startTime", utc_input("from", v)?.timestamp_millis().to_string()));
    }
    if let Some(v) = filled(&p.to) {
        q.push(("endTime", utc_input("to", v)?.timestamp_millis().to_string()));
    }
    for (field, name) in [(&p.caller, "callerPhoneNumber"), (&p.dialed, "dialedPhoneNumber"), (&p.agent, "userName")] {
        if let Some(v) = filled(field) {
            q.push((name, v.to_string()));
        }
    }
    Ok(q)
}

/// The form's own query string (for the next page's link).
fn echo(p: &SearchParams) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    // (Not held across an await: the serializer is not Send.)
    for (k, v) in [
        ("type", &p.kind),
        ("from", &p.from),
        ("to", &p.to),
        ("caller", &p.caller),
        ("dialed", &p.dialed),
        ("agent", &p.agent),
        ("label", &p.label),
        ("held", &p.held),
    ] {
        if let Some(v) = filled(v) {
            s.append_pair(k, v);
        }
    }
    s.finish()
}

fn doc_str<'a>(doc: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    doc.get(field).and_then(|v| v.as_str())
}

/// `GET /recordings`: the search form and one page of results.
pub async fn search(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Query(p): Query<SearchParams>,
) -> Result<Markup, WebError> {
    let kind: Kind = filled(&p.kind).unwrap_or("voice").parse().map_err(|e: String| WebError::bad_request(e))?;
    let raw = {
        let mut raw = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in rws_params(&p)? {
            raw.append_pair(k, &v);
        }
        if let Some(c) = filled(&p.cursor) {
            raw.append_pair("cursor", c);
        }
        raw.finish()
    };
    let mut listing = parse_listing(Some(&raw), kind, s.ctx.config.scan_intervals_per_day)?;
    if let Some(l) = filled(&p.label) {
        listing.query.labels_include = vec![l.to_string()];
    }
    listing.query.held = match filled(&p.held) {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some("any") | None => None,
        Some(v) => return Err(WebError::bad_request(format!("held {v:?}: expected any, yes or no"))),
    };
    let catalog = s.ctx.catalog.clone();
    let (entries, next) = blocking(move || page(catalog.as_ref(), &listing)).await?;
    let v = |x: &Option<String>| x.clone().unwrap_or_default();
    let held = filled(&p.held).unwrap_or("any");
    let body = html! {
        form method="get" action="/recordings" class="stack" role="search" {
            div class="grid" {
                div { label for="type" { "Type" }
                    select id="type" name="type" {
                        option value="voice" selected[kind == Kind::Voice] { "voice (calls)" }
                        option value="screen" selected[kind == Kind::Screen] { "screen" } } }
                div { label for="from" { "Started at or after (UTC)" } input id="from" name="from" type="datetime-local" value=(v(&p.from)); }
                div { label for="to" { "Ended at or before (UTC)" } input id="to" name="to" type="datetime-local" value=(v(&p.to)); }
                div { label for="caller" { "Caller number (* wildcard)" } input id="caller" name="caller" type="text" inputmode="tel" value=(v(&p.caller)); }
                div { label for="dialed" { "Dialed number (* wildcard)" } input id="dialed" name="dialed" type="text" inputmode="tel" value=(v(&p.dialed)); }
                div { label for="agent" { "Agent user name" } input id="agent" name="agent" type="text" value=(v(&p.agent)); }
                div { label for="label" { "Label" } input id="label" name="label" type="text" value=(v(&p.label)); }
                div { label for="held" { "Held" }
                    select id="held" name="held" {
                        option value="any" selected[held == "any"] { "any" }
                        option value="yes" selected[held == "yes"] { "held only" }
                        option value="no" selected[held == "no"] { "not held" } } }
            }
            button type="submit" { "Search" }
        }
        h2 { "Results" }
        @if entries.is_empty() { p { "No recordings match." } } @else {
            table class="results" {
                thead { tr { th scope="col" { "Recording" } th scope="col" { "Start" } th scope="col" { "End" } th scope="col" { "Agent" }
                    th scope="col" { "Caller" } th scope="col" { "Dialed" } th scope="col" { "Labels" } th scope="col" { "Held" } } }
                tbody { @for e in &entries {
                    @let r = &e.recording;
                    @let doc = r.doc_value();
                    @let zone = crate::import::zone::of_recording(r);
                    // data-label: the column's name, shown beside each cell on a narrow screen.
                    tr {
                        td data-label="Recording" { a href={ "/recordings/" (seg(&r.id)) } { code { (r.id) } } }
                        td data-label="Start" { (when(r.start, zone.as_deref())) } td data-label="End" { (when(r.stop, zone.as_deref())) }
                        td data-label="Agent" { (r.agent_user.as_deref().unwrap_or("")) }
                        td data-label="Caller" { (doc_str(&doc, "callerPhoneNumber").unwrap_or("")) }
                        td data-label="Dialed" { (doc_str(&doc, "dialedPhoneNumber").unwrap_or("")) }
                        td data-label="Labels" { @for (i, l) in r.labels.iter().enumerate() { @if i > 0 { ", " } span class="id" { (l) } } }
                        td data-label="Held" { @if e.held() { span class="badge held" { "held" } } @else { "no" } }
                    }
                } }
            }
        }
        @if let Some(n) = next {
            nav class="pager" aria-label="Result pages" {
                a rel="next" href={ "/recordings?" (echo(&p)) "&cursor=" (seg(&n.token())) } { "Next page" }
            }
        }
    };
    Ok(layout("Recordings", &who, Section::Recordings, body))
}

async fn load(s: &Shared, id: &str) -> Result<Entry, WebError> {
    let (catalog, i) = (s.ctx.catalog.clone(), id.to_string());
    blocking(move || Ok(catalog.get(&i)?))
        .await?
        .ok_or_else(|| WebError::new(axum::http::StatusCode::NOT_FOUND, format!("no recording {id}")))
}

fn media_path(r: &Recording, media_id: &str) -> String {
    format!("/api/v2{}", crate::api::rws::media_path(r.kind, &r.id, media_id))
}

/// `GET /recordings/{id}`.
pub async fn show(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    Query(n): Query<super::Notice>,
) -> Result<Markup, WebError> {
    let e = load(&s, &id).await?;
    let r = &e.recording;
    let (catalog, i) = (s.ctx.catalog.clone(), r.id.clone());
    let screens = if r.kind == Kind::Voice { blocking(move || Ok(catalog.screens_of(&i)?)).await? } else { Vec::new() };
    let doc = r.doc_value();
    let zone = crate::import::zone::of_recording(r);
    let ops = who.role >= Role::Ops;
    let mut shown = doc.clone();
    without_store_paths(&mut shown, who.role);
    let pretty = serde_json::to_string_pretty(&shown).unwrap_or_default();
    // Which key opens each encrypted file (a label; the envelope's head is read, nothing more).
    let mut keys = std::collections::HashMap::new();
    for m in r.media.iter().filter(|m| playback::is_encrypted(m)) {
        keys.insert(m.media_id.clone(), playback::key_of(&s.ctx, s.keys.clone(), &r.id, m).await);
    }
    // Its plays, from the playback audit log: for ops (who played what is an audit record).
    let plays = if ops {
        let (path, i) = (playback::plays_path(&s.ctx), r.id.clone());
        blocking(move || playback::plays_of(&path, &i, PLAYS).map_err(crate::api::ApiFailure::internal)).await?
    } else {
        Vec::new()
    };
    let body = html! {
        (notice(&s, &n))
        dl class="facts" {
            dt { "Type" } dd { (r.kind) }
            dt { "Start" } dd { (when(r.start, zone.as_deref())) }
            dt { "End" } dd { (when(r.stop, zone.as_deref())) }
            @if let Some(z) = &zone { dt { "Recording Timezone" } dd { (z) } }
            @if let Some(v) = &r.region { dt { "Region" } dd { (v) } }
            @if let Some(v) = &r.call_type { dt { "Call type" } dd { (v) } }
            @if let Some(v) = doc_str(&doc, "callerPhoneNumber") { dt { "Caller" } dd { (v) } }
            @if let Some(v) = doc_str(&doc, "dialedPhoneNumber") { dt { "Dialed" } dd { (v) } }
            @if !r.agent_users.is_empty() { dt { "Agents" } dd { (r.agent_users.join(", ")) } }
            @if let Some(c) = &r.call_recording_id { dt { "Call" } dd { a href={ "/recordings/" (seg(c)) } { code { (c) } } } }
            dt { "Version" } dd { (e.version) }
            dt { "Held" } dd id="hold-state" {
                @if let Some(h) = &e.hold {
                    span class="badge held" { "held" } " " (h.reason) " (since " (time(h.at))
                    @if let Some(b) = &h.by { ", by " span class="hold-by" { (b) } } ")"
                }
                @else if r.non_delete { span class="badge held" { "held" } " nonDelete in the metadata" }
                @else if e.call_held { span class="badge held" { "held" } " by its call's hold" }
                @else { "no" }
            }
            dt { "Labels" } dd id="labels" { @if r.labels.is_empty() { span class="muted" { "none" } } @else { (r.labels.join(", ")) } }
        }
        h2 { "Media" }
        @for m in &r.media {
            section class="card media" {
                h3 { code { (m.media_id) } " " span class="muted" { (m.mime) }
                    @if !m.muxed_media_ids.is_empty() { " " span class="badge succeeded" { "muxed" } } }
                p { @if let Some(n) = m.size { (super::bytes(n)) } @if let Some(d) = m.duration_ms { ", " (d / 1000) " s" } }
                @if let Some(k) = keys.get(&m.media_id) {
                    @match k {
                        Ok(label) => p class="key" { "Encrypted; the server decrypts it to play it, with key " code class="key-label" { (label) } "." },
                        Err(e) => p class="muted key" { "Encrypted, and this node cannot open it: " (e) },
                    }
                }
                @if served_media_type(&m.mime).is_some_and(|t| t.starts_with("video/")) {
                    // `#t=0.1`: the browser loads and shows the frame at 0.1 s as the poster (a
                    // muxed file's first frame is the screen), where metadata alone shows black.
                    video controls preload="metadata" src={ (media_path(r, &m.media_id)) "#t=0.1" } aria-label={ "Video " (m.media_id) } {
                        a href=(media_path(r, &m.media_id)) { "Download the video" } }
                } @else if served_media_type(&m.mime).is_some_and(|t| t.starts_with("audio/")) {
                    audio controls preload="metadata" src=(media_path(r, &m.media_id)) aria-label={ "Audio " (m.media_id) } {
                        a href=(media_path(r, &m.media_id)) { "Download the audio" } }
                } @else {
                    p { a href=(media_path(r, &m.media_id)) download { "Download" } }
                }
            }
        }
        @if ops {
            h2 { "Plays" }
            @if plays.is_empty() {
                p class="muted" id="plays" { "Not played through the API yet." }
            } @else {
                table id="plays" class="results" {
                    caption class="muted" { "The last " (PLAYS) " reads of its media, newest first (audit/plays.jsonl)" }
                    thead { tr { th { "When" } th { "Who" } th { "Media" } th { "Outcome" } th { "Bytes" } th { "Range" } th { "Key" } } }
                    tbody {
                        @for pl in &plays {
                            tr {
                                td data-label="When" { (time(pl.time)) }
                                td data-label="Who" { (pl.user) }
                                td data-label="Media" { code { (pl.media) } }
                                td data-label="Outcome" { span class={ "badge " (pl.outcome) } { (pl.outcome) }
                                     @if let Some(why) = &pl.reason { " " span class="muted" { (why) } } }
                                td data-label="Bytes" { (pl.bytes) }
                                td data-label="Range" { (pl.range.as_deref().unwrap_or("whole")) }
                                td data-label="Key" { (pl.key.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
        @if !e.hold_history.is_empty() {
            h2 { "Hold history" }
            table id="hold-history" class="results" {
                thead { tr { th { "When" } th { "What" } th { "Who" } th { "Reason" } } }
                tbody {
                    @for ev in &e.hold_history {
                        tr {
                            td data-label="When" { (time(ev.at)) }
                            td data-label="What" { @match ev.event { HoldAction::Placed => "hold placed", HoldAction::Released => "hold released" } }
                            td data-label="Who" { (ev.by.as_deref().unwrap_or("unknown")) }
                            td data-label="Reason" { (ev.reason.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
        @if !screens.is_empty() {
            h2 { "Screen recordings of this call" }
            ul { @for sc in &screens { li { a href={ "/recordings/" (seg(&sc.id)) } { code { (sc.id) } } " " (time(sc.start)) } } }
        }
        @if ops {
            h2 { "Hold and labels" }
            div class="grid actions-grid" {
                @if e.hold.is_some() {
                    form method="post" action={ "/recordings/" (seg(&r.id)) "/unhold" } {
                        (csrf_field(&s, &who)) button type="submit" { "Release the hold" } }
                } @else {
                    form method="post" action={ "/recordings/" (seg(&r.id)) "/hold" } class="stack" {
                        (csrf_field(&s, &who))
                        label for="reason" { "Reason for the hold" }
                        input id="reason" name="reason" type="text" required placeholder="Legal case 2025-17";
                        button type="submit" { "Hold" }
                    }
                }
                form method="post" action={ "/recordings/" (seg(&r.id)) "/labels" } class="stack" {
                    (csrf_field(&s, &who))
                    label for="new-label" { "Add a label" }
                    input id="new-label" name="label" type="text" required;
                    button type="submit" { "Add label" }
                }
                @if !r.labels.is_empty() {
                    form method="post" action={ "/recordings/" (seg(&r.id)) "/unlabel" } class="stack" {
                        (csrf_field(&s, &who))
                        label for="old-label" { "Remove a label" }
                        select id="old-label" name="label" { @for l in &r.labels { option value=(l) { (l) } } }
                        button type="submit" { "Remove label" }
                    }
                }
            }
        }
        details { summary { "Metadata document" } pre { code { (pretty) } } }
    };
    Ok(layout(&format!("Recording {}", r.id), &who, Section::Recordings, body))
}

fn back(s: &Shared, id: &str, done: &str) -> Response {
    see_other(s, &format!("/recordings/{}", seg(id)), done)
}

/// `POST /recordings/{id}/hold` (ops): a hold with its reason, placed by the signed-in user.
pub async fn hold(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, WebError> {
    let kind = load(&s, &id).await?.recording.kind;
    let reason = form.get("reason").unwrap_or("").to_string();
    let done = match place_hold(s.clone(), id.clone(), kind, reason, who.user).await? {
        HoldOutcome::Placed => "Held.".to_string(),
        HoldOutcome::AlreadyHeld(h) => already_held(&id, &h),
    };
    Ok(back(&s, &id, &done))
}

/// `POST /recordings/{id}/unhold` (ops), in the name of the signed-in user.
pub async fn unhold(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, WebError> {
    let kind = load(&s, &id).await?.recording.kind;
    release_hold(s.clone(), id.clone(), kind, who.user).await?;
    Ok(back(&s, &id, "Hold released."))
}

/// `POST /recordings/{id}/labels` (ops).
pub async fn label(State(s): State<Shared>, Path(id): Path<String>, form: Form) -> Result<Response, WebError> {
    let kind = load(&s, &id).await?.recording.kind;
    let l = form.get("label").unwrap_or("").to_string();
    add_label(s.clone(), id.clone(), kind, l.clone()).await?;
    Ok(back(&s, &id, &format!("Label {l} added.")))
}

/// `POST /recordings/{id}/unlabel` (ops).
pub async fn unlabel(State(s): State<Shared>, Path(id): Path<String>, form: Form) -> Result<Response, WebError> {
    let kind = load(&s, &id).await?.recording.kind;
    let l = form.get("label").unwrap_or("").to_string();
    remove_label(s.clone(), id.clone(), kind, l.clone()).await?;
    Ok(back(&s, &id, &format!("Label {l} removed.")))
}
