//! HLS fetched by streamwatch itself, not by GStreamer's adaptive demuxers. GStreamer 1.22's
//! `hlsdemux` switches rendition on its own (new pads the pipeline never linked), deadlocks
//! on teardown, downloads without limits and crashed the whole process on a truncated
//! playlist. Here one task per stream polls the playlists once, runs the manifest checks on
//! what it fetched, and hands the analysed rendition's playlists to a fetcher per pipeline
//! run, which pushes the segments into an `appsrc` for GStreamer to demux and decode.

pub mod crypto;
pub mod dash;
pub mod dash_poll;
pub mod http;
pub mod playlists;
pub mod rendition;
pub mod segments;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::IngestConfig;
use crate::stream::Stream;
use crate::sync::AbortOnDrop;
pub use segments::{Feed, Snapshot};

/// What the stream's URL turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum Discovery {
    /// No answer yet.
    Pending,
    /// HLS or DASH: segments come through the feeds; `separate_audio` when the analysed
    /// rendition's audio is a rendition of its own.
    Adaptive { separate_audio: bool },
    /// Progressive HTTP (a TS or MP4 file served over HTTP): GStreamer fetches it itself.
    Progressive,
    /// It cannot be played yet: the reason, for the stream's `down` state.
    Failed(String),
}

/// The sending half of what the poller publishes.
pub struct Publisher {
    pub discovery: watch::Sender<Discovery>,
    pub video: FeedSender,
    pub audio: FeedSender,
}

impl Publisher {
    /// Publishes what the URL is; a pipeline waiting to start reads it.
    pub fn discovered(&self, discovery: Discovery) {
        self.discovery.send_if_modified(|d| {
            let changed = *d != discovery;
            *d = discovery;
            changed
        });
    }
}

/// The poller's side of a [`Feed`].
#[derive(Clone)]
pub struct FeedSender {
    pub snapshots: Arc<watch::Sender<Option<Arc<Snapshot>>>>,
    pub segment_failed: Arc<AtomicBool>,
}

impl FeedSender {
    fn new() -> Self {
        Self {
            snapshots: Arc::new(watch::Sender::new(None)),
            segment_failed: Arc::new(AtomicBool::new(false)),
        }
    }

    fn feed(&self) -> Feed {
        Feed {
            snapshots: self.snapshots.subscribe(),
            segment_failed: self.segment_failed.clone(),
        }
    }
}

/// An HTTP stream's playlist poller, alive as long as the stream is monitored (through
/// pipeline restarts: a playlist that stops updating is often what brings a pipeline down,
/// and its checks must keep their history).
pub struct Client {
    /// The stream's URL as messages show it.
    url: String,
    discovery: watch::Receiver<Discovery>,
    video: FeedSender,
    audio: FeedSender,
    http: reqwest::Client,
    http_timeout: Duration,
    _poller: AbortOnDrop,
}

/// What a pipeline run of an HLS stream needs.
pub struct Source {
    pub http: reqwest::Client,
    pub http_timeout: Duration,
    pub video: Feed,
    pub audio: Option<Feed>,
}

/// True for URLs streamwatch fetches itself when they turn out to be HLS.
pub fn applies_to(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

impl Client {
    /// Starts polling `stream`'s URL on the current tokio runtime; `None` when no HTTP client
    /// can be built (logged).
    pub fn spawn(
        stream: Arc<Stream>,
        ingest: &IngestConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Option<Self> {
        let http_timeout = Duration::from_secs_f64(ingest.http_timeout);
        let http = http::client(&stream.id, http_timeout)?;
        let (discovery_tx, discovery) = watch::channel(Discovery::Pending);
        let publisher = Publisher {
            discovery: discovery_tx,
            video: FeedSender::new(),
            audio: FeedSender::new(),
        };
        let (video, audio) = (publisher.video.clone(), publisher.audio.clone());
        let url = crate::config::redact_url(&stream.url);
        let poller = tokio::spawn(playlists::monitor(
            stream,
            ingest.clone(),
            http.clone(),
            publisher,
            shutdown,
        ));
        Some(Self {
            url,
            discovery,
            video,
            audio,
            http,
            http_timeout,
            _poller: AbortOnDrop(poller),
        })
    }

    /// What a pipeline run reads, waiting up to `within` for the URL's first answer: the
    /// feeds for HLS, `None` for progressive HTTP (GStreamer reads it), or why it cannot run.
    pub async fn discover(&self, within: Duration) -> Result<Option<Source>, String> {
        let mut discovery = self.discovery.clone();
        let answered =
            tokio::time::timeout(within, discovery.wait_for(|d| *d != Discovery::Pending)).await;
        let discovered = match answered {
            Ok(Ok(d)) => d.clone(),
            Ok(Err(_)) => return Err(format!("{}: the playlist poller stopped", self.url)),
            Err(_) => {
                return Err(format!(
                    "{}: no answer within {:.1} s",
                    self.url,
                    within.as_secs_f64()
                ));
            }
        };
        match discovered {
            Discovery::Adaptive { separate_audio } => Ok(Some(self.source(separate_audio))),
            Discovery::Progressive => Ok(None),
            Discovery::Failed(reason) => Err(reason),
            Discovery::Pending => Err(format!("{}: not fetched yet", self.url)),
        }
    }

    fn source(&self, separate_audio: bool) -> Source {
        Source {
            http: self.http.clone(),
            http_timeout: self.http_timeout,
            video: self.video.feed(),
            audio: separate_audio.then(|| self.audio.feed()),
        }
    }
}
