//! Codec matrix (issue 15): every video codec (H.264, HEVC, MPEG-2 incl. 1080i50, AV1, VP9)
//! and every audio codec (AAC, AC-3, E-AC-3, MP2, MP3, Opus), each in a real encoded clip in
//! the container it travels in, through `streamwatch scan` as users run it. Each clip carries a
//! black stretch and a silence at known times: both must be found within
//! [`TOLERANCE`] s, and nothing else may be reported (no other defect, no format change, no
//! decoder error). The table this test prints (`--nocapture`) is the README's "Tested codecs".
//!
//! An e2e test rather than an accuracy one: what it checks is that each codec and container
//! goes through demuxing, decoder choice and decoding into the detectors at all, with correct
//! timestamps; the detectors' accuracy on varied content is `tests/accuracy`'s job.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::codec_clips::{BLACK, CodecClip, MATRIX, SILENCE};
use crate::support::proc::run_with_timeout;
use crate::support::scan_json;

/// Largest allowed error of an event's start or end against the injected window, in seconds.
const TOLERANCE: f64 = 0.25;

/// `codec_name` (and `field_order` for video) of the clip's first video and audio streams.
fn probe(path: &str) -> (String, String, String) {
    let args = [
        "-v",
        "error",
        "-show_entries",
        "stream=codec_type,codec_name,field_order",
        "-of",
        "json",
        path,
    ];
    let out = match run_with_timeout(Command::new("ffprobe").args(args), Duration::from_secs(60)) {
        Ok((true, out, _)) => out,
        Ok((false, _, err)) | Err(err) => panic!("ffprobe {path}: {err}"),
    };
    let json: Value = serde_json::from_str(&out).expect("ffprobe JSON");
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let of = |kind: &str, field: &str| {
        streams
            .iter()
            .find(|s| s["codec_type"] == kind)
            .and_then(|s| s[field].as_str())
            .unwrap_or("")
            .to_owned()
    };
    (
        of("video", "codec_name"),
        of("audio", "codec_name"),
        of("video", "field_order"),
    )
}

/// One clip's outcome: the row of the table and what is wrong with it.
struct Row {
    clip: CodecClip,
    black: Option<(f64, f64)>,
    silence: Option<(f64, f64)>,
    decoders: (String, String),
    elapsed: f64,
    problems: Vec<String>,
}

/// The one event of `detector` (None, and a problem, unless there is exactly one), checked
/// against the injected `window`.
fn find(
    report: &Value,
    detector: &str,
    window: (f64, f64),
    problems: &mut Vec<String>,
) -> Option<(f64, f64)> {
    let events: Vec<&Value> = report["events"]
        .as_array()
        .map(|v| v.iter().filter(|e| e["detector"] == detector).collect())
        .unwrap_or_default();
    let [event] = events.as_slice() else {
        problems.push(format!(
            "{} {detector} events, expected 1: {events:?}",
            events.len()
        ));
        return None;
    };
    let start = event["start"].as_f64().unwrap_or(f64::NAN);
    let end = event["end"].as_f64().unwrap_or(f64::NAN);
    if event.get("channel").is_some_and(|c| !c.is_null()) {
        problems.push(format!("{detector} reported for one channel only: {event}"));
    }
    if !((start - window.0).abs() <= TOLERANCE && (end - window.1).abs() <= TOLERANCE) {
        problems.push(format!(
            "{detector} at {start:.3}-{end:.3} s, injected {:.3}-{:.3} s (tolerance {TOLERANCE} s)",
            window.0, window.1
        ));
    }
    Some((start, end))
}

fn check(clip: CodecClip) -> Row {
    let path = clip.path();
    let path = path.to_str().expect("utf-8 path");
    let mut problems = Vec::new();

    // The clip is what it claims to be.
    let (video, audio, field_order) = probe(path);
    if (video.as_str(), audio.as_str()) != clip.probe {
        problems.push(format!(
            "ffprobe sees {video}+{audio}, expected {}+{}",
            clip.probe.0, clip.probe.1
        ));
    }
    if clip.interlaced && field_order != "tt" {
        problems.push(format!("field order {field_order:?}, expected \"tt\""));
    }

    let report = scan_json(path, &[]);
    let black = find(&report, "black", BLACK, &mut problems);
    let silence = find(&report, "silence", SILENCE, &mut problems);
    let others: Vec<&Value> = report["events"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter(|e| e["detector"] != "black" && e["detector"] != "silence")
                .collect()
        })
        .unwrap_or_default();
    if !others.is_empty() {
        problems.push(format!("false alarms: {others:?}"));
    }
    if report["info"].as_array().is_some_and(|v| !v.is_empty()) {
        problems.push(format!("unexpected info events: {}", report["info"]));
    }
    if report["decode_errors"].as_u64() != Some(0) {
        problems.push(format!("decoder errors: {}", report["decode_errors"]));
    }
    if let Some(err) = report.get("error") {
        problems.push(format!("scan incomplete: {err}"));
    }
    let frames = report["frames"].as_u64().unwrap_or(0);
    let expected_frames = (clip.seconds * clip.fps as f64).round() as u64;
    if frames.abs_diff(expected_frames) > 1 {
        problems.push(format!(
            "{frames} frames analysed, expected {expected_frames}"
        ));
    }
    let mut decoder = |kind: &str| {
        report["decoders"][kind]
            .as_str()
            .unwrap_or_else(|| {
                problems.push(format!("no {kind} decoder reported"));
                ""
            })
            .to_owned()
    };
    let decoders = (decoder("video"), decoder("audio"));
    Row {
        clip,
        black,
        silence,
        decoders,
        elapsed: report["elapsed"].as_f64().unwrap_or(f64::NAN),
        problems,
    }
}

/// `3.000-5.600 (+0.000/+0.000)`: the event and its errors against the injected window.
fn cell(found: Option<(f64, f64)>, truth: (f64, f64)) -> String {
    match found {
        Some((a, b)) => format!("{a:.3}-{b:.3} ({:+.3}/{:+.3})", a - truth.0, b - truth.1),
        None => "MISSED".to_owned(),
    }
}

#[test]
fn every_codec_finds_injected_black_and_silence_and_nothing_else() {
    let rows: Vec<Row> = MATRIX.iter().map(|&clip| check(clip)).collect();

    println!(
        "\nblack injected {:.1}-{:.1} s, silence {:.1}-{:.1} s; found start-end (error start/end), s",
        BLACK.0, BLACK.1, SILENCE.0, SILENCE.1
    );
    println!(
        "| video | audio | container | clip | black found | silence found | decoders (video, audio) | scan s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let c = r.clip;
        println!(
            "| {} | {} | {} | {}x{}@{}{} {}s | {} | {} | `{}`, `{}` | {:.2} |",
            c.video,
            c.audio,
            c.format,
            c.width,
            c.height,
            c.fps,
            if c.interlaced { "i" } else { "p" },
            c.seconds,
            cell(r.black, BLACK),
            cell(r.silence, SILENCE),
            r.decoders.0,
            r.decoders.1,
            r.elapsed
        );
    }
    let failures: Vec<String> = rows
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| format!("{}: {}", r.clip.name, r.problems.join("; ")))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
