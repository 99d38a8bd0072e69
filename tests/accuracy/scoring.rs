//! Scoring of detector events against injected ground truth, shared by the accuracy suites.
//!
//! Per detector:
//! - an event *matches* an injected window of the same detector when its start and end are
//!   both within ±0.25 s of the window's (±0.5 s for blockiness and blur); each window is
//!   matched by at most one event;
//! - *found* / *missed*: injected windows with / without a matching event;
//! - *co-detection*: an unmatched event that lies within a window of ANOTHER detector, widened
//!   by 0.5 s each side (e.g. stutter or freeze during bitstream corruption): reported, not
//!   counted as false. An event that runs on into clean content (e.g. from a window to the
//!   end of the clip) is not a co-detection: it flags clean frames, so it is false;
//! - *false*: any other unmatched event, including one that overlaps its own detector's window
//!   (widened by that detector's tolerance) with the wrong timing (a split, late or
//!   overlong event), which is shown as "mistimed" in the per-clip listing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::run_cli;
use serde_json::Value;

/// Start/end tolerance of a match for `detector`, seconds.
pub fn tolerance(detector: &str) -> f64 {
    match detector {
        "blockiness" | "blur" => 0.5,
        _ => 0.25,
    }
}

/// A detected event: (detector, start, end).
pub type Event = (String, f64, f64);

/// The video detectors, in table order.
pub const VIDEO_DETECTORS: [&str; 8] = [
    "black",
    "freeze",
    "blockiness",
    "blur",
    "flat",
    "colorbars",
    "letterbox",
    "stutter",
];

/// The audio detectors, in table order.
pub const AUDIO_DETECTORS: [&str; 6] = [
    "silence",
    "loudness",
    "clipping",
    "channel",
    "audio_loss",
    "av_sync",
];

/// The (detector, start, end) of every event of a `scan --format json` report.
pub fn report_events(report: &Value) -> Vec<Event> {
    let no_events = Vec::new();
    report["events"]
        .as_array()
        .unwrap_or(&no_events)
        .iter()
        .map(|e| {
            (
                e["detector"].as_str().unwrap_or("?").to_owned(),
                e["start"].as_f64().unwrap_or(f64::NAN),
                e["end"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect()
}

/// What happened to one event or window, for the per-clip listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Found,
    Missed,
    False,
    Mistimed,
    CoDetection,
}

/// Per-detector counts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Score {
    pub injected: usize,
    pub found: usize,
    pub missed: usize,
    pub false_events: usize,
    pub co_detections: usize,
}

impl Score {
    pub fn add(&mut self, o: &Score) {
        self.injected += o.injected;
        self.found += o.found;
        self.missed += o.missed;
        self.false_events += o.false_events;
        self.co_detections += o.co_detections;
    }
}

/// The outcome of scoring one clip's events.
#[derive(Debug, Default)]
pub struct Scored {
    /// Counts per detector named by a window or an event.
    pub per_detector: BTreeMap<String, Score>,
    /// A listing line per window and per unmatched event.
    pub lines: Vec<(Verdict, String)>,
    /// Whether each truth window (in order) was found.
    pub window_found: Vec<bool>,
    /// Per found window: (detector, |start error|, |end error|), seconds.
    pub errors: Vec<(String, f64, f64)>,
}

/// How far (seconds) a co-detection may reach beyond the other detector's window.
const CO_DETECTION_MARGIN: f64 = 0.5;

/// Detectors whose verdict masks freeze (a slate or a black screen is static, and is reported
/// as what it is, not as a freeze).
const MASKS_FREEZE: [&str; 3] = ["black", "flat", "colorbars"];

/// Scores `events` against `truth` for every detector named in either. `precedence`: the
/// events come from streamwatch, whose freeze is masked by black/flat/colorbars (ffmpeg's is
/// not), so a freeze co-detection on those windows is flagged.
pub fn score(truth: &[(&str, f64, f64)], events: &[Event], precedence: bool) -> Scored {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut window_found = Vec::new();
    let mut errors = Vec::new();
    let mut used = vec![false; events.len()];
    let overlaps = |(d, a, b): &(&str, f64, f64), s: f64, e: f64| {
        let tol = tolerance(d);
        s < b + tol && e > a - tol
    };
    let within = |(_, a, b): &(&str, f64, f64), s: f64, e: f64| {
        s >= a - CO_DETECTION_MARGIN && e <= b + CO_DETECTION_MARGIN
    };
    for &(det, a, b) in truth {
        let tol = tolerance(det);
        let sc = scores.entry(det.to_owned()).or_default();
        sc.injected += 1;
        let hit = events.iter().enumerate().find(|(i, (d, s, e))| {
            !used[*i] && d == det && (s - a).abs() <= tol && (e - b).abs() <= tol
        });
        window_found.push(hit.is_some());
        match hit {
            Some((i, (_, s, e))) => {
                used[i] = true;
                sc.found += 1;
                errors.push((det.to_owned(), (s - a).abs(), (e - b).abs()));
                lines.push((
                    Verdict::Found,
                    format!("{det} {a:.2}-{b:.2}: found {s:.2}-{e:.2}"),
                ));
            }
            None => {
                sc.missed += 1;
                lines.push((Verdict::Missed, format!("{det} {a:.2}-{b:.2}: MISSED")));
            }
        }
    }
    for (i, (d, s, e)) in events.iter().enumerate() {
        if used[i] {
            continue;
        }
        let sc = scores.entry(d.clone()).or_default();
        let own = truth.iter().any(|t| t.0 == d && overlaps(t, *s, *e));
        let other = truth.iter().find(|t| t.0 != d && within(t, *s, *e));
        let (verdict, what) = match (own, other) {
            (true, _) => (Verdict::Mistimed, "FALSE (mistimed)".to_owned()),
            (false, Some((od, oa, ob))) => {
                // Allowed by the scoring rules, but the precedence rule says it should not be
                // there: flag it for whoever tunes the detectors.
                let note = if precedence && d == "freeze" && MASKS_FREEZE.contains(od) {
                    " (precedence should mask freeze here)"
                } else {
                    ""
                };
                (
                    Verdict::CoDetection,
                    format!("co-detection in {od} {oa:.2}-{ob:.2}{note}"),
                )
            }
            (false, None) => (Verdict::False, "FALSE".to_owned()),
        };
        if verdict == Verdict::CoDetection {
            sc.co_detections += 1;
        } else {
            sc.false_events += 1;
        }
        lines.push((verdict, format!("{d} event {s:.2}-{e:.2}: {what}")));
    }
    Scored {
        per_detector: scores,
        lines,
        window_found,
        errors,
    }
}

/// Listing mark of a verdict.
pub fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Found => "ok   ",
        Verdict::CoDetection => "co   ",
        Verdict::Missed => "MISS ",
        Verdict::False | Verdict::Mistimed => "FALSE",
    }
}

