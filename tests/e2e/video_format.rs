//! Format changes mid-stream, decoder error counting and the per-frame statistics trace.

use std::sync::Arc;
use std::time::Duration;

use crate::support::proc::ffmpeg;
use crate::support::{run_cli, scan_json, temp_dir};
use gstreamer as gst;
use streamwatch::app::services::Services;
use streamwatch::config::{DetectorsConfig, StreamConfig};
use streamwatch::frame::Luma;
use streamwatch::sinks::Outputs;
use streamwatch::sinks::metrics::Metrics;
use streamwatch::stream::StreamOptions;

/// Two MPEG-TS pieces of different sizes, the second continuing the first's timestamps, joined
/// byte for byte as a broadcast chain switching source would.
fn size_change_clip(dir: &std::path::Path) -> String {
    let (a, b, ab) = (dir.join("a.ts"), dir.join("b.ts"), dir.join("ab.ts"));
    let encode = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"];
    let mut first = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=25:duration=4",
    ];
    first.extend(encode);
    first.extend(["-f", "mpegts", a.to_str().unwrap()]);
    ffmpeg(&first);
    let mut second = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=426x240:rate=25:duration=4",
    ];
    second.extend(encode);
    second.extend([
        "-output_ts_offset",
        "4",
        "-f",
        "mpegts",
        b.to_str().unwrap(),
    ]);
    ffmpeg(&second);
    let mut joined = std::fs::read(&a).unwrap();
    joined.extend(std::fs::read(&b).unwrap());
    std::fs::write(&ab, joined).unwrap();
    ab.to_str().unwrap().to_owned()
}

