//! `/metrics` in the Prometheus text format (the `prometheus-client` crate).
//!
//! Counted as they happen: HTTP requests by route template, method and status, their latency
//! as a histogram by route, and failed logins. Read from the catalog at each scrape: recordings
//! by kind, held recordings, jobs by state, the recordings and bytes the kept job records
//! backed up and purged, finished jobs' run times (a histogram by kind and state, each job
//! observed once per process), leases held by kind, the muxer's pairs by status, and each
//! import source's totals (imported, failed, alerts by kind), retry buffer and last batch time.

use super::{blocking, ApiFailure, Shared};
use crate::catalog::Query;
use crate::model::Kind;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Instant;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The registry and the metrics the API updates.
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    latency: Family<Labels, Histogram, fn() -> Histogram>,
    auth_failures: Counter,
    recordings: Family<Labels, Gauge>,
    held: Gauge,
    jobs: Family<Labels, Gauge>,
    done: Family<Labels, Gauge>,
    done_bytes: Family<Labels, Gauge>,
    job_duration: Family<Labels, Histogram, fn() -> Histogram>,
    /// Final jobs already observed in `job_duration` (each is observed once per process).
    seen_jobs: std::sync::Mutex<std::collections::HashSet<String>>,
    leases: Family<Labels, Gauge>,
    mux_pairs: Family<Labels, Gauge>,
    import_imported: Family<Labels, Gauge>,
    import_failed: Family<Labels, Gauge>,
    import_retry: Family<Labels, Gauge>,
    import_last_batch: Family<Labels, Gauge>,
    import_alerts: Family<Labels, Gauge>,
}

fn job_histogram() -> Histogram {
    // 1 s .. ~9 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("reclife");
        let requests = Family::<Labels, Counter>::default();
        let latency = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
        let auth_failures = Counter::default();
        let recordings = Family::<Labels, Gauge>::default();
        let held = Gauge::default();
        let jobs = Family::<Labels, Gauge>::default();
        let done = Family::<Labels, Gauge>::default();
        let done_bytes = Family::<Labels, Gauge>::default();
        let job_duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(job_histogram);
        let leases = Family::<Labels, Gauge>::default();
        let mux_pairs = Family::<Labels, Gauge>::default();
        let import_imported = Family::<Labels, Gauge>::default();
        let import_failed = Family::<Labels, Gauge>::default();
        let import_retry = Family::<Labels, Gauge>::default();
        let import_last_batch = Family::<Labels, Gauge>::default();
        let import_alerts = Family::<Labels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("auth_failures", "Failed logins", auth_failures.clone());
        registry.register("recordings", "Recordings in the catalog by kind", recordings.clone());
        registry.register("recordings_held", "Recordings protected from deletion (nonDelete or a hold)", held.clone());
        registry.register("jobs", "Lifecycle jobs by state", jobs.clone());
        registry.register(
            "lifecycle_recordings",
            "Recordings backed up or purged by the job records kept, by operation",
            done.clone(),
        );
        registry.register(
            "lifecycle_bytes",
            "Media bytes backed up or purged by the job records kept",
            done_bytes.clone(),
        );
        registry.register(
            "job_duration_seconds",
            "Run time of finished lifecycle jobs by kind and final state (each job observed once)",
            job_duration.clone(),
        );
        registry.register(
            "leases",
            "Leases held in the catalog by kind (job, journal, muxer pair, rule fire)",
            leases.clone(),
        );
        registry.register("muxer_pairs", "Screen/voice pairs the muxer has recorded, by status", mux_pairs.clone());
        registry.register(
            "import_conversations_imported",
            "Conversations an import source has imported, in total, by source",
            import_imported.clone(),
        );
        registry.register(
            "import_conversations_failed",
            "Conversations an import source put in (or back in) its retry buffer, in total, by source",
            import_failed.clone(),
        );
        registry.register(
            "import_retry_buffer",
            "Conversations in an import source's retry buffer",
            import_retry.clone(),
        );
        registry.register(
            "import_last_batch_timestamp_seconds",
            "When an import source's last run ended (Unix time)",
            import_last_batch.clone(),
        );
        registry.register(
            "import_alerts",
            "Alerts an import source raised, in total, by source and alert",
            import_alerts.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            auth_failures,
            recordings,
            held,
            jobs,
            done,
            done_bytes,
            job_duration,
            seen_jobs: Default::default(),
            leases,
            mux_pairs,
            import_imported,
            import_failed,
            import_retry,
            import_last_batch,
            import_alerts,
        }
    }

    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        let l = vec![
            ("route".into(), route.to_string()),
            ("method".into(), method.to_string()),
            ("status".into(), status.to_string()),
        ];
        self.requests.get_or_create(&l).inc();
        self.latency.get_or_create(&vec![("route".into(), route.to_string())]).observe(seconds);
    }
}

