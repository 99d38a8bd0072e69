//! Several batches in flight: the GPU backend (lavapipe in CI) against the CPU port when the
//! reference of a frame is the last frame of its slot in a batch not collected yet, across slot
//! releases, resolution changes and failures; and the engine deciding frames in order.
//!
//! Tolerance: none. Every statistic is an integer and both sides must agree bit for bit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use streamwatch::app::services::Services;
use streamwatch::config::{DEFAULT_DECODER, DetectorsConfig, EngineConfig, StreamConfig};
use streamwatch::frame::VideoFrame;
use streamwatch::sinks::Outputs;
use streamwatch::sinks::frame_stats::StatsCsv;
use streamwatch::sinks::metrics::Metrics;
use streamwatch::stats::cpu::{CpuBackend, frame_stats_cpu};
use streamwatch::stats::gpu::{GpuBackend, GpuOptions};
use streamwatch::stats::{BatchItem, EngineError, FrameStats, StatParams, StatsBackend};
use streamwatch::stream::{Stream, StreamOptions};

const PARAMS: StatParams = StatParams {
    dark_threshold: 16,
    noise_threshold: 4,
};

fn gpu(in_flight: usize, options: GpuOptions) -> GpuBackend {
    let mut backend = GpuBackend::with_options(options).unwrap_or_else(|e| {
        panic!("no wgpu adapter/device (CI has lavapipe: mesa-vulkan-drivers): {e}")
    });
    backend.set_batches_in_flight(in_flight);
    println!("adapter: {}", backend.describe());
    backend
}

/// A frame whose content depends on `k`, so that consecutive frames of a slot differ and the
/// difference statistics tell which reference was used.
fn moving(width: u32, height: u32, k: usize) -> VideoFrame {
    let mut plane = vec![0u8; (width * height) as usize];
    for y in 0..height as usize {
        for x in 0..width as usize {
            plane[y * width as usize + x] = ((x * (k % 5 + 1) + y * 3 + k * k * 7) % 251) as u8;
        }
    }
    VideoFrame::from_plane(
        width,
        height,
        &plane,
        width as usize,
        Duration::from_millis(40 * k as u64),
        Instant::now(),
    )
    .expect("whole plane")
}

fn item(slot: u32, frame: &VideoFrame) -> BatchItem<'_> {
    BatchItem {
        slot,
        frame,
        params: PARAMS,
    }
}

/// One step of a scenario run on both backends.
enum Step<'a> {
    Submit(Vec<BatchItem<'a>>),
    Collect,
    Release(u32),
}

/// Runs `steps` on `backend`, returning each collected batch's statistics (or error text).
fn run(backend: &mut dyn StatsBackend, steps: &[Step<'_>]) -> Vec<Result<Vec<FrameStats>, String>> {
    let mut results = Vec::new();
    for step in steps {
        match step {
            Step::Submit(batch) => {
                if let Err(e) = backend.submit(batch) {
                    results.push(Err(format!("submit: {e}")));
                }
            }
            Step::Collect => {
                let mut out = Vec::new();
                match backend.collect(&mut out) {
                    Some(Ok(())) => results.push(Ok(out)),
                    Some(Err(e)) => results.push(Err(format!("collect: {e}"))),
                    None => results.push(Err("nothing in flight".into())),
                }
            }
            Step::Release(slot) => backend.release(*slot),
        }
    }
    results
}

/// Submits `batches` keeping up to `depth` in flight, collecting the oldest when full.
fn pipelined<'a>(batches: Vec<Vec<BatchItem<'a>>>, depth: usize) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    let mut in_flight = 0;
    for batch in batches {
        if in_flight == depth {
            steps.push(Step::Collect);
            in_flight -= 1;
        }
        steps.push(Step::Submit(batch));
        in_flight += 1;
    }
    steps.extend((0..in_flight).map(|_| Step::Collect));
    steps
}

fn assert_same(gpu: &[Result<Vec<FrameStats>, String>], cpu: &[Result<Vec<FrameStats>, String>]) {
    assert_eq!(gpu.len(), cpu.len(), "collected batches");
    for (b, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let (g, c) = (
            g.as_ref().unwrap_or_else(|e| panic!("GPU batch {b}: {e}")),
            c.as_ref().unwrap_or_else(|e| panic!("CPU batch {b}: {e}")),
        );
        assert_eq!(g.len(), c.len(), "batch {b}: statistics");
        for (i, (g, c)) in g.iter().zip(c).enumerate() {
            assert_eq!(g, c, "batch {b}, item {i}: GPU != CPU");
        }
    }
}

