//! Live reconfiguration: `streamwatch run --config FILE` re-reads FILE on SIGHUP and on
//! `POST /api/reload`, and applies the difference in the stream list without touching the
//! streams that did not change.
//!
//! Streams are matched by id. A removed stream's supervisor is stopped (its pipeline goes to
//! Null), the stream leaves the [`StreamSet`] (the engine then releases its reference slot) and
//! its metric series are removed. A changed stream (URL or effective detector settings) is
//! removed and added again, so it starts with fresh detectors, counters and a new slot. A file
//! that does not load or validate changes nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

use crate::app::services::Services;
use crate::app::shard::Shard;
use crate::config::{Config, IngestConfig, StreamConfig, redact_url};
use crate::error::ConfigError;
use crate::ingest::supervisor;
use crate::stats::BackendChoice;
use crate::stream::Stream;

/// How long a stopping pipeline may take to reach Null before the reload goes on without it.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("streamwatch was started without --config: there is no file to reload")]
    NoConfigFile,
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "shard {shard} would own none of the {total} streams of the new config; \
         keeping the running config (use fewer shards than streams)"
    )]
    ShardOwnsNone { shard: Shard, total: usize },
    #[error("the new config has no streams; keeping the running config (stop streamwatch instead)")]
    NoStreams,
    #[error("config reload failed: {0}")]
    Internal(String),
    #[error("streamwatch is shutting down")]
    ShuttingDown,
}

impl ReloadError {
    /// HTTP status for `POST /api/reload`: 400 where TOML parsing fails (syntax, or a key the
    /// typed config lacks), 422 for invalid content, 409 when there is no file at all.
    pub fn http_status(&self) -> u16 {
        match self {
            ReloadError::NoConfigFile => 409,
            ReloadError::Config(ConfigError::Parse { .. }) => 400,
            ReloadError::Internal(_) => 500,
            ReloadError::ShuttingDown => 503,
            _ => 422,
        }
    }
}

impl crate::server::ReloadHandler for Arc<Reloader> {
    fn reload(&self) -> futures_util::future::BoxFuture<'static, crate::server::ReloadOutcome> {
        let this = self.clone();
        Box::pin(async move {
            match this.reload().await {
                Ok(summary) => serde_json::to_value(summary).map_err(|e| (500, e.to_string())),
                Err(e) => Err((e.http_status(), e.to_string())),
            }
        })
    }
}

/// Where the running configuration came from, so that it can be built again from the file.
#[derive(Clone, Debug)]
pub struct ReloadSource {
    pub path: PathBuf,
    /// Streams given as URLs on the command line: kept as they were at start.
    pub cli_streams: Vec<StreamConfig>,
    pub shard: Option<Shard>,
    /// `--listen` and `--backend`, which override the file.
    pub listen: Option<SocketAddr>,
    pub backend: Option<BackendChoice>,
}

impl ReloadSource {
    /// The configuration `streamwatch run` would start with now, from the same arguments.
    pub fn load(&self) -> Result<Config, ReloadError> {
        let mut config = Config::load(&self.path)?;
        config.streams.extend(self.cli_streams.iter().cloned());
        // A file stream may now take an id a command-line stream already has.
        config.validate()?;
        self.apply_overrides(&mut config);
        if let Some(shard) = self.shard {
            let total = config.streams.len();
            config.streams.retain(|s| shard.owns(&s.id));
            if config.streams.is_empty() && total > 0 {
                return Err(ReloadError::ShardOwnsNone { shard, total });
            }
        }
        if config.streams.is_empty() {
            return Err(ReloadError::NoStreams);
        }
        Ok(config)
    }

    fn apply_overrides(&self, config: &mut Config) {
        if let Some(l) = self.listen {
            config.listen = l;
        }
        if let Some(b) = self.backend {
            config.backend = b;
        }
    }
}

/// What a reload did (the body of `POST /api/reload`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ReloadSummary {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub restarted: Vec<String>,
    pub unchanged: usize,
    /// Top-level keys that changed but take effect only when streamwatch restarts.
    pub needs_restart: Vec<&'static str>,
}

