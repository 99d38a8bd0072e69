//! Closed captions on real encoded streams: H.264 in MPEG-TS with CEA-608 field 1 and CEA-708
//! service 1 data in the SEI (x264enc from GStreamer's `cccombiner`), and the same re-encoded
//! to MPEG-2 video with the captions in its user data (ffmpeg), and HEVC with CEA-608 in its
//! SEI (`support/hevc_captions.py`), read back through the
//! same pipeline `run` and `scan` build. Captions that stop for `min_duration` are a
//! `captions` defect until they return; a clip without captions is one only when captions
//! are expected.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::caption_clips::{
    CaptionClip, FIELD1_BYTES_PER_FRAME, SERVICE1_BYTES_PER_FRAME, ffprobe_sees_captions, hevc_clip,
};
use crate::support::clips::ffmpeg_cached;
use crate::support::{Streamwatch, scan_json, temp_dir, wait_until};

const FPS: u32 = 25;
/// Captions counted at the decoder's input are judged when the next decoded frame arrives: a
/// few frames of decoder delay, plus a frame of rounding at each end.
const EDGE_TOLERANCE: f64 = 0.3;

fn clip_path(spans: &[(f64, f64)]) -> PathBuf {
    CaptionClip {
        seconds: 30,
        fps: FPS,
        spans: spans.to_vec(),
        bframes: 0,
        padded: false,
    }
    .path()
}

fn clip(spans: &[(f64, f64)]) -> String {
    format!("file://{}", clip_path(spans).display())
}

fn captions_events(report: &Value) -> Vec<(f64, f64)> {
    report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["detector"] == "captions")
        .map(|e| {
            let at = |k: &str| e[k].as_f64().unwrap_or(f64::NAN);
            (at("start"), at("end"))
        })
        .collect()
}

/// The report has one `captions` defect, from `truth.0` to `truth.1` within `tolerance`.
fn assert_one_defect(report: &Value, truth: (f64, f64), tolerance: f64) {
    let events = captions_events(report);
    assert_eq!(events.len(), 1, "{:#}", report["events"]);
    let (start, end) = events[0];
    assert!((start - truth.0).abs() <= tolerance, "start {start}");
    assert!((end - truth.1).abs() <= tolerance, "end {end}");
}

fn scan(source: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--backend", "cpu"];
    args.extend_from_slice(extra);
    let report = scan_json(source, &args);
    eprintln!(
        "captions: {:#}\nevents: {:#}",
        report["captions"], report["events"]
    );
    report
}

/// The report's latest second carries field 1 and service 1 at the clip's rate (±10%).
fn assert_rates(captions: &Value) {
    assert_eq!(captions["present"], true, "{captions:#}");
    assert_eq!(captions["seen"], true, "{captions:#}");
    let field1 = f64::from(FIELD1_BYTES_PER_FRAME * FPS);
    let service1 = f64::from(SERVICE1_BYTES_PER_FRAME * FPS);
    for (key, want) in [
        ("cea608_field1", field1),
        ("cea708_service1", service1),
        ("bytes_per_second", field1 + service1),
    ] {
        let got = captions[key].as_f64().unwrap_or(0.0);
        assert!(
            (got - want).abs() <= want * 0.1,
            "{key}: {got}, want {want}"
        );
    }
    assert!(captions["cea608_field2"].is_null(), "{captions:#}");
}

#[test]
fn captions_that_stop_are_a_defect_until_they_return() {
    let report = scan(&clip(&[(0.0, 6.0), (20.0, 30.0)]), &[]);
    assert_rates(&report["captions"]);
    // Dated from the first frame without captions like every detector; raised 10 s later.
    assert_one_defect(&report, (6.0, 20.0), EDGE_TOLERANCE);
}

/// The stop-and-return clip re-encoded to MPEG-2 video by ffmpeg, which carries the decoded
/// captions over as A/53 user data in the picture headers (`-a53cc`).
fn mpeg2_clip(spans: &[(f64, f64)]) -> PathBuf {
    let h264 = clip_path(spans);
    let args: Vec<String> = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-i",
        h264.to_str().expect("utf-8 path"),
        "-c:v",
        "mpeg2video",
        "-a53cc",
        "1",
        "-q:v",
        "4",
        "-an",
        "-f",
        "mpegts",
        "OUT",
    ]
    .map(String::from)
    .to_vec();
    ffmpeg_cached(&args, "ts", Duration::from_secs(120))
}

#[test]
fn mpeg2_user_data_captions_that_stop_are_a_defect_until_they_return() {
    let path = mpeg2_clip(&[(0.0, 6.0), (20.0, 30.0)]);
    assert!(ffprobe_sees_captions(&path));
    let report = scan(&format!("file://{}", path.display()), &[]);
    assert_rates(&report["captions"]);
    assert_one_defect(&report, (6.0, 20.0), EDGE_TOLERANCE);
}

#[test]
fn padding_through_a_pause_in_the_dialogue_is_no_defect() {
    let path = CaptionClip {
        seconds: 30,
        fps: FPS,
        spans: vec![(0.0, 6.0), (20.0, 30.0)],
        bframes: 0,
        padded: true,
    }
    .path();
    let report = scan(&format!("file://{}", path.display()), &[]);
    assert_rates(&report["captions"]);
    assert!(
        captions_events(&report).is_empty(),
        "{:#}",
        report["events"]
    );
}

