//! Where a stream's events go. Each sink is built per stream when the stream is registered and
//! consumes that stream's events in order: metrics, log, API status, webhooks, evidence, and
//! for `scan` (or a test) a collector or recorder.

pub mod collect;
pub mod evidence;
pub mod frame_stats;
pub mod log;
pub mod metrics;
pub mod status;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use crate::config::redact_url;
use crate::events::{Event, Sink};
use crate::frame::VideoFrame;
use collect::Collector;
use evidence::{Evidence, EvidenceSink};
use frame_stats::{FrameStatsSink, StatsCsv};
use metrics::{Metrics, StreamMetrics};
use status::StatusSink;
use webhooks::{Notifier, WebhookSink};

/// Builds a sink for one stream (a test's recorder, given the stream's id).
pub type SinkFactory = Arc<dyn Fn(&str) -> Arc<dyn Sink> + Send + Sync>;

/// The process's outputs, from which each stream's sinks are made.
#[derive(Clone)]
pub struct Outputs {
    pub metrics: Arc<Metrics>,
    /// Webhook delivery; None where none is configured.
    pub notifier: Option<Arc<Notifier>>,
    pub evidence: Option<Arc<Evidence>>,
    /// Seconds between refreshes of each stream's latest thumbnail.
    pub thumbnail_interval: Duration,
    /// Keep every ended event (`scan`).
    pub collect: bool,
    /// Every analysed frame's statistics as CSV (`scan --frame-stats`).
    pub frame_stats: Option<Arc<StatsCsv>>,
    /// More sinks for every stream (tests).
    pub extra: Vec<SinkFactory>,
}

impl Outputs {
    /// Metrics only: the outputs of a process that reports nowhere else (`bench`).
    pub fn metrics_only(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            notifier: None,
            evidence: None,
            thumbnail_interval: Duration::MAX,
            collect: false,
            frame_stats: None,
            extra: Vec::new(),
        }
    }

    /// Registers a stream with every output; they show its URL redacted.
    pub fn for_stream(&self, id: &str, url: &str) -> StreamSinks {
        let url = redact_url(url);
        let metrics = Arc::new(StreamMetrics::register(&self.metrics, id, &url));
        let status = Arc::new(StatusSink::new(id, &url).with_evidence(self.evidence.clone()));
        let collector = self.collect.then(|| Arc::new(Collector::default()));
        let mut all: Vec<Arc<dyn Sink>> = vec![
            metrics.clone(),
            Arc::new(log::LogSink::new(id)),
            status.clone(),
        ];
        if let Some(notifier) = &self.notifier {
            all.push(Arc::new(WebhookSink::new(notifier.clone())));
        }
        if let Some(evidence) = &self.evidence {
            let sink = EvidenceSink::new(evidence.clone(), id, self.thumbnail_interval);
            all.push(Arc::new(sink));
        }
        if let Some(c) = &collector {
            all.push(c.clone());
        }
        if let Some(csv) = &self.frame_stats {
            all.push(Arc::new(FrameStatsSink {
                csv: csv.clone(),
                stream: id.to_owned(),
            }));
        }
        all.extend(self.extra.iter().map(|make| make(id)));
        StreamSinks {
            status,
            metrics,
            collector,
            evidence: self.evidence.as_ref().is_some_and(|e| e.links()),
            all,
        }
    }
}

/// One stream's sinks, in the order they consume its events.
pub struct StreamSinks {
    pub status: Arc<StatusSink>,
    pub metrics: Arc<StreamMetrics>,
    /// `scan`'s collector, when events are collected.
    pub collector: Option<Arc<Collector>>,
    evidence: bool,
    all: Vec<Arc<dyn Sink>>,
}

impl StreamSinks {
    /// Whether defects get evidence thumbnails (their events then link to them).
    pub fn has_evidence(&self) -> bool {
        self.evidence
    }

    pub fn consume(&self, event: &Event, frame: Option<&VideoFrame>) {
        for sink in &self.all {
            sink.consume(event, frame);
        }
    }
}
