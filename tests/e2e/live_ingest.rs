//! Live ingest through real servers on loopback: RTMP (nginx-rtmp), HLS over HTTP, SRT (caller)
//! and RTSP, next to a local file played in real time, all in one streamwatch process.

use std::time::Duration;

use crate::support::{
    ClipSpec, Content, HlsOrigin, LiveSpec, Nginx, Streamwatch, clip, events_of, free_port,
    free_udp_port, push_rtmp, rtsp_server, srt_source,
};
use serde_json::Value;

const LIVE: [&str; 4] = ["rtmp", "hls", "srt", "rtsp"];

fn frames(s: &Value) -> u64 {
    s["frames"].as_u64().unwrap_or(0)
}

#[test]
fn every_protocol_comes_up_reports_injected_black_and_survives_a_server_restart() {
    // The file is encoded before any live source starts: on a cold, busy CI machine its encoding
    // alone can take longer than the lead the black window gives streamwatch to come up.
    let file = clip(&ClipSpec {
        seconds: 120.0,
        content: Content::TestPattern,
        ..Default::default()
    });
    // Black from 14 s to 20 s of each source's own timeline: well after streamwatch is up even
    // when it starts slowly, and long enough for the 2 s minimum duration behind HLS latency.
    let spec = LiveSpec::new(320, 240, 25).with_black(14.0, 20.0);
    let mut nginx = Nginx::start();
    let mut rtmp_push = push_rtmp(&nginx, "cam", &spec);
    let hls = HlsOrigin::start(&spec);
    let srt_port = free_udp_port();
    let _srt = srt_source(srt_port, &spec);
    let rtsp_port = free_port();
    let _rtsp = rtsp_server(rtsp_port, &spec);

    let config = live_config(
        &nginx.rtmp_url("cam"),
        &hls.url(),
        (srt_port, rtsp_port),
        &file.display().to_string(),
    );
    let sw = Streamwatch::start(&config, &[]);

    for id in LIVE.iter().chain(&["file"]) {
        let s = sw.wait_stream(id, Duration::from_secs(30), "up with frames", |s| {
            s["state"] == "up" && frames(s) >= 25
        });
        assert_eq!(
            (s["width"].as_u64(), s["height"].as_u64()),
            (Some(320), Some(240)),
            "{id}"
        );
    }
    for id in LIVE {
        let s = sw.wait_stream(id, Duration::from_secs(45), "a black event", |s| {
            !events_of(s, "black").is_empty()
        });
        let event = events_of(&s, "black")[0].clone();
        assert!(
            event["start"].as_f64().is_some_and(|t| t > 0.0),
            "{id}: {event}"
        );
    }
    let file_stream = sw.stream("file");
    assert!(
        events_of(&file_stream, "black").is_empty() && events_of(&file_stream, "freeze").is_empty(),
        "the clean file gave events: {file_stream:#}"
    );
    assert!(
        sw.metric_sum(
            "streamwatch_defect_events_total",
            &["detector=\"black\"", "stream=\"srt\""]
        ) >= 1.0
    );

    // Kill the RTMP server: that stream goes down with a reason; the others keep running.
    let others_before: Vec<u64> = ["hls", "srt", "rtsp", "file"]
        .iter()
        .map(|id| frames(&sw.stream(id)))
        .collect();
    nginx.stop();
    rtmp_push.stop();
    let down = sw.wait_stream("rtmp", Duration::from_secs(15), "down", |s| {
        s["state"] == "down"
    });
    assert!(
        down["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{down:#}"
    );
    std::thread::sleep(Duration::from_secs(2));
    for (id, before) in ["hls", "srt", "rtsp", "file"].iter().zip(others_before) {
        let s = sw.stream(id);
        assert_eq!(
            s["state"], "up",
            "{id} was affected by the RTMP outage: {s:#}"
        );
        assert!(
            frames(&s) > before + 25,
            "{id} stopped counting frames: {s:#}"
        );
    }
    assert!(sw.metric_sum("streamwatch_stream_up", &["stream=\"rtmp\""]) == 0.0);

    assert_rtmp_recovers(&sw, &mut nginx);

    let status = sw.terminate();
    assert!(
        status.success(),
        "streamwatch did not shut down cleanly: {status}"
    );
}

#[test]
fn scan_of_a_live_source_stops_after_the_duration() {
    // Black from 1 s to 5 s of the server's timeline; the scan covers 7 s of media.
    let port = free_port();
    let _rtsp = rtsp_server(port, &LiveSpec::new(320, 240, 25).with_black(1.0, 5.0));
    let report = crate::support::scan_json(
        &format!("rtsp://127.0.0.1:{port}/test"),
        &["--duration", "7"],
    );
    let frames = report["frames"].as_u64().unwrap_or(0);
    let duration = report["duration"].as_f64().unwrap_or(0.0);
    assert!((6.9..7.5).contains(&duration), "{report:#}");
    assert!(
        (150..=190).contains(&frames),
        "{frames} frames for 7 s at 25 fps: {report:#}"
    );
    let events = report["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["detector"] == "black"),
        "black not found in the live scan: {report:#}"
    );
}

/// A config of the four live streams and the file, with fast restarts.
fn live_config(rtmp: &str, hls: &str, (srt_port, rtsp_port): (u16, u16), file: &str) -> String {
    format!(
        r#"
[ingest]
stall_timeout = 3.0
restart_backoff_initial = 0.5
restart_backoff_max = 2.0

[[streams]]
id = "rtmp"
url = "{rtmp}"

[[streams]]
id = "hls"
url = "{hls}"

[[streams]]
id = "srt"
url = "srt://127.0.0.1:{srt_port}?mode=caller"

[[streams]]
id = "rtsp"
url = "rtsp://127.0.0.1:{rtsp_port}/test"

[[streams]]
id = "file"
url = "file://{file}"
"#,
    )
}

/// The RTMP server returns: the stream recovers by itself, counted as a restart.
fn assert_rtmp_recovers(sw: &Streamwatch, nginx: &mut Nginx) {
    nginx.restart();
    let _rtmp_push = push_rtmp(nginx, "cam", &LiveSpec::new(320, 240, 25));
    let back = sw.wait_stream("rtmp", Duration::from_secs(30), "back up", |s| {
        s["state"] == "up"
    });
    assert!(
        back["restarts"].as_u64().is_some_and(|r| r >= 1),
        "{back:#}"
    );
    assert!(sw.metric_sum("streamwatch_stream_restarts_total", &["stream=\"rtmp\""]) >= 1.0);
}
