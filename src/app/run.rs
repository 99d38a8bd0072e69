//! `streamwatch run`: supervise every configured stream until SIGINT/SIGTERM, serving metrics
//! and the API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::reload::{self, ReloadSource, Reloader};
use crate::app::services::Services;
use crate::app::shed;
use crate::config::{Config, Secret, ServerConfig, TOKEN_ENV};
use crate::ingest;
use crate::server::listen::{self, Limits};
use crate::server::{self, Access, AppState, Policy};
use crate::sinks::Outputs;
use crate::sinks::evidence::{Evidence, EvidenceOptions, Uploader};
use crate::sinks::metrics::Metrics;
use crate::sinks::webhooks::Notifier;
use crate::stats::StatsBackend;
use crate::stream::StreamOptions;

/// Connections the metrics listener takes at most: a few Prometheus servers and a person.
const METRICS_CONNECTIONS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no streams to monitor: give URLs on the command line or [[streams]] in the config")]
    NoStreams,
    #[error("cannot listen on {addr}: {source} (choose another with --listen)")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (config server.metrics_listen): {source}")]
    MetricsListen {
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
    let server = serve_http(&config, state, shutdown_rx).await?;

    reloader.start().await;
    let shedding = config
        .ingest
        .shed_load
        .then(|| crate::sync::AbortOnDrop(tokio::spawn(shed::run(services.streams.clone()))));

    wait_for_signal().await;
    drop(shedding);
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

/// Serves the API (and `/metrics`, on its own listener when configured) until `shutdown`.
async fn serve_http(
    config: &Config,
    state: AppState,
    shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, RunError> {
    let server = &config.server;
    let access = Arc::new(
        Access::new(
            api_token(server),
            server.public_read,
            server.allowed_hosts.clone(),
        )
        .counted(&state.metrics),
    );
    warn_about_access(&access, config);
    let (main_limits, metrics_limits) = http_limits(server);
    let policy = Policy {
        access: access.clone(),
        metrics_here: server.metrics_listen.is_none() || !access.reads_need_token(),
        request_timeout: Duration::from_secs_f64(server.request_timeout),
        max_body_bytes: server.max_body_bytes,
    };
    let addr = config.listen;
    let main = bind(addr)
        .await
        .map_err(|source| RunError::Listen { addr, source })?;
    tracing::info!(addr = %local(&main, addr), "serving the API, /healthz and /readyz{}",
        if policy.metrics_here { " and /metrics" } else { "" });
    let metrics_listener = match server.metrics_listen {
        Some(addr) => {
            let l = bind(addr)
                .await
                .map_err(|source| RunError::MetricsListen { addr, source })?;
            tracing::info!(addr = %local(&l, addr), token = server.metrics_token.is_some(), "serving /metrics");
            Some(l)
        }
        None => None,
    };
    let app = server::router(state.clone(), &policy);
    let metrics_app = metrics_listener.map(|l| {
        let access = Arc::new(Access::new(server.metrics_token.clone(), false, Vec::new()));
        (
            l,
            server::metrics_router(state.clone(), access, policy.request_timeout),
        )
    });
    let metrics = state.metrics.clone();
    Ok(tokio::spawn(async move {
        let main = listen::serve(main, app, main_limits, &metrics, "main", shutdown.clone());
        let side = async {
            if let Some((l, app)) = metrics_app {
                listen::serve(l, app, metrics_limits, &metrics, "metrics", shutdown).await;
            }
        };
        tokio::join!(main, side);
    }))
}

async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

fn local(l: &tokio::net::TcpListener, addr: SocketAddr) -> SocketAddr {
    l.local_addr().unwrap_or(addr)
}

/// The API token: `server.token_file`, else `STREAMWATCH_TOKEN`.
fn api_token(server: &ServerConfig) -> Option<Secret> {
    let env = std::env::var(TOKEN_ENV).ok();
    if let Some(t) = &server.token {
        if env.is_some() {
            tracing::info!("server.token_file is set: {TOKEN_ENV} is ignored");
        }
        return Some(t.clone());
    }
    let env = env?;
    let secret = Secret::new(&env);
    if secret.is_none() {
        tracing::warn!("{TOKEN_ENV} is empty: no API token");
    }
    secret
}

fn warn_about_access(access: &Access, config: &Config) {
    if access.token.is_none() {
        tracing::warn!(
            listen = %config.listen,
            "no API token (server.token_file or {TOKEN_ENV}): reads are open to anyone who can \
             reach the listener, and POST /api/reload is refused"
        );
    } else if config.server.public_read {
        tracing::info!("server.public_read: reads need no token; POST /api/reload does");
    }
}

/// Connection caps of the main and metrics listeners within the descriptor budget, logged
/// with the figures they come from.
fn http_limits(server: &ServerConfig) -> (Limits, Limits) {
    let fds = match listen::raise_fd_limit() {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the file descriptor limit (RLIMIT_NOFILE)");
            listen::FdLimit {
                before: 1024,
                soft: 1024,
                hard: 1024,
            }
        }
    };
    let metrics_wanted = if server.metrics_listen.is_some() {
        METRICS_CONNECTIONS
    } else {
        0
    };
    let budget = listen::connection_budget(server.max_connections + metrics_wanted, fds.soft);
    let metrics_cap = metrics_wanted.min(budget / 2).max(1);
    let main_cap = budget.saturating_sub(metrics_wanted.min(budget / 2)).max(1);
    if main_cap < server.max_connections {
        tracing::warn!(
            "server.max_connections = {} is over a quarter of the file descriptor limit ({}): \
             capped at {main_cap}",
            server.max_connections,
            fds.soft
        );
    }
    tracing::info!(
        fd_soft = fds.soft,
        fd_soft_at_start = fds.before,
        fd_hard = fds.hard,
        http_connections = main_cap,
        metrics_connections = if metrics_wanted > 0 { metrics_cap } else { 0 },
        left_for_streams = fds.soft.saturating_sub((main_cap + metrics_wanted) as u64),
        "file descriptors: HTTP connections capped, the rest left to streams and evidence"
    );
    let header_read_timeout = Duration::from_secs_f64(server.header_read_timeout);
    let limits = |max_connections| Limits {
        max_connections,
        header_read_timeout,
    };
    (limits(main_cap), limits(metrics_cap))
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
