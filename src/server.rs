//! HTTP server: Prometheus metrics, health probes and the stream API.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::engine::EngineHandle;
use crate::metrics::Metrics;
use crate::stream::StreamSet;

/// The engine is unhealthy when its loop has not turned for this long.
const ENGINE_STALL: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct AppState {
    pub metrics: Arc<Metrics>,
    pub streams: Arc<StreamSet>,
    pub engine: Arc<std::sync::Mutex<EngineHandle>>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/streams", get(streams))
        .route("/api/streams/{id}", get(stream))
        .with_state(state)
}

async fn index() -> &'static str {
    "streamwatch: /metrics /healthz /readyz /api/streams /api/streams/{id}\n"
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
    crate::stream::lock(&s.engine).heartbeat_age()
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
