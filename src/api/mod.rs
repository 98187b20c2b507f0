//! The HTTP faces of reclife: one axum router on tokio.
//!
//! In: a [`Context`] (catalog, media store, config) and an `[api]` section ([`ApiConfig`]).
//! Out: the GIR-compatible Interaction Recording Web Services endpoints ([`rws`], under
//! `/api/v2` and `/internal-api`), reclife's own jobs and rules API ([`v1`], under `/api/v1`),
//! its OpenAPI document ([`openapi`]), Prometheus metrics ([`metrics`], `/metrics`), `/healthz`
//! and `/readyz`, and the operators' pages ([`crate::web`], at `/`); over plain HTTP or TLS
//! ([`tls`]).
//!
//! Guarantees: every request but `/healthz`, `/readyz`, the OpenAPI document and the pages'
//! stylesheet and script is authenticated ([`auth`]: HTTP Basic against an
//! htpasswd file; role `user` reads and plays, role `ops` may also act); passwords never reach
//! logs or errors; every error is an RWS envelope `{"statusCode":N,"statusMessage":"…"}` with a
//! non-zero `statusCode` and the matching HTTP status ([`ApiFailure`]). The API is safe on the
//! pages' origin ([`origin`]): every write under `/api/` and `/internal-api/` is JSON and comes
//! from this origin or from no browser page; every answer carries `nosniff`; media is served
//! with `Content-Security-Policy: sandbox` and an audio or video type from an allow-list, or as
//! an `application/octet-stream` attachment ([`rws::served_media_type`]); documents served to
//! the `user` role carry no store paths. The handlers only call
//! library functions (catalog, storage, lifecycle); no logic another face needs lives here.

pub mod auth;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod rws;
pub mod tls;
pub mod v1;

use crate::config::Context;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The `[api]` section of the node configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address to listen on (`127.0.0.1:8080`). `reclife run` serves the API only when set;
    /// `reclife serve` uses it unless `--listen` is given.
    pub listen: Option<String>,
    /// htpasswd file (`htpasswd -B` bcrypt or `htpasswd -s` `{SHA}` entries). Required.
    pub users_file: Option<PathBuf>,
    /// Users of the file with the `ops` role; every other user has the `user` role.
    pub ops_users: Vec<String>,
    /// Public base URL used in `nextUri` and `mediaUri` (`https://rws.example.com`); unset:
    /// `http://<Host header>` (`https://` when TLS is on).
    pub public_url: Option<String>,
    /// TLS certificate chain (PEM). With `tls_key`, the API speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, PKCS#8, PKCS#1 or SEC1), readable by the service user only.
    pub tls_key: Option<PathBuf>,
    /// A file whose first line is a bearer token that may scrape `/metrics` without the
    /// operators' credentials (Prometheus `authorization: { credentials_file: … }`); unset:
    /// `/metrics` needs a user of the users file, as every other route.
    pub metrics_token_file: Option<PathBuf>,
}

/// Errors starting the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("[api] users_file is not set: the API refuses to run without authentication")]
    NoUsersFile,
    #[error("users file {path}: {why}")]
    Users { path: PathBuf, why: String },
    #[error("listen address {addr:?}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    #[error("TLS: {path}: {why}")]
    Tls { path: PathBuf, why: String },
    #[error("TLS needs both [api] tls_cert and tls_key")]
    TlsHalf,
    #[error("[api] metrics_token_file {path}: {why}")]
    MetricsToken { path: PathBuf, why: String },
    #[error("no random key for the web pages' forms: {0}")]
    Random(String),
}

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub ctx: Context,
    pub users: auth::Users,
    pub metrics: metrics::Metrics,
    /// Cancelled at shutdown: jobs started through the API stop at their next safe point.
    pub stop: tokio_util::sync::CancellationToken,
    /// Jobs started through the API, waited for at shutdown.
    pub jobs: tokio_util::task::TaskTracker,
    /// Signs the operators' pages' form tokens (CSRF); new at every start.
    pub csrf: crate::web::CsrfKey,
    /// The playback audit log (`audit/plays.jsonl`): every media read is a line.
    pub plays: Arc<crate::playback::PlayAudit>,
    /// The node's keys, for encrypted playback; `Err` says why there are none.
    pub keys: Result<Arc<crate::crypto::KeyStore>, String>,
    /// The bearer token that may read `/metrics` (`[api] metrics_token_file`).
    pub metrics_token: Option<auth::BearerToken>,
}

