//! The batching analysis engine: one thread that gathers the queued frames of every stream,
//! has the statistics backend analyse them in one submission, and feeds the results to each
//! stream's detectors.
//!
//! Like DeepStream's nvstreammux, a batch goes out when every live stream has a frame queued or
//! when `batch_timeout` has passed since the first frame arrived, so a slow stream never holds
//! the others back. The thread is a plain OS thread because the backend blocks while the GPU
//! works; tokio workers are never used for it.
//!
//! Up to `batches_in_flight` batches are on the device at once: when the next batch is ready
//! while one is in flight, it is gathered and submitted before the oldest is collected, so its
//! upload overlaps the device's work on the one before. Results come back oldest first, so
//! every stream's frames are still decided in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::EngineConfig;
use crate::events::StreamState;
use crate::frame::VideoFrame;
use crate::perf::{PERF, Stage};
use crate::sinks::metrics::Metrics;
use crate::stats::{BatchItem, EngineError, FrameStats, StatsBackend};
use crate::stream::{Stream, StreamSet, Wake};

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
                let mut engine = Engine::new(backend.as_mut(), streams, wake, metrics, config);
                while !shutdown.load(Ordering::Relaxed) {
                    heartbeat_ms.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    engine.turn();
                }
                engine.drain();
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

/// The frames of one batch, kept from submission until they are decided. Reused, so the hot
/// path does not allocate once warm.
#[derive(Default)]
struct Batch {
    frames: Vec<(u64, VideoFrame)>,
    /// Index into `streams` of each frame's stream.
    owners: Vec<usize>,
    /// The streams as they were when the batch was gathered.
    streams: Vec<Arc<Stream>>,
    submitted: Option<Instant>,
}

struct Engine<'a> {
    backend: &'a mut dyn StatsBackend,
    streams: Arc<StreamSet>,
    wake: Arc<Wake>,
    metrics: Arc<Metrics>,
    config: EngineConfig,
    /// Most batches in flight: `batches_in_flight`, or 1 where the backend cannot overlap them.
    depth: usize,
    /// Batches submitted and not yet decided, oldest first; the backend hands results back in
    /// the same order, so each stream's frames are decided in frame order.
    in_flight: VecDeque<Batch>,
    spare: Vec<Batch>,
    stats: Vec<FrameStats>,
}

impl<'a> Engine<'a> {
    fn new(
        backend: &'a mut dyn StatsBackend,
        streams: Arc<StreamSet>,
        wake: Arc<Wake>,
        metrics: Arc<Metrics>,
        config: EngineConfig,
    ) -> Self {
        let depth = if backend.overlaps_batches() {
            config.batches_in_flight.max(1)
        } else {
            1
        };
        backend.set_batches_in_flight(depth);
        Self {
            backend,
            streams,
            wake,
            metrics,
            config,
            depth,
            in_flight: VecDeque::with_capacity(depth),
            spare: Vec::with_capacity(depth),
            stats: Vec::new(),
        }
    }

    fn turn(&mut self) {
        for slot in self.streams.take_retired() {
            self.backend.release(slot);
        }
        if self.in_flight.is_empty() {
            let streams = self.streams.snapshot();
            if streams.iter().all(|s| s.queue.is_empty()) {
                self.wake.wait(Duration::from_millis(100));
                return;
            }
            // Give the other live streams until the batch timeout to deliver their frame.
            let deadline = Instant::now() + Duration::from_millis(self.config.batch_timeout_ms);
            loop {
                let now = Instant::now();
                if batch_ready(&streams) || now >= deadline {
                    break;
                }
                self.wake.wait(deadline - now);
            }
            self.submit(streams);
            if self.in_flight.is_empty() {
                return;
            }
        }
        // While the device works on the batches in flight, get the next one onto it, but only
        // a batch that is ready now: waiting for one would delay the results of the oldest, and
        // a partial one would split batches that light load would have filled.
        while self.in_flight.len() < self.depth {
            let streams = self.streams.snapshot();
            if !streams.iter().any(|s| !s.queue.is_empty()) || !batch_ready(&streams) {
                break;
            }
            let before = self.in_flight.len();
            self.submit(streams);
            if self.in_flight.len() <= before {
                break;
            }
        }
        self.decide_oldest();
    }