/// Three slots, one or two frames of each per batch, so every frame's reference is in the
/// batch before it, which is still in flight when this one is submitted.
#[test]
fn frames_of_a_slot_across_batches_in_flight_match_cpu() {
    let sizes = [(642, 360), (330, 186), (1280, 720)];
    let frames: Vec<Vec<VideoFrame>> = sizes
        .iter()
        .enumerate()
        .map(|(s, &(w, h))| (0..8).map(|k| moving(w, h, k + 10 * s)).collect())
        .collect();
    for (depth, per_batch, sets) in [(2, 1, 2), (3, 1, 3), (3, 2, 3), (4, 1, 2)] {
        let mut batches = Vec::new();
        for start in (0..8).step_by(per_batch) {
            let mut batch = Vec::new();
            for k in start..start + per_batch {
                for (slot, f) in frames.iter().enumerate() {
                    batch.push(item(slot as u32, &f[k]));
                }
            }
            batches.push(batch);
        }
        let steps = pipelined(batches, depth);
        // `sets` below `depth`: the backend has to read the oldest back early to free buffers.
        let mut g = gpu(sets, GpuOptions::default());
        let gpu_results = run(&mut g, &steps);
        let cpu_results = run(&mut CpuBackend::new(), &steps);
        assert_same(&gpu_results, &cpu_results);
        // Not just equal to each other: the reference was the slot's previous frame.
        let last = gpu_results.last().unwrap().as_ref().unwrap();
        let n = last.len();
        let expected = frame_stats_cpu(&frames[2][7], Some(&frames[2][6]), PARAMS);
        assert_eq!(last[n - 1], expected, "depth {depth}");
        assert!(
            gpu_results
                .iter()
                .skip(1)
                .flatten()
                .flatten()
                .all(|s| s.has_prev && s.changed_pixels > 0),
            "depth {depth}: every frame after the first batch has a moving reference"
        );
        println!(
            "depth {depth}, {per_batch} frames per slot per batch, {sets} binding sets: \
             {} submissions",
            g.submissions()
        );
    }
}

/// Batches split into several submissions (a small upload cap) while others are in flight.
#[test]
fn split_batches_in_flight_match_cpu() {
    let frames: Vec<Vec<VideoFrame>> = (0..3)
        .map(|s| (0..6).map(|k| moving(1280, 720, k + 7 * s)).collect())
        .collect();
    let batches: Vec<Vec<BatchItem<'_>>> = (0..6)
        .step_by(2)
        .map(|k| {
            frames
                .iter()
                .enumerate()
                .flat_map(|(slot, f)| [item(slot as u32, &f[k]), item(slot as u32, &f[k + 1])])
                .collect()
        })
        .collect();
    let steps = pipelined(batches, 3);
    // 2 MiB holds two 720p frames: each batch of six becomes at least three submissions.
    let mut g = gpu(
        2,
        GpuOptions {
            max_submission_bytes: Some(2 << 20),
            ..GpuOptions::default()
        },
    );
    let gpu_results = run(&mut g, &steps);
    assert_same(&gpu_results, &run(&mut CpuBackend::new(), &steps));
    assert!(g.submissions() >= 9, "{} submissions", g.submissions());
}

/// Releasing a slot between submissions: the batch in flight keeps its reference, the next
/// batch has none; other slots are untouched.
#[test]
fn slot_release_between_batches_in_flight() {
    let a: Vec<VideoFrame> = (0..4).map(|k| moving(642, 360, k)).collect();
    let b: Vec<VideoFrame> = (0..4).map(|k| moving(330, 186, k + 20)).collect();
    let steps = vec![
        Step::Submit(vec![item(0, &a[0]), item(1, &b[0])]),
        Step::Submit(vec![item(0, &a[1]), item(1, &b[1])]),
        Step::Release(0),
        Step::Submit(vec![item(0, &a[2]), item(1, &b[2])]),
        Step::Collect,
        Step::Release(1),
        Step::Submit(vec![item(0, &a[3]), item(1, &b[3])]),
        Step::Collect,
        Step::Collect,
        Step::Collect,
    ];
    let gpu_results = run(&mut gpu(2, GpuOptions::default()), &steps);
    let cpu_results = run(&mut CpuBackend::new(), &steps);
    assert_same(&gpu_results, &cpu_results);
    let has_prev: Vec<Vec<bool>> = gpu_results
        .iter()
        .map(|r| r.as_ref().unwrap().iter().map(|s| s.has_prev).collect())
        .collect();
    assert_eq!(
        has_prev,
        [[false, false], [true, true], [false, true], [true, false]]
    );
    let batch1 = gpu_results[1].as_ref().unwrap();
    assert_eq!(batch1[0], frame_stats_cpu(&a[1], Some(&a[0]), PARAMS));
    let batch3 = gpu_results[3].as_ref().unwrap();
    assert_eq!(batch3[0], frame_stats_cpu(&a[3], Some(&a[2]), PARAMS));
}

