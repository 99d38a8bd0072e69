//! Soak: 16 live streams (8 HLS, 8 RTMP) monitored for `SOAK_SECONDS` (default 600) while
//! faults come and go on half of them. Run by `make soak`, not by `make test` (it is long).
//!
//! Sources: one ffmpeg HLS encoder served by two origin processes (`fault_origin.py`): origin
//! A serves `hls0`-`hls3`, which take turns at a fault, origin B the clean `hls4`-`hls7`; one
//! nginx-rtmp with two publishers: `a` (pulled by `rtmp0`-`rtmp3`, restarted now and then)
//! and `b` (pulled by the clean `rtmp4`-`rtmp7`). All 426x240 at 25 fps, so that two cores
//! decode all 16 with room for the encoders.
//!
//! Prints: resident memory after warm-up and at the end (fails when it grew more than
//! `MAX_RSS_GROWTH_MIB`), frames analysed and dropped, restarts per stream, every fault's
//! detection delay, and the defects reported on the clean streams (false alarms; fails
//! unless there are none).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::faults::{FaultOrigin, HlsEncoder};
use support::{LiveSpec, Nginx, Streamwatch, push_rtmp, wait_until};

/// Resident memory may grow this much from the end of warm-up to the end of the soak.
const MAX_RSS_GROWTH_MIB: f64 = 64.0;
const FAULT_HOLD: Duration = Duration::from_secs(15);

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or(0.0)
}

fn active(stream: &Value, detector: &str) -> bool {
    stream["active_defects"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["detector"] == detector))
}

fn defects(stream: &Value) -> Vec<String> {
    let mut all = Vec::new();
    for key in ["active_defects", "last_events"] {
        for e in stream[key].as_array().into_iter().flatten() {
            all.push(format!(
                "{} {}-{}",
                e["detector"].as_str().unwrap_or(""),
                e["start"],
                e["end"]
            ));
        }
    }
    all
}

struct Fault {
    what: &'static str,
    /// What origin A does, or "" for the RTMP publisher restart / origin kill.
    origin_fault: &'static str,
    detected: fn(&Value) -> bool,
}

const FAULTS: [Fault; 9] = [
    Fault {
        what: "playlist stops updating",
        origin_fault: "freeze",
        detected: |s| active(s, "playlist_stale"),
    },
    Fault {
        what: "segments answer 404",
        origin_fault: "segment_404",
        detected: |s| active(s, "http_errors"),
    },
    Fault {
        what: "RTMP publisher restarted",
        origin_fault: "",
        detected: |s| active(s, "stall") || s["state"] == "down",
    },
    Fault {
        what: "segments of garbage",
        origin_fault: "garbage",
        detected: |s| active(s, "stall") || s["state"] == "down",
    },
    Fault {
        what: "playlist answers 500",
        origin_fault: "playlist_500",
        detected: |s| active(s, "http_errors"),
    },
    Fault {
        what: "origin killed, restarted",
        origin_fault: "",
        detected: |s| active(s, "http_errors"),
    },
    Fault {
        what: "media sequence goes back",
        origin_fault: "sequence_back",
        detected: |s| active(s, "sequence"),
    },
    Fault {
        what: "server trickles bytes",
        origin_fault: "slow",
        detected: |s| active(s, "stall") || s["state"] == "down",
    },
    Fault {
        what: "segments truncated",
        origin_fault: "truncated",
        detected: |s| s["ts_cc_errors"].as_u64().unwrap_or(0) > 0,
    },
];

