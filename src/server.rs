//! HTTP server: Prometheus metrics, health probes and the stream API.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::engine::EngineHandle;
use crate::sinks::evidence::Evidence;
use crate::sinks::metrics::Metrics;
use crate::stream::StreamSet;

/// The engine is unhealthy when its loop has not turned for this long.
const ENGINE_STALL: Duration = Duration::from_secs(10);

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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/streams", get(streams))
        .route("/api/streams/{id}", get(stream))
        .route("/api/streams/{id}/thumbnail", get(stream_thumbnail))
        .route("/api/events/{id}", get(event))
        .route("/api/events/{id}/evidence", get(event_evidence))
        .route("/api/reload", post(reload))
        .with_state(state)
}

/// The live status page: a mosaic of every stream, self-contained (no CDN).
async fn index() -> axum::response::Html<&'static str> {
    axum::response::Html(include_str!("web/status.html"))
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
async fn reload(State(s): State<AppState>) -> Response {
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
