//! The overview (the node's health) and the muxer's pairs.

use super::csrf::Form;
use super::{csrf_field, layout, notice, see_other, seg, time, Section, WebError};
use crate::api::auth::{Caller, Role};
use crate::api::{blocking, Shared};
use crate::lifecycle::{jobs, journal, schedule};
use crate::muxer::state::{self as pairs, PairStatus};
use crate::storage::{Key, StorageError};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Extension;
use chrono::Utc;
use maud::{html, Markup};
use std::time::Instant;

/// Muxed pairs listed, newest first.
const MUXED_SHOWN: usize = 100;

fn ok_or_problem(ok: bool, text: String) -> Markup {
    html! {
        @if ok { span class="badge succeeded" { "ok" } " " (text) }
        @else { span class="badge failed" { "problem" } " " (text) }
    }
}

/// `GET /`: node, catalog, media store, scheduler and muxer at a glance.
pub async fn overview(State(s): State<Shared>, Extension(who): Extension<Caller>) -> Result<Markup, WebError> {
    let cfg = &s.ctx.config;
    // The catalog: one small read, timed; and what is open in it.
    let catalog = s.ctx.catalog.clone();
    let t = Instant::now();
    let cat = blocking(move || {
        catalog.state_get(crate::catalog::namespaces::PROBE, "ready")?;
        let running = catalog.state_list(jobs::RUNNING)?.len();
        let journals = catalog.state_list(journal::NAMESPACE)?.len();
        Ok((running, journals))
    })
    .await;
    let cat_ms = format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0);
    // The media store: a HEAD of a name nobody uses; "not found" means it answered.
    let t = Instant::now();
    let probe = match Key::media("reclife-health-probe", "none") {
        Ok(k) => match s.ctx.media.head(&k).await {
            Ok(_) | Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    let media_ms = format!("{:.1}", t.elapsed().as_secs_f64() * 1000.0);
    let ticks = schedule::last_ticks(&s.ctx).await?;
    let stale_after = chrono::TimeDelta::seconds((cfg.schedule_polling_interval.max(1) * 3) as i64);
    let now = Utc::now();
    let ctx = s.ctx.clone();
    let mux = blocking(move || crate::muxer::status(&ctx).map_err(crate::api::ApiFailure::internal)).await?;
    let body = html! {
        section class="card" aria-labelledby="node" {
            h2 id="node" { "Node" }
            dl class="facts" {
                dt { "Version" } dd { (crate::api::rws::VERSION) }
                dt { "Contact center" } dd { code { (cfg.contact_center_id) } }
                dt { "Node path" } dd { (cfg.node_path.as_deref().unwrap_or("(none)")) }
                dt { "Region" } dd { (cfg.region.as_deref().unwrap_or("all")) }
                dt { "Clock" } dd { (time(s.ctx.clock.now())) @if s.ctx.clock.is_fixed() { " (fixed with --now)" } }
            }
        }
        section class="card" aria-labelledby="catalog" {
            h2 id="catalog" { "Catalog" }
            @match &cat {
                Ok((running, journals)) => {
                    p { (ok_or_problem(true, format!("answered in {cat_ms} ms"))) }
                    dl class="facts" { dt { "Jobs running" } dd { (running) } dt { "Open purge journal entries" } dd { (journals) } }
                }
                Err(e) => { p { (ok_or_problem(false, e.message.clone())) } }
            }
        }
        section class="card" aria-labelledby="media" {
            h2 id="media" { "Media store" }
            p { code { (s.ctx.media.describe()) } }
            p { @match &probe { Ok(()) => (ok_or_problem(true, format!("answered in {media_ms} ms"))), Err(e) => (ok_or_problem(false, e.clone())) } }
        }
        section class="card" aria-labelledby="scheduler" {
            h2 id="scheduler" { "Scheduler" }
            @if ticks.is_empty() {
                p { (ok_or_problem(false, "no scheduler has ticked: is reclife run running on a node of this catalog?".into())) }
            }
            ul {
                @for (node, at) in &ticks {
                    li { "Node " code { (node) } ": last tick " (time(*at)) " "
                        @if now - *at > stale_after { span class="badge failed" { "late" } } @else { span class="badge succeeded" { "ok" } } }
                }
            }
        }
        section class="card" aria-labelledby="muxer" {
            h2 id="muxer" { "Muxer" }
            p { (mux.muxed) " pairs muxed, " (mux.failed.len()) " failed. " a href="/muxer" { "Details" } }
        }
        p { a href="/metrics" { "Prometheus metrics (/metrics)" } }
    };
    Ok(layout("Health", &who, Section::Overview, body))
}

/// `GET /muxer`: failed pairs with their reasons (retry), and the latest muxed pairs.
pub async fn muxer(
    State(s): State<Shared>,
    Extension(who): Extension<Caller>,
    Query(n): Query<super::Notice>,
) -> Result<Markup, WebError> {
    let catalog = s.ctx.catalog.clone();
    let all = blocking(move || Ok(pairs::list(catalog.as_ref())?)).await?;
    let max = s.ctx.config.muxer.max_retries;
    let (mut muxed, failed): (Vec<_>, Vec<_>) = all.into_iter().partition(|r| r.status == PairStatus::Muxed);
    muxed.sort_by_key(|r| std::cmp::Reverse(r.at));
    let total_muxed = muxed.len();
    muxed.truncate(MUXED_SHOWN);
    let ops = who.role >= Role::Ops;
    let body = html! {
        (notice(&s, &n))
        section aria-labelledby="failed" {
            h2 id="failed" { "Failed pairs (" (failed.len()) ")" }
            p class="muted" { "A failed pair is tried again on later passes, up to " (max) " attempts; Retry forgets its failures." }
            @if failed.is_empty() { p { "None." } } @else {
                table class="results" { thead { tr { th scope="col" { "Call" } th scope="col" { "Screen" } th scope="col" { "Attempts" }
                    th scope="col" { "Reason" } th scope="col" { "When" } th scope="col" { "Retry" } } }
                tbody { @for r in &failed { tr {
                    td data-label="Call" { a href={ "/recordings/" (seg(&r.call_id)) } { code { (r.call_id) } } }
                    td data-label="Screen" { a href={ "/recordings/" (seg(&r.screen_id)) } { code { (r.screen_id) } } }
                    td data-label="Attempts" { (r.attempts) @if r.given_up(max) { " " span class="badge failed" { "given up" } } }
                    td data-label="Reason" { (r.reason.as_deref().unwrap_or("")) }
                    td data-label="When" { (time(r.at)) }
                    td data-label="Retry" { @if ops {
                        form method="post" action={ "/muxer/" (seg(&r.screen_id)) "/retry" } {
                            (csrf_field(&s, &who)) button type="submit" aria-label={ "Retry screen " (r.screen_id) } { "Retry" } }
                    } }
                } } }
                }
            }
        }
        section aria-labelledby="muxed" {
            h2 id="muxed" { "Muxed pairs (" (total_muxed) ")" }
            @if muxed.is_empty() { p { "None yet." } } @else {
                @if total_muxed > MUXED_SHOWN { p class="muted" { "The latest " (MUXED_SHOWN) "." } }
                table class="results" { thead { tr { th scope="col" { "Call" } th scope="col" { "Screen" } th scope="col" { "Muxed file" } th scope="col" { "When" } } }
                tbody { @for r in &muxed { tr {
                    td data-label="Call" { a href={ "/recordings/" (seg(&r.call_id)) } { code { (r.call_id) } } }
                    td data-label="Screen" { a href={ "/recordings/" (seg(&r.screen_id)) } { code { (r.screen_id) } } }
                    td data-label="Muxed file" { code { (r.output.as_deref().unwrap_or("")) } }
                    td data-label="When" { (time(r.at)) }
                } } }
                }
            }
        }
    };
    Ok(layout("Muxer", &who, Section::Muxer, body))
}

/// `POST /muxer/{screen}/retry` (ops): `reclife mux --retry`.
pub async fn retry(State(s): State<Shared>, Path(screen): Path<String>, _form: Form) -> Result<Response, WebError> {
    let (catalog, id) = (s.ctx.catalog.clone(), screen.clone());
    let found = blocking(move || Ok(pairs::reset(catalog.as_ref(), &id)?)).await?;
    if !found {
        return Err(WebError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("the muxer has no record of screen recording {screen}"),
        ));
    }
    Ok(see_other(&s, "/muxer", &format!("Screen recording {screen} is retried at the next pass.")))
}
