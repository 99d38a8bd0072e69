//! The GPU backend against its CPU port on real decoded H.264 frames.
//!
//! Tolerance: none. Every statistic is an integer and both sides must agree bit for bit.
//! There is no skip: CI has lavapipe, so a machine where no wgpu adapter can be created fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use streamwatch::frame::VideoFrame;
use streamwatch::stats::cpu::{CpuBackend, frame_stats_cpu};
use streamwatch::stats::gpu::{
    GpuBackend, GpuOptions, ShaderFile, ShaderSources, StatsVariant, SubgroupMode, create_backend,
    pick_adapter,
};
use streamwatch::stats::{
    BackendChoice, BatchItem, EngineError, FrameStats, StatParams, StatsBackend,
};

fn gpu() -> GpuBackend {
    let backend = GpuBackend::new().unwrap_or_else(|e| {
        panic!("no wgpu adapter/device (CI has lavapipe: mesa-vulkan-drivers): {e}")
    });
    println!("adapter: {}", backend.describe());
    backend
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("streamwatch-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-nostdin", "-y"])
        .args(args)
        .output()
        .expect("running ffmpeg (install it: apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Encodes `filter` (a lavfi source graph) to H.264 and decodes it back to luma frames.
fn decoded_clip(
    dir: &Path,
    name: &str,
    width: u32,
    height: u32,
    inputs: &[&str],
) -> Vec<VideoFrame> {
    let clip = dir.join(format!("{name}.mp4"));
    let clip = clip.to_str().expect("utf-8 temp path");
    let mut args: Vec<&str> = Vec::new();
    for input in inputs {
        args.extend(["-f", "lavfi", "-i", input]);
    }
    let concat = format!(
        "{}concat=n={}:v=1:a=0",
        (0..inputs.len())
            .map(|i| format!("[{i}:v]"))
            .collect::<String>(),
        inputs.len()
    );
    args.extend(["-filter_complex", &concat]);
    args.extend([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        clip,
    ]);
    ffmpeg(&args);
    let raw = ffmpeg(&["-i", clip, "-f", "rawvideo", "-pix_fmt", "gray", "-"]);
    let size = (width * height) as usize;
    assert!(
        raw.len() >= size && raw.len().is_multiple_of(size),
        "{name}: {} bytes of luma",
        raw.len()
    );
    let t0 = Instant::now();
    raw.chunks_exact(size)
        .enumerate()
        .map(|(i, plane)| {
            VideoFrame::from_plane(
                width,
                height,
                plane,
                width as usize,
                Duration::from_millis(40 * i as u64),
                t0,
            )
            .expect("whole plane")
        })
        .collect()
}

fn testsrc(width: u32, height: u32, seconds: f32) -> String {
    format!("testsrc2=size={width}x{height}:rate=25:duration={seconds}")
}

struct Stream {
    slot: u32,
    frames: Vec<VideoFrame>,
    params: StatParams,
}

/// Feeds all streams through both backends, `per_batch` frames of every stream per batch
/// (interleaved), and asserts identical statistics. Returns the GPU results.
fn compare(gpu: &mut GpuBackend, streams: &[Stream], per_batch: usize) -> Vec<FrameStats> {
    let mut cpu = CpuBackend::new();
    let (mut gpu_out, mut cpu_out, mut all) = (Vec::new(), Vec::new(), Vec::new());
    let longest = streams.iter().map(|s| s.frames.len()).max().unwrap_or(0);
    let mut start = 0;
    let (mut gpu_time, mut cpu_time, mut pixels) = (Duration::ZERO, Duration::ZERO, 0u64);
    while start < longest {
        let mut batch = Vec::new();
        for k in start..start + per_batch {
            for s in streams {
                if let Some(frame) = s.frames.get(k) {
                    batch.push(BatchItem {
                        slot: s.slot,
                        frame,
                        params: s.params,
                    });
                    pixels += frame.pixel_count();
                }
            }
        }
        let t = Instant::now();
        gpu.analyze(&batch, &mut gpu_out).expect("GPU batch");
        gpu_time += t.elapsed();
        let t = Instant::now();
        cpu.analyze(&batch, &mut cpu_out).expect("CPU batch");
        cpu_time += t.elapsed();
        assert_eq!(gpu_out.len(), batch.len());
        for (i, (g, c)) in gpu_out.iter().zip(&cpu_out).enumerate() {
            assert_eq!(
                g, c,
                "batch from frame {start}, item {i} (slot {}, {}x{}): GPU != CPU",
                batch[i].slot, batch[i].frame.width, batch[i].frame.height
            );
        }
        all.extend_from_slice(&gpu_out);
        start += per_batch;
    }
    let per_mpx = |d: Duration| d.as_secs_f64() * 1e3 / (pixels as f64 / 1e6);
    println!(
        "{} frames: GPU {:.2} ms/Mpx, CPU {:.2} ms/Mpx ({} submissions so far)",
        all.len(),
        per_mpx(gpu_time),
        per_mpx(cpu_time),
        gpu.submissions()
    );
    all
}

#[test]
fn decoded_clips_match_cpu_exactly() {
    let dir = TempDir::new("gpu-vs-cpu");
    let sizes = [
        (642, 360, 10),
        (330, 186, 10),
        (1280, 720, 6),
        (1920, 1080, 3),
    ];
    let mut streams = Vec::new();
    for (slot, &(w, h, n)) in sizes.iter().enumerate() {
        let mut frames = decoded_clip(
            &dir.0,
            &format!("clip{w}x{h}"),
            w,
            h,
            &[&testsrc(w, h, 1.0)],
        );
        frames.truncate(n);
        streams.push(Stream {
            slot: slot as u32,
            frames,
            params: StatParams {
                dark_threshold: 16 + 8 * slot as u8,
                noise_threshold: 3 * slot as u8,
            },
        });
    }
    // A stream that cuts to black and back: dark and frozen frames in the middle.
    let black = decoded_clip(
        &dir.0,
        "black",
        642,
        360,
        &[
            &testsrc(642, 360, 0.24),
            "color=c=black:size=642x360:rate=25:duration=0.24",
            &testsrc(642, 360, 0.24),
        ],
    );
    streams.push(Stream {
        slot: 7,
        frames: black,
        params: StatParams {
            dark_threshold: 20,
            noise_threshold: 2,
        },
    });
    // The same clip as another stream, one frame behind, so two slots share sizes.
    let shifted = streams[0].frames[1..].to_vec();
    streams.push(Stream {
        slot: 100,
        frames: shifted,
        params: StatParams {
            dark_threshold: 16,
            noise_threshold: 0,
        },
    });

    let mut gpu = gpu();
    for per_batch in [1, 2, 3] {
        for s in &streams {
            gpu.release(s.slot);
        }
        let results = compare(&mut gpu, &streams, per_batch);
        let black_frames = results
            .iter()
            .filter(|s| s.pixels == 642 * 360 && s.dark_pixels == s.pixels)
            .count();
        assert!(
            black_frames >= 4,
            "the black segment should give fully dark frames"
        );
        assert!(
            results.iter().any(|s| s.has_prev && s.changed_pixels == 0),
            "frozen black frames"
        );
        assert!(
            results
                .iter()
                .any(|s| s.has_prev && s.changed_pixels > 1000),
            "moving test pattern"
        );
    }
}

/// Dark enough for coded black bars (16, with coding noise).
const BARS_PARAMS: StatParams = StatParams {
    dark_threshold: 32,
    noise_threshold: 4,
};

/// The pictures the newer detectors look for (bars, blur, a flat screen, letterbox bars, flat
/// 8x8 blocks), at a width that is not a multiple of 4, give the same statistics on both
/// backends, and the statistics show what they are for.
#[test]
fn defect_pictures_match_cpu_exactly() {
    let dir = TempDir::new("gpu-vs-cpu-defects");
    let (w, h) = (426, 240);
    let clip = |name: &str, input: String| decoded_clip(&dir.0, name, w, h, &[&input]);
    let source = |extra: &str| format!("testsrc2=size={w}x{h}:rate=25:duration=0.2{extra}");
    let bars = clip(
        "bars",
        format!("smptehdbars=size={w}x{h}:rate=25:duration=0.2"),
    );
    let blurred = clip("blur", source(",boxblur=10"));
    let blue = clip(
        "blue",
        format!("color=c=blue:size={w}x{h}:rate=25:duration=0.2"),
    );
    let letterboxed = clip(
        "letterbox",
        source(
            ",drawbox=x=0:y=0:w=iw:h=ih*0.125:color=black:t=fill\
             ,drawbox=x=0:y=ih*0.875:w=iw:h=ih*0.125:color=black:t=fill",
        ),
    );
    let blocks: Vec<VideoFrame> = (0..3)
        .map(|k| {
            synthetic(w, h, |x, y| {
                (60 + (x / 8 * 37 + y / 8 * 11 + k * 5) % 50 + (x + y) % 2) as u8
            })
        })
        .collect();
    let streams: Vec<Stream> = [bars, blurred, blue, letterboxed, blocks]
        .into_iter()
        .enumerate()
        .map(|(slot, frames)| Stream {
            slot: slot as u32,
            frames,
            params: BARS_PARAMS,
        })
        .collect();
    let mut gpu = gpu();
    compare(&mut gpu, &streams, 2);
    let mut cpu = CpuBackend::new();
    let mut first = |frames: &[VideoFrame]| {
        let mut out = Vec::new();
        let one = BatchItem {
            slot: 99,
            frame: &frames[0],
            params: BARS_PARAMS,
        };
        cpu.analyze(&[one], &mut out).unwrap();
        cpu.release(99);
        out[0]
    };
    let bars = first(&streams[0].frames);
    assert!(
        bars.quiet_row_ratio() > 0.95 && bars.edges_h > u64::from(h) * 4,
        "{bars:?}"
    );
    let sharp = first(&streams[3].frames);
    let soft = first(&streams[1].frames);
    assert!(
        soft.detail() < 0.5 * sharp.detail(),
        "{soft:?} vs {sharp:?}"
    );
    assert!(first(&streams[2].frames).luma_stddev() < 2.0);
    assert!(sharp.bars.top >= 28 && sharp.bars.bottom >= 28, "{sharp:?}");
    let blocky = first(&streams[4].frames);
    assert!(blocky.blockiness().is_some_and(|b| b > 0.9), "{blocky:?}");
}

fn synthetic(width: u32, height: u32, f: impl Fn(usize, usize) -> u8) -> VideoFrame {
    let mut plane = vec![0u8; (width * height) as usize];
    for y in 0..height as usize {
        for x in 0..width as usize {
            plane[y * width as usize + x] = f(x, y);
        }
    }
    VideoFrame::from_plane(
        width,
        height,
        &plane,
        width as usize,
        Duration::ZERO,
        Instant::now(),
    )
    .unwrap()
}

const PARAMS: StatParams = StatParams {
    dark_threshold: 16,
    noise_threshold: 4,
};

fn interlaced(frame: VideoFrame) -> VideoFrame {
    VideoFrame {
        interlaced: true,
        ..frame
    }
}

/// Interlaced frames (fields of a moving picture woven together: every moving edge combs) give
/// the same statistics on both backends, measured within each field: fewer vertical edges than
/// the same frames measured as progressive, where every combed row is one.
#[test]
fn interlaced_frames_match_cpu_exactly() {
    let dir = TempDir::new("gpu-vs-cpu-interlaced");
    // A picture panning 13 pixels a field, 50 fields a second woven into 25 frames, top field
    // first.
    let woven = decoded_clip(
        &dir.0,
        "woven",
        642,
        362,
        &[
            "testsrc2=size=642x362:rate=50:duration=0.5,scroll=horizontal=0.02,tinterlace=interleave_top",
        ],
    );
    let streams = [
        Stream {
            slot: 0,
            frames: woven.iter().cloned().map(interlaced).collect(),
            params: PARAMS,
        },
        Stream {
            slot: 1,
            frames: woven.clone(),
            params: PARAMS,
        },
    ];
    let mut gpu = gpu();
    let results = compare(&mut gpu, &streams, 3);
    let (by_field, by_frame): (Vec<_>, Vec<_>) = results.iter().partition(|s| s.field_rows == 2);
    assert_eq!(by_field.len(), woven.len());
    let edges_down = |s: &[&FrameStats]| s.iter().map(|s| s.edges_v).sum::<u64>();
    assert!(
        edges_down(&by_field) * 10 < edges_down(&by_frame) * 7,
        "combing should not count as vertical edges: {} per field vs {} per frame",
        edges_down(&by_field),
        edges_down(&by_frame)
    );
}

fn item(slot: u32, frame: &VideoFrame) -> BatchItem<'_> {
    BatchItem {
        slot,
        frame,
        params: PARAMS,
    }
}

