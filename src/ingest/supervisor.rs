//! Per-stream supervision: start the pipeline, watch its bus and its frame flow, and restart it
//! with capped exponential backoff when it fails, ends or stalls. One stream's failure is that
//! stream's state; the others never notice.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gstreamer as gst;
use tokio::sync::watch;

use crate::config::IngestConfig;
use crate::events::StreamState;
use crate::ingest::adaptive;
use crate::ingest::{Pacing, RunningPipeline, pipeline};
use crate::stream::Stream;

/// A run that lasted this long resets the backoff: the next failure is retried quickly.
const HEALTHY_RUN: Duration = Duration::from_secs(30);
const WATCHDOG_PERIOD: Duration = Duration::from_millis(250);

/// Longest wait for a pipeline to reach Null before it is abandoned.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Sets the pipeline to Null off the async runtime. GStreamer 1.22's classic `hlsdemux` can
/// deadlock there (its playlist update task stopping its downloader while the state change
/// waits for the demuxer's lock), and a hung network source can block too: after
/// `TEARDOWN_TIMEOUT` the pipeline is left to its blocked thread, counted, and the stream
/// carries on with a new one. The abandoned run's frames are already ignored (its session
/// ended), so only its memory is lost.
async fn tear_down(running: RunningPipeline, stream: &Stream) {
    let teardown = tokio::task::spawn_blocking(move || drop(running));
    if tokio::time::timeout(TEARDOWN_TIMEOUT, teardown)
        .await
        .is_err()
    {
        tracing::error!(stream = %stream.id, timeout = ?TEARDOWN_TIMEOUT, "pipeline did not stop (GStreamer deadlock); abandoned, starting a new one");
        stream.count_abandoned_pipeline();
    }
}

/// How a pipeline run ended.
enum Outcome {
    Shutdown,
    Failed(String),
}

pub async fn supervise(
    stream: Arc<Stream>,
    ingest: IngestConfig,
    mut shutdown: watch::Receiver<bool>,
) {
    let initial = Duration::from_secs_f64(ingest.restart_backoff_initial);
    let max = Duration::from_secs_f64(ingest.restart_backoff_max);
    let stall = Duration::from_secs_f64(ingest.stall_timeout);
    let mut backoff = initial;
    // The playlists are polled beside the pipeline and through its restarts: a playlist that
    // stops updating is what often brings the pipeline down.
    let playlists = adaptive::applies_to(&stream.url)
        .then(|| adaptive::Client::spawn(stream.clone(), &ingest, shutdown.clone()))
        .flatten();
    let discovery_wait = Duration::from_secs_f64(ingest.http_timeout + 1.0);
    loop {
        stream.begin_session();
        let started = tokio::time::Instant::now();
        let outcome = match start(&stream, playlists.as_ref(), discovery_wait).await {
            Ok(running) => {
                let outcome = watch_run(&running, &stream, stall, &mut shutdown).await;
                tear_down(running, &stream).await;
                outcome
            }
            Err(reason) => Outcome::Failed(reason),
        };
        match outcome {
            Outcome::Shutdown => {
                stream.end_session(StreamState::Stopped, None);
                return;
            }
            Outcome::Failed(reason) => {
                let reason = stream.explain_failure(&reason);
                tracing::warn!(stream = %stream.id, reason = %reason, retry_in = ?backoff, "stream down");
                stream.end_session(StreamState::Down, Some(reason));
            }
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = initial;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => {
                stream.end_session(StreamState::Stopped, None);
                return;
            }
        }
        backoff = (backoff * 2).min(max);
        stream.count_restart();
    }
}

/// Starts a pipeline run; an HTTP stream first waits for its URL to be known as HLS or not.
async fn start(
    stream: &Arc<Stream>,
    playlists: Option<&adaptive::Client>,
    discovery_wait: Duration,
) -> Result<RunningPipeline, String> {
    let source = match playlists {
        None => None,
        Some(client) => client.discover(discovery_wait).await?,
    };
    pipeline::start_with(stream, Pacing::RealTime, source).map_err(|e| e.to_string())
}

async fn watch_run(
    running: &RunningPipeline,
    stream: &Stream,
    stall: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Outcome {
    let Some(bus) = running.bus() else {
        return Outcome::Failed("pipeline has no bus".into());
    };
    let mut messages = bus.stream();
    let mut watchdog = tokio::time::interval(WATCHDOG_PERIOD);
    loop {
        tokio::select! {
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return Outcome::Failed("pipeline bus closed".into());
                };
                match msg.view() {
                    gst::MessageView::Error(_) => {
                        return Outcome::Failed(pipeline::describe_message(&msg));
                    }
                    gst::MessageView::Eos(_) => {
                        return Outcome::Failed("end of stream".into());
                    }
                    gst::MessageView::Warning(_) => pipeline::note_warning(stream, &msg),
                    _ => {}
                }
            }
            _ = watchdog.tick() => {
                stream.transport_tick();
                if let Some(problem) = stream.program_problem() {
                    return Outcome::Failed(problem);
                }
                // The media the stream carries: audio-only streams stall on audio.
                let (silence, what) = stream.media_silence();
                if silence >= stall {
                    return Outcome::Failed(format!(
                        "stalled: no {what} for {:.1} s",
                        silence.as_secs_f64()
                    ));
                }
            }
            _ = shutdown.changed() => return Outcome::Shutdown,
        }
    }
}
