//! `streamwatch bench`: N streams through the real engine, measured.
//!
//! Two sources. `synthetic` pushes frames from a pool generated once (a moving pattern, cycled
//! so that no two consecutive frames are equal and the freeze detector does not fire), which
//! isolates the engine from decoding; every push copies the frame, as the appsink copies a
//! decoded plane. A file or URL runs N real GStreamer pipelines, the same ingest path as `run`
//! and `scan`: as fast as decoding allows by default (queues block the decoder, as in `scan`,
//! so nothing is dropped and the figure is the throughput), or paced by the timestamps with
//! `--realtime` (live queues that drop the oldest frame when the engine falls behind, as in
//! `run`; the dropped count is the figure). Network URLs are always run like that.
//!
//! The measured window follows every media stream's first frame and a warm-up (shader
//! compilation, first buffers); the stage times come from the counters in [`crate::perf`],
//! CPU and memory from `/proc/self`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use serde::Serialize;

use crate::app::services::Services;
use crate::config::{AnalysisTier, Config};
use crate::engine::EngineHandle;
use crate::frame::{Luma, VideoFrame};
use crate::ingest::{self, Pacing, RunningPipeline, pipeline};
use crate::perf::{self, PERF, PerfSnapshot, Stage};
use crate::sinks::Outputs;
use crate::sinks::metrics::Metrics;
use crate::stats::StatsBackend;
use crate::stream::{Stream, StreamOptions};

