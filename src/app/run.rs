//! `streamwatch run`: supervise every configured stream until SIGINT/SIGTERM, serving metrics
//! and the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::reload::{self, ReloadSource, Reloader};
use crate::app::services::Services;
use crate::config::Config;
use crate::ingest;
use crate::server::{self, AppState};
use crate::sinks::Outputs;
use crate::sinks::evidence::{Evidence, EvidenceOptions, Uploader};
use crate::sinks::metrics::Metrics;
use crate::sinks::webhooks::Notifier;
use crate::stats::StatsBackend;
use crate::stream::StreamOptions;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no streams to monitor: give URLs on the command line or [[streams]] in the config")]
    NoStreams,
    #[error("cannot listen on {addr}: {source} (choose another with --listen)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ingest(#[from] crate::error::IngestError),
    #[error("cannot watch SIGHUP for config reloads: {0}")]
    Signal(std::io::Error),
    #[error("cannot start the analysis engine thread: {0}")]
    Engine(std::io::Error),
    #[error("evidence upload (config evidence.s3): {0}")]
    ObjectStore(String),
    #[error("evidence encoder for {dir} (config evidence.dir): {source}")]
    Evidence {
        dir: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub async fn run(config: Config, backend: Box<dyn StatsBackend>) -> Result<(), RunError> {
    run_with_reload(config, backend, None).await
}

/// [`run`], re-reading the config from `reload` on SIGHUP and `POST /api/reload`.
pub async fn run_with_reload(
    config: Config,
    backend: Box<dyn StatsBackend>,
    reload: Option<ReloadSource>,
) -> Result<(), RunError> {
    if config.streams.is_empty() {
        return Err(RunError::NoStreams);
    }
    ingest::init()?;
    let metrics = Arc::new(Metrics::new());
    let outputs = outputs(&config, metrics.clone())?;
    let evidence = outputs.evidence.clone();
    let options = StreamOptions {
        queue_frames: config.ingest.queue_frames,
        blocking: false,
        sole: false,
    };
    let services = Services::new(outputs, options);
    let reloader = Arc::new(Reloader::new(config.clone(), reload, services.clone()));
    // Trapped before the server answers, so no SIGHUP sent once it is up can end the process.
    #[cfg(unix)]
    let hangups = reload::spawn_sighup_handler(reloader.clone()).map_err(RunError::Signal)?;
    tracing::info!(backend = %backend.describe(), "statistics backend");
    let engine = services
        .spawn_engine(backend, config.engine.clone())
        .map_err(RunError::Engine)?;
    let engine = Arc::new(std::sync::Mutex::new(engine));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = AppState {
        metrics: metrics.clone(),
        streams: services.streams.clone(),
        engine: engine.clone(),
        evidence,
        reloader: Some(Arc::new(reloader.clone())),
    };
    let server = serve_http(config.listen, state, shutdown_rx).await?;

    reloader.start().await;

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    for s in services.streams.snapshot() {
        s.close();
    }
    // Waits for a reload under way to finish, then stops every pipeline (warns on timeout);
    // the SIGHUP handler is aborted only then, so no reload is cut off half-applied.
    reloader.shutdown().await;
    #[cfg(unix)]
    hangups.abort();
    let _ = server.await;
    crate::sync::lock(&engine).stop();
    Ok(())
}

/// Serves the metrics and the API on `addr` until `shutdown` changes.
async fn serve_http(
    addr: SocketAddr,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, RunError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })?;
    let addr = listener.local_addr().unwrap_or(addr);
    tracing::info!(%addr, "serving /metrics, /healthz, /readyz and /api/streams");
    let app = server::router(state);
    Ok(tokio::spawn(async move {
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "HTTP server failed");
        }
    }))
}

/// Metrics, webhooks and evidence as the config asks.
fn outputs(config: &Config, metrics: Arc<Metrics>) -> Result<Outputs, RunError> {
    let uploader = match &config.evidence.s3 {
        Some(s3) => Some(
            Uploader::new(s3, metrics.clone()).map_err(|e| RunError::ObjectStore(e.to_string()))?,
        ),
        None => None,
    };
    let evidence = Evidence::start(EvidenceOptions {
        dir: config.evidence.dir.clone(),
        max_bytes: config.evidence.max_bytes,
        max_width: config.evidence.thumbnail_width,
        uploader,
        metrics: metrics.clone(),
    })
    .map_err(|source| RunError::Evidence {
        dir: config.evidence.dir.clone(),
        source,
    })?;
    let notifier = (!config.webhooks.is_empty())
        .then(|| Arc::new(Notifier::start(&config.webhooks, metrics.clone())));
    Ok(Outputs {
        notifier,
        evidence: Some(Arc::new(evidence)),
        thumbnail_interval: Duration::from_secs_f64(config.evidence.thumbnail_interval),
        ..Outputs::metrics_only(metrics)
    })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM; stop with SIGINT");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