    /// Gathers the queued frames of `streams` into a batch and submits it.
    fn submit(&mut self, streams: Vec<Arc<Stream>>) {
        let mut batch = self.spare.pop().unwrap_or_default();
        batch.frames.clear();
        batch.owners.clear();
        for (i, s) in streams.iter().enumerate() {
            // In queue order after the batches in flight, which keep the reference they had.
            if s.slot_reset_pending.swap(false, Ordering::Relaxed) {
                self.backend.release(s.slot);
            }
            let before = batch.frames.len();
            s.queue
                .take(self.config.max_frames_per_stream, &mut batch.frames);
            batch
                .owners
                .extend(std::iter::repeat_n(i, batch.frames.len() - before));
        }
        batch.streams = streams;
        if batch.frames.is_empty() {
            batch.streams.clear();
            self.spare.push(batch);
            return;
        }
        let items: Vec<BatchItem<'_>> = batch
            .frames
            .iter()
            .zip(&batch.owners)
            .map(|((_, frame), &i)| BatchItem {
                slot: batch.streams[i].slot,
                frame,
                params: batch.streams[i].params,
            })
            .collect();
        let result = self.backend.submit(&items);
        drop(items);
        match result {
            Ok(()) => {
                batch.submitted = Some(Instant::now());
                self.in_flight.push_back(batch);
            }
            Err(e) => {
                self.metrics.engine_errors.inc();
                tracing::error!(error = %e, frames = batch.frames.len(), "statistics batch failed");
                // The batches before it go first (the backend may have failed them too), so
                // frames still leave in order.
                while !self.in_flight.is_empty() {
                    self.decide_oldest();
                }
                for &i in &batch.owners {
                    batch.streams[i].discard_frame();
                }
                self.recycle(batch);
            }
        }
    }

    /// Waits for the oldest batch in flight and feeds its statistics to the detectors (or
    /// accounts for its frames as discarded when it failed).
    fn decide_oldest(&mut self) {
        let Some(batch) = self.in_flight.pop_front() else {
            return;
        };
        let result = self.backend.collect(&mut self.stats).unwrap_or_else(|| {
            Err(EngineError::Batch(
                "internal: the backend has no batch in flight".into(),
            ))
        });
        let result = result.and_then(|()| {
            if self.stats.len() == batch.frames.len() {
                Ok(())
            } else {
                Err(EngineError::Batch(format!(
                    "internal: {} statistics for {} frames",
                    self.stats.len(),
                    batch.frames.len()
                )))
            }
        });
        if let Some(submitted) = batch.submitted {
            self.metrics
                .engine_batch_seconds
                .observe(submitted.elapsed().as_secs_f64());
        }
        if let Err(e) = result {
            self.metrics.engine_errors.inc();
            tracing::error!(error = %e, frames = batch.frames.len(), "statistics batch failed");
            for &i in &batch.owners {
                batch.streams[i].discard_frame();
            }
            self.recycle(batch);
            return;
        }
        self.metrics.gpu_batches.inc();
        self.metrics
            .gpu_batch_frames
            .observe(batch.frames.len() as f64);
        PERF.batch(batch.frames.len() as u64);
        let deciding = Instant::now();
        for (((session, frame), &i), stats) in
            batch.frames.iter().zip(&batch.owners).zip(&self.stats)
        {
            batch.streams[i].on_frame_stats(*session, frame, stats);
            let latency = frame.decoded_at.elapsed();
            self.metrics.detect_latency.observe(latency.as_secs_f64());
            PERF.latency(latency);
        }
        PERF.add(Stage::Decide, deciding.elapsed(), batch.frames.len() as u64);
        self.recycle(batch);
    }

    fn recycle(&mut self, mut batch: Batch) {
        batch.frames.clear();
        batch.owners.clear();
        batch.streams.clear();
        batch.submitted = None;
        self.spare.push(batch);
    }

    /// Decides every batch still in flight (at shutdown, so no analysed frame is lost).
    fn drain(&mut self) {
        while !self.in_flight.is_empty() {
            self.decide_oldest();
        }
    }
}

/// Whether a batch should go out now: every live stream has a frame queued (like DeepStream's
/// nvstreammux), or a stream delivering a burst would otherwise overflow its queue.
fn batch_ready(streams: &[Arc<Stream>]) -> bool {
    let waiting = streams
        .iter()
        .any(|s| s.state() == StreamState::Up && s.queue.is_empty());
    let pressed = streams.iter().any(|s| s.queue.half_full());
    !waiting || pressed
}