#[test]
fn resolution_change_and_release_forget_the_reference() {
    let mut gpu = gpu();
    let a = synthetic(642, 360, |x, y| (x + y) as u8);
    let a2 = synthetic(642, 360, |x, y| (x * 3 + y) as u8);
    let b = synthetic(330, 186, |x, y| (x ^ y) as u8);
    let b2 = synthetic(330, 186, |x, _| x as u8);
    let mut out = Vec::new();

    gpu.analyze(&[item(0, &a), item(1, &b)], &mut out).unwrap();
    assert!(!out[0].has_prev && !out[1].has_prev);

    // Slot 0 changes size within a batch, then keeps the new size.
    gpu.analyze(&[item(0, &b), item(0, &b2), item(1, &b2)], &mut out)
        .unwrap();
    let has_prev: Vec<bool> = out.iter().map(|s| s.has_prev).collect();
    assert_eq!(has_prev, [false, true, true]);
    assert_eq!(out[1], frame_stats_cpu(&b2, Some(&b), PARAMS));
    assert_eq!(out[2], frame_stats_cpu(&b2, Some(&b), PARAMS));

    // Across batches: slot 0 grows back to 642x360 (its history region must grow too).
    gpu.analyze(&[item(0, &a)], &mut out).unwrap();
    assert!(!out[0].has_prev);
    gpu.analyze(&[item(0, &a2)], &mut out).unwrap();
    assert_eq!(out[0], frame_stats_cpu(&a2, Some(&a), PARAMS));

    gpu.release(0);
    gpu.analyze(&[item(0, &a), item(1, &b)], &mut out).unwrap();
    assert!(!out[0].has_prev, "released slot has no reference");
    assert_eq!(
        out[1],
        frame_stats_cpu(&b, Some(&b2), PARAMS),
        "other slots keep theirs"
    );
}