pub type Shared = Arc<AppState>;

/// An error answered in the RWS envelope. The GIR documents give no non-zero codes, so reclife
/// uses its own, stable ones: see the constants.
#[derive(Debug)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: i32,
    pub message: String,
}

impl ApiFailure {
    /// A parameter is missing or has a bad value.
    pub const BAD_REQUEST: i32 = 2;
    /// No such recording, media file, job or contact center.
    pub const NOT_FOUND: i32 = 3;
    /// The server failed (catalog, store).
    pub const INTERNAL: i32 = 4;
    /// No or wrong credentials, or a role that may not do this.
    pub const UNAUTHORIZED: i32 = 5;
    /// The request conflicts with the recording's state (a held recording).
    pub const CONFLICT: i32 = 6;
    /// Too many failed logins from this address. No longer answered: failed logins are slowed
    /// down, never refused ([`auth`]); the code stays reserved.
    pub const TOO_MANY: i32 = 7;

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiFailure { status: StatusCode::BAD_REQUEST, code: Self::BAD_REQUEST, message: message.into() }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiFailure { status: StatusCode::NOT_FOUND, code: Self::NOT_FOUND, message: message.into() }
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiFailure { status: StatusCode::CONFLICT, code: Self::CONFLICT, message: message.into() }
    }
    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "request failed");
        ApiFailure { status: StatusCode::INTERNAL_SERVER_ERROR, code: Self::INTERNAL, message: message.to_string() }
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "statusCode": self.code, "statusMessage": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<crate::catalog::CatalogError> for ApiFailure {
    fn from(e: crate::catalog::CatalogError) -> Self {
        use crate::catalog::CatalogError as E;
        match e {
            E::NotFound(_) => ApiFailure::not_found(e.to_string()),
            E::BadCursor(_) | E::BadQuery(_) | E::Invalid(_) => ApiFailure::bad_request(e.to_string()),
            e => ApiFailure::internal(e),
        }
    }
}

impl From<crate::storage::StorageError> for ApiFailure {
    fn from(e: crate::storage::StorageError) -> Self {
        match e {
            crate::storage::StorageError::NotFound { .. } => ApiFailure::not_found(e.to_string()),
            e => ApiFailure::internal(e),
        }
    }
}

impl From<crate::lifecycle::rule_store::StoreError> for ApiFailure {
    fn from(e: crate::lifecycle::rule_store::StoreError) -> Self {
        use crate::lifecycle::rule_store::StoreError as E;
        match e {
            E::NoRule(_) => ApiFailure::not_found(e.to_string()),
            E::Invalid(_) => ApiFailure::bad_request(e.to_string()),
            E::Busy(_) => ApiFailure::conflict(e.to_string()),
            e => ApiFailure::internal(e),
        }
    }
}

impl From<crate::lifecycle::LifecycleError> for ApiFailure {
    fn from(e: crate::lifecycle::LifecycleError) -> Self {
        match e {
            crate::lifecycle::LifecycleError::NoJob(_) | crate::lifecycle::LifecycleError::NoRule(_) => {
                ApiFailure::not_found(e.to_string())
            }
            crate::lifecycle::LifecycleError::Invalid(_) => ApiFailure::bad_request(e.to_string()),
            crate::lifecycle::LifecycleError::Conflict(_) => ApiFailure::conflict(e.to_string()),
            crate::lifecycle::LifecycleError::Rules(e) => e.into(),
            e => ApiFailure::internal(e),
        }
    }
}

impl From<crate::import::ImportError> for ApiFailure {
    fn from(e: crate::import::ImportError) -> Self {
        use crate::import::ImportError as E;
        match e {
            E::Missing { .. } => ApiFailure::not_found(e.to_string()),
            E::Busy { .. } => ApiFailure::conflict(e.to_string()),
            E::State { .. } | E::Config { .. } => ApiFailure::bad_request(e.to_string()),
            e => ApiFailure::internal(e),
        }
    }
}

/// Runs blocking catalog work off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiFailure>
where
    F: FnOnce() -> Result<T, ApiFailure> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiFailure::internal(format!("worker failed: {e}")))?
}