/// Frames in the synthetic pool: one second of 30 fps video, cycled.
const POOL_FRAMES: usize = 30;
/// Media frame rate of synthetic frames when they are pushed unpaced.
const SYNTHETIC_MEDIA_FPS: f64 = 30.0;
/// Queue depth of unpaced runs, where the producer waits for the engine (as in `scan`).
const UNPACED_QUEUE_FRAMES: usize = 32;
/// Longest warm-up before the measured window, once every stream is up.
const MAX_WARMUP: Duration = Duration::from_secs(1);
/// Real-time media streams start spread over this span, a common GOP length, so that their
/// keyframes do not all come at once: independent live sources' do not, and started together
/// the copies of one file would decode their keyframes in one burst every GOP.
const START_SPREAD: Duration = Duration::from_secs(2);
/// Longest wait for every media stream's first analysed frame before the warm-up: this much,
/// plus [`STARTUP_PER_STREAM`] per stream.
const STARTUP_BASE: Duration = Duration::from_secs(5);
const STARTUP_PER_STREAM: Duration = Duration::from_millis(500);
const STARTUP_POLL: Duration = Duration::from_millis(100);
/// Bounds of `--duration` (seconds measured) and `--fps` (synthetic frames per second per
/// stream, besides 0 for unpaced): below 0.1 fps a frame comes every ten seconds, and past
/// a day or 1000 fps the figures measure nothing `run` would meet.
pub const MIN_SECONDS: f64 = 0.1;
pub const MAX_SECONDS: f64 = 86_400.0;
pub const MIN_FPS: f64 = 0.1;
pub const MAX_FPS: f64 = 1000.0;
/// Thread name of the synthetic producers (grouped under it in the CPU profile).
const FEEDER_THREAD: &str = "bench-feed";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("--streams must be between 1 and 4096")]
    Streams,
    #[error("--duration must be a number of seconds between 0.1 and 86400")]
    Duration,
    #[error("--resolution `{0}` is not WIDTHxHEIGHT with both between 16 and 8192")]
    Resolution(String),
    #[error("--fps must be 0 (as fast as possible) or a frame rate between 0.1 and 1000")]
    Fps,
    #[error("{0}")]
    Source(String),
    #[error(transparent)]
    Ingest(#[from] crate::error::IngestError),
    #[error("cannot start a bench thread: {0}")]
    Thread(std::io::Error),
    #[error("cannot write {path}: {source}")]
    Json {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// What to measure (the `bench` command line).
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub streams: usize,
    /// `synthetic`, a file path or a URL.
    pub source: String,
    /// Synthetic frame size.
    pub width: u32,
    pub height: u32,
    /// Seconds measured, after the warm-up.
    pub duration: f64,
    /// Synthetic frames per second per stream; 0 pushes as fast as the engine takes them.
    pub fps: f64,
    /// Files and URLs: pace by the timestamps, like a live stream, and drop when behind.
    pub realtime: bool,
}

/// Milliseconds per frame in each stage; `decode` is the CPU time of the GStreamer threads
/// per decoded frame (analysed or dropped) less the copy, so it includes demuxing and colour
/// conversion.
#[derive(Debug, Default, Serialize)]
pub struct StageTimes {
    pub decode: Option<f64>,
    pub copy: f64,
    pub upload: f64,
    pub gpu: f64,
    pub readback: f64,
    pub decide: f64,
}

#[derive(Debug, Serialize)]
pub struct ThreadCpu {
    pub threads: String,
    /// CPU cores this group of threads kept busy on average over the window.
    pub cores: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub source: String,
    pub streams: usize,
    pub backend: String,
    /// Frame size of the first stream (synthetic: as asked; media: as decoded).
    pub width: u32,
    pub height: u32,
    /// "unpaced", "synthetic N fps per stream" or "realtime".
    pub pacing: String,
    /// Seconds measured.
    pub duration: f64,
    pub frames: u64,
    pub frames_per_second: f64,
    pub frames_per_second_per_stream: f64,
    pub stage_ms_per_frame: StageTimes,
    /// Process CPU time over the window divided by its length (2.0 = two cores busy).
    pub cpu_cores: f64,
    pub cpu_by_thread: Vec<ThreadCpu>,
    /// The machine's 1-minute load average at the end (other processes included).
    pub load_average: Option<f64>,
    /// Cores the machine has.
    pub machine_cores: usize,
    pub rss_bytes: u64,
    pub rss_peak_bytes: u64,
    /// Resident memory before the streams started (process, GPU context, synthetic pool).
    pub rss_baseline_bytes: u64,
    pub rss_per_stream_bytes: u64,
    /// Device memory the GPU backend owns (0 for the CPU backend).
    pub gpu_memory_bytes: u64,
    pub gpu_memory_per_stream_bytes: u64,
    pub batches: u64,
    pub batch_frames_mean: f64,
    pub batch_frames_max: u64,
    /// Frame arrival in its stream's queue to its detectors' decision.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub dropped_frames: u64,
    /// The analysis tier of every stream.
    pub analysis: AnalysisTier,
    /// Coded frames the tier did not decode, in the window.
    pub skipped_frames: u64,
    /// Frames that reached their real-time sink over 200 ms late, in the window: decoding
    /// fell behind (always 0 unpaced).
    pub late_frames: u64,
    /// `cpu_cores` over `streams`.
    pub cpu_cores_per_stream: f64,
    /// With `--bandwidth`: the adapter's host-to-device rate, and the share of it the luma
    /// the engine uploaded over the window takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_to_device_bytes_per_second: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_upload_share: Option<f64>,
    /// Pipeline errors, per stream.
    pub errors: Vec<String>,
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_resolution(text: &str) -> Result<(u32, u32), BenchError> {
    let bad = || BenchError::Resolution(text.to_owned());
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

/// The synthetic pool: diagonal stripes moving 12 px a frame over a gradient, so every frame
/// differs strongly from the one before, plus a bright box crossing the picture.
pub fn synthetic_frames(width: u32, height: u32, count: usize) -> Vec<VideoFrame> {
    let stride = VideoFrame::padded_stride(width);
    let (w, h) = (width as usize, height as usize);
    (0..count)
        .map(|k| {
            let mut luma = vec![0u8; stride * h];
            let box_x = (k * w / count.max(1)) % w;
            for (y, row) in luma.chunks_exact_mut(stride).enumerate() {
                for (x, px) in row[..w].iter_mut().enumerate() {
                    let stripe = ((x + y + 12 * k) / 16) % 2 == 0;
                    let gradient = (x * 64 / w + y * 32 / h) as u8;
                    let in_box = x.wrapping_sub(box_x) < w / 8 && (y * 4 / h) == 1;
                    *px = if in_box {
                        235
                    } else if stripe {
                        60 + gradient
                    } else {
                        150 + gradient
                    };
                }
            }
            VideoFrame {
                width,
                height,
                stride,
                luma: Luma::Shared {
                    start: 0,
                    len: luma.len(),
                    bytes: Arc::new(luma),
                },
                pts: Duration::ZERO,
                decoded_at: Instant::now(),
                decode_errors: 0,
                keyframe: false,
                interlaced: false,
                tier: Default::default(),
            }
        })
        .collect()
}

/// Pushes pool frames into `stream` until `stop`, at `fps` or as fast as the queue takes them.
fn feed(
    stream: Arc<Stream>,
    pool: Arc<Vec<VideoFrame>>,
    offset: usize,
    fps: f64,
    stop: Arc<AtomicBool>,
) {
    let started = Instant::now();
    let media_fps = if fps > 0.0 { fps } else { SYNTHETIC_MEDIA_FPS };
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if fps > 0.0 {
            // Checked: a feeder that panics would leave the bench measuring a dead stream.
            let Some(due) = Duration::try_from_secs_f64(n as f64 / fps)
                .ok()
                .and_then(|d| started.checked_add(d))
            else {
                return;
            };
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let source = &pool[(offset + n as usize) % pool.len()];
        let copying = Instant::now();
        // The pool's planes are shared, as the appsink shares the decoder's buffers.
        let mut frame = source.clone();
        PERF.add(Stage::Copy, copying.elapsed(), 1);
        n += 1;
        let Ok(pts) = Duration::try_from_secs_f64(n as f64 / media_fps) else {
            return;
        };
        let Some((session, media)) = stream.media_time(pts, true) else {
            continue;
        };
        frame.pts = media;
        frame.decoded_at = Instant::now();
        stream.push_video(session, frame);
    }
}

/// Process-level figures at one moment.
struct Sample {
    at: Instant,
    cpu: f64,
    threads: Vec<(String, f64)>,
    frames: u64,
    dropped: u64,
    skipped: u64,
    late: u64,
}

fn sample(streams: &[Arc<Stream>]) -> Sample {
    Sample {
        at: Instant::now(),
        cpu: perf::process_cpu_seconds().unwrap_or(0.0),
        threads: perf::thread_cpu_seconds(),
        frames: streams.iter().map(|s| s.frames_analysed()).sum(),
        dropped: streams.iter().map(|s| s.frames_dropped()).sum(),
        skipped: streams.iter().map(|s| s.status().frames_skipped).sum(),
        late: streams.iter().map(|s| s.late_frames()).sum(),
    }
}

/// Thread groups that are not GStreamer's: the rest of the CPU time is decoding. Threads
/// that Mesa's lavapipe starts inherit the process's name, whatever the binary is called.
fn is_own_thread(name: &str, process: &str) -> bool {
    name == process
        || name.starts_with("streamwatch")
        || name.starts_with("llvmpipe")
        || name == FEEDER_THREAD
}

pub fn bench(
    options: &BenchOptions,
    config: &Config,
    backend: Box<dyn StatsBackend>,
) -> Result<BenchReport, BenchError> {
    let source = SourcePlan::check(options)?;
    if !source.synthetic {
        ingest::init()?;
    }
    // Generated before the baseline is read, so the per-stream figure leaves the pool out.
    let pool = if source.synthetic {
        Arc::new(synthetic_frames(options.width, options.height, POOL_FRAMES))
    } else {
        Arc::new(Vec::new())
    };
    let mut rig = Rig::start(options, config, &source, backend)?;
    let window = rig
        .start_feeding(options, &source, &pool)
        .map(|()| rig.measure(options.duration));
    let at_stop = rig.stop();
    Ok(report(options, &source, rig, window?, at_stop))
}

/// The source the options name, checked, and how its frames arrive.
struct SourcePlan {
    synthetic: bool,
    url: String,
    /// Live queues and clocked sinks, as `run` sees the source.
    realtime: bool,
    /// Frames come at their own pace and are dropped when the engine falls behind; unpaced
    /// producers wait for the engine instead.
    paced: bool,
}

impl SourcePlan {
    fn check(options: &BenchOptions) -> Result<Self, BenchError> {
        if !(1..=4096).contains(&options.streams) {
            return Err(BenchError::Streams);
        }
        if !(MIN_SECONDS..=MAX_SECONDS).contains(&options.duration) {
            return Err(BenchError::Duration);
        }
        if !(options.fps == 0.0 || (MIN_FPS..=MAX_FPS).contains(&options.fps)) {
            return Err(BenchError::Fps);
        }
        let synthetic = options.source == "synthetic";
        let url = if synthetic {
            "synthetic://".to_owned()
        } else {
            crate::config::source_to_url(&options.source).map_err(BenchError::Source)?
        };
        // A network source delivers at its own pace, like `run` sees it: live queues, clocked
        // sinks. Only files can be read faster than real time.
        let realtime = options.realtime || (!synthetic && !url.starts_with("file://"));
        let paced = if synthetic {
            options.fps > 0.0
        } else {
            realtime
        };
        Ok(Self {
            synthetic,
            url,
            realtime,
            paced,
        })
    }

    fn stream_options(&self, config: &Config) -> StreamOptions {
        if self.paced {
            StreamOptions {
                queue_frames: config.ingest.queue_frames,
                blocking: false,
                sole: false,
            }
        } else {
            StreamOptions {
                queue_frames: UNPACED_QUEUE_FRAMES,
                blocking: true,
                sole: false,
            }
        }
    }

    /// The report's `pacing`.
    fn describe_pacing(&self, fps: f64) -> String {
        match (self.synthetic, self.paced) {
            (_, false) => "unpaced".into(),
            (true, true) => format!("synthetic {fps} fps per stream"),
            (false, true) => "realtime".into(),
        }
    }
}

/// The measured streams, the engine over them, and what feeds them.
struct Rig {
    streams: Vec<Arc<Stream>>,
    engine: EngineHandle,
    backend_name: String,
    rss_baseline: u64,
    /// Tells the synthetic feeders to end.
    stop: Arc<AtomicBool>,
    feeders: Vec<JoinHandle<()>>,
    /// One per stream for media sources; `None` once it ended or failed.
    pipelines: Vec<Option<RunningPipeline>>,
    /// Pipeline errors, per stream.
    errors: Vec<String>,
    loop_files: bool,
}

/// Figures at both ends of the measured window.
struct Window {
    first: Sample,
    last: Sample,
    perf: PerfSnapshot,
}

/// Figures read when the producers stop, before the streams close and forget them.
struct AtStop {
    dropped: u64,
    /// Frame size of the first stream, as decoded.
    width: u32,
    height: u32,
}

impl Rig {
    /// Creates the streams and starts the engine over them; nothing feeds them yet.
    fn start(
        options: &BenchOptions,
        config: &Config,
        source: &SourcePlan,
        backend: Box<dyn StatsBackend>,
    ) -> Result<Self, BenchError> {
        let services = Services::new(
            Outputs::metrics_only(Arc::new(Metrics::new())),
            source.stream_options(config),
        );
        let backend_name = backend.describe();
        let rss_baseline = perf::resident_bytes().map_or(0, |(rss, _)| rss);
        let mut streams = Vec::with_capacity(options.streams);
        for i in 0..options.streams {
            let config = config.stream_with_defaults(format!("bench{i}"), source.url.clone());
            streams.push(services.add_stream(config));
        }
        PERF.set_gpu_bytes(0);
        let engine = services
            .spawn_engine(backend, config.engine.clone())
            .map_err(BenchError::Thread)?;
        Ok(Self {
            streams,
            engine,
            backend_name,
            rss_baseline,
            stop: Arc::new(AtomicBool::new(false)),
            feeders: Vec::new(),
            pipelines: Vec::new(),
            errors: Vec::new(),
            loop_files: source.realtime,
        })
    }

    /// Starts a feeder thread (synthetic) or a pipeline (media) per stream.
    fn start_feeding(
        &mut self,
        options: &BenchOptions,
        source: &SourcePlan,
        pool: &Arc<Vec<VideoFrame>>,
    ) -> Result<(), BenchError> {
        for (i, stream) in self.streams.iter().enumerate() {
            stream.begin_session();
            if source.synthetic {
                let (stream, pool, stop) = (stream.clone(), pool.clone(), self.stop.clone());
                let offset = i * 7;
                let fps = options.fps;
                self.feeders.push(
                    std::thread::Builder::new()
                        .name(FEEDER_THREAD.into())
                        .spawn(move || feed(stream, pool, offset, fps, stop))
                        .map_err(BenchError::Thread)?,
                );
            } else {
                let pacing = if source.realtime {
                    Pacing::RealTime
                } else {
                    Pacing::Unpaced
                };
                if source.realtime && i > 0 {
                    std::thread::sleep(START_SPREAD / self.streams.len() as u32);
                }
                self.pipelines.push(Some(pipeline::start(stream, pacing)?));
            }
        }
        Ok(())
    }

    /// Warms up, then measures for `duration` seconds.
    fn measure(&mut self, duration: f64) -> Window {
        let measured = Duration::try_from_secs_f64(duration).unwrap_or(Duration::MAX);
        let warmup = MAX_WARMUP.min(measured / 4);
        let mut pipes = Pipes {
            pipelines: &mut self.pipelines,
            errors: &mut self.errors,
            loop_files: self.loop_files,
        };
        if !pipes.pipelines.is_empty() {
            // Media streams come up one after another (a hardware decoder opens its device
            // first, about 0.4 s each with NVDEC): measuring before all are up would count the
            // ones still starting as keeping up. A stream whose pipeline failed is not waited
            // for, and the wait is bounded (an audio-only source never has a frame).
            let limit = STARTUP_BASE + STARTUP_PER_STREAM * self.streams.len() as u32;
            let started = Instant::now();
            while started.elapsed() < limit {
                let waiting = self
                    .streams
                    .iter()
                    .zip(pipes.pipelines.iter())
                    .any(|(s, p)| p.is_some() && s.frames_analysed() == 0);
                if !waiting {
                    break;
                }
                watch(&self.streams, &mut pipes, STARTUP_POLL);
            }
        }
        watch(&self.streams, &mut pipes, warmup);
        PERF.reset();
        let first = sample(&self.streams);
        watch(&self.streams, &mut pipes, measured);
        let last = sample(&self.streams);
        Window {
            first,
            last,
            perf: PERF.snapshot(),
        }
    }

    /// Stops the producers, the streams and the engine.
    fn stop(&mut self) -> AtStop {
        // Stop producers first: closing a stream releases a producer blocked on its full queue.
        self.stop.store(true, Ordering::Relaxed);
        let dropped: u64 = self.streams.iter().map(|s| s.status().frames_dropped).sum();
        let (width, height) = self
            .streams
            .first()
            .map(|s| s.status())
            .map_or((0, 0), |st| (st.width, st.height));
        for s in &self.streams {
            s.close();
        }
        for (i, f) in self.feeders.drain(..).enumerate() {
            if f.join().is_err() {
                self.errors
                    .push(format!("stream {i}: the synthetic feeder thread panicked"));
            }
        }
        self.pipelines.clear();
        self.engine.stop();
        AtStop {
            dropped,
            width,
            height,
        }
    }
}

fn report(
    options: &BenchOptions,
    source: &SourcePlan,
    rig: Rig,
    window: Window,
    at_stop: AtStop,
) -> BenchReport {
    let Window {
        first,
        last,
        perf: snap,
    } = window;
    let seconds = last.at.duration_since(first.at).as_secs_f64().max(1e-9);
    let frames = last.frames.saturating_sub(first.frames);
    let cpu_by_thread = cpu_by_thread(&first, &last, seconds);
    // Dropped frames were decoded (and copied) too.
    let decoded = frames + last.dropped.saturating_sub(first.dropped);
    let decode = (!source.synthetic && decoded > 0)
        .then(|| decode_ms_per_frame(&cpu_by_thread, seconds, &snap, decoded));
    let (rss, rss_peak) = perf::resident_bytes().unwrap_or((0, 0));
    let n = options.streams as u64;
    let (width, height) = if source.synthetic {
        (options.width, options.height)
    } else {
        (at_stop.width, at_stop.height)
    };
    BenchReport {
        source: options.source.clone(),
        streams: options.streams,
        backend: rig.backend_name,
        width,
        height,
        pacing: source.describe_pacing(options.fps),
        duration: seconds,
        frames,
        frames_per_second: frames as f64 / seconds,
        frames_per_second_per_stream: frames as f64 / seconds / n as f64,
        stage_ms_per_frame: StageTimes {
            decode,
            copy: snap.ms_per_frame(Stage::Copy),
            upload: snap.ms_per_frame(Stage::Upload),
            gpu: snap.ms_per_frame(Stage::Gpu),
            readback: snap.ms_per_frame(Stage::Readback),
            decide: snap.ms_per_frame(Stage::Decide),
        },
        cpu_cores: (last.cpu - first.cpu) / seconds,
        cpu_by_thread,
        load_average: perf::load_average(),
        machine_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        rss_bytes: rss,
        rss_peak_bytes: rss_peak,
        rss_baseline_bytes: rig.rss_baseline,
        rss_per_stream_bytes: rss.saturating_sub(rig.rss_baseline) / n,
        gpu_memory_bytes: snap.gpu_bytes,
        gpu_memory_per_stream_bytes: snap.gpu_bytes / n,
        batches: snap.batches,
        batch_frames_mean: if snap.batches == 0 {
            0.0
        } else {
            snap.batch_frames as f64 / snap.batches as f64
        },
        batch_frames_max: snap.batch_max,
        latency_p50_ms: snap.latency_quantile_ms(0.5),
        latency_p99_ms: snap.latency_quantile_ms(0.99),
        dropped_frames: at_stop.dropped,
        analysis: rig
            .streams
            .first()
            .map_or_else(AnalysisTier::default, |s| s.config.analysis),
        skipped_frames: last.skipped.saturating_sub(first.skipped),
        late_frames: last.late.saturating_sub(first.late),
        cpu_cores_per_stream: (last.cpu - first.cpu) / seconds / n as f64,
        host_to_device_bytes_per_second: None,
        engine_upload_share: None,
        errors: rig.errors,
    }
}

/// Cores each thread group kept busy over the window (groups that kept none left out).
fn cpu_by_thread(first: &Sample, last: &Sample, seconds: f64) -> Vec<ThreadCpu> {
    last.threads
        .iter()
        .map(|(name, secs)| {
            let before = first
                .threads
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, s)| *s);
            ThreadCpu {
                threads: name.clone(),
                cores: (secs - before).max(0.0) / seconds,
            }
        })
        .filter(|t| t.cores > 0.0)
        .collect()
}

/// GStreamer's CPU time per decoded frame, less the copy out of the decoder's buffers (which
/// has a stage of its own).
fn decode_ms_per_frame(
    cpu_by_thread: &[ThreadCpu],
    seconds: f64,
    snap: &PerfSnapshot,
    decoded: u64,
) -> f64 {
    let process: String = std::fs::read_to_string("/proc/self/comm")
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .collect();
    let gst_seconds: f64 = cpu_by_thread
        .iter()
        .filter(|t| !is_own_thread(&t.threads, &process))
        .map(|t| t.cores * seconds)
        .sum();
    ((gst_seconds - snap.stage_seconds[Stage::Copy as usize]).max(0.0)) * 1e3 / decoded as f64
}

/// The media pipelines being watched, and what to do at the end of a file.
struct Pipes<'a> {
    pipelines: &'a mut [Option<RunningPipeline>],
    errors: &'a mut Vec<String>,
    /// Files played in real time start again at their end, as `run` loops them.
    loop_files: bool,
}

