//! `streamwatch demo` (behind `make run`): the built-in channel's scheduled black, freeze and
//! silence are each reported once, at their scheduled times.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Proc, events_of, free_port, http_get, http_get_json, temp_dir, wait_until};

#[test]
fn demo_reports_its_scheduled_black_freeze_and_silence() {
    let dir = temp_dir("demo");
    let port = free_port();
    let mut cmd = Command::new(crate::support::streamwatch::binary());
    cmd.args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .env("NODEVICE_SELECT", "1");
    let demo = Proc::spawn("streamwatch demo", &mut cmd, &dir.join("demo.log"));
    let api = format!("http://127.0.0.1:{port}/api/streams/demo");
    assert!(wait_until(Duration::from_secs(20), || matches!(
        http_get(&api),
        Ok((200, _))
    )));
    let started = Instant::now();

    // Schedule (seconds of media time): black 10-15, freeze 25-31, silence 40-45.
    let mut last = serde_json::Value::Null;
    let done = wait_until(Duration::from_secs(70), || {
        last = http_get_json(&api).unwrap_or_default();
        ["black", "freeze", "silence"]
            .iter()
            .all(|d| events_of(&last, d).iter().any(|e| e["end"].is_number()))
    });
    if !done {
        demo.dump_log();
        panic!(
            "after {:?} not every scheduled defect ended: {last:#}",
            started.elapsed()
        );
    }
    for (detector, start, end) in [
        ("black", 10.0, 15.0),
        ("freeze", 25.0, 31.0),
        ("silence", 40.0, 45.0),
    ] {
        let events = events_of(&last, detector);
        assert_eq!(events.len(), 1, "{detector}: {last:#}");
        let (s, e) = (
            events[0]["start"].as_f64().unwrap(),
            events[0]["end"].as_f64().unwrap(),
        );
        assert!(
            (s - start).abs() <= 0.1 && (e - end).abs() <= 0.1,
            "{detector}: {s}-{e}, scheduled {start}-{end}"
        );
    }
    // Nothing else: the demo shows the scheduled defects and no false alarm of another
    // detector on its picture or tone.
    for detector in [
        "flat",
        "colorbars",
        "blur",
        "blockiness",
        "letterbox",
        "stutter",
        "loudness",
        "clipping",
        "channel",
        "audio_loss",
        "av_sync",
    ] {
        assert!(
            events_of(&last, detector).is_empty(),
            "{detector}: {last:#}"
        );
    }
    let log = std::fs::read_to_string(demo.log_path()).unwrap_or_default();
    assert!(
        log.contains("black defect on demo"),
        "events are not printed: {log}"
    );
}
