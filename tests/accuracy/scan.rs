//! Detector accuracy on generated H.264 clips with injected defects: every defect is found with
//! start and end within ±0.1 s of the ground truth, and clean clips give no event at all.

use crate::support::{ClipSpec, Content, clip, scan_json};
use serde_json::Value;

const TOLERANCE: f64 = 0.1;

fn scan(spec: &ClipSpec, extra: &[&str]) -> Value {
    let path = clip(spec);
    scan_json(path.to_str().expect("utf-8 path"), extra)
}

/// Asserts the report holds exactly these (detector, start, end) events, within ±`tolerance`
/// seconds.
pub(crate) fn assert_events_within(report: &Value, expected: &[(&str, f64, f64)], tolerance: f64) {
    let mut found = crate::scoring::report_events(report);
    found.sort_by(|a, b| a.1.total_cmp(&b.1));
    assert_eq!(
        found.len(),
        expected.len(),
        "expected {expected:?}, found {found:?} in {report:#}"
    );
    for ((det, start, end), (want_det, want_start, want_end)) in found.iter().zip(expected) {
        assert_eq!(det, want_det, "found {found:?}");
        assert!(
            (start - want_start).abs() <= tolerance && (end - want_end).abs() <= tolerance,
            "{det}: found {start:.3}-{end:.3}, truth {want_start}-{want_end} (±{tolerance} s)"
        );
    }
}

/// [`assert_events_within`] ±0.1 s.
fn assert_events(report: &Value, expected: &[(&str, f64, f64)]) {
    assert_events_within(report, expected, TOLERANCE);
}

#[test]
fn black_and_freeze_are_found_to_a_tenth_of_a_second() {
    let spec = ClipSpec {
        width: 640,
        height: 360,
        seconds: 15.0,
        black: vec![(3.0, 6.5)],
        freeze: vec![(9.0, 12.3)],
        ..Default::default()
    };
    let report = scan(&spec, &[]);
    assert_eq!(report["frames"], 375, "{report:#}");
    assert_events(&report, &[("black", 3.0, 6.5), ("freeze", 9.0, 12.3)]);
}

#[test]
fn hd_clip_at_30_fps() {
    let spec = ClipSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds: 10.0,
        black: vec![(1.0, 3.6)],
        freeze: vec![(5.5, 8.2)],
        audio: false,
        ..Default::default()
    };
    assert_events(
        &scan(&spec, &[]),
        &[("black", 1.0, 3.6), ("freeze", 5.5, 8.2)],
    );
}

#[test]
fn a_small_logo_on_black_is_still_black() {
    let spec = ClipSpec {
        width: 640,
        height: 360,
        seconds: 9.0,
        black_with_logo: vec![(2.0, 5.4)],
        ..Default::default()
    };
    assert_events(&scan(&spec, &[]), &[("black", 2.0, 5.4)]);
}

#[test]
fn defects_shorter_than_the_minimum_duration_are_not_reported() {
    let spec = ClipSpec {
        width: 320,
        height: 240,
        seconds: 8.0,
        black: vec![(2.0, 3.5)],
        freeze: vec![(5.0, 6.5)],
        ..Default::default()
    };
    assert_events(&scan(&spec, &[]), &[]);
}

#[test]
fn clean_clips_give_no_events() {
    for content in [
        Content::TestPattern,
        Content::HighMotion,
        Content::DarkScene,
        Content::StillWithMovingBox,
    ] {
        let spec = ClipSpec {
            width: 640,
            height: 360,
            seconds: 10.0,
            content,
            ..Default::default()
        };
        let report = scan(&spec, &[]);
        assert_eq!(report["frames"], 250, "{content:?}: {report:#}");
        assert!(
            report["events"].as_array().is_some_and(|e| e.is_empty()),
            "{content:?} is clean but gave events: {report:#}"
        );
    }
}

#[test]
fn gpu_and_cpu_backends_report_the_same_events() {
    let spec = ClipSpec {
        width: 642,
        height: 360,
        seconds: 10.0,
        black: vec![(1.0, 3.5)],
        freeze: vec![(5.0, 8.0)],
        ..Default::default()
    };
    let gpu = scan(&spec, &["--backend", "gpu"]);
    let cpu = scan(&spec, &["--backend", "cpu"]);
    assert!(
        gpu["backend"].as_str().unwrap_or("").contains("GPU"),
        "{gpu:#}"
    );
    assert!(
        cpu["backend"].as_str().unwrap_or("").contains("CPU"),
        "{cpu:#}"
    );
    let strip = |r: &Value| -> Vec<(Value, Value, Value)> {
        r["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| (e["detector"].clone(), e["start"].clone(), e["end"].clone()))
            .collect()
    };
    assert_eq!(strip(&gpu), strip(&cpu));
    assert_events(&gpu, &[("black", 1.0, 3.5), ("freeze", 5.0, 8.0)]);
}
