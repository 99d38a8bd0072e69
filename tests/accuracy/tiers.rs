//! Analysis tiers: the same clips with injected defects, scanned in every tier. Each defect
//! lasts two GOPs (4 s with the clips' 2 s GOP) and starts off the keyframe grid; every tier
//! must find every one, within its stated precision, and report nothing else:
//! - full and reference: the usual ±0.25 s (±0.5 s for blur and blockiness); reference
//!   pictures of these clips (3 B-frames) are at most 4 frames apart, which the tolerance
//!   covers;
//! - keyframes: one GOP (2 s) plus a frame: a defect is seen from the first keyframe inside
//!   it to the first keyframe after it.
//!
//! The clips have B-frames, so the reference tier skips pictures (checked), and keyframes
//! analyses one frame per GOP (checked).

use std::time::Duration;

use crate::scoring::{Event, par_map, scan_events_with};
use crate::support::defect_clips::{Defect, DefectClip, Scene, defect_clip};
use crate::support::run_cli;

const TIERS: [&str; 3] = ["full", "reference", "keyframes"];
const GOP_SECONDS: f64 = 2.0;

fn clips() -> Vec<DefectClip> {
    use Defect::*;
    vec![
        DefectClip::new(Scene::Motion, 640, 360, 25, 30.0)
            .with(Black, 5.0, 9.0)
            .with(FreezeLossy, 13.0, 17.0)
            .with(Blur, 21.2, 25.2)
            .with_b_frames(3),
        DefectClip::new(Scene::Noisy, 640, 360, 25, 34.0)
            .with(ColorBars, 5.0, 9.0)
            .with(Letterbox, 13.0, 17.0)
            .with(Mpeg2MaxQuant, 21.0, 25.0)
            .with(BlueScreen, 28.6, 32.6)
            .with_b_frames(3),
    ]
}

fn tolerance(tier: &str, detector: &str) -> f64 {
    let fps = 25.0;
    match (tier, detector) {
        ("keyframes", _) => GOP_SECONDS + 1.0 / fps,
        (_, "blur" | "blockiness") => 0.5,
        _ => 0.25,
    }
}

/// The windows not matched by an event of their detector, and the events that match no
/// window, as lines; empty when the tier found everything and nothing else.
fn mismatches(tier: &str, truth: &[(&str, f64, f64)], events: &[Event]) -> Vec<String> {
    let mut used = vec![false; events.len()];
    let mut lines = Vec::new();
    for &(detector, start, end) in truth {
        let tol = tolerance(tier, detector);
        let found = events.iter().enumerate().position(|(i, (d, s, e))| {
            !used[i] && d == detector && (s - start).abs() <= tol && (e - end).abs() <= tol
        });
        match found {
            Some(i) => used[i] = true,
            None => lines.push(format!("{tier}: MISSED {detector} {start:.2}-{end:.2}")),
        }
    }
    for (event, _) in events.iter().zip(&used).filter(|(_, u)| !**u) {
        lines.push(format!(
            "{tier}: FALSE {} {:.2}-{:.2}",
            event.0, event.1, event.2
        ));
    }
    lines
}

/// Frames analysed and skipped, from `scan --format json`.
fn frame_counts(path: &std::path::Path, tier: &str) -> (u64, u64) {
    let source = path.to_str().expect("utf-8 path");
    let args = ["scan", source, "--format", "json", "--analysis", tier];
    let (code, stdout, stderr) = run_cli(&args, Duration::from_secs(300));
    assert_eq!(code, 0, "scan --analysis {tier} failed: {stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("scan report");
    let count = |key: &str| report[key].as_u64().unwrap_or_else(|| panic!("no {key}"));
    (count("frames"), count("frames_skipped"))
}

#[test]
fn every_tier_finds_defects_of_two_gops_and_nothing_else() {
    let clips = clips();
    let paths: Vec<_> = par_map(&clips, 2, defect_clip);
    let mut problems = Vec::new();
    let mut report = String::new();
    for (clip, path) in clips.iter().zip(&paths) {
        let truth = clip.truth();
        let runs = par_map(&TIERS, 2, |tier| {
            let extra = ["--analysis", tier, "--backend", "cpu"];
            scan_events_with(path, &extra, Duration::from_secs(300))
        });
        for (tier, (events, error)) in TIERS.iter().zip(runs) {
            if let Some(error) = error {
                problems.push(format!("{} {tier}: {error}", clip.label()));
            }
            report.push_str(&format!("{} {tier}: {events:?}\n", clip.label()));
            problems.extend(
                mismatches(tier, &truth, &events)
                    .into_iter()
                    .map(|l| format!("{} {l}", clip.label())),
            );
        }
    }
    println!("{report}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn lighter_tiers_decode_fewer_frames() {
    let clip = &clips()[0];
    let path = defect_clip(clip);
    let frames = (clip.seconds * f64::from(clip.fps)) as u64;
    let (full, full_skipped) = frame_counts(&path, "full");
    let (reference, reference_skipped) = frame_counts(&path, "reference");
    let (keyframes, key_skipped) = frame_counts(&path, "keyframes");
    println!(
        "analysed/skipped of {frames}: full {full}/{full_skipped}, reference \
         {reference}/{reference_skipped}, keyframes {keyframes}/{key_skipped}"
    );
    assert_eq!((full, full_skipped), (frames, 0));
    // x264's B-frames are disposable unless it uses one as a reference (b-pyramid): at least
    // a third of the pictures.
    assert_eq!(reference + reference_skipped, frames);
    assert!(reference_skipped >= frames / 3, "{reference_skipped}");
    let gops = (clip.seconds / GOP_SECONDS).ceil() as u64;
    assert_eq!((keyframes, key_skipped), (gops, frames - gops));
}