#[test]
fn a_size_change_is_an_info_event_and_analysis_goes_on() {
    let dir = temp_dir("size-change");
    let clip = size_change_clip(&dir);
    for backend in ["gpu", "cpu"] {
        let report = scan_json(&clip, &["--backend", backend]);
        assert_eq!(report["frames"], 200, "{report:#}");
        let info = report["info"].as_array().expect("info array");
        assert_eq!(info.len(), 1, "{report:#}");
        assert_eq!(info[0]["kind"], "format_change");
        assert_eq!(info[0]["detail"], "640x360 -> 426x240");
        let at = info[0]["at"].as_f64().unwrap();
        assert!((at - 4.0).abs() < 0.05, "{at}");
        // Neither side of the change is a picture defect (no freeze, stutter or blur from the
        // switch). The files are joined without discontinuity indicators, so the transport
        // stream's continuity counters restart there: that, and only that, is TR 101 290's.
        let detectors: Vec<&str> = report["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["detector"].as_str())
            .collect();
        assert!(detectors.iter().all(|d| *d == "tr101290"), "{report:#}");
        let tr101290 = report["tr101290"].as_object().cloned().unwrap_or_default();
        assert_eq!(
            tr101290.keys().collect::<Vec<_>>(),
            ["Continuity_count_error"],
            "{report:#}"
        );
        let first = tr101290["Continuity_count_error"]["first_at"].as_f64();
        assert!(first.is_some_and(|t| (t - 4.0).abs() < 0.2), "{report:#}");
    }
}

#[test]
fn frame_statistics_are_written_one_row_per_frame() {
    let dir = temp_dir("frame-stats");
    let clip = size_change_clip(&dir);
    let csv = dir.join("stats.csv");
    let (code, _, err) = run_cli(
        &["scan", &clip, "--frame-stats", csv.to_str().unwrap()],
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "stream");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 200);
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let width = header.iter().position(|h| *h == "width").unwrap();
    assert_eq!(rows[0][width], "640");
    assert_eq!(rows[199][width], "426");

    let (code, _, err) = run_cli(
        &["scan", &clip, "--frame-stats", "/nonexistent/dir/stats.csv"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/dir/stats.csv"), "{err}");
}

/// Warnings that decoders post count as decode errors; other elements' warnings do not.
#[test]
fn decoder_warnings_count_as_decode_errors() {
    gst::init().unwrap();
    let metrics = Arc::new(Metrics::new());
    let services = Services::new(Outputs::metrics_only(metrics.clone()), blocking_queue(4));
    let stream = services.add_stream(StreamConfig {
        id: "s".into(),
        url: "file:///dev/null".into(),
        detectors: DetectorsConfig::default(),
        decoder: Default::default(),
        ..Default::default()
    });
    let warning = |element: &gst::Element| {
        gst::message::Warning::builder(gst::StreamError::Decode, "concealed a damaged slice")
            .src(element)
            .build()
    };
    let decoder = gst::ElementFactory::make("avdec_h264").build().unwrap();
    let queue = gst::ElementFactory::make("queue").build().unwrap();
    streamwatch::ingest::pipeline::note_warning(&stream, &warning(&decoder));
    streamwatch::ingest::pipeline::note_warning(&stream, &warning(&decoder));
    streamwatch::ingest::pipeline::note_warning(&stream, &warning(&queue));
    assert_eq!(stream.decode_errors(), 2);
    let text = metrics.render();
    assert!(
        text.contains("streamwatch_decode_errors_total{stream=\"s\"} 2"),
        "{text}"
    );
}

/// A stretch of H.264 corrupted in the bitstream: libav conceals it and reports it only in its
/// log, which streamwatch counts per stream; the damaged stretch is a blockiness defect.
#[test]
fn bitstream_corruption_counts_decoder_errors() {
    let dir = temp_dir("corruption");
    let piece = |name: &str, from: u32, noise: bool| {
        let path = dir.join(name);
        let source = format!(
            "testsrc2=size=426x240:rate=25:duration=12,trim=start={from}:duration=4,setpts=PTS-STARTPTS"
        );
        let offset = from.to_string();
        let mut args = vec!["-f", "lavfi", "-i", &source];
        args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"]);
        if noise {
            args.extend(["-bsf:v", "noise=amount=2000"]);
        }
        args.extend(["-output_ts_offset", &offset, "-f", "mpegts"]);
        args.push(path.to_str().unwrap());
        ffmpeg(&args);
        std::fs::read(&path).unwrap()
    };
    let mut joined = piece("a.ts", 0, false);
    joined.extend(piece("b.ts", 4, true));
    joined.extend(piece("c.ts", 8, false));
    let clip = dir.join("corrupt.ts");
    std::fs::write(&clip, joined).unwrap();
    let report = scan_json(clip.to_str().unwrap(), &[]);
    let errors = report["decode_errors"].as_u64().unwrap();
    assert!(errors > 10, "{report:#}");
    let blocky: Vec<(f64, f64)> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["detector"] == "blockiness")
        .map(|e| (e["start"].as_f64().unwrap(), e["end"].as_f64().unwrap()))
        .collect();
    assert_eq!(blocky.len(), 1, "{report:#}");
    let (start, end) = blocky[0];
    assert!(
        (start - 4.0).abs() <= 0.5 && (end - 8.0).abs() <= 0.5,
        "{start}-{end}"
    );

    let clean = dir.join("clean.ts");
    std::fs::write(&clean, piece("a2.ts", 0, false)).unwrap();
    let report = scan_json(clean.to_str().unwrap(), &[]);
    assert_eq!(report["decode_errors"], 0, "{report:#}");
}

/// Decoded frames reach the statistics as the decoder's own buffers (no copy in the appsink),
/// with the decoder's row padding, and hold exactly the pixels ffmpeg decodes from the file.
#[test]
fn decoded_frames_are_shared_with_the_decoder_and_match_ffmpeg() {
    gst::init().unwrap();
    let dir = temp_dir("zero-copy");
    // 426 pixels: libav pads its rows, so the frame's stride differs from the width.
    let clip = dir.join("c.mp4");
    let clip_path = clip.to_str().unwrap();
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=426x240:rate=25:duration=1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        clip_path,
    ]);
    // The Y plane as coded (yuv420p; `gray` would be rescaled to full range).
    let raw = dir.join("c.yuv");
    ffmpeg(&[
        "-i",
        clip_path,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "yuv420p",
        raw.to_str().unwrap(),
    ]);
    let expected = std::fs::read(&raw).unwrap();
    let (width, height) = (426usize, 240usize);
    let frame_bytes = width * height + 2 * width.div_ceil(2) * height.div_ceil(2);
    assert_eq!(expected.len(), 25 * frame_bytes);

    let services = Services::new(
        Outputs::metrics_only(Arc::new(Metrics::new())),
        blocking_queue(64),
    );
    let stream = services.add_stream(StreamConfig {
        id: "zero-copy".into(),
        url: format!("file://{clip_path}"),
        detectors: DetectorsConfig::default(),
        decoder: Default::default(),
        ..Default::default()
    });
    stream.begin_session();
    let running =
        streamwatch::ingest::pipeline::start(&stream, streamwatch::ingest::Pacing::Unpaced)
            .expect("pipeline starts");
    let mut frames = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while frames.len() < 25 && std::time::Instant::now() < deadline {
        stream.queue.take(64, &mut frames);
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(running);
    assert_eq!(frames.len(), 25);
    for (n, (_, frame)) in frames.iter().enumerate() {
        assert!(
            matches!(frame.luma, Luma::Shared { .. }),
            "frame {n} was copied: {:?}",
            frame.luma
        );
        assert_eq!(
            (frame.width as usize, frame.height as usize),
            (width, height)
        );
        assert!(
            frame.stride >= width && frame.stride % 4 == 0,
            "stride {}",
            frame.stride
        );
        for y in 0..height {
            let start = n * frame_bytes + y * width;
            assert_eq!(
                frame.row(y),
                &expected[start..start + width],
                "frame {n} row {y}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Frames wait in a queue of `frames` for the test to take them.
fn blocking_queue(frames: usize) -> StreamOptions {
    StreamOptions {
        queue_frames: frames,
        blocking: true,
        sole: false,
    }
}