#[test]
fn sums_past_u32_and_split_submissions() {
    // 4608x4096 of white: luma and difference sums reach 4.8e9, past u32.
    let black = synthetic(4608, 4096, |_, _| 0);
    let white = synthetic(4608, 4096, |_, _| 255);
    let mut gpu = gpu();
    let mut out = Vec::new();
    gpu.analyze(&[item(0, &black), item(0, &white)], &mut out)
        .unwrap();
    let pixels = 4608 * 4096;
    assert_eq!(out[0].dark_pixels, pixels);
    assert_eq!(out[1].luma_sum, 255 * pixels);
    assert_eq!(out[1].diff_sum, 255 * pixels);
    assert_eq!(out[1].changed_pixels, pixels);
    assert_eq!(out[1], frame_stats_cpu(&white, Some(&black), PARAMS));

    // A 2 MiB cap holds two 1280x720 frames per submission: 8 frames need at least 4.
    let mut small = GpuBackend::with_options(GpuOptions {
        max_submission_bytes: Some(2 << 20),
        ..GpuOptions::default()
    })
    .expect("GPU backend");
    let frames: Vec<VideoFrame> = (0..8)
        .map(|k| synthetic(1280, 720, |x, y| (x * k + y * 7 + k * k) as u8))
        .collect();
    let streams = [
        Stream {
            slot: 0,
            frames: frames[..4].to_vec(),
            params: PARAMS,
        },
        Stream {
            slot: 1,
            frames: frames[4..].to_vec(),
            params: PARAMS,
        },
    ];
    let before = small.submissions();
    compare(&mut small, &streams, 4);
    assert!(
        small.submissions() - before >= 4,
        "{} submissions",
        small.submissions() - before
    );
}

