//! `streamwatch bench` runs and reports every figure it promises (not how fast: speed is
//! measured by running the benchmark, never asserted in tests).

use std::time::Duration;

use crate::support::{ClipSpec, clip, run_cli, temp_dir};
use serde_json::Value;

const CLI_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `streamwatch bench ARGS --json F` and returns the JSON, checking the exit code and the
/// fields every report has.
fn bench_json(tag: &str, args: &[&str]) -> Value {
    let dir = temp_dir(tag);
    let json = dir.join("bench.json");
    let json_arg = json.to_string_lossy().into_owned();
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", &json_arg]);
    let (code, stdout, stderr) = run_cli(&all, CLI_TIMEOUT);
    assert_eq!(
        code, 0,
        "bench {args:?}: exit {code}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.contains("frames analysed"), "{stdout}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("bench wrote its JSON file"))
            .expect("bench JSON parses");
    for field in [
        "frames_per_second",
        "cpu_cores",
        "rss_bytes",
        "rss_peak_bytes",
        "gpu_memory_bytes",
        "batch_frames_mean",
        "batch_frames_max",
        "latency_p50_ms",
        "latency_p99_ms",
        "dropped_frames",
        "late_frames",
        "skipped_frames",
        "analysis",
        "cpu_cores_per_stream",
    ] {
        assert!(report.get(field).is_some(), "no {field} in {report}");
    }
    for stage in ["decode", "copy", "upload", "gpu", "readback", "decide"] {
        assert!(
            report["stage_ms_per_frame"].get(stage).is_some(),
            "no stage {stage} in {report}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    report
}

#[test]
fn synthetic_streams_are_analysed() {
    let report = bench_json(
        "bench-synthetic",
        &["--streams", "2", "--source", "synthetic", "--duration", "2"],
    );
    assert_eq!(report["streams"], 2);
    assert!(report["frames"].as_u64().unwrap() > 0, "{report}");
    assert!(
        report["batch_frames_max"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert!(report["latency_p99_ms"].as_f64().is_some(), "{report}");
    // Unpaced synthetic frames wait for the engine: nothing is dropped.
    assert_eq!(report["dropped_frames"], 0, "{report}");
}

/// Paced in real time so that the 4 s clip outlasts the warm-up and the 2 s window on any
/// machine (unpaced, a fast one decodes it before the window opens).
#[test]
fn file_streams_go_through_the_decoders() {
    let path = clip(&ClipSpec {
        seconds: 4.0,
        audio: false,
        ..ClipSpec::default()
    });
    let source = path.to_string_lossy().into_owned();
    let report = bench_json(
        "bench-file",
        &[
            "--streams",
            "2",
            "--source",
            &source,
            "--backend",
            "cpu",
            "--duration",
            "2",
            "--realtime",
        ],
    );
    assert!(report["frames"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["width"], 320, "{report}");
    assert!(
        report["stage_ms_per_frame"]["decode"].as_f64().is_some(),
        "{report}"
    );
    assert_eq!(
        report["errors"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
}

/// `make device-check --dry-run`: the GPU machine's script, end to end on this machine's
/// adapter (lavapipe in CI) with short windows, prints every figure it promises.
#[test]
fn device_check_dry_run_prints_every_figure() {
    let out = temp_dir("device-check");
    let root = env!("CARGO_MANIFEST_DIR");
    let output = std::process::Command::new("bash")
        .arg(format!("{root}/benches/device_check.sh"))
        .arg("--dry-run")
        .current_dir(root)
        .env("OUT", &out)
        .env("STREAMWATCH_BIN", crate::support::streamwatch::binary())
        .output()
        .expect("run benches/device_check.sh");
    let text = String::from_utf8_lossy(&output.stdout);
    println!("{text}");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for (label, value) in [
        ("adapter: ", "GPU: "),
        ("engine 1080p frames/s at 1 (dry run: 1) streams: ", ""),
        ("engine 1080p frames/s at 16 (dry run: 1) streams: ", ""),
        ("engine 1080p frames/s at 64 (dry run: 1) streams: ", ""),
        ("engine 1080p frames/s at 256 (dry run: 4) streams: ", ""),
        ("host to device: ", ""),
        ("GPU memory per 1080p stream: ", ""),
        ("subgroup pass: ", ""),
        ("batches in flight: 2 gives ", ""),
        ("NVDEC 1080p30 streams in real time: ", ""),
        ("gpu vs cpu tests: ", ""),
    ] {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"));
        let rest = &line[label.len()..];
        assert!(rest.starts_with(value), "{line}");
        // Every figure is a number (or the reason there is none), never a jq failure.
        assert!(!rest.contains("null") && !rest.trim().is_empty(), "{line}");
    }
}