/// Keys of settings fixed for the life of the process, and whether they differ.
fn fixed_settings_changed(old: &Config, new: &Config) -> Vec<&'static str> {
    [
        ("listen", old.listen != new.listen),
        ("backend", old.backend != new.backend),
        ("engine", old.engine != new.engine),
        ("ingest", old.ingest != new.ingest),
        ("webhooks", old.webhooks != new.webhooks),
        ("evidence", old.evidence != new.evidence),
        ("server", old.server != new.server),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

struct Supervised {
    stream: Arc<Stream>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// The streams being supervised and the settings in effect. Behind one async mutex, so that
/// a SIGHUP and an API call never apply two reloads at once.
struct Registry {
    /// Settings in effect: fixed ones as at start, streams and detectors as last applied.
    running: Config,
    supervised: BTreeMap<String, Supervised>,
    /// Set by shutdown: a reload after it would start streams nobody stops.
    closed: bool,
}

/// Owns every stream's supervisor; shared by the SIGHUP handler, the HTTP API and shutdown.
pub struct Reloader {
    source: Option<ReloadSource>,
    services: Services,
    registry: Mutex<Registry>,
}

impl Reloader {
    /// Creates (but does not start) the streams of `config` and adds them to the services'
    /// stream set.
    pub fn new(config: Config, source: Option<ReloadSource>, services: Services) -> Self {
        let mut running = config;
        if let Some(s) = &source {
            // The config given to `run` already has --listen applied, not yet --backend.
            s.apply_overrides(&mut running);
        }
        let mut supervised = BTreeMap::new();
        for sc in &running.streams {
            let stream = services.add_stream(sc.clone());
            let (stop, _) = watch::channel(false);
            supervised.insert(
                sc.id.clone(),
                Supervised {
                    stream,
                    stop,
                    task: None,
                },
            );
        }
        Self {
            source,
            services,
            registry: Mutex::new(Registry {
                running,
                supervised,
                closed: false,
            }),
        }
    }

    /// Starts the supervisor of every stream created by [`Reloader::new`].
    pub async fn start(&self) {
        let mut registry = self.registry.lock().await;
        let ingest = registry.running.ingest.clone();
        for s in registry.supervised.values_mut() {
            if s.task.is_none() {
                tracing::info!(stream = %s.stream.id, url = %redact_url(&s.stream.url), "monitoring");
                s.task = Some(spawn_supervisor(&s.stream, &ingest, &s.stop));
            }
        }
    }

    /// Re-reads the config file and applies it; logs the outcome either way.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadSummary, ReloadError> {
        // In a task of its own: an HTTP client that gives up must not cancel a reload half-way
        // (streams stopped but their successors not yet started).
        let this = self.clone();
        let result = tokio::spawn(async move { this.try_reload().await })
            .await
            .unwrap_or_else(|e| Err(ReloadError::Internal(e.to_string())));
        match &result {
            Ok(summary) => tracing::info!(
                added = ?summary.added,
                removed = ?summary.removed,
                restarted = ?summary.restarted,
                unchanged = summary.unchanged,
                needs_restart = ?summary.needs_restart,
                "config reloaded"
            ),
            Err(e) => tracing::error!(error = %e, "config reload failed; the running config stays"),
        }
        result
    }

    async fn try_reload(&self) -> Result<ReloadSummary, ReloadError> {
        let source = self.source.as_ref().ok_or(ReloadError::NoConfigFile)?;
        let mut registry = self.registry.lock().await;
        if registry.closed {
            return Err(ReloadError::ShuttingDown);
        }
        // Read under the lock: of two reloads racing, the later one applies the later file.
        let source = source.clone();
        let new = tokio::task::spawn_blocking(move || source.load())
            .await
            .map_err(|e| ReloadError::Internal(e.to_string()))??;
        Ok(self.apply(&mut registry, new).await)
    }

    async fn apply(&self, registry: &mut Registry, new: Config) -> ReloadSummary {
        let mut summary = ReloadSummary {
            needs_restart: fixed_settings_changed(&registry.running, &new),
            ..Default::default()
        };
        for key in &summary.needs_restart {
            tracing::warn!(
                key,
                "config key `{key}` changed; it takes effect only when streamwatch restarts"
            );
        }

        let wanted: BTreeMap<&str, &StreamConfig> =
            new.streams.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut stopping = Vec::new();
        let ids: Vec<String> = registry.supervised.keys().cloned().collect();
        for id in ids {
            let keep = match wanted.get(id.as_str()) {
                Some(sc) => registry.supervised[&id].stream.config == **sc,
                None => false,
            };
            if keep {
                continue;
            }
            if let Some(s) = registry.supervised.remove(&id) {
                if !wanted.contains_key(id.as_str()) {
                    summary.removed.push(id.clone());
                }
                let _ = s.stop.send(true);
                // Leaves the API and the engine's batches now; the slot is released there.
                self.services.streams.remove(&id);
                stopping.push(s);
            }
        }
        stop_all(&mut stopping).await;
        for s in &stopping {
            // After the supervisor ended, so its last `stream_up = 0` does not bring a series
            // back.
            s.stream.sinks().metrics.unregister();
        }

        let ingest = registry.running.ingest.clone();
        for sc in &new.streams {
            if registry.supervised.contains_key(&sc.id) {
                summary.unchanged += 1;
                continue;
            }
            if stopping.iter().any(|s| s.stream.id == sc.id) {
                summary.restarted.push(sc.id.clone());
            } else {
                summary.added.push(sc.id.clone());
            }
            let stream = self.services.add_stream(sc.clone());
            let (stop, _) = watch::channel(false);
            tracing::info!(stream = %stream.id, url = %redact_url(&stream.url), "monitoring");
            let task = Some(spawn_supervisor(&stream, &ingest, &stop));
            registry
                .supervised
                .insert(sc.id.clone(), Supervised { stream, stop, task });
        }
        registry.running.streams = new.streams;
        registry.running.detectors = new.detectors;
        summary
    }

    /// Stops every supervisor (process shutdown) and waits for the pipelines to reach Null.
    /// Returns false when some did not stop in time.
    pub async fn shutdown(&self) -> bool {
        let mut registry = self.registry.lock().await;
        registry.closed = true;
        let mut all: Vec<Supervised> = std::mem::take(&mut registry.supervised)
            .into_values()
            .collect();
        for s in &all {
            let _ = s.stop.send(true);
        }
        stop_all(&mut all).await
    }
}

fn spawn_supervisor(
    stream: &Arc<Stream>,
    ingest: &IngestConfig,
    stop: &watch::Sender<bool>,
) -> JoinHandle<()> {
    tokio::spawn(supervisor::supervise(
        stream.clone(),
        ingest.clone(),
        stop.subscribe(),
    ))
}

/// Waits for the supervisors (already told to stop) to end; true when all did in time.
async fn stop_all(stopping: &mut [Supervised]) -> bool {
    let tasks: Vec<JoinHandle<()>> = stopping.iter_mut().filter_map(|s| s.task.take()).collect();
    for s in stopping.iter() {
        s.stream.close();
    }
    if tasks.is_empty() {
        return true;
    }
    let joined = tokio::time::timeout(STOP_TIMEOUT, futures_util::future::join_all(tasks)).await;
    match joined {
        Ok(results) => {
            for r in results {
                if let Err(e) = r {
                    tracing::error!(error = %e, "stream supervisor ended abnormally");
                }
            }
            true
        }
        Err(_) => {
            let ids: Vec<&str> = stopping.iter().map(|s| s.stream.id.as_str()).collect();
            tracing::warn!(streams = ?ids, "some pipelines did not stop within {STOP_TIMEOUT:?}");
            false
        }
    }
}

/// Reloads on every SIGHUP until the task is aborted. Registered before it returns, so a
/// SIGHUP that comes after this call no longer ends the process.
#[cfg(unix)]
pub fn spawn_sighup_handler(reloader: Arc<Reloader>) -> std::io::Result<JoinHandle<()>> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the config");
            // `reload` logs the outcome; a bad file must not end the handler.
            let _ = reloader.reload().await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;
    use std::time::Instant;

    use super::*;
    use crate::config::DetectorsConfig;
    use crate::sinks::Outputs;
    use crate::sinks::metrics::Metrics;
    use crate::stats::{BatchItem, FrameStats, StatsBackend};
    use crate::stream::StreamOptions;

    fn temp_config(name: &str, text: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("streamwatch-reload-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("streamwatch.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn stream(id: &str, url: &str) -> StreamConfig {
        StreamConfig {
            id: id.into(),
            url: url.into(),
            detectors: DetectorsConfig::default(),
            decoder: Default::default(),
            ..Default::default()
        }
    }

    fn source(path: PathBuf) -> ReloadSource {
        ReloadSource {
            path,
            cli_streams: Vec::new(),
            shard: None,
            listen: None,
            backend: None,
        }
    }

    const TWO: &str = "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n\
                       [[streams]]\nid = \"b\"\nurl = \"rtmp://h/b\"\n";

    #[test]
    fn command_line_streams_and_overrides_survive_a_reload() {
        let mut s = source(temp_config(
            "cli",
            &format!("listen = \"127.0.0.1:1\"\n{TWO}"),
        ));
        s.cli_streams.push(stream("cam-2", "rtmp://h/cam"));
        s.listen = Some("127.0.0.1:2".parse().unwrap());
        s.backend = Some(BackendChoice::Cpu);
        let c = s.load().unwrap();
        let ids: Vec<&str> = c.streams.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "cam-2"]);
        assert_eq!(c.listen, "127.0.0.1:2".parse().unwrap());
        assert_eq!(c.backend, BackendChoice::Cpu);

        // A file stream taking a command-line stream's id is a duplicate.
        s.cli_streams[0].id = "b".into();
        let e = s.load().unwrap_err().to_string();
        assert!(e.contains("duplicate stream id `b`"), "{e}");
    }

    #[test]
    fn the_shard_filter_applies_to_the_reloaded_list() {
        let mut s = source(temp_config("shard", TWO));
        let shard: Shard = "0/2".parse().unwrap();
        s.shard = Some(shard);
        let c = s.load().unwrap();
        let ids: Vec<&str> = c.streams.iter().map(|s| s.id.as_str()).collect();
        let owned: Vec<&str> = ["a", "b"].into_iter().filter(|id| shard.owns(id)).collect();
        assert_eq!(ids, owned);
        let foreign = ["c", "d", "e", "f", "g", "h"]
            .into_iter()
            .find(|id| !shard.owns(id))
            .expect("shard 0/2 owns some of six ids, not all");
        std::fs::write(
            &s.path,
            format!("[[streams]]\nid = \"{foreign}\"\nurl = \"rtmp://h/x\"\n"),
        )
        .unwrap();
        let e = s.load().unwrap_err();
        assert!(
            matches!(e, ReloadError::ShardOwnsNone { total: 1, .. }),
            "{e}"
        );
        std::fs::write(&s.path, "").unwrap();
        assert!(matches!(s.load(), Err(ReloadError::NoStreams)));
    }

    #[test]
    fn errors_map_to_http_statuses() {
        let bad = |text: &str| source(temp_config("status", text)).load().unwrap_err();
        assert_eq!(bad("[[streams]\n").http_status(), 400);
        assert_eq!(bad("colour = 1\n").http_status(), 400);
        let e = bad("[[streams]]\nid = \"a\"\nurl = \"ftp://h/a\"\n");
        assert_eq!(e.http_status(), 422);
        assert!(e.to_string().contains("streams[0].url"), "{e}");
        assert_eq!(ReloadError::NoConfigFile.http_status(), 409);
    }

    #[test]
    fn only_settings_that_cannot_change_live_are_reported() {
        let old = Config::parse(TWO, "old").unwrap();
        let mut new = Config::parse(
            &format!("listen = \"127.0.0.1:9\"\n[ingest]\nstall_timeout = 9.0\n{TWO}"),
            "new",
        )
        .unwrap();
        new.streams.pop();
        new.detectors.black.min_duration = 7.0;
        assert_eq!(fixed_settings_changed(&old, &new), ["listen", "ingest"]);
        assert!(fixed_settings_changed(&old, &old).is_empty());
        let public = Config::parse(&format!("{TWO}\n[server]\npublic_read = true\n"), "new");
        assert_eq!(fixed_settings_changed(&old, &public.unwrap()), ["server"]);
        // The same address moved into [server] is no change.
        let moved = Config::parse(
            &format!("{TWO}\n[server]\nlisten = \"{}\"\n", old.listen),
            "new",
        );
        assert!(fixed_settings_changed(&old, &moved.unwrap()).is_empty());
    }

    /// Records which slots the engine releases; the sizes of the batches in flight.
    struct Recorder(Arc<StdMutex<Vec<u32>>>, std::collections::VecDeque<usize>);

    impl StatsBackend for Recorder {
        fn describe(&self) -> String {
            "recorder".into()
        }
        fn submit(&mut self, batch: &[BatchItem<'_>]) -> Result<(), crate::stats::EngineError> {
            self.1.push_back(batch.len());
            Ok(())
        }
        fn collect(
            &mut self,
            out: &mut Vec<FrameStats>,
        ) -> Option<Result<(), crate::stats::EngineError>> {
            let n = self.1.pop_front()?;
            out.clear();
            out.resize(n, FrameStats::default());
            Some(Ok(()))
        }
        fn in_flight(&self) -> usize {
            self.1.len()
        }
        fn release(&mut self, slot: u32) {
            crate::sync::lock(&self.0).push(slot);
        }
    }

    #[tokio::test]
    async fn the_engine_releases_a_removed_streams_slot_and_slots_are_never_reused() {
        let services = Services::new(
            Outputs::metrics_only(Arc::new(Metrics::new())),
            StreamOptions {
                queue_frames: 4,
                blocking: false,
                sole: false,
            },
        );
        for id in ["a", "b"] {
            services.add_stream(stream(id, "rtmp://h/x"));
        }
        let (streams, wake) = (services.streams.clone(), services.wake.clone());
        let released = Arc::new(StdMutex::new(Vec::new()));
        let mut engine = services
            .spawn_engine(
                Box::new(Recorder(released.clone(), Default::default())),
                crate::config::EngineConfig::default(),
            )
            .unwrap();
        let a_slot = streams.get("a").unwrap().slot;
        assert!(streams.remove("a").is_some());
        assert!(streams.get("a").is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        while crate::sync::lock(&released).is_empty() && Instant::now() < deadline {
            wake.notify();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        engine.stop();
        assert_eq!(*crate::sync::lock(&released), [a_slot]);
        let taken: Vec<u32> = streams.snapshot().iter().map(|s| s.slot).collect();
        let next = streams.next_slot();
        assert!(
            next != a_slot && !taken.contains(&next),
            "slot {next} reused"
        );
    }
}
