//! A hostile origin never takes the process down or its memory up: truncated, non-UTF-8,
//! 50 MB and 200,000-segment playlists, a master of 10,000 variants, endless bodies, a gzip
//! bomb, empty and garbage segments, a redirect to `file://`, NaN/negative/huge EXTINF and a
//! media sequence of 2^64-1 are each named as their stream's problem in `/api/streams`, while
//! a clean control stream on the same origin sees nothing. Then 20 streams are fed randomly
//! mutated input: 8 HLS playlists and their segments, 6 DASH MPDs and their segments, 6 MPEG-TS
//! streams over UDP (`STREAMWATCH_FUZZ_SECONDS`, 60 s here; `make fuzz` runs 10 minutes).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::faults::{FaultOrigin, HlsEncoder, udp_fuzz};
use crate::support::live::LiveSpec;
use crate::support::streamwatch::Streamwatch;
use crate::support::{ClipSpec, free_udp_port, mpegts_clip};

/// Each hostile fault of `fault_origin.py`, and words one of which its stream's problem must
/// contain (none: any problem will do, the content decides which).
const HOSTILE: [(&str, &[&str]); 13] = [
    ("cut_playlist", &[]),
    ("invalid_utf8", &["not UTF-8"]),
    ("huge_playlist", &["over 4194304 bytes"]),
    // 200,000 segments take 4.8 MB: over the playlist limit, refused before parsing.
    ("many_segments", &["over 4194304 bytes"]),
    (
        "endless_playlist",
        &["over 4194304 bytes", "timed out", "timeout"],
    ),
    ("gzip_bomb", &["once decompressed"]),
    ("redirect_scheme", &["redirect"]),
    (
        "bad_extinf",
        &["not a duration", "over the target duration"],
    ),
    ("max_sequence", &["2^64"]),
    ("empty_segments", &["empty segment"]),
    (
        "endless_segment",
        &["over 67108864 bytes", "timed out", "timeout"],
    ),
    ("garbage", &[]),
    ("fuzz", &[]),
];

/// Valid but enormous: these must play.
const ENORMOUS: [&str; 1] = ["many_variants"];

fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn is_alive(pid: u32) -> bool {
    // A zombie (state Z) has exited.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|state| state != "Z"))
}

/// Everything the API says went wrong with a stream, as one text.
fn problems(s: &Value) -> String {
    let mut text = s["reason"].as_str().unwrap_or("").to_owned();
    for v in s["hls"].as_array().into_iter().flatten() {
        text.push_str(v["last_error"].as_str().unwrap_or(""));
        text.push(' ');
    }
    for key in ["active_defects", "last_events"] {
        for e in s[key].as_array().into_iter().flatten() {
            text.push_str(e["detector"].as_str().unwrap_or(""));
            text.push(' ');
        }
    }
    text
}

fn stream_entry(id: &str, url: &str) -> String {
    format!("\n[[streams]]\nid = \"{id}\"\nurl = \"{url}\"\n")
}

const INGEST: &str = "[ingest]\nstall_timeout = 4.0\nrestart_backoff_initial = 0.5\nrestart_backoff_max = 4.0\nhttp_timeout = 3.0\n";