#[test]
fn padding_bytes_do_not_count() {
    let clean = synthetic(330, 5, |x, y| (x * y) as u8);
    let mut dirty = clean.clone();
    for row in dirty.luma.chunks_exact_mut(dirty.stride) {
        row[330..].fill(0xAB);
    }
    let mut gpu = gpu();
    let mut out = Vec::new();
    gpu.analyze(
        &[item(0, &clean), item(0, &dirty), item(1, &dirty)],
        &mut out,
    )
    .unwrap();
    assert_eq!(out[0], frame_stats_cpu(&clean, None, PARAMS));
    assert_eq!(out[1], frame_stats_cpu(&clean, Some(&clean), PARAMS));
    assert_eq!(out[2], out[0]);
}

#[test]
fn broken_shaders_are_errors_not_panics() {
    let sources = ShaderSources {
        frame_stats: ShaderFile {
            file: "frame_stats.wgsl",
            source: "fn main( {".into(),
        },
        ..ShaderSources::default()
    };
    match GpuBackend::with_shader_sources(sources) {
        Err(EngineError::Shader { file, message }) => {
            assert_eq!(file, "frame_stats.wgsl");
            println!("syntax error reported as: {message}");
        }
        Err(e) => panic!("expected a shader error, got {e}"),
        Ok(_) => panic!("a broken shader compiled"),
    }

    // Valid WGSL that does not match the bind group layout fails at pipeline creation.
    let mut sources = ShaderSources::default();
    let wrong = sources.frame_reduce.source.replace(
        "var<storage, read> partials",
        "var<storage, read_write> partials",
    );
    sources.frame_reduce.source = wrong.into();
    match GpuBackend::with_shader_sources(sources) {
        Err(EngineError::Shader { file, .. }) => assert_eq!(file, "frame_reduce.wgsl"),
        Err(e) => panic!("expected a shader error, got {e}"),
        Ok(_) => panic!("a shader with the wrong bindings compiled"),
    }
}

