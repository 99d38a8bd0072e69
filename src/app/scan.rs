//! `streamwatch scan`: analyse one file to its end (or a live source for a while) and report
//! its defects. Every frame is analysed: the decoder waits for the engine instead of dropping.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use serde::Serialize;

use crate::app::services::Services;
use crate::config::{AnalysisTier, Config, StreamConfig, id_from_url, redact_url};
use crate::detect::audio::AudioSummary;
use crate::engine::EngineHandle;
use crate::events::{DefectEvent, InfoEvent, StreamState};
use crate::ingest::adaptive;
use crate::ingest::{self, Pacing, RunningPipeline, pipeline};
use crate::media::Decoders;
use crate::sinks::Outputs;
use crate::sinks::frame_stats::StatsCsv;
use crate::sinks::metrics::Metrics;
use crate::sinks::status::{CaptionsStatus, IndicatorStatus, Scte35Status};
use crate::stats::StatsBackend;
use crate::stream::{Stream, StreamOptions};

/// Frames the decoder may run ahead of the engine in `scan`.
const SCAN_QUEUE_FRAMES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Ingest(#[from] crate::error::IngestError),
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
    /// The source failed with a reason that names the URL (or the variant's) itself.
    #[error("{0}")]
    Source(String),
    #[error("cannot start the analysis engine thread: {0}")]
    Engine(std::io::Error),
    #[error("cannot write frame statistics to {path}: {source}")]
    FrameStats {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize)]
pub struct ScanReport {
    pub stream: String,
    pub url: String,
    pub frames: u64,
    /// The analysis tier (`--analysis`, or the config's).
    pub analysis: AnalysisTier,
    /// Coded frames the tier did not decode.
    pub frames_skipped: u64,
    /// Media seconds analysed.
    pub duration: f64,
    pub backend: String,
    /// Wall seconds the scan took.
    pub elapsed: f64,
    pub events: Vec<DefectEvent>,
    /// Format changes and other events that are not defects.
    pub info: Vec<InfoEvent>,
    /// Decoder errors and concealment warnings.
    pub decode_errors: u64,
    /// TR 101 290 errors of an MPEG-TS source, by indicator (times on the stream's PCR).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tr101290: BTreeMap<&'static str, IndicatorStatus>,
    /// SCTE-35 cues of an MPEG-TS source (times on the stream's PCR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scte35: Option<Scte35Status>,
    /// Closed captions: the last second's rates by 608 field and 708 service, and whether
    /// any were seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captions: Option<CaptionsStatus>,
    /// The decoder elements GStreamer chose (`{"video": "avdec_h264", "audio": "avdec_aac"}`).
    pub decoders: Decoders,
    /// Loudness and A/V sync figures of the audio track, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioSummary>,
    /// Set when the source failed after some frames were analysed (partial report).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What to scan: the source, and for a multi-program MPEG-TS the program (None: the first
/// with video).
pub struct ScanSource<'a> {
    pub url: &'a str,
    pub program: Option<u16>,
}

pub fn scan(
    source: ScanSource<'_>,
    duration: Option<f64>,
    config: &Config,
    backend: Box<dyn StatsBackend>,
    frame_stats: Option<&Path>,
) -> Result<ScanReport, ScanError> {
    ingest::init()?;
    let began = Instant::now();
    let csv = create_frame_stats(frame_stats)?;
    let description = backend.describe();
    let url = source.url;
    let (stream, engine) = spawn_stream(&source, config, backend, csv.clone())?;

    stream.begin_session();
    let fetching = HttpFetching::start(&stream, config)?;
    let running = fetching.start_pipeline(&stream)?;
    let bus = running.bus().ok_or_else(|| ScanError::Failed {
        url: redact_url(url),
        reason: "pipeline has no bus".into(),
    })?;
    let stall = Duration::from_secs_f64(config.ingest.stall_timeout);
    // `main` bounds --duration; a library caller's absurd value means "no limit", not a panic.
    let limit = duration.map(|d| Duration::try_from_secs_f64(d).unwrap_or(Duration::MAX));
    let failure = watch_until_done(&stream, &bus, began, stall, limit);
    let analysed = drain_and_stop(&stream, running, engine);
    if let Some(csv) = &csv
        && let Err(source) = csv.flush()
    {
        return Err(ScanError::FrameStats {
            path: frame_stats.unwrap_or(Path::new("")).to_owned(),
            source,
        });
    }
    report(url, &stream, description, began, analysed, failure)
}