/// Loads the users file and builds the state the router needs.
pub fn state(ctx: Context) -> Result<Shared, ApiError> {
    let path = ctx.config.api.users_file.clone().ok_or(ApiError::NoUsersFile)?;
    let users = auth::Users::load(&path, &ctx.config.api.ops_users)?;
    let plays = crate::playback::PlayAudit::start(crate::playback::plays_path(&ctx));
    // Without keys the API still serves; encrypted media then fail to play, saying why.
    let keys = crate::playback::load_keys(&ctx);
    if let Err(why) = &keys {
        tracing::info!(why = %why, "no key store: encrypted recordings cannot be played");
    }
    let metrics_token = ctx.config.api.metrics_token_file.as_deref().map(auth::BearerToken::load).transpose()?;
    Ok(Arc::new(AppState {
        ctx,
        users,
        metrics: metrics::Metrics::new(),
        stop: Default::default(),
        jobs: Default::default(),
        csrf: crate::web::CsrfKey::random().map_err(ApiError::Random)?,
        plays,
        keys,
        metrics_token,
    }))
}

/// Every route, behind authentication and request metrics.
pub fn router(state: Shared) -> Router {
    Router::new()
        .merge(rws::routes())
        .merge(v1::routes())
        .merge(crate::web::routes())
        .route("/metrics", axum::routing::get(metrics::render))
        // Runs after authentication (a `user`'s write is a 403 whatever it carries).
        .layer(axum::middleware::from_fn_with_state(state.clone(), origin::require))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require))
        .merge(crate::web::assets())
        .route("/api/v1/openapi.json", axum::routing::get(openapi::document))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/readyz", axum::routing::get(ready))
        // An unknown URL: a page saying so for the pages' paths, the RWS envelope for the API's.
        .fallback(crate::web::not_found)
        .layer(axum::middleware::from_fn(origin::nosniff))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// `GET /readyz` (no authentication): 200 once the catalog answers, else 503.
async fn ready(axum::extract::State(s): axum::extract::State<Shared>) -> Response {
    let catalog = s.ctx.catalog.clone();
    match blocking(move || Ok(catalog.state_get(crate::catalog::namespaces::PROBE, "ready")?)).await {
        Ok(_) => "ready\n".into_response(),
        Err(e) => ApiFailure { status: StatusCode::SERVICE_UNAVAILABLE, ..e }.into_response(),
    }
}

/// A bound, authenticated API, ready to serve: built first so that a bad users file or a
/// taken port stops a daemon before it starts anything else.
#[derive(Debug)]
pub struct Bound {
    state: Shared,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    pub addr: SocketAddr,
}

/// Loads the users file and binds `listen`.
pub async fn bind(ctx: Context, listen: &str) -> Result<Bound, ApiError> {
    let tls = match (&ctx.config.api.tls_cert, &ctx.config.api.tls_key) {
        (Some(c), Some(k)) => Some(tls::server_config(c, k)?),
        (None, None) => None,
        _ => return Err(ApiError::TlsHalf),
    };
    let state = state(ctx)?;
    let err = |source| ApiError::Listen { addr: listen.to_string(), source };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    Ok(Bound { state, listener, tls, addr })
}

impl Bound {
    /// `https` when TLS is configured, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serves until `shutdown` resolves; requests in flight are finished first, and jobs started
    /// through the API stop at their next safe point (cancelled, saying so) before it returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ApiError> {
        let state = self.state.clone();
        let stop = state.stop.clone();
        let shutdown = async move {
            shutdown.await;
            stop.cancel();
        };
        let served = self.serve_http(shutdown).await;
        state.jobs.close();
        if !state.jobs.is_empty() {
            tracing::warn!(
                jobs = state.jobs.len(),
                "shutting down: jobs started through the API stop at their next safe point"
            );
        }
        state.jobs.wait().await;
        served
    }

    async fn serve_http(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ApiError> {
        use axum::serve::ListenerExt as _;
        tracing::info!(addr = %self.addr, tls = self.tls.is_some(), "API listening");
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        if let Some(cfg) = self.tls {
            let listener = tls::TlsListener::new(self.listener, cfg).map_err(ApiError::Serve)?.tap_io(|_| {});
            return axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(ApiError::Serve);
        }
        // Without TCP_NODELAY a response written in two pieces (headers, then body) waits for the
        // client's delayed ACK: ~40 ms per small request.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        axum::serve(listener, app).with_graceful_shutdown(shutdown).await.map_err(ApiError::Serve)
    }
}
