//! ETSI TR 101 290 on real multiplexes: clean clips from ffmpeg (variable and constant rate)
//! and GStreamer's mpegtsmux (with and without a sparse SCTE-35 PID) report nothing, and each fault injected into a real clip in
//! its indicator's way is found as that indicator, at the time it was injected.

use serde_json::Value;

use crate::support::scan_json;
use crate::support::temp_dir;
use crate::support::ts_faults::{Fault, Muxer, clean_ts, inject};

/// Seconds into the clip where faults start.
const AT: f64 = 4.0;

fn tr101290_of(report: &Value) -> serde_json::Map<String, Value> {
    report["tr101290"].as_object().cloned().unwrap_or_default()
}

fn count(found: &serde_json::Map<String, Value>, indicator: &str) -> u64 {
    found[indicator]["count"].as_u64().unwrap_or(0)
}

fn first_at(found: &serde_json::Map<String, Value>, indicator: &str) -> f64 {
    found[indicator]["first_at"].as_f64().unwrap_or(f64::NAN)
}

fn tr101290_defects(report: &Value) -> Vec<Value> {
    report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["detector"] == "tr101290")
        .cloned()
        .collect()
}

#[test]
fn clean_multiplexes_from_ffmpeg_and_gstreamer_have_no_errors() {
    let muxers = [
        Muxer::FfmpegVbr,
        Muxer::FfmpegCbr,
        Muxer::Gstreamer,
        Muxer::GstreamerScte35,
    ];
    for muxer in muxers {
        let clip = clean_ts(muxer);
        let report = scan_json(&format!("file://{}", clip.display()), &["--backend", "cpu"]);
        let found = tr101290_of(&report);
        eprintln!(
            "{muxer:?}: {} frames, TR 101 290 {found:?}",
            report["frames"]
        );
        assert!(report["frames"].as_u64().unwrap_or(0) >= 290, "{report:#}");
        assert!(found.is_empty(), "{muxer:?}: {found:#?}");
        assert!(
            tr101290_defects(&report).is_empty(),
            "{muxer:?}: {report:#}"
        );
    }
}

/// What an injected fault must produce: (indicator, fewest, most, first seen within this
/// window of seconds).
struct Expected {
    fault: Fault,
    muxer: Muxer,
    indicator: &'static str,
    count: (u64, u64),
    window: (f64, f64),
}

fn expected() -> Vec<Expected> {
    let e = |fault, muxer, indicator, count, window| Expected {
        fault,
        muxer,
        indicator,
        count,
        window,
    };
    let vbr = Muxer::FfmpegVbr;
    vec![
        e(
            Fault::DropPackets,
            vbr,
            "Continuity_count_error",
            (3, 3),
            (AT, AT + 0.2),
        ),
        e(
            Fault::CorruptSyncBytes,
            vbr,
            "Sync_byte_error",
            (3, 3),
            (AT, AT + 0.1),
        ),
        e(
            Fault::CorruptSyncBytes,
            vbr,
            "TS_sync_loss",
            (1, 1),
            (AT + 2.0, AT + 2.1),
        ),
        // Absent for more than 0.5 s: found 0.5 s after the last one.
        e(
            Fault::WithholdPat,
            vbr,
            "PAT_error_2",
            (1, 1),
            (AT + 0.4, AT + 0.7),
        ),
        e(
            Fault::WithholdPmt,
            vbr,
            "PMT_error_2",
            (1, 1),
            (AT + 0.4, AT + 0.7),
        ),
        e(Fault::FlipCrc, vbr, "CRC_error", (2, 2), (AT, AT + 0.2)),
        // Referenced but absent for 5 s.
        e(
            Fault::RemoveAudioPid,
            vbr,
            "PID_error",
            (1, 1),
            (AT + 4.8, AT + 5.3),
        ),
        // Found when the next PTS comes, after the 1.5 s gap.
        e(
            Fault::AudioGap,
            vbr,
            "PTS_error",
            (1, 1),
            (AT + 1.5, AT + 2.0),
        ),
        e(
            Fault::WithholdPcr,
            vbr,
            "PCR_repetition_error",
            (1, 1),
            (AT + 0.2, AT + 0.5),
        ),
        e(
            Fault::JumpPcr,
            vbr,
            "PCR_discontinuity_indicator_error",
            (1, 1),
            (AT, AT + 0.2),
        ),
        e(
            Fault::JitterPcr,
            Muxer::FfmpegCbr,
            "PCR_accuracy_error",
            (5, 5),
            (AT, AT + 0.3),
        ),
        e(
            Fault::TransportError,
            vbr,
            "Transport_error",
            (2, 2),
            (AT, AT + 1.2),
        ),
        // Scrambled packets in a stream without a CAT: reported once.
        e(Fault::Scramble, vbr, "CAT_error", (1, 1), (AT, AT + 0.2)),
    ]
}

#[test]
fn each_injected_fault_is_found_as_its_indicator_when_injected() {
    let dir = temp_dir("tr101290");
    let mut failures = Vec::new();
    for e in expected() {
        let clip = inject(&clean_ts(e.muxer), e.fault, AT, &dir);
        let report = scan_json(&format!("file://{}", clip.display()), &["--backend", "cpu"]);
        let found = tr101290_of(&report);
        let (n, at) = (count(&found, e.indicator), first_at(&found, e.indicator));
        let priority = if e.indicator.starts_with("PCR")
            || ["CRC_error", "PTS_error", "Transport_error", "CAT_error"].contains(&e.indicator)
        {
            2
        } else {
            1
        };
        let defects = tr101290_defects(&report);
        let defect = defects.iter().find(|d| d["priority"] == priority);
        eprintln!(
            "{:?}: {} x{n} first at {at:.3} s (injected at {AT}); defect {:?}; all {:?}",
            e.fault,
            e.indicator,
            defect.map(|d| d["indicators"].clone()),
            found
                .iter()
                .map(|(k, v)| (k.clone(), v["count"].clone()))
                .collect::<Vec<_>>()
        );
        let ok = (e.count.0..=e.count.1).contains(&n)
            && (e.window.0..=e.window.1).contains(&at)
            && defect.is_some_and(|d| {
                d["indicators"]
                    .as_str()
                    .is_some_and(|s| s.split(',').any(|i| i == e.indicator))
            });
        if !ok {
            failures.push(format!(
                "{:?} {}: {found:?} {defects:?}",
                e.fault, e.indicator
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