#[test]
fn hevc_sei_captions_that_stop_are_a_defect_until_they_return() {
    let path = hevc_clip(30, &[(0.0, 6.0), (20.0, 30.0)]);
    assert!(ffprobe_sees_captions(&path));
    let report = scan(&format!("file://{}", path.display()), &[]);
    let captions = &report["captions"];
    assert_eq!(captions["present"], true, "{captions:#}");
    let field1 = captions["cea608_field1"].as_f64().unwrap_or(0.0);
    let want = f64::from(FIELD1_BYTES_PER_FRAME * FPS);
    assert!((field1 - want).abs() <= want * 0.1, "field 1: {field1}");
    assert_one_defect(&report, (6.0, 20.0), EDGE_TOLERANCE);
}

#[test]
fn b_frames_decoded_out_of_order_keep_their_captions_in_place() {
    let path = CaptionClip {
        seconds: 30,
        fps: FPS,
        spans: vec![(0.0, 6.0), (20.0, 30.0)],
        bframes: 2,
        padded: false,
    }
    .path();
    let report = scan(&format!("file://{}", path.display()), &[]);
    assert_rates(&report["captions"]);
    assert_one_defect(&report, (6.0, 20.0), EDGE_TOLERANCE);
}

#[test]
fn keyframes_only_analysis_still_counts_every_pictures_captions() {
    let report = scan(
        &clip(&[(0.0, 6.0), (20.0, 30.0)]),
        &["--analysis", "keyframes"],
    );
    assert!(report["frames_skipped"].as_u64().unwrap_or(0) > 500);
    assert_rates(&report["captions"]);
    // Judged at keyframes, 2 s apart.
    assert_one_defect(&report, (6.0, 20.0), 2.0 + EDGE_TOLERANCE);
}

#[test]
fn the_clips_captions_are_seen_by_ffmpeg_too() {
    // An independent reader (libavcodec's H.264 decoder) finds A/53 captions in the SEI.
    assert!(ffprobe_sees_captions(&clip_path(&[(0.0, 30.0)])));
    assert!(!ffprobe_sees_captions(&clip_path(&[])));
}

#[test]
fn continuous_captions_and_a_captionless_clip_raise_nothing() {
    let report = scan(&clip(&[(0.0, 30.0)]), &[]);
    assert_rates(&report["captions"]);
    assert_eq!(captions_events(&report), []);
    let report = scan(&clip(&[]), &[]);
    assert_eq!(report["captions"]["present"], false);
    assert_eq!(report["captions"]["seen"], false);
    assert_eq!(report["captions"]["bytes_per_second"], 0.0);
    assert_eq!(captions_events(&report), []);
}

#[test]
fn a_captionless_clip_is_a_defect_when_captions_are_expected() {
    let dir = temp_dir("captions-expect");
    let config = dir.join("expect.toml");
    std::fs::write(&config, "[detectors.captions]\nexpect = true\n").unwrap();
    let report = scan(&clip(&[]), &["--config", config.to_str().unwrap()]);
    let events = captions_events(&report);
    assert_eq!(events.len(), 1, "{:#}", report["events"]);
    let (start, end) = events[0];
    assert!(start.abs() <= EDGE_TOLERANCE, "start {start}");
    assert!((end - 30.0).abs() <= 0.5, "ends with the clip: {end}");
}

#[test]
fn run_exports_the_caption_rate_and_shows_services_in_the_api() {
    let source = clip(&[(0.0, 30.0)]);
    let sw = Streamwatch::start(
        &format!("[[streams]]\nid = \"cc\"\nurl = \"{source}\"\nexpect_captions = true\n"),
        &[],
    );
    let rate = |sw: &Streamwatch| {
        sw.metric_sum("streamwatch_captions_bytes_per_second", &["stream=\"cc\""])
    };
    let want = f64::from((FIELD1_BYTES_PER_FRAME + SERVICE1_BYTES_PER_FRAME) * FPS);
    let shown = wait_until(Duration::from_secs(20), || {
        (rate(&sw) - want).abs() <= want * 0.1
    });
    if !shown {
        sw.dump_log();
    }
    assert!(shown, "rate {} never near {want}", rate(&sw));
    let stream = sw.stream("cc");
    let captions = &stream["captions"];
    assert_rates(captions);
    let defects = stream["active_defects"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        defects.iter().all(|d| d["detector"] != "captions"),
        "{defects:#?}"
    );
    assert!(sw.terminate().success());
}

#[test]
fn a_looped_captioned_file_keeps_its_rate_across_the_loop() {
    let path = CaptionClip {
        seconds: 4,
        fps: FPS,
        spans: vec![(0.0, 4.0)],
        bframes: 2,
        padded: false,
    }
    .path();
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"loop\"\nurl = \"file://{}\"\n\
             [streams.detectors.captions]\nmin_duration = 0.5\n",
            path.display()
        ),
        &[],
    );
    let want = f64::from((FIELD1_BYTES_PER_FRAME + SERVICE1_BYTES_PER_FRAME) * FPS);
    let rate = |sw: &Streamwatch| {
        sw.metric_sum(
            "streamwatch_captions_bytes_per_second",
            &["stream=\"loop\""],
        )
    };
    assert!(wait_until(Duration::from_secs(20), || rate(&sw) > 0.0));
    // Three passes of the 4 s file: every second's rate, loop points included.
    let mut rates = Vec::new();
    for _ in 0..24 {
        std::thread::sleep(Duration::from_millis(500));
        rates.push(rate(&sw));
    }
    eprintln!("rates across loops: {rates:?}");
    assert!(
        rates.iter().all(|r| (r - want).abs() <= want * 0.1),
        "{rates:?}"
    );
    let stream = sw.stream("loop");
    let captions_events = |key: &str| {
        stream[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["detector"] == "captions")
            .count()
    };
    assert_eq!(captions_events("active_defects"), 0, "{stream:#}");
    assert_eq!(captions_events("last_events"), 0, "{stream:#}");
    assert!(sw.terminate().success());
}