/// A slot changes resolution while its earlier frames are in flight, then changes back (its
/// history region has to grow, with copies recorded behind the batches in flight).
#[test]
fn resolution_change_with_batches_in_flight() {
    let sizes = [
        (330, 186),
        (330, 186),
        (642, 360),
        (642, 360),
        (1280, 720),
        (330, 186),
        (330, 186),
    ];
    let slot0: Vec<VideoFrame> = sizes
        .iter()
        .enumerate()
        .map(|(k, &(w, h))| moving(w, h, k))
        .collect();
    let slot1: Vec<VideoFrame> = (0..sizes.len()).map(|k| moving(426, 240, k + 50)).collect();
    let batches: Vec<Vec<BatchItem<'_>>> = (0..sizes.len())
        .map(|k| vec![item(1, &slot1[k]), item(0, &slot0[k])])
        .collect();
    let steps = pipelined(batches, 3);
    let gpu_results = run(&mut gpu(3, GpuOptions::default()), &steps);
    assert_same(&gpu_results, &run(&mut CpuBackend::new(), &steps));
    let slot0_prev: Vec<bool> = gpu_results
        .iter()
        .map(|r| r.as_ref().unwrap()[1].has_prev)
        .collect();
    assert_eq!(slot0_prev, [false, true, false, true, false, false, true]);
}

/// A failure fails every batch in flight (later ones may reference its frames), forgets every
/// reference, and the backend then works normally again.
#[test]
fn recovery_after_failures_with_batches_in_flight() {
    let a: Vec<VideoFrame> = (0..8).map(|k| moving(642, 360, k)).collect();
    let mut malformed = moving(64, 8, 0);
    malformed.stride = 6;
    let mut g = gpu(3, GpuOptions::default());
    let mut out = Vec::new();

    // A readback fails: the two batches submitted after it fail with it.
    for f in &a[..3] {
        g.submit(&[item(0, f)]).expect("submit");
    }
    g.inject_readback_failure();
    for k in 0..3 {
        let r = g.collect(&mut out).expect("a batch in flight");
        assert!(matches!(r, Err(EngineError::Batch(_))), "batch {k}: {r:?}");
        assert!(out.is_empty());
    }
    assert!(g.collect(&mut out).is_none());
    assert_eq!(g.in_flight(), 0);
    g.submit(&[item(0, &a[3])]).unwrap();
    g.submit(&[item(0, &a[4])]).unwrap();
    g.collect(&mut out).unwrap().unwrap();
    assert_eq!(
        out[0],
        frame_stats_cpu(&a[3], None, PARAMS),
        "reference forgotten"
    );
    g.collect(&mut out).unwrap().unwrap();
    assert_eq!(out[0], frame_stats_cpu(&a[4], Some(&a[3]), PARAMS));

    // A submission fails (a malformed frame): the batches in flight before it fail too.
    g.submit(&[item(0, &a[5])]).unwrap();
    g.submit(&[item(1, &a[6])]).unwrap();
    assert!(g.submit(&[item(0, &malformed)]).is_err());
    assert_eq!(g.in_flight(), 2);
    for _ in 0..2 {
        assert!(g.collect(&mut out).unwrap().is_err());
    }
    g.submit(&[item(0, &a[7]), item(1, &a[7])]).unwrap();
    g.collect(&mut out).unwrap().unwrap();
    assert_eq!(out[0], frame_stats_cpu(&a[7], None, PARAMS));
    assert_eq!(out[1], out[0]);
    // And stays usable with batches in flight.
    let steps = pipelined((0..6).map(|k| vec![item(2, &a[k])]).collect(), 3);
    assert_same(&run(&mut g, &steps), &run(&mut CpuBackend::new(), &steps));
}

/// Wraps the CPU backend, holding results back like a device would (or, with `overlaps`
/// false, saying it works inside `submit` as the plain CPU backend does) and recording the
/// most batches it had in flight.
struct Delayed {
    inner: CpuBackend,
    most_in_flight: Arc<AtomicUsize>,
    overlaps: bool,
}