fn create_frame_stats(path: Option<&Path>) -> Result<Option<Arc<StatsCsv>>, ScanError> {
    let csv = path
        .map(|path| {
            StatsCsv::create(path).map_err(|source| ScanError::FrameStats {
                path: path.to_owned(),
                source,
            })
        })
        .transpose()?;
    Ok(csv.map(Arc::new))
}

/// The scanned stream, collecting its events, with the engine over it: the decoder blocks on
/// the stream's queue rather than dropping, so every frame is analysed.
fn spawn_stream(
    source: &ScanSource<'_>,
    config: &Config,
    backend: Box<dyn StatsBackend>,
    csv: Option<Arc<StatsCsv>>,
) -> Result<(Arc<Stream>, EngineHandle), ScanError> {
    let (url, program) = (source.url, source.program);
    let stream_config = StreamConfig {
        program,
        ..config.stream_with_defaults(id_from_url(url, 0), url.to_owned())
    };
    let outputs = Outputs {
        collect: true,
        frame_stats: csv,
        ..Outputs::metrics_only(Arc::new(Metrics::new()))
    };
    let services = Services::new(
        outputs,
        StreamOptions {
            queue_frames: SCAN_QUEUE_FRAMES,
            blocking: true,
            sole: true,
        },
    );
    let stream = services.add_stream(stream_config);
    let engine = services
        .spawn_engine(backend, config.engine.clone())
        .map_err(ScanError::Engine)?;
    Ok((stream, engine))
}

/// HLS segments are fetched on a small tokio runtime of the scan's own (the rest of `scan` is
/// synchronous); other sources need none.
struct HttpFetching {
    runtime: Option<tokio::runtime::Runtime>,
    playlists: Option<adaptive::Client>,
    discovery_wait: Duration,
    _never_shut_down: tokio::sync::watch::Sender<bool>,
}

impl HttpFetching {
    fn start(stream: &Arc<Stream>, config: &Config) -> Result<Self, ScanError> {
        let (never_shut_down, shutdown) = tokio::sync::watch::channel(false);
        let mut fetching = Self {
            runtime: None,
            playlists: None,
            discovery_wait: Duration::from_secs_f64(config.ingest.http_timeout + 1.0),
            _never_shut_down: never_shut_down,
        };
        if !adaptive::applies_to(&stream.url) {
            return Ok(fetching);
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ScanError::Failed {
                url: stream.url.clone(),
                reason: format!("cannot start the HTTP runtime: {e}"),
            })?;
        let _entered = runtime.enter();
        fetching.playlists = adaptive::Client::spawn(stream.clone(), &config.ingest, shutdown);
        fetching.runtime = Some(runtime);
        Ok(fetching)
    }

    fn start_pipeline(&self, stream: &Arc<Stream>) -> Result<RunningPipeline, ScanError> {
        let (Some(runtime), Some(client)) = (&self.runtime, &self.playlists) else {
            return Ok(pipeline::start(stream, Pacing::Unpaced)?);
        };
        let source = runtime
            .block_on(client.discover(self.discovery_wait))
            .map_err(ScanError::Source)?;
        let _entered = runtime.enter();
        Ok(pipeline::start_with(stream, Pacing::Unpaced, source)?)
    }
}