/// Waits `span`, watching the pipelines' buses: an error or the end of a stream stops that
/// pipeline (and is noted); when every pipeline has stopped the wait ends early.
fn watch(streams: &[Arc<Stream>], pipes: &mut Pipes<'_>, span: Duration) {
    let (pipelines, errors) = (&mut *pipes.pipelines, &mut *pipes.errors);
    let now = Instant::now();
    let until = now
        .checked_add(span)
        .unwrap_or_else(|| now + Duration::from_secs(MAX_SECONDS as u64));
    while Instant::now() < until {
        for (stream, slot) in streams.iter().zip(pipelines.iter_mut()) {
            let Some(running) = slot else { continue };
            let Some(bus) = running.bus() else { continue };
            while let Some(msg) = bus.pop_filtered(&[
                gst::MessageType::Error,
                gst::MessageType::Eos,
                gst::MessageType::Warning,
            ]) {
                match msg.view() {
                    gst::MessageView::Warning(_) => pipeline::note_warning(stream, &msg),
                    gst::MessageView::Error(_) => {
                        errors.push(format!(
                            "{}: {}",
                            stream.id,
                            pipeline::describe_message(&msg)
                        ));
                        *slot = None;
                        break;
                    }
                    _ if pipes.loop_files && pipeline::loops(&stream.url) => {
                        if let Err(e) = running.rewind(stream) {
                            errors.push(format!("{}: {e}", stream.id));
                            *slot = None;
                            break;
                        }
                    }
                    _ => {
                        *slot = None;
                        break;
                    }
                }
            }
        }
        if !pipelines.is_empty() && pipelines.iter().all(Option::is_none) {
            return;
        }
        std::thread::sleep(
            Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())),
        );
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