#[test]
fn create_backend_honours_the_choice() {
    assert!(
        create_backend(BackendChoice::Cpu)
            .unwrap()
            .describe()
            .starts_with("CPU")
    );
    let gpu = create_backend(BackendChoice::Gpu).expect("GPU backend (lavapipe in CI)");
    assert!(gpu.describe().starts_with("GPU"), "{}", gpu.describe());
    // Auto takes a hardware adapter, but not a software rasteriser like CI's lavapipe, where
    // the CPU backend is faster.
    let software = pick_adapter().unwrap().get_info().device_type == wgpu::DeviceType::Cpu;
    let auto = create_backend(BackendChoice::Auto).unwrap().describe();
    let expected = if software { "CPU" } else { "GPU" };
    assert!(auto.starts_with(expected), "{auto}");
}

#[test]
fn malformed_frames_are_errors() {
    let mut f = synthetic(8, 2, |_, _| 1);
    f.stride = 6;
    let mut gpu = gpu();
    let mut out = Vec::new();
    assert!(matches!(
        gpu.analyze(&[item(0, &f)], &mut out),
        Err(EngineError::Batch(_))
    ));
    // The backend is still usable afterwards.
    let ok = synthetic(8, 2, |_, _| 1);
    gpu.analyze(&[item(0, &ok)], &mut out).unwrap();
    assert_eq!(out[0].luma_sum, 16);
}

