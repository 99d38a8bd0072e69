//! HTTP server: Prometheus metrics, health probes and the stream API.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tokio::sync::Semaphore;

use crate::engine::EngineHandle;
use crate::sinks::evidence::Evidence;
use crate::sinks::metrics::Metrics;
use crate::stream::StreamSet;

pub mod access;
pub mod listen;

pub use access::Access;

/// The engine is unhealthy when its loop has not turned for this long.
const ENGINE_STALL: Duration = Duration::from_secs(10);
/// Requests answered at once per route group; beyond, 503 at once rather than a queue that
/// holds connections (and their descriptors) open.
const API_CONCURRENCY: usize = 32;
/// Thumbnails and evidence read files on blocking threads.
const EVIDENCE_CONCURRENCY: usize = 8;
const METRICS_CONCURRENCY: usize = 4;
/// Reloads run one at a time anyway; one more may wait for the running one.
const RELOAD_CONCURRENCY: usize = 2;

/// What `POST /api/reload` answers: the summary of the change as JSON, or an HTTP status and
/// the reason nothing changed.
pub type ReloadOutcome = Result<serde_json::Value, (u16, String)>;

/// Applies `POST /api/reload` (the stream registry of `run`).
pub trait ReloadHandler: Send + Sync {
    fn reload(&self) -> futures_util::future::BoxFuture<'static, ReloadOutcome>;
}

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub streams: Arc<StreamSet>,
    pub engine: Arc<std::sync::Mutex<EngineHandle>>,
    pub evidence: Option<Arc<Evidence>>,
    /// Applies `POST /api/reload`; `None` where the process has no stream registry.
    pub reloader: Option<Arc<dyn ReloadHandler>>,
}

/// How the main listener's routes are guarded and limited.
pub struct Policy {
    pub access: Arc<Access>,
    /// `/metrics` is served here too (no `server.metrics_listen`, or reads are public).
    pub metrics_here: bool,
    pub request_timeout: Duration,
    pub max_body_bytes: usize,
}

/// The main listener: the probes (always open), the status page, the read API (and
/// `/metrics`) behind the read rule, and `POST /api/reload` behind the write rule; all but
/// the probes behind the `Host`/`Origin` checks.
pub fn router(state: AppState, policy: &Policy) -> Router {
    let access = policy.access.clone();
    let mut reads = Router::new()
        .route("/api/streams", get(streams))
        .route("/api/streams/{id}", get(stream))
        .route("/api/events/{id}", get(event))
        .layer(from_fn_with_state(limit(API_CONCURRENCY), at_most))
        .merge(
            Router::new()
                .route("/api/streams/{id}/thumbnail", get(stream_thumbnail))
                .route("/api/events/{id}/evidence", get(event_evidence))
                .layer(from_fn_with_state(limit(EVIDENCE_CONCURRENCY), at_most)),
        );
    if policy.metrics_here {
        reads = reads.route("/metrics", metrics_route());
    }
    let reads = reads.layer(from_fn_with_state(access.clone(), access::guard_read));
    let writes = Router::new()
        .route("/api/reload", post(reload))
        .layer(DefaultBodyLimit::max(policy.max_body_bytes))
        .layer(from_fn_with_state(limit(RELOAD_CONCURRENCY), at_most))
        .layer(from_fn_with_state(access.clone(), access::guard_write));
    let site = Router::new()
        .route("/", get(index))
        .merge(reads)
        .merge(writes)
        .layer(from_fn_with_state(access, access::guard_site));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(site)
        .layer(from_fn_with_state(policy.request_timeout, deadline))
        .with_state(state)
}

/// The metrics listener (`server.metrics_listen`): `/metrics` only, behind its own token.
pub fn metrics_router(state: AppState, access: Arc<Access>, request_timeout: Duration) -> Router {
    Router::new()
        .route("/metrics", metrics_route())
        .layer(from_fn_with_state(access, access::guard_read))
        .layer(from_fn_with_state(request_timeout, deadline))
        .with_state(state)
}

fn metrics_route() -> MethodRouter<AppState> {
    get(metrics).layer(from_fn_with_state(limit(METRICS_CONCURRENCY), at_most))
}

fn limit(n: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(n))
}

/// At most as many requests at once as `slots` has; beyond, 503 at once.
async fn at_most(State(slots): State<Arc<Semaphore>>, req: Request, next: Next) -> Response {
    match slots.try_acquire() {
        Ok(_slot) => next.run(req).await,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "too many requests of this kind at once; retry\n",
        )
            .into_response(),
    }
}

/// Answers 503 when a request (its body included) takes longer than `server.request_timeout`.
async fn deadline(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the request took longer than server.request_timeout\n",
        )
            .into_response(),
    }
}

/// The live status page: a mosaic of every stream, self-contained (no CDN).
async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("../web/status.html"))
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

fn engine_age(s: &AppState) -> Duration {
    crate::sync::lock(&s.engine).heartbeat_age()
}

async fn healthz(State(s): State<AppState>) -> Response {
    let age = engine_age(&s);
    if age > ENGINE_STALL {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("engine stalled for {:.1} s\n", age.as_secs_f64()),
        )
            .into_response()
    } else {
        "ok\n".into_response()
    }
}

/// Ready once the engine runs: streams that are down are a monitoring result, not a reason to
/// take the instance out of service.
async fn readyz(State(s): State<AppState>) -> Response {
    if engine_age(&s) > ENGINE_STALL {
        (StatusCode::SERVICE_UNAVAILABLE, "engine not running\n").into_response()
    } else {
        format!("ready: {} streams\n", s.streams.snapshot().len()).into_response()
    }
}

async fn streams(State(s): State<AppState>) -> Response {
    let all: Vec<_> = s.streams.snapshot().iter().map(|st| st.status()).collect();
    Json(all).into_response()
}

async fn stream(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.streams.get(&id) {
        Some(st) => Json(st.status()).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no stream `{id}`\n")).into_response(),
    }
}

fn jpeg(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response()
}

fn not_found(what: String) -> Response {
    (StatusCode::NOT_FOUND, what).into_response()
}

async fn stream_thumbnail(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.evidence.as_ref().and_then(|e| e.latest(&id)) {
        Some(bytes) => jpeg(bytes.as_ref().clone()),
        None => not_found(format!("no thumbnail for stream `{id}` yet\n")),
    }
}

async fn event(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.streams.event(&id) {
        Some(e) => Json(e).into_response(),
        None => not_found(format!("no recent event `{id}`\n")),
    }
}

async fn event_evidence(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let evidence = s.evidence.clone();
    let found = tokio::task::spawn_blocking(move || evidence.and_then(|e| e.event(&id)))
        .await
        .ok()
        .flatten();
    match found {
        Some(bytes) => jpeg(bytes),
        None => not_found("no evidence for that event\n".into()),
    }
}

/// Re-reads the config file: 200 with what changed, or an error status with `{"error": ...}`
/// naming the problem (the running config is then untouched).
/// The body is read (and so bounded by `DefaultBodyLimit`, 413 beyond) but not used.
async fn reload(State(s): State<AppState>, _body: axum::body::Bytes) -> Response {
    let result = match &s.reloader {
        Some(r) => r.reload().await,
        None => Err((
            409,
            "streamwatch was started without --config: there is no file to reload".to_owned(),
        )),
    };
    match result {
        Ok(summary) => Json(summary).into_response(),
        Err((status, error)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            (status, Json(serde_json::json!({ "error": error }))).into_response()
        }
    }
}