fn reload(sw: &Streamwatch, config: &str) {
    sw.rewrite_config(config);
    let status = Command::new("kill")
        .args(["-HUP", &sw.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Starts streamwatch on the control stream alone and returns it with its resident memory
/// once the control is up.
fn start_with_control(origin: &FaultOrigin) -> (Streamwatch, String, u64) {
    let base = format!(
        "{INGEST}{}",
        stream_entry("control", &origin.url("control"))
    );
    let sw = Streamwatch::start(&base, &[]);
    sw.wait_stream("control", Duration::from_secs(30), "up", |s| {
        s["state"] == "up" && s["frames"].as_u64().unwrap_or(0) >= 25
    });
    std::thread::sleep(Duration::from_secs(3));
    let rss = resident_bytes(sw.pid());
    (sw, base, rss)
}

/// Runs for `seconds`, checking that the process lives; returns the peak resident memory.
fn watch_process(sw: &Streamwatch, seconds: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut peak = 0;
    while Instant::now() < until {
        assert!(is_alive(sw.pid()), "streamwatch died");
        peak = peak.max(resident_bytes(sw.pid()));
        std::thread::sleep(Duration::from_millis(500));
    }
    peak
}

fn assert_control_clean(sw: &Streamwatch, frames_before: u64) {
    let control = sw.stream("control");
    assert_eq!(control["state"], "up", "{control:#}");
    assert!(
        control["frames"].as_u64().unwrap_or(0) > frames_before + 100,
        "the control stopped: {control:#}"
    );
    let events: Vec<&Value> = ["active_defects", "last_events"]
        .iter()
        .filter_map(|k| control[k].as_array())
        .flatten()
        .collect();
    assert!(events.is_empty(), "the control saw events: {events:#?}");
}

#[test]
fn hostile_origins_are_named_and_never_take_the_process_down() {
    let encoder = HlsEncoder::start(&LiveSpec::default());
    let mut origin = FaultOrigin::start(&encoder.www());
    for (fault, _) in HOSTILE {
        origin.set(fault, fault);
    }
    origin.set("many_variants", "many_variants");
    let (sw, base, rss_before) = start_with_control(&origin);
    let frames_before = sw.stream("control")["frames"].as_u64().unwrap_or(0);

    let mut config = base.clone();
    for (fault, _) in HOSTILE {
        config.push_str(&stream_entry(fault, &origin.url(fault)));
    }
    config.push_str(&stream_entry(
        "many_variants",
        &origin.master_url("many_variants"),
    ));
    reload(&sw, &config);
    let peak = watch_process(&sw, 40);

    for (fault, words) in HOSTILE {
        let s = sw.stream(fault);
        let text = problems(&s);
        let named = if words.is_empty() {
            !text.trim().is_empty() || s["state"] != "up"
        } else {
            words.iter().any(|w| text.contains(w))
        };
        assert!(named, "{fault}: the problem is not named ({text:?}): {s:#}");
    }
    for id in ENORMOUS {
        let s = sw.wait_stream(id, Duration::from_secs(20), "up", |s| {
            s["state"] == "up" && s["frames"].as_u64().unwrap_or(0) >= 25
        });
        assert_eq!(s["width"], 320, "{id}: {s:#}");
    }
    assert_control_clean(&sw, frames_before);
    let affected = (HOSTILE.len() + ENORMOUS.len()) as u64;
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "hostile origins: resident {} MiB before, peak {} MiB with {affected} hostile streams (+{} MiB, {:.1} MiB per stream)",
        rss_before >> 20,
        peak >> 20,
        growth >> 20,
        growth as f64 / affected as f64 / 1048576.0
    );
    assert!(
        growth <= affected * (64 << 20),
        "memory grew by {} MiB for {affected} streams",
        growth >> 20
    );
    assert!(sw.terminate().success());
}

#[test]
fn fuzzed_playlists_and_segments_never_take_the_process_down() {
    let seconds: u64 = std::env::var("STREAMWATCH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let encoder = HlsEncoder::start(&LiveSpec::default());
    let mut origin = FaultOrigin::start(&encoder.www());
    let (sw, base, rss_before) = start_with_control(&origin);
    let frames_before = sw.stream("control")["frames"].as_u64().unwrap_or(0);
    let mut config = base.clone();
    for i in 0..14 {
        let name = format!("fuzz{i}");
        origin.set(&name, "fuzz");
        let url = if i < 8 {
            origin.url(&name)
        } else {
            origin.dash_url(&name)
        };
        config.push_str(&stream_entry(&name, &url));
    }
    let clip = mpegts_clip(&ClipSpec::default());
    let ports: Vec<u16> = (0..6).map(|_| free_udp_port()).collect();
    for (i, port) in ports.iter().enumerate() {
        config.push_str(&stream_entry(
            &format!("udpfuzz{i}"),
            &format!("udp://127.0.0.1:{port}"),
        ));
    }
    let _sender = udp_fuzz(&clip, ClipSpec::default().seconds, &ports);
    reload(&sw, &config);
    let peak = watch_process(&sw, seconds);
    // Mutations that refuse everything would test only the refusals: each kind of input must
    // also have reached the decoders.
    let frames = |ids: &mut dyn Iterator<Item = String>| -> u64 {
        ids.map(|id| sw.stream(&id)["frames"].as_u64().unwrap_or(0))
            .sum()
    };
    for (kind, decoded) in [
        ("HLS", frames(&mut (0..8).map(|i| format!("fuzz{i}")))),
        ("DASH", frames(&mut (8..14).map(|i| format!("fuzz{i}")))),
        ("UDP", frames(&mut (0..6).map(|i| format!("udpfuzz{i}")))),
    ] {
        eprintln!("fuzz: {kind} streams decoded {decoded} frames");
        assert!(decoded > 0, "no {kind} fuzz stream decoded a frame");
    }
    assert_control_clean(&sw, frames_before);
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "fuzz: {seconds} s, 20 streams, resident {} MiB before, peak {} MiB (+{} MiB)",
        rss_before >> 20,
        peak >> 20,
        growth >> 20
    );
    assert!(
        growth <= 20 * (64 << 20),
        "memory grew by {} MiB",
        growth >> 20
    );
    assert!(sw.terminate().success());
}
