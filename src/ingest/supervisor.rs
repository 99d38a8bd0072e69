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

/// Each restart delay is the backoff times a random factor in `1 ± RESTART_JITTER`, so that
/// many streams failing together (an origin down for all of them) do not all restart at the
/// same instant, which spawned 300 threads and sockets at once with 200 streams.
const RESTART_JITTER: f64 = 0.3;

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
    let mut jitter = Jitter::for_stream(&stream.id);
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
                tracing::warn!(stream = %stream.id, reason = %reason, retry_in = ?backoff, "stream down (restart delay jittered by ±30%)");
                stream.end_session(StreamState::Down, Some(reason));
            }
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = initial;
        }
        tokio::select! {
            _ = tokio::time::sleep(jitter.spread(backoff)) => {}
            _ = shutdown.changed() => {
                stream.end_session(StreamState::Stopped, None);
                return;
            }
        }
        backoff = (backoff * 2).min(max);
        stream.count_restart();
    }
}

/// A small PRNG (SplitMix64) per stream for the restart jitter: seeded from the stream id and
/// the start time, so two streams (or two processes) never share a sequence; no crate needed
/// for a few draws a minute, and nothing here must be unpredictable to an adversary.
struct Jitter(u64);

impl Jitter {
    fn for_stream(id: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::seeded(id, nanos)
    }

    fn seeded(id: &str, salt: u64) -> Self {
        // FNV-1a of the id: cheap, and different ids give unrelated seeds once mixed.
        let hash = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self(hash ^ salt)
    }

    fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits make a uniform double in [0, 1).
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `delay` scaled by a uniform factor in `1 ± RESTART_JITTER`.
    fn spread(&mut self, delay: Duration) -> Duration {
        let factor = 1.0 + RESTART_JITTER * (2.0 * self.next_unit() - 1.0);
        delay.mul_f64(factor)
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

/// At the end of the source: a file loops in place (no failure, no backoff, same run); any
/// other source has failed. A file that played nothing since its last start (no frame, no
/// sample) would loop as fast as it can seek, so that is a failure too, restarted with backoff.
fn loop_file(
    running: &RunningPipeline,
    stream: &Stream,
    rewound_at: &mut Option<f64>,
) -> Result<(), String> {
    if !pipeline::loops(&stream.url) {
        return Err("end of stream".into());
    }
    let played = stream.last_media_time();
    if played.is_none() || played == *rewound_at {
        return Err("end of file with nothing played".into());
    }
    running.rewind(stream)?;
    *rewound_at = played;
    tracing::debug!(stream = %stream.id, "end of file: playing it again");
    Ok(())
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
    // Media time when the file was last rewound: a pass that plays nothing must not loop.
    let mut rewound_at: Option<f64> = None;
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
                        if let Err(reason) = loop_file(running, stream, &mut rewound_at) {
                            return Outcome::Failed(reason);
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// 200 streams failing together with a 1 s backoff restart spread over ±30%, not at once.
    #[test]
    fn restart_delays_of_many_streams_are_spread() {
        let delays: Vec<f64> = (0..200)
            .map(|i| {
                Jitter::seeded(&format!("stream-{i}"), 42)
                    .spread(Duration::from_secs(1))
                    .as_secs_f64()
            })
            .collect();
        let min = delays.iter().copied().fold(f64::MAX, f64::min);
        let max = delays.iter().copied().fold(0.0, f64::max);
        assert!(min >= 0.7 && max <= 1.3, "{min}..{max}");
        assert!(max - min > 0.5, "spread {min}..{max}");
        // No 10 ms window holds more than 5% of the restarts (uniform: about 1.7%).
        let mut buckets = [0usize; 60];
        for d in &delays {
            buckets[(((d - 0.7) / 0.01) as usize).min(59)] += 1;
        }
        let busiest = buckets.iter().max().copied().unwrap_or(0);
        assert!(busiest <= 10, "{busiest} restarts in one 10 ms window");
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}");
    }

    #[test]
    fn one_stream_draws_a_new_factor_each_restart() {
        let mut j = Jitter::seeded("a", 1);
        let a = j.spread(Duration::from_secs(10));
        let b = j.spread(Duration::from_secs(10));
        assert_ne!(a, b);
    }
}