/// `streamwatch scan --format json` on a file: its events, and why it gave no report if it did
/// not (a failed scan is a result to report with the table, not a reason to lose the table:
/// it scores as no events and the caller fails the test at the end).
pub fn scan_events(path: &Path, timeout: Duration) -> (Vec<Event>, Option<String>) {
    scan_events_with(path, &[], timeout)
}

/// [`scan_events`] with more `scan` arguments (e.g. `--analysis keyframes`).
pub fn scan_events_with(
    path: &Path,
    extra: &[&str],
    timeout: Duration,
) -> (Vec<Event>, Option<String>) {
    let source = path.to_str().expect("utf-8 path");
    let mut args = vec!["scan", source, "--format", "json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_cli(&args, timeout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let scan_error = match (code, report["events"].is_array()) {
        (0, true) => None,
        _ => Some(format!(
            "scan exited {code}, stdout {:?}, stderr: {}",
            stdout.get(..200).unwrap_or(&stdout),
            stderr
                .get(stderr.len().saturating_sub(1000)..)
                .unwrap_or(&stderr)
        )),
    };
    (report_events(&report), scan_error)
}

/// `f` over `items` on `jobs` threads (clips generated and scanned at once), in item order.
pub fn par_map<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item done"))
        .collect()
}

#[test]
fn scoring_follows_the_documented_rules() {
    let truth = [("black", 3.0, 6.0), ("blockiness", 9.0, 12.0)];
    let ev = |d: &str, a: f64, b: f64| (d.to_owned(), a, b);
    let events = [
        ev("black", 3.2, 5.8),       // within ±0.25: found
        ev("blockiness", 9.4, 12.4), // within ±0.5: found
        ev("stutter", 9.5, 11.0),    // within another detector's window: co-detection
        ev("flat", 11.0, 16.0),      // from that window into clean content: false
        ev("freeze", 13.0, 14.0),    // outside every window: false
        ev("black", 3.0, 4.0),       // own window, already matched: false (mistimed)
    ];
    let scored = score(&truth, &events, true);
    let s = &scored.per_detector;
    assert_eq!((s["black"].found, s["black"].false_events), (1, 1));
    assert_eq!(s["blockiness"].found, 1);
    assert_eq!(
        (s["stutter"].co_detections, s["stutter"].false_events),
        (1, 0)
    );
    assert_eq!(s["freeze"].false_events, 1);
    assert_eq!((s["flat"].co_detections, s["flat"].false_events), (0, 1));
    assert!(scored.lines.iter().any(|(v, _)| *v == Verdict::Mistimed));
    assert_eq!(scored.window_found, [true, true]);
    let scored = score(&truth, &[ev("black", 3.3, 6.0)], true);
    let s = &scored.per_detector;
    assert_eq!((s["black"].missed, s["black"].false_events), (1, 1));
    assert_eq!(scored.window_found, [false, false]);
}
