//! HLS fetched by streamwatch itself: ABR masters in any order, with an audio-only variant
//! listed first and audio in a rendition of its own, are analysed on one pinned rendition
//! (`rendition`, `max_height`) that never switches, with no false transport alarm.

use std::time::Duration;

use serde_json::Value;

use std::process::Command;

use crate::support::abr::{AUDIO, AbrOrigin, HIGH, LOW, MPD, Packaging};
use crate::support::proc::{Proc, free_port, tcp_accepts, temp_dir, wait_until};
use crate::support::streamwatch::{Streamwatch, events_of, scan_json};

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

/// Radio: a master of the audio rendition alone.
fn audio_only_master() -> String {
    format!(
        "#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=70000,CODECS=\"mp4a.40.2\"
{AUDIO}
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

/// Waits for every stream of `expected` to be up at its size, then for the injected black
/// and silence on `highest`, which it returns.
fn wait_up_then_defects(sw: &Streamwatch, expected: &[(&str, (u64, u64))]) -> Value {
    for (id, dims) in expected {
        let s = sw.wait_stream(id, Duration::from_secs(30), "up with frames", |s| {
            s["state"] == "up" && frames(s) >= 50
        });
        assert_eq!(size(&s), *dims, "{id}: {s:#}");
    }
    sw.wait_stream(
        "highest",
        Duration::from_secs(40),
        "black and silence",
        |s| !events_of(s, "black").is_empty() && !events_of(s, "silence").is_empty(),
    )
}

/// The renditions whose segments are decoded.
fn analysed(s: &Value) -> Vec<&str> {
    s["hls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["analysed"] == true)
        .filter_map(|v| v["variant"].as_str())
        .collect()
}

/// Each stream found the black, kept its size (never switched rendition), never restarted
/// and reported nothing but the injected black and silence.
fn assert_pinned_and_clean(sw: &Streamwatch, kind: &str, expected: &[(&str, (u64, u64))]) {
    for (id, dims) in expected {
        let s = sw.wait_stream(id, Duration::from_secs(20), "black", |s| {
            !events_of(s, "black").is_empty()
        });
        assert_eq!(size(&s), *dims, "{id} switched rendition: {s:#}");
        report(kind, id, &s);
        assert_eq!(s["restarts"], 0, "{id} restarted: {s:#}");
        let unexpected = unexpected_events(&s, &["black", "silence"]);
        assert!(unexpected.is_empty(), "{id}: false events {unexpected:#?}");
    }
}

/// One line of figures for the record: frames analysed and the events found.
fn report(kind: &str, id: &str, s: &Value) {
    let spans: Vec<String> = ["active_defects", "last_events"]
        .iter()
        .filter_map(|k| s[k].as_array())
        .flatten()
        .map(|e| format!("{} {}-{}", e["detector"], e["start"], e["end"]))
        .collect();
    eprintln!(
        "{kind} {id}: {}x{} frames {} events [{}]",
        s["width"],
        s["height"],
        s["frames"],
        spans.join(", ")
    );
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
    let radio = origin.master("radio.m3u8", &audio_only_master());
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

[[streams]]
id = "radio"
url = "{radio}"
"#
    );
    let sw = Streamwatch::start(&config, &[]);
    let expected = [
        ("highest", (640, 360)),
        ("lowest", (320, 180)),
        ("capped", (320, 180)),
        ("index", (640, 360)),
    ];
    let highest = wait_up_then_defects(&sw, &expected);
    assert_eq!(analysed(&highest), ["a0", "v2"], "{highest:#}");
    assert_eq!(
        highest["hls"].as_array().map(Vec::len),
        Some(4),
        "v0-v2 and a0 checked: {highest:#}"
    );
    assert!(
        highest["last_segment"]["bytes"]
            .as_u64()
            .is_some_and(|b| b > 1000),
        "{highest:#}"
    );
    assert_pinned_and_clean(&sw, "hls", &expected);
    let radio = sw.wait_stream("radio", Duration::from_secs(20), "silence", |s| {
        !events_of(s, "silence").is_empty()
    });
    report("hls", "radio", &radio);
    assert_eq!(radio["state"], "up", "{radio:#}");
    assert_eq!(
        radio["restarts"], 0,
        "the audio-only stream restarted: {radio:#}"
    );
    let unexpected = unexpected_events(&radio, &["silence"]);
    assert!(unexpected.is_empty(), "radio: false events {unexpected:#?}");
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
    // A copy that never updates again: a live MPD whose packager stopped.
    let frozen = origin.master("frozen.mpd", &origin.read(MPD));
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

[[streams]]
id = "frozen"
url = "{frozen}"
"#
    );
    let sw = Streamwatch::start(&config, &[]);
    let expected = [("highest", (640, 360)), ("lowest", (320, 180))];
    let highest = wait_up_then_defects(&sw, &expected);
    assert_eq!(analysed(&highest), ["a0", "v1"], "{highest:#}");
    assert_pinned_and_clean(&sw, "dash", &expected);
    assert!(
        sw.metric_sum(
            "streamwatch_http_requests_total",
            &["stream=\"lowest\"", "kind=\"mpd\"", "code=\"200\""]
        ) >= 3.0
    );
    let frozen = sw.wait_stream("frozen", Duration::from_secs(10), "playlist_stale", |s| {
        !events_of(s, "playlist_stale").is_empty()
    });
    report("dash", "frozen", &frozen);
    drop(origin);
    assert!(sw.terminate().success());
}

/// A 10 s clip, black over [3, 5.5) and silent over [6, 8.5), packaged on demand into `www`
/// the way OTT packagers do: HLS with fMP4 segments behind an init map (`vod.m3u8`) and a
/// static DASH MPD with a SegmentTimeline (`vod.mpd`).
fn package_vod(www: &std::path::Path) {
    let input = |cmd: &mut Command| {
        cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=10"])
            .args(["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000:duration=10"])
            .args([
                "-vf",
                "format=yuv420p,drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='gte(t,3)*lt(t,5.5)'",
            ])
            .args(["-af", "volume=volume=0:enable='gte(t,6)*lt(t,8.5)'"])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-keyint_min", "50"])
            .args(["-sc_threshold", "0", "-c:a", "aac", "-b:a", "64k", "-ac", "1"]);
    };
    let mut hls = Command::new("ffmpeg");
    input(&mut hls);
    hls.args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
        .args([
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            "init.mp4",
        ])
        .arg("-hls_segment_filename")
        .arg(www.join("seg%03d.m4s"))
        .arg(www.join("vod.m3u8"));
    let mut dash = Command::new("ffmpeg");
    input(&mut dash);
    dash.args([
        "-f",
        "dash",
        "-seg_duration",
        "2",
        "-use_template",
        "1",
        "-use_timeline",
        "1",
    ])
    .args(["-adaptation_sets", "id=0,streams=v id=1,streams=a"])
    .args(["-init_seg_name", "dash-init-$RepresentationID$.m4s"])
    .args([
        "-media_seg_name",
        "dash-$RepresentationID$-$Number%05d$.m4s",
    ])
    .arg(www.join("vod.mpd"));
    for mut cmd in [hls, dash] {
        let status = cmd.status().expect("ffmpeg runs");
        assert!(status.success(), "packaging failed: {cmd:?}");
    }
}

fn span(report: &Value, detector: &str) -> Vec<(f64, f64)> {
    report["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["detector"] == detector)
        .map(|e| {
            (
                e["start"].as_f64().unwrap_or(-1.0),
                e["end"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

#[test]
fn on_demand_hls_fmp4_and_dash_are_scanned_to_the_frame() {
    let dir = temp_dir("vod-adaptive");
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    package_vod(&www);
    let port = free_port();
    let mut server = Command::new("/usr/bin/python3");
    server
        .args(["-m", "http.server", "--bind", "127.0.0.1"])
        .arg(port.to_string())
        .arg("--directory")
        .arg(&www);
    let _server =
        Proc::spawn("vod http.server", &mut server, &dir.join("http.log")).remove_dir_on_drop(&dir);
    assert!(wait_until(Duration::from_secs(10), || tcp_accepts(port)));
    for manifest in ["vod.m3u8", "vod.mpd"] {
        let url = format!("http://127.0.0.1:{port}/{manifest}");
        let report = scan_json(&url, &["--backend", "cpu"]);
        let frames = report["frames"].as_u64().unwrap_or(0);
        assert!(
            (245..=255).contains(&frames),
            "{manifest}: {frames} frames: {report:#}"
        );
        for (detector, start, end) in [("black", 3.0, 5.5), ("silence", 6.0, 8.5)] {
            let found = span(&report, detector);
            assert!(
                found
                    .iter()
                    .any(|(s, e)| (s - start).abs() <= 0.25 && (e - end).abs() <= 0.25),
                "{manifest}: {detector} should be {start}-{end}, found {found:?}"
            );
        }
        let others: Vec<&Value> = report["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["detector"] != "black" && e["detector"] != "silence")
            .collect();
        assert!(others.is_empty(), "{manifest}: false events {others:#?}");
        eprintln!(
            "vod {manifest}: {frames} frames, black {:?}, silence {:?}",
            span(&report, "black"),
            span(&report, "silence")
        );
    }
}
