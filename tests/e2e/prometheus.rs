//! A real Prometheus scrapes streamwatch: the exposition passes `promtool check metrics`, and
//! `streamwatch_defect_active` is 1 while an injected defect lasts and 0 after it.

use std::time::{Duration, Instant};

use crate::support::{ClipSpec, Prometheus, Streamwatch, clip, promtool_check_metrics, wait_until};

#[test]
fn prometheus_sees_the_defect_while_it_lasts() {
    // Played in real time: black from 8 s to 16 s after the stream starts.
    let file = clip(&ClipSpec {
        seconds: 40.0,
        black: vec![(8.0, 16.0)],
        ..Default::default()
    });
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"channel1\"\nurl = \"file://{}\"\n",
            file.display()
        ),
        &[],
    );
    let started = Instant::now();
    let prom = Prometheus::start(&[&sw.target()], &[]);
    assert!(
        prom.wait_targets_up(Duration::from_secs(30)),
        "Prometheus never scraped streamwatch"
    );

    let exposition = sw.metrics();
    promtool_check_metrics(&exposition).unwrap_or_else(|e| panic!("promtool check metrics: {e}"));
    for name in [
        "streamwatch_build_info",
        "streamwatch_stream_info",
        "streamwatch_stream_up",
        "streamwatch_frames_total",
        "streamwatch_frames_dropped_total",
        "streamwatch_frames_skipped_total",
        "streamwatch_stream_analysis_tier",
        "streamwatch_stream_restarts_total",
        "streamwatch_last_frame_timestamp_seconds",
        "streamwatch_defect_active",
        "streamwatch_defect_events_total",
        "streamwatch_defect_seconds_total",
        "streamwatch_gpu_batches_total",
        "streamwatch_gpu_batch_frames",
        "streamwatch_detect_latency_seconds",
        "streamwatch_video_luma_mean_ratio",
        "streamwatch_video_dark_pixels_ratio",
        "streamwatch_video_changed_pixels_ratio",
    ] {
        assert!(
            exposition.contains(&format!("# TYPE {name} ")),
            "{name} missing"
        );
    }

    let active = r#"streamwatch_defect_active{stream="channel1",detector="black"}"#;
    let raised = wait_until(Duration::from_secs(30), || {
        prom.query_one(active) == Some(1.0)
    });
    assert!(
        raised,
        "defect never active in Prometheus: {:?}",
        prom.query(active)
    );
    let seen_after = started.elapsed();
    let dark = prom
        .query_one(r#"streamwatch_video_dark_pixels_ratio{stream="channel1"}"#)
        .unwrap_or(0.0);
    assert!(
        dark >= 0.98,
        "dark pixel ratio {dark} during the black defect"
    );
    assert_eq!(
        prom.query_one(r#"streamwatch_stream_up{stream="channel1"}"#),
        Some(1.0)
    );
    assert!(
        prom.query_one(r#"streamwatch_frames_total{stream="channel1"}"#)
            .unwrap_or(0.0)
            > 100.0
    );
    println!(
        "black started 8 s into the stream; Prometheus saw it active {seen_after:?} after start"
    );

    let cleared = wait_until(Duration::from_secs(20), || {
        prom.query_one(active) == Some(0.0)
    });
    assert!(cleared, "defect never cleared in Prometheus");
    let events = prom
        .query_one(r#"streamwatch_defect_events_total{stream="channel1",detector="black"}"#)
        .unwrap_or(0.0);
    assert_eq!(events, 1.0);
    let seconds = prom
        .query_one(r#"streamwatch_defect_seconds_total{stream="channel1",detector="black"}"#)
        .unwrap_or(0.0);
    assert!((seconds - 8.0).abs() < 0.5, "defect seconds {seconds}");
    assert!(sw.terminate().success());
}
