//! SCTE-35 cues in a real transport stream: an ffmpeg clip with an SCTE-35 PID added to its
//! PMT and splice_insert messages built with the `scte35-splice` crate. A break that returns
//! in time is no fault; one that outlasts its declared duration and tolerance is a
//! `break_overrun` until it returns; a return with no break on is `in_without_out`. The data
//! PID raises no TR 101 290 error.

use std::time::Duration;

use serde_json::Value;

use crate::support::faults::{FaultOrigin, HlsEncoder};
use crate::support::ts_faults::{CueSpec, Muxer, clean_ts, with_scte35};
use crate::support::{LiveSpec, Streamwatch, events_of, scan_json, temp_dir, wait_until};

fn insert(at: f64, event_id: u32, out: bool, duration: Option<(f64, bool)>) -> CueSpec {
    CueSpec {
        at,
        event_id: Some(event_id),
        out,
        duration,
    }
}

fn rules(report: &Value) -> Vec<String> {
    report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["detector"] == "scte35")
        .filter_map(|e| e["rule"].as_str().map(str::to_owned))
        .collect()
}

/// `streamwatch run` on one stream, `ads`, at `url`.
fn watch_ads(url: &str) -> Streamwatch {
    Streamwatch::start(
        &format!("[[streams]]\nid = \"ads\"\nurl = \"{url}\"\n"),
        &[],
    )
}

fn ad_break_active(sw: &Streamwatch) -> f64 {
    sw.metric_sum("streamwatch_ad_break_active", &["stream=\"ads\""])
}

fn assert_break_shows(sw: &Streamwatch, within: Duration) {
    assert!(
        wait_until(within, || ad_break_active(sw) == 1.0),
        "the break never showed: {:#}",
        sw.stream("ads")
    );
}

#[test]
fn cues_are_read_and_breaks_judged_against_their_declared_duration() {
    let dir = temp_dir("scte35");
    let cues = [
        CueSpec {
            at: 1.0,
            event_id: None,
            out: false,
            duration: None,
        },
        // 3 s declared, back after 3.5 s: within the 2 s tolerance.
        insert(2.0, 1, true, Some((3.0, false))),
        insert(2.1, 1, true, Some((3.0, false))),
        insert(5.5, 1, false, None),
        // 1 s declared, back after 4 s: an overrun from 9.5 s to 10.5 s.
        insert(6.5, 2, true, Some((1.0, false))),
        insert(10.5, 2, false, None),
        // A return with no break on.
        insert(11.0, 3, false, None),
    ];
    let clip = with_scte35(&clean_ts(Muxer::FfmpegVbr), &cues, &dir);
    let report = scan_json(&format!("file://{}", clip.display()), &["--backend", "cpu"]);
    let scte35 = &report["scte35"];
    eprintln!("scte35: {scte35:#}\nevents: {:#}", report["events"]);
    assert_eq!(scte35["messages"], 7, "{report:#}");
    let recent = scte35["recent"].as_array().cloned().unwrap_or_default();
    let commands: Vec<&str> = recent
        .iter()
        .rev()
        .filter_map(|c| c["command"].as_str())
        .collect();
    assert_eq!(
        commands,
        [
            "splice_null",
            "splice_insert",
            "splice_insert",
            "splice_insert",
            "splice_insert",
            "splice_insert",
            "splice_insert"
        ]
    );
    let first_out = &recent[recent.len() - 2];
    assert_eq!(first_out["kind"], "out");
    assert_eq!(first_out["event_id"], 1);
    assert_eq!(first_out["duration"], 3.0);
    assert!(
        (first_out["splice_at"].as_f64().unwrap_or(0.0) - 2.0).abs() < 0.2,
        "{first_out:#}"
    );
    assert!(
        scte35["ad_break"].is_null(),
        "no break on at the end: {scte35:#}"
    );
    let mut found = rules(&report);
    found.sort();
    assert_eq!(found, ["break_overrun", "in_without_out"], "{report:#}");
    assert!(
        report["tr101290"].as_object().is_none_or(|m| m.is_empty()),
        "{:#}",
        report["tr101290"]
    );
}

#[test]
fn run_counts_cues_shows_the_break_on_and_reports_its_overrun() {
    let dir = temp_dir("scte35run");
    let cues = [
        insert(2.0, 1, true, Some((3.0, false))),
        insert(5.5, 1, false, None),
        insert(6.5, 2, true, Some((1.0, false))),
        insert(10.5, 2, false, None),
    ];
    let clip = with_scte35(&clean_ts(Muxer::FfmpegVbr), &cues, &dir);
    let sw = watch_ads(&format!("file://{}", clip.display()));
    // The first break is on from 2 s to 5.5 s of the clip: seen on within 20 s of start.
    assert_break_shows(&sw, Duration::from_secs(20));
    let s = sw.wait_stream("ads", Duration::from_secs(30), "an overrun", |s| {
        events_of(s, "scte35")
            .iter()
            .any(|e| e["rule"] == "break_overrun" && !e["end"].is_null())
    });
    let inserts = sw.metric_sum(
        "streamwatch_scte35_messages_total",
        &["stream=\"ads\"", "command=\"splice_insert\""],
    );
    eprintln!(
        "run: {inserts} splice_insert messages, scte35 {:#}",
        s["scte35"]
    );
    assert!(inserts >= 4.0, "{}", sw.metrics());
    assert!(
        s["scte35"]["messages"].as_u64().is_some_and(|n| n >= 4),
        "{s:#}"
    );
}

/// A live DASH MPD (from a live ffmpeg encoder, through `fault_origin.py`) with two breaks in
/// SCTE-35 EventStreams, one in XML and one in base64: each is read once, counted and shown,
/// each break starts at its event's time and returns by itself at its end, and neither is a
/// fault.
#[test]
fn dash_event_stream_cues_are_read_and_their_breaks_return_by_themselves() {
    let encoder = HlsEncoder::start(&LiveSpec::new(426, 240, 25));
    let mut origin = FaultOrigin::start(&encoder.www());
    origin.set("ads", "scte35_events");
    let sw = watch_ads(&origin.dash_url("ads"));
    // The XML break is on from 3 s to 9 s after the MPD was first read.
    assert_break_shows(&sw, Duration::from_secs(30));
    let s = sw.wait_stream("ads", Duration::from_secs(30), "both breaks", |s| {
        s["scte35"]["messages"].as_u64() == Some(2) && s["scte35"]["ad_break"].is_null()
    });
    let recent: Vec<(Value, Value)> = s["scte35"]["recent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["event_id"].clone(), c["duration"].clone()))
        .collect();
    assert!(
        recent.contains(&(77.into(), 6.0.into())) && recent.contains(&(7.into(), 4.0.into())),
        "{:#}",
        s["scte35"]
    );
    assert_eq!(
        sw.metric_sum(
            "streamwatch_scte35_messages_total",
            &["stream=\"ads\"", "command=\"splice_insert\""]
        ),
        2.0
    );
    assert_eq!(ad_break_active(&sw), 0.0);
    assert!(events_of(&s, "scte35").is_empty(), "{s:#}");
    drop(encoder);
}