/// Follows the pipeline's bus until the end of the source, an error, the `limit` of media
/// seconds (or of wall time, plus `stall`, for a source that delivers too slowly) or a stall.
/// Returns why the source failed, if it did.
fn watch_until_done(
    stream: &Stream,
    bus: &gst::Bus,
    began: Instant,
    stall: Duration,
    limit: Option<Duration>,
) -> Option<String> {
    loop {
        if let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_mseconds(100),
            &[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
            ],
        ) {
            match msg.view() {
                gst::MessageView::Warning(_) => {
                    pipeline::note_warning(stream, &msg);
                    continue;
                }
                gst::MessageView::Error(_) => {
                    return Some(stream.explain_failure(&pipeline::describe_message(&msg)));
                }
                _ => return None,
            }
        }
        if limit.is_some_and(|l| stream.last_media_time().unwrap_or(0.0) >= l.as_secs_f64())
            || limit.is_some_and(|l| began.elapsed() >= l.saturating_add(stall))
        {
            return None;
        }
        if let Some(problem) = stream.program_problem() {
            return Some(problem);
        }
        let (silence, what) = stream.media_silence();
        if silence >= stall {
            return Some(format!(
                "no {what} for {:.1} s (stall timeout)",
                stall.as_secs_f64()
            ));
        }
    }
}

/// What the stream analysed, read before its session ends and resets the detectors.
struct Analysed {
    media_seconds: f64,
    audio: Option<AudioSummary>,
}

/// Lets the engine finish what the decoder already queued, then stops the decoder, the stream
/// and the engine.
fn drain_and_stop(stream: &Stream, running: RunningPipeline, mut engine: EngineHandle) -> Analysed {
    let drain_deadline = Instant::now() + Duration::from_secs(120);
    while !stream.drained() && Instant::now() < drain_deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = running.pipeline.set_state(gst::State::Null);
    let analysed = Analysed {
        media_seconds: stream.last_media_time().unwrap_or(0.0),
        audio: stream.audio_summary(),
    };
    stream.close();
    stream.end_session(StreamState::Stopped, None);
    drop(running);
    engine.stop();
    analysed
}

/// The report, partial when the source failed after some frames; an error when it failed
/// before any.
fn report(
    url: &str,
    stream: &Stream,
    backend: String,
    began: Instant,
    analysed: Analysed,
    failure: Option<String>,
) -> Result<ScanReport, ScanError> {
    let frames = stream.frames_analysed();
    let status = stream.status();
    let collected = stream.sinks().collector.clone().unwrap_or_default();
    if let Some(reason) = &failure
        && frames == 0
        && analysed.audio.is_none()
    {
        return Err(ScanError::Failed {
            url: redact_url(url),
            reason: stream.redact(reason),
        });
    }
    Ok(ScanReport {
        stream: stream.id.clone(),
        url: redact_url(url),
        frames,
        analysis: stream.config.analysis,
        frames_skipped: status.frames_skipped,
        duration: (analysed.media_seconds * 1000.0).round() / 1000.0,
        backend,
        elapsed: began.elapsed().as_secs_f64(),
        events: collected.defects(),
        info: collected.info(),
        decode_errors: stream.decode_errors(),
        tr101290: status.tr101290,
        scte35: status.scte35,
        captions: status.captions,
        decoders: stream.decoders(),
        audio: analysed.audio,
        error: failure,
    })
}

impl ScanReport {
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: {} frames, {:.3} s analysed in {:.2} s ({:.0} frames/s) on {}\n",
            self.url,
            self.frames,
            self.duration,
            self.elapsed,
            self.frames as f64 / self.elapsed.max(1e-9),
            self.backend
        );
        if self.events.is_empty() {
            s.push_str("no defects\n");
        }
        for e in &self.events {
            let detector = match e.channel {
                Some(ch) => format!("{}[{ch}]", e.detector),
                None => e.detector.to_string(),
            };
            s.push_str(&format!(
                "{:<10} {:>9.3} - {:>9.3} s  ({:.3} s)\n",
                detector,
                e.start,
                e.end.unwrap_or(e.start),
                e.duration.unwrap_or(0.0)
            ));
        }
        for i in &self.info {
            s.push_str(&format!("{:<10} {:>9.3} s  {}\n", i.kind, i.at, i.detail));
        }
        if self.decode_errors > 0 {
            s.push_str(&format!("decoder errors: {}\n", self.decode_errors));
        }
        for (indicator, e) in &self.tr101290 {
            s.push_str(&format!(
                "TR 101 290 {}.x {indicator}: {} (first at {:.3} s; latest: {})\n",
                e.priority, e.count, e.first_at, e.detail
            ));
        }
        if let Some(err) = &self.error {
            s.push_str(&format!("incomplete: {err}\n"));
        }
        s
    }
}