#[test]
#[ignore = "ten minutes long: run with `make soak`"]
fn sixteen_live_streams_with_periodic_faults() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let mut spec = LiveSpec::new(426, 240, 25);
    spec.seconds = u32::try_from(seconds + 300).unwrap_or(u32::MAX);
    let encoder = HlsEncoder::start(&spec);
    let mut faulty_origin = FaultOrigin::start(&encoder.www());
    let clean_origin = FaultOrigin::start(&encoder.www());
    let nginx = Nginx::start();
    let mut publisher_a = push_rtmp(&nginx, "a", &spec);
    let _publisher_b = push_rtmp(&nginx, "b", &spec);
    std::thread::sleep(Duration::from_secs(3));

    let mut config = String::from("[ingest]\nrestart_backoff_max = 4.0\n");
    let mut ids = Vec::new();
    for i in 0..8 {
        let (origin, name) = if i < 4 {
            (&faulty_origin, format!("hls{i}"))
        } else {
            (&clean_origin, format!("hls{i}"))
        };
        config.push_str(&format!(
            "[[streams]]\nid = \"{name}\"\nurl = \"{}\"\n",
            origin.url(&name)
        ));
        ids.push(name);
    }
    for i in 0..8 {
        let publisher = if i < 4 { "a" } else { "b" };
        let name = format!("rtmp{i}");
        config.push_str(&format!(
            "[[streams]]\nid = \"{name}\"\nurl = \"{}\"\n",
            nginx.rtmp_url(publisher)
        ));
        ids.push(name);
    }
    let clean: Vec<&str> = ids
        .iter()
        .filter(|id| id.ends_with(['4', '5', '6', '7']))
        .map(String::as_str)
        .collect();
    let sw = Streamwatch::start(&config, &[]);
    for id in &ids {
        sw.wait_stream(id, Duration::from_secs(60), "up", |s| s["state"] == "up");
    }
    std::thread::sleep(Duration::from_secs(30));
    let pid = sw.pid();
    let rss_start = rss_mib(pid);
    let started = Instant::now();
    eprintln!(
        "soak: {} streams up; resident memory {rss_start:.1} MiB",
        ids.len()
    );

    let mut delays = Vec::new();
    let mut round = 0usize;
    while started.elapsed() < Duration::from_secs(seconds) {
        let fault = &FAULTS[round % FAULTS.len()];
        let target = match fault.what {
            "RTMP publisher restarted" => format!("rtmp{}", round % 4),
            _ => format!("hls{}", round % 4),
        };
        let t0 = Instant::now();
        match fault.what {
            "RTMP publisher restarted" => publisher_a.stop(),
            "origin killed, restarted" => faulty_origin.kill(),
            _ => faulty_origin.set(&target, fault.origin_fault),
        }
        let mut delay = None;
        wait_until(FAULT_HOLD.max(Duration::from_secs(30)), || {
            if delay.is_none() && (fault.detected)(&sw.stream(&target)) {
                delay = Some(t0.elapsed());
            }
            delay.is_some() && t0.elapsed() >= FAULT_HOLD
        });
        match fault.what {
            "RTMP publisher restarted" => publisher_a = push_rtmp(&nginx, "a", &spec),
            "origin killed, restarted" => faulty_origin.restart(),
            _ => faulty_origin.set(&target, ""),
        }
        let healed = wait_until(Duration::from_secs(60), || {
            let s = sw.stream(&target);
            s["state"] == "up"
                && !["stall", "playlist_stale", "http_errors"]
                    .iter()
                    .any(|d| active(&s, d))
        });
        let line = format!(
            "{:<28} on {target:<6} detected {} ; healed {}",
            fault.what,
            delay.map_or("NOT DETECTED".into(), |d| format!(
                "in {:.1} s",
                d.as_secs_f64()
            )),
            if healed {
                format!(
                    "{:.1} s after repair",
                    (t0.elapsed() - FAULT_HOLD).as_secs_f64()
                )
            } else {
                "NOT within 60 s".into()
            }
        );
        eprintln!("soak {:>4.0} s: {line}", started.elapsed().as_secs_f64());
        delays.push((line, delay.is_some() && healed));
        round += 1;
        std::thread::sleep(Duration::from_secs(10));
    }

    let rss_end = rss_mib(pid);
    let m = sw.metrics();
    let frames = support::metric_sum(&m, "streamwatch_frames_total", &[]);
    let dropped = support::metric_sum(&m, "streamwatch_frames_dropped_total", &[]);
    eprintln!(
        "\n=== soak summary ({} s, {} streams) ===",
        started.elapsed().as_secs(),
        ids.len()
    );
    eprintln!(
        "resident memory: {rss_start:.1} MiB after warm-up, {rss_end:.1} MiB at the end ({:+.1} MiB; bound {MAX_RSS_GROWTH_MIB} MiB)",
        rss_end - rss_start
    );
    let abandoned = support::metric_sum(&m, "streamwatch_pipelines_abandoned_total", &[]);
    eprintln!(
        "frames analysed {frames:.0}, dropped {dropped:.0}; pipelines abandoned after a teardown deadlock: {abandoned:.0}"
    );
    let mut false_alarms = Vec::new();
    for id in &ids {
        let s = sw.stream(id);
        let d = defects(&s);
        eprintln!(
            "  {id:<6} state {:<5} frames {:>6} dropped {:>4} restarts {:>3} events {}",
            s["state"].as_str().unwrap_or(""),
            s["frames"],
            s["frames_dropped"],
            s["restarts"],
            d.len()
        );
        if clean.contains(&id.as_str()) && !d.is_empty() {
            false_alarms.push(format!("{id}: {d:?}"));
        }
    }
    eprintln!("faults:");
    for (line, _) in &delays {
        eprintln!("  {line}");
    }
    eprintln!("false alarms on clean streams: {}", false_alarms.len());
    for f in &false_alarms {
        eprintln!("  {f}");
    }
    assert!(
        rss_end - rss_start <= MAX_RSS_GROWTH_MIB,
        "resident memory grew {:.1} MiB",
        rss_end - rss_start
    );
    assert!(
        delays.iter().all(|(_, ok)| *ok),
        "a fault was missed or did not heal"
    );
    assert!(false_alarms.is_empty(), "false alarms: {false_alarms:?}");
    assert!(sw.terminate().success(), "streamwatch did not exit cleanly");
}