impl StatsBackend for Delayed {
    fn describe(&self) -> String {
        "delayed CPU".into()
    }
    fn overlaps_batches(&self) -> bool {
        self.overlaps
    }
    fn submit(&mut self, batch: &[BatchItem<'_>]) -> Result<(), EngineError> {
        self.inner.submit(batch)?;
        self.most_in_flight
            .fetch_max(self.inner.in_flight(), Ordering::Relaxed);
        Ok(())
    }
    fn collect(&mut self, out: &mut Vec<FrameStats>) -> Option<Result<(), EngineError>> {
        std::thread::sleep(Duration::from_millis(2));
        self.inner.collect(out)
    }
    fn in_flight(&self) -> usize {
        self.inner.in_flight()
    }
    fn release(&mut self, slot: u32) {
        self.inner.release(slot);
    }
}

/// The engine with three batches in flight decides every frame, each stream's in PTS order.
#[test]
fn engine_decides_frames_in_order_with_batches_in_flight() {
    let most = run_engine_with_three_in_flight(true);
    assert!(most >= 2, "the engine never had two batches in flight");
    assert!(most <= 3, "more batches in flight than configured: {most}");
}

/// A backend that computes inside `submit` (the CPU backend) gets one batch at a time whatever
/// `batches_in_flight` says: a second would only hold the first one's results back.
#[test]
fn engine_keeps_one_batch_in_flight_on_a_backend_that_cannot_overlap() {
    let most = run_engine_with_three_in_flight(false);
    assert_eq!(
        most, 1,
        "batches in flight on a backend that cannot overlap them"
    );
}

/// Runs three streams of 60 frames through the engine configured for three batches in flight;
/// asserts every frame is decided in PTS order and returns the most batches it had in flight.
fn run_engine_with_three_in_flight(overlaps: bool) -> usize {
    let dir = std::env::temp_dir().join(format!(
        "streamwatch-inflight-{}-{overlaps}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let csv_path = dir.join("stats.csv");
    let csv = Arc::new(StatsCsv::create(&csv_path).unwrap());
    // Blocking queues: the feeders wait for the engine, so every frame is analysed.
    let services = Services::new(
        Outputs {
            frame_stats: Some(csv.clone()),
            ..Outputs::metrics_only(Arc::new(Metrics::new()))
        },
        StreamOptions {
            queue_frames: 6,
            blocking: true,
            sole: false,
        },
    );
    let streams: Vec<Arc<Stream>> = (0..3)
        .map(|i| {
            services.add_stream(StreamConfig {
                id: format!("s{i}"),
                url: "synthetic://".into(),
                detectors: DetectorsConfig::default(),
                decoder: DEFAULT_DECODER,
                ..Default::default()
            })
        })
        .collect();
    let most_in_flight = Arc::new(AtomicUsize::new(0));
    let backend = Delayed {
        inner: CpuBackend::with_threads(1),
        most_in_flight: most_in_flight.clone(),
        overlaps,
    };
    let config = EngineConfig {
        batches_in_flight: 3,
        max_frames_per_stream: 2,
        ..EngineConfig::default()
    };
    let mut engine = services.spawn_engine(Box::new(backend), config).unwrap();
    const FRAMES: usize = 60;
    let feeders: Vec<_> = streams
        .iter()
        .map(|s| {
            let s = s.clone();
            std::thread::spawn(move || {
                let session = s.begin_session();
                for k in 0..FRAMES {
                    s.push_video(session, moving(64, 36, k));
                }
            })
        })
        .collect();
    for f in feeders {
        f.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while streams.iter().any(|s| s.status().frames < FRAMES as u64) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    engine.stop();
    csv.flush().unwrap();
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut seen: Vec<Vec<f64>> = vec![Vec::new(); streams.len()];
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let (id, pts) = (fields.next().unwrap(), fields.next().unwrap());
        let i: usize = id.trim_start_matches('s').parse().unwrap();
        seen[i].push(pts.parse().unwrap());
    }
    for (i, pts) in seen.iter().enumerate() {
        let expected: Vec<f64> = (0..FRAMES).map(|k| 0.04 * k as f64).collect();
        assert_eq!(pts.len(), FRAMES, "stream {i}: frames decided");
        for (k, (p, e)) in pts.iter().zip(&expected).enumerate() {
            assert!(
                (p - e).abs() < 1e-3,
                "stream {i}, frame {k}: pts {p}, expected {e}"
            );
        }
    }
    let most = most_in_flight.load(Ordering::Relaxed);
    println!("most batches in flight: {most}");
    most
}