/// Middleware: counts every request under its route template (`/api/v2/recordings/{id}`), so
/// ids do not explode the label space.
pub async fn track(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let t = Instant::now();
    let resp = next.run(req).await;
    s.metrics.observe(&route, &method, resp.status().as_u16(), t.elapsed().as_secs_f64());
    resp
}

/// `GET /metrics`.
pub async fn render(State(s): State<Shared>) -> Result<Response, ApiFailure> {
    let catalog = s.ctx.catalog.clone();
    let ctx = s.ctx.clone();
    let (voice, screen, held, leases, mux) = blocking(move || {
        let n = |kind| catalog.count(&Query { kind: Some(kind), ..Query::default() });
        let held = catalog.count(&Query { held: Some(true), ..Query::default() })?;
        let mut leases: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        let now = ctx.clock.now();
        for l in catalog.lease_list("")?.into_iter().filter(|l| l.until > now) {
            // Lease names are `<part>/<kind>/<what>`: `lifecycle/job/…`, `muxer/pair/…`.
            let kind: Vec<&str> = l.name.splitn(3, '/').take(2).collect();
            *leases.entry(kind.join("/")).or_default() += 1;
        }
        let mux = crate::muxer::status(&ctx).map_err(ApiFailure::internal)?;
        Ok((n(Kind::Voice)?, n(Kind::Screen)?, held, leases, (mux.muxed, mux.failed.len() as u64)))
    })
    .await?;
    let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    s.metrics.recordings.get_or_create(&vec![("kind".into(), "voice".into())]).set(gauge(voice));
    s.metrics.recordings.get_or_create(&vec![("kind".into(), "screen".into())]).set(gauge(screen));
    s.metrics.held.set(gauge(held));
    s.metrics.leases.clear();
    for (kind, n) in leases {
        s.metrics.leases.get_or_create(&vec![("kind".into(), kind)]).set(n);
    }
    s.metrics.mux_pairs.get_or_create(&vec![("status".into(), "muxed".into())]).set(gauge(mux.0));
    s.metrics.mux_pairs.get_or_create(&vec![("status".into(), "failed".into())]).set(gauge(mux.1));
    // Jobs are read a page at a time (they are pruned after job_retention_days).
    let mut by_state: std::collections::BTreeMap<String, i64> =
        ["planned", "running", "succeeded", "failed", "cancelled"].iter().map(|k| (k.to_string(), 0)).collect();
    let mut by_op: std::collections::BTreeMap<String, (u64, u64)> =
        ["backup", "purge"].iter().map(|k| (k.to_string(), (0, 0))).collect();
    crate::lifecycle::jobs::for_each(&s.ctx, |j| {
        *by_state.entry(j.state.to_string()).or_default() += 1;
        if let (true, Some(a), Some(b)) = (j.state.is_final(), j.started, j.finished) {
            if s.metrics.seen_jobs.lock().unwrap_or_else(|p| p.into_inner()).insert(j.id.clone()) {
                let l = vec![("kind".into(), j.kind.clone()), ("state".into(), j.state.to_string())];
                s.metrics.job_duration.get_or_create(&l).observe((b - a).num_milliseconds().max(0) as f64 / 1000.0);
            }
        }
        for t in &j.tasks {
            if let Some(op) = t.op {
                let e = by_op.entry(format!("{op:?}").to_lowercase()).or_default();
                e.0 += t.recordings;
                e.1 += t.bytes;
            }
        }
    })
    .await?;
    for (state, n) in by_state {
        s.metrics.jobs.get_or_create(&vec![("state".into(), state)]).set(n);
    }
    for (op, (n, bytes)) in by_op {
        s.metrics.done.get_or_create(&vec![("op".into(), op.clone())]).set(gauge(n));
        s.metrics.done_bytes.get_or_create(&vec![("op".into(), op)]).set(gauge(bytes));
    }
    for st in crate::import::statuses(&s.ctx).await? {
        let src = vec![("source".into(), st.name.clone())];
        let total = |k: &str| gauge(st.totals.get(k).copied().unwrap_or(0));
        s.metrics.import_imported.get_or_create(&src).set(total("imported"));
        s.metrics.import_failed.get_or_create(&src).set(total("failed"));
        s.metrics.import_retry.get_or_create(&src).set(gauge(st.retry_buffer.len() as u64));
        if let Some(t) = st.last_batch.as_ref().and_then(|b| b.finished.or(b.started)) {
            s.metrics.import_last_batch.get_or_create(&src).set(t.timestamp());
        }
        for (k, n) in st.totals.iter().filter_map(|(k, n)| Some((k.strip_prefix("alert/")?, *n))) {
            let l = vec![("source".into(), st.name.clone()), ("alert".into(), k.to_string())];
            s.metrics.import_alerts.get_or_create(&l).set(gauge(n));
        }
    }
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &s.metrics.registry).map_err(ApiFailure::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}