impl BenchReport {
    /// Adds the adapter's measured host-to-device rate and the engine's share of it.
    pub fn set_bandwidth(&mut self, bytes_per_second: f64) {
        let engine = self.frames_per_second * f64::from(self.width) * f64::from(self.height);
        self.host_to_device_bytes_per_second = Some(bytes_per_second);
        self.engine_upload_share = (bytes_per_second > 0.0).then(|| engine / bytes_per_second);
    }

    /// The human-readable table.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "streamwatch bench: {} streams, {} {}x{}, {}, on {}\n",
            self.streams, self.source, self.width, self.height, self.pacing, self.backend
        );
        for (k, v) in self
            .throughput_rows()
            .into_iter()
            .chain(self.resource_rows())
        {
            out.push_str(&format!("  {k:<16} {v}\n"));
        }
        for e in &self.errors {
            out.push_str(&format!("  error            {e}\n"));
        }
        out
    }

    /// The table's rows on frames: rate, stage times, batching, latency, drops.
    fn throughput_rows(&self) -> [(&'static str, String); 5] {
        let s = &self.stage_ms_per_frame;
        [
            (
                "frames analysed",
                format!(
                    "{} in {:.1} s: {:.1} frames/s ({:.1} per stream)",
                    self.frames,
                    self.duration,
                    self.frames_per_second,
                    self.frames_per_second_per_stream
                ),
            ),
            (
                "ms per frame",
                format!(
                    "decode {}  copy {:.3}  upload {:.3}  gpu {:.3}  readback {:.3}  decide {:.3}",
                    ms(s.decode),
                    s.copy,
                    s.upload,
                    s.gpu,
                    s.readback,
                    s.decide
                ),
            ),
            (
                "batches",
                format!(
                    "{} (mean {:.1} frames, max {})",
                    self.batches, self.batch_frames_mean, self.batch_frames_max
                ),
            ),
            (
                "detect latency",
                format!(
                    "p50 {} ms, p99 {} ms",
                    ms(self.latency_p50_ms),
                    ms(self.latency_p99_ms)
                ),
            ),
            (
                "dropped frames",
                format!(
                    "{} (late {}, skipped by the {} tier {})",
                    self.dropped_frames,
                    self.late_frames,
                    self.analysis.as_str(),
                    self.skipped_frames
                ),
            ),
        ]
    }

    /// The table's rows on the machine: CPU and memory.
    fn resource_rows(&self) -> [(&'static str, String); 4] {
        let threads: Vec<String> = self
            .cpu_by_thread
            .iter()
            .take(6)
            .map(|t| format!("{} {:.2}", t.threads, t.cores))
            .collect();
        [
            (
                "CPU",
                format!(
                    "{:.2} cores, {:.3} per stream ({}); machine load {} on {} cores",
                    self.cpu_cores,
                    self.cpu_cores_per_stream,
                    threads.join(", "),
                    self.load_average
                        .map_or_else(|| "-".into(), |l| format!("{l:.2}")),
                    self.machine_cores
                ),
            ),
            (
                "resident memory",
                format!(
                    "{:.1} MiB (peak {:.1}), {:.1} MiB per stream above {:.1} MiB at start",
                    mib(self.rss_bytes),
                    mib(self.rss_peak_bytes),
                    mib(self.rss_per_stream_bytes),
                    mib(self.rss_baseline_bytes)
                ),
            ),
            (
                "host to device",
                match (
                    self.host_to_device_bytes_per_second,
                    self.engine_upload_share,
                ) {
                    (Some(rate), Some(share)) => format!(
                        "{:.2} GB/s measured; the engine's luma uploads took {:.1}% of it",
                        rate / 1e9,
                        share * 100.0
                    ),
                    _ => "- (--bandwidth measures it)".into(),
                },
            ),
            (
                "GPU memory",
                format!(
                    "{:.1} MiB ({:.2} MiB per stream)",
                    mib(self.gpu_memory_bytes),
                    mib(self.gpu_memory_per_stream_bytes)
                ),
            ),
        ]
    }

    pub fn write_json(&self, path: &std::path::Path) -> Result<(), BenchError> {
        let text = serde_json::to_string_pretty(self).map_err(|e| BenchError::Json {
            path: path.to_owned(),
            source: std::io::Error::other(e),
        })?;
        std::fs::write(path, text + "\n").map_err(|source| BenchError::Json {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolutions() {
        assert_eq!(parse_resolution("1280x720").unwrap(), (1280, 720));
        assert_eq!(parse_resolution("1920X1080").unwrap(), (1920, 1080));
        for bad in ["1280", "x720", "0x720", "1280x99999", "ax b"] {
            assert!(parse_resolution(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn synthetic_frames_change_every_frame_and_are_not_dark() {
        let pool = synthetic_frames(66, 40, 5);
        assert_eq!(pool.len(), 5);
        for pair in pool.windows(2) {
            let changed = pair[0]
                .luma
                .iter()
                .zip(pair[1].luma.iter())
                .filter(|(a, b)| a.abs_diff(**b) > 16)
                .count();
            assert!(changed * 10 > pair[0].luma.len(), "{changed}");
        }
        let f = &pool[0];
        assert_eq!(f.stride, 68);
        assert!(f.row(0).iter().all(|&v| v >= 60));
        // Row padding stays zero, as the backends expect.
        assert!(f.luma.chunks_exact(f.stride).all(|r| r[66..] == [0, 0]));
    }
}
