//! HLS fetched by streamwatch itself: ABR masters in any order, with an audio-only variant
//! listed first and audio in a rendition of its own, are analysed on one pinned rendition
//! (`rendition`, `max_height`) that never switches, with no false transport alarm.

use std::time::Duration;

use serde_json::Value;

use crate::support::abr::{AUDIO, AbrOrigin, HIGH, LOW, MPD, Packaging};
use crate::support::streamwatch::{Streamwatch, events_of};

/// Lowest first, an audio-only variant first of all, audio in its own rendition.
fn audio_first_master() -> String {
    format!(
        "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"main\",DEFAULT=YES,AUTOSELECT=YES,URI=\"{AUDIO}\"
#EXT-X-STREAM-INF:BANDWIDTH=70000,CODECS=\"mp4a.40.2\"
{AUDIO}
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180,CODECS=\"avc1.42c00d,mp4a.40.2\",AUDIO=\"aud\"
{LOW}
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,CODECS=\"avc1.42c01e,mp4a.40.2\",AUDIO=\"aud\"
{HIGH}
"
    )
}

/// Highest first, the same renditions.
fn high_first_master() -> String {
    format!(
        "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"main\",DEFAULT=YES,URI=\"{AUDIO}\"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,RESOLUTION=640x360,AUDIO=\"aud\"
{HIGH}
#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x180,AUDIO=\"aud\"
{LOW}
"
    )
}

fn frames(s: &Value) -> u64 {
    s["frames"].as_u64().unwrap_or(0)
}

fn size(s: &Value) -> (u64, u64) {
    (
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
    )
}

/// Every defect the stream reported that is not one of `expected`.
fn unexpected_events(s: &Value, expected: &[&str]) -> Vec<Value> {
    ["active_defects", "last_events"]
        .iter()
        .filter_map(|k| s[k].as_array())
        .flatten()
        .filter(|e| !expected.iter().any(|d| e["detector"] == *d))
        .cloned()
        .collect()
}

#[test]
fn abr_masters_stay_pinned_on_the_chosen_rendition_and_are_analysed() {
    // Black 14-19 s and silence 24-29 s of the encoder's timeline: after streamwatch is up
    // and about three 1 s segments behind live.
    let origin = AbrOrigin::start(Packaging::Hls, (14.0, 19.0), (24.0, 29.0));
    let audio_first = origin.master("audio_first.m3u8", &audio_first_master());
    let high_first = origin.master("high_first.m3u8", &high_first_master());
    let config = format!(
        r#"
[ingest]
stall_timeout = 4.0
restart_backoff_initial = 0.5

[[streams]]
id = "highest"
url = "{audio_first}"

[[streams]]
id = "lowest"
url = "{high_first}"
rendition = "lowest"

[[streams]]
id = "capped"
url = "{audio_first}"
max_height = 200

[[streams]]
id = "index"
url = "{high_first}"
rendition = 0
"#
    );
    let sw = Streamwatch::start(&config, &[]);
    let expected = [
        ("highest", (640, 360)),
        ("lowest", (320, 180)),
        ("capped", (320, 180)),
        ("index", (640, 360)),
    ];
    for (id, dims) in expected {
        let s = sw.wait_stream(id, Duration::from_secs(30), "up with frames", |s| {
            s["state"] == "up" && frames(s) >= 50
        });
        assert_eq!(size(&s), dims, "{id}: {s:#}");
    }
    let highest = sw.wait_stream(
        "highest",
        Duration::from_secs(40),
        "black and silence",
        |s| !events_of(s, "black").is_empty() && !events_of(s, "silence").is_empty(),
    );
    let variants = highest["hls"].as_array().expect("hls variants listed");
    let analysed: Vec<&str> = variants
        .iter()
        .filter(|v| v["analysed"] == true)
        .filter_map(|v| v["variant"].as_str())
        .collect();
    assert_eq!(analysed, ["a0", "v2"], "{highest:#}");
    assert_eq!(variants.len(), 4, "v0-v2 and a0 checked: {highest:#}");
    assert!(
        highest["last_segment"]["bytes"]
            .as_u64()
            .is_some_and(|b| b > 1000),
        "{highest:#}"
    );
    for (id, dims) in expected {
        let s = sw.wait_stream(id, Duration::from_secs(20), "black", |s| {
            !events_of(s, "black").is_empty()
        });
        assert_eq!(size(&s), dims, "{id} switched rendition: {s:#}");
        assert_eq!(s["restarts"], 0, "{id} restarted: {s:#}");
        let unexpected = unexpected_events(&s, &["black", "silence"]);
        assert!(unexpected.is_empty(), "{id}: false events {unexpected:#?}");
    }
    assert!(
        sw.metric_sum(
            "streamwatch_segment_download_bytes_total",
            &["stream=\"lowest\""]
        ) > 10_000.0
    );
    assert!(
        sw.metric_sum(
            "streamwatch_http_requests_total",
            &["stream=\"highest\"", "kind=\"segment\"", "code=\"200\""]
        ) >= 10.0
    );
    let report = crate::support::scan_json(&high_first, &["--duration", "4"]);
    assert!(
        report["frames"].as_u64().is_some_and(|f| f >= 90),
        "scan of a master: {report:#}"
    );
    drop(origin);
    assert!(sw.terminate().success());
}

#[test]
fn live_dash_is_pinned_analysed_and_checked() {
    let origin = AbrOrigin::start(Packaging::Dash, (14.0, 19.0), (24.0, 29.0));
    let mpd = origin.url(MPD);
    let config = format!(
        r#"
[ingest]
stall_timeout = 4.0
restart_backoff_initial = 0.5

[[streams]]
id = "highest"
url = "{mpd}"

[[streams]]
id = "lowest"
url = "{mpd}"
rendition = "lowest"
"#
    );
    let sw = Streamwatch::start(&config, &[]);
    let expected = [("highest", (640, 360)), ("lowest", (320, 180))];
    for (id, dims) in expected {
        let s = sw.wait_stream(id, Duration::from_secs(30), "up with frames", |s| {
            s["state"] == "up" && frames(s) >= 50
        });
        assert_eq!(size(&s), dims, "{id}: {s:#}");
    }
    let highest = sw.wait_stream(
        "highest",
        Duration::from_secs(40),
        "black and silence",
        |s| !events_of(s, "black").is_empty() && !events_of(s, "silence").is_empty(),
    );
    let reps = highest["hls"].as_array().expect("representations listed");
    let analysed: Vec<&str> = reps
        .iter()
        .filter(|v| v["analysed"] == true)
        .filter_map(|v| v["variant"].as_str())
        .collect();
    assert_eq!(analysed, ["a0", "v1"], "{highest:#}");
    for (id, dims) in expected {
        let s = sw.wait_stream(id, Duration::from_secs(20), "black", |s| {
            !events_of(s, "black").is_empty()
        });
        assert_eq!(size(&s), dims, "{id} switched representation: {s:#}");
        assert_eq!(s["restarts"], 0, "{id} restarted: {s:#}");
        let unexpected = unexpected_events(&s, &["black", "silence"]);
        assert!(unexpected.is_empty(), "{id}: false events {unexpected:#?}");
    }
    assert!(
        sw.metric_sum(
            "streamwatch_http_requests_total",
            &["stream=\"lowest\"", "kind=\"mpd\"", "code=\"200\""]
        ) >= 3.0
    );
    drop(origin);
    assert!(sw.terminate().success());
}
