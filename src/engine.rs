//! The batching analysis engine: one thread that gathers the queued frames of every stream,
//! has the statistics backend analyse them in one submission, and feeds the results to each
//! stream's detectors.
//!
//! Like DeepStream's nvstreammux, a batch goes out when every live stream has a frame queued or
//! when `batch_timeout` has passed since the first frame arrived, so a slow stream never holds
//! the others back. The thread is a plain OS thread because the backend blocks while the GPU
//! works; tokio workers are never used for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::EngineConfig;
use crate::frame::VideoFrame;
use crate::metrics::Metrics;
use crate::perf::{PERF, Stage};
use crate::stats::{BatchItem, FrameStats, StatsBackend};
use crate::stream::{StreamSet, StreamState, Wake};

/// Shared handles the engine thread reports through.
pub struct EngineHandle {
    pub shutdown: Arc<AtomicBool>,
    /// Milliseconds since the engine started at its last loop turn (for `/healthz`).
    pub heartbeat_ms: Arc<AtomicU64>,
    pub started: Instant,
    pub backend: String,
    thread: Option<JoinHandle<()>>,
}

impl EngineHandle {
    /// Time since the engine thread last went round its loop.
    pub fn heartbeat_age(&self) -> Duration {
        let beat = Duration::from_millis(self.heartbeat_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(beat)
    }

    pub fn stop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("engine thread panicked");
        }
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn spawn(
    mut backend: Box<dyn StatsBackend>,
    streams: Arc<StreamSet>,
    wake: Arc<Wake>,
    metrics: Arc<Metrics>,
    config: EngineConfig,
) -> std::io::Result<EngineHandle> {
    let shutdown = Arc::new(AtomicBool::new(false));
    let heartbeat_ms = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let description = backend.describe();
    let thread = {
        let shutdown = shutdown.clone();
        let heartbeat_ms = heartbeat_ms.clone();
        std::thread::Builder::new()
            .name("streamwatch-engine".into())
            .spawn(move || {
                let mut engine = Engine {
                    backend: backend.as_mut(),
                    streams,
                    wake,
                    metrics,
                    config,
                    frames: Vec::new(),
                    owners: Vec::new(),
                    stats: Vec::new(),
                };
                while !shutdown.load(Ordering::Relaxed) {
                    heartbeat_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    engine.turn();
                }
            })?
    };
    Ok(EngineHandle {
        shutdown,
        heartbeat_ms,
        started,
        backend: description,
        thread: Some(thread),
    })
}

struct Engine<'a> {
    backend: &'a mut dyn StatsBackend,
    streams: Arc<StreamSet>,
    wake: Arc<Wake>,
    metrics: Arc<Metrics>,
    config: EngineConfig,
    // Reused across batches so the hot path does not allocate.
    frames: Vec<(u64, VideoFrame)>,
    owners: Vec<usize>,
    stats: Vec<FrameStats>,
}

impl Engine<'_> {
    fn turn(&mut self) {
        for slot in self.streams.take_retired() {
            self.backend.release(slot);
        }
        let streams = self.streams.snapshot();
        if streams.iter().all(|s| s.queue.is_empty()) {
            self.wake.wait(Duration::from_millis(100));
            return;
        }
        // Give the other live streams until the batch timeout to deliver their frame.
        let deadline = Instant::now() + Duration::from_millis(self.config.batch_timeout_ms);
        loop {
            let waiting = streams
                .iter()
                .any(|s| s.state() == StreamState::Up && s.queue.is_empty());
            // A stream delivering a burst must not overflow its queue while we wait.
            let pressed = streams.iter().any(|s| s.queue.half_full());
            let now = Instant::now();
            if !waiting || pressed || now >= deadline {
                break;
            }
            self.wake.wait(deadline - now);
        }

        self.frames.clear();
        self.owners.clear();
        for (i, s) in streams.iter().enumerate() {
            if s.slot_reset_pending.swap(false, Ordering::Relaxed) {
                self.backend.release(s.slot);
            }
            let before = self.frames.len();
            s.queue
                .take(self.config.max_frames_per_stream, &mut self.frames);
            self.owners
                .extend(std::iter::repeat_n(i, self.frames.len() - before));
        }
        if self.frames.is_empty() {
            return;
        }
        let items: Vec<BatchItem<'_>> = self
            .frames
            .iter()
            .zip(&self.owners)
            .map(|((_, frame), &i)| BatchItem {
                slot: streams[i].slot,
                frame,
                params: streams[i].params,
            })
            .collect();
        let started = Instant::now();
        let result = self.backend.analyze(&items, &mut self.stats);
        drop(items);
        self.metrics
            .engine_batch_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = result {
            self.metrics.engine_errors.inc();
            tracing::error!(error = %e, frames = self.frames.len(), "statistics batch failed");
            for &i in &self.owners {
                streams[i].discard_frame();
            }
            return;
        }
        self.metrics.gpu_batches.inc();
        self.metrics
            .gpu_batch_frames
            .observe(self.frames.len() as f64);
        PERF.batch(self.frames.len() as u64);
        let deciding = Instant::now();
        for (((session, frame), &i), stats) in self.frames.iter().zip(&self.owners).zip(&self.stats)
        {
            streams[i].on_frame_stats(*session, frame, stats);
            let latency = frame.decoded_at.elapsed();
            self.metrics.detect_latency.observe(latency.as_secs_f64());
            PERF.latency(latency);
        }
        PERF.add(Stage::Decide, deciding.elapsed(), self.frames.len() as u64);
    }
}