/// The subgroup variant of pass 1 gives the CPU port's results bit for bit, on frames wider
/// than one workgroup's stride (several words per invocation), narrower than it (idle
/// invocations), with widths that are not a multiple of 4, dark frames (no bright pixel) and
/// references; and the per-row variant, forced, gives the same. Skipped, saying so, where the
/// adapter has no `Features::SUBGROUP`.
#[test]
fn subgroup_variant_matches_cpu_exactly() {
    let adapter = streamwatch::stats::gpu::pick_adapter().expect("wgpu adapter (lavapipe in CI)");
    let has = adapter.features().contains(wgpu::Features::SUBGROUP);
    println!(
        "adapter {:?}: SUBGROUP {}",
        adapter.get_info().name,
        if has { "available" } else { "NOT available" }
    );
    // Lavapipe has subgroups but gets the per-row pass by default: ask for them explicitly.
    let mut with = GpuBackend::with_options(GpuOptions {
        subgroups: SubgroupMode::Always,
        ..GpuOptions::default()
    })
    .expect("GPU backend");
    println!("with subgroups asked for: {}", with.describe());
    if !has {
        println!("SKIPPED: the adapter has no SUBGROUP; only the per-row pass is tested");
        assert_eq!(with.variant(), StatsVariant::PerRow);
        return;
    }
    assert_eq!(
        with.variant(),
        StatsVariant::Subgroup,
        "{}",
        with.describe()
    );
    assert!(with.describe().contains("subgroup"), "{}", with.describe());
    let mut without = GpuBackend::with_options(GpuOptions {
        subgroups: SubgroupMode::Never,
        ..GpuOptions::default()
    })
    .expect("GPU backend");
    assert_eq!(without.variant(), StatsVariant::PerRow);
    assert!(
        without.describe().contains("per-row"),
        "{}",
        without.describe()
    );

    let pattern = |w: u32, h: u32, k: usize| {
        synthetic(w, h, move |x, y| {
            // Dark margins (bars), 8x8 structure and motion.
            if x < 3 || y < 2 || x + 5 >= w as usize {
                4
            } else {
                (40 + (x / 8 * 29 + y / 8 * 13 + k * 7) % 90 + (x * y + k) % 3) as u8
            }
        })
    };
    let streams: Vec<Stream> = [(1921, 9), (1280, 20), (258, 17), (5, 11), (2, 3), (1, 1)]
        .iter()
        .enumerate()
        .map(|(slot, &(w, h))| Stream {
            slot: slot as u32,
            frames: (0..4).map(|k| pattern(w, h, k)).collect(),
            params: StatParams {
                dark_threshold: 16,
                noise_threshold: slot as u8,
            },
        })
        .chain(std::iter::once(Stream {
            slot: 50,
            frames: (0..3).map(|_| synthetic(642, 12, |_, _| 3)).collect(),
            params: PARAMS,
        }))
        // The same patterns as interlaced frames, heights odd and even around the block rows.
        .chain(
            [(1921, 37), (258, 18), (7, 5)]
                .iter()
                .enumerate()
                .map(|(k, &(w, h))| Stream {
                    slot: 60 + k as u32,
                    frames: (0..3).map(|i| interlaced(pattern(w, h, i))).collect(),
                    params: PARAMS,
                }),
        )
        .collect();
    let a = compare(&mut with, &streams, 2);
    let b = compare(&mut without, &streams, 2);
    assert_eq!(a, b);
    assert!(a.iter().any(|s| s.bars.left == 3), "bars seen");
    assert!(a.iter().any(|s| s.has_prev && s.changed_pixels > 0));
}
