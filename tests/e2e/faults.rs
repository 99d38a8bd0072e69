//! Origin faults on live HLS, against real servers on loopback: an ffmpeg live encoder, an
//! origin that breaks on request (`support/fault_origin.py`) and `streamwatch run`.
//!
//! Each fault must be reported (the right detector, or the stream `down` with a reason in
//! `/api/streams`), must not touch the control stream (served by another origin process from
//! the same encoder), and must heal by itself once the fault ends.

use std::time::{Duration, Instant};

use crate::support::faults::{FaultOrigin, HlsEncoder};
use crate::support::{LiveSpec, Streamwatch, free_port, wait_until};
use serde_json::Value;

const FPS: f64 = 25.0;

fn config(streams: &[(&str, String)]) -> String {
    let mut c = String::from(
        "[ingest]\nrestart_backoff_initial = 0.5\nrestart_backoff_max = 2.0\nhttp_timeout = 2.0\n",
    );
    for (id, url) in streams {
        c.push_str(&format!("[[streams]]\nid = \"{id}\"\nurl = \"{url}\"\n"));
    }
    c
}

fn active(stream: &Value, detector: &str) -> bool {
    stream["active_defects"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["detector"] == detector))
}

fn state(stream: &Value) -> &str {
    stream["state"].as_str().unwrap_or("")
}

fn frames(stream: &Value) -> u64 {
    stream["frames"].as_u64().unwrap_or(0)
}

/// Transport detectors, which must all be clear once a stream has healed.
const TRANSPORT: [&str; 6] = [
    "stall",
    "bitrate",
    "playlist_stale",
    "sequence",
    "segment_duration",
    "http_errors",
];

/// One fault: inject, wait for `detected`, repair, wait for recovery. Checks the control
/// stream throughout. Returns (detection delay, recovery time).
struct FaultRun<'a> {
    sw: &'a Streamwatch,
    control: &'a str,
}

/// A fault the origin makes on one stream name, and how it must show.
struct OriginFault {
    what: &'static str,
    fault: &'static str,
    timeout_secs: u64,
    detected: fn(&Value) -> bool,
}

const fn fault(
    what: &'static str,
    fault: &'static str,
    timeout_secs: u64,
    detected: fn(&Value) -> bool,
) -> OriginFault {
    OriginFault {
        what,
        fault,
        timeout_secs,
        detected,
    }
}

impl FaultRun<'_> {
    fn control_snapshot(&self) -> (Instant, u64, u64) {
        let c = self.sw.stream(self.control);
        assert_eq!(state(&c), "up", "control stream not up: {c:#}");
        (
            Instant::now(),
            frames(&c),
            c["restarts"].as_u64().unwrap_or(0),
        )
    }

    fn check_control(&self, since: (Instant, u64, u64), what: &str) -> f64 {
        let (t0, f0, r0) = since;
        let c = self.sw.stream(self.control);
        let rate = (frames(&c) - f0) as f64 / t0.elapsed().as_secs_f64();
        assert_eq!(state(&c), "up", "control stream during {what}: {c:#}");
        assert_eq!(
            c["restarts"].as_u64(),
            Some(r0),
            "control restarted during {what}"
        );
        assert!(
            rate >= 0.5 * FPS,
            "control stream analysed {rate:.1} frames/s during {what}"
        );
        assert!(
            TRANSPORT.iter().all(|d| !active(&c, d))
                && c["last_events"].as_array().is_some_and(|e| e.is_empty()),
            "control stream reported defects during {what}: {c:#}"
        );
        rate
    }

    fn fault(
        &mut self,
        id: &str,
        what: &str,
        inject: impl FnOnce(),
        repair: impl FnOnce(),
        timeout: Duration,
        detected: impl Fn(&Value) -> bool,
    ) {
        let control = self.control_snapshot();
        let t0 = Instant::now();
        inject();
        let mut last = Value::Null;
        let found = wait_until(timeout, || {
            last = self.sw.stream(id);
            detected(&last)
        });
        let delay = t0.elapsed();
        if !found {
            self.sw.dump_log();
            panic!("{what}: not detected within {timeout:?}; last state: {last:#}");
        }
        let reason = last["reason"].as_str().unwrap_or("").to_owned();
        let defects: Vec<String> = last["active_defects"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["detector"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let t1 = Instant::now();
        repair();
        let healed = wait_until(Duration::from_secs(60), || {
            last = self.sw.stream(id);
            state(&last) == "up" && TRANSPORT.iter().all(|d| !active(&last, d))
        });
        if !healed {
            self.sw.dump_log();
            panic!("{what}: no recovery within 60 s; last state: {last:#}");
        }
        // Frames flow again (not just a stale `up`).
        let before = frames(&last);
        assert!(
            wait_until(Duration::from_secs(10), || frames(&self.sw.stream(id))
                > before + 25),
            "{what}: no frames after recovery"
        );
        let rate = self.check_control(control, what);
        let line = format!(
            "{what:<34} detected in {:>5.1} s (state {}, defects {defects:?}{}), healed {:>5.1} s after repair; control {rate:.1} frames/s",
            delay.as_secs_f64(),
            if reason.is_empty() {
                "up".into()
            } else {
                "down".to_string()
            },
            if reason.is_empty() {
                String::new()
            } else {
                format!(", reason `{reason}`")
            },
            t1.elapsed().as_secs_f64(),
        );
        eprintln!("{line}");
    }

    /// Each fault in turn on the origin's stream name `id`, repaired before the next.
    fn origin_faults(
        &mut self,
        origin: &std::cell::RefCell<&mut FaultOrigin>,
        id: &str,
        faults: &[OriginFault],
    ) {
        for f in faults {
            self.fault(
                id,
                f.what,
                || origin.borrow_mut().set(id, f.fault),
                || origin.borrow_mut().set(id, ""),
                Duration::from_secs(f.timeout_secs),
                f.detected,
            );
        }
    }
}

/// A live encoder, the origin that breaks (`faulty`) and the one that does not (`control`),
/// and streamwatch monitoring both plus `extra` streams (given the faulty origin), once
/// `faulty` and `control` are up.
struct Setup {
    // Field order is drop order: streamwatch before the servers it reads from.
    sw: Streamwatch,
    origin: FaultOrigin,
    _control: FaultOrigin,
    encoder: HlsEncoder,
}

impl Setup {
    fn start(extra: impl FnOnce(&FaultOrigin) -> Vec<(&'static str, String)>) -> Setup {
        let encoder = HlsEncoder::start(&LiveSpec::new(426, 240, 25));
        let origin = FaultOrigin::start(&encoder.www());
        let control = FaultOrigin::start(&encoder.www());
        let mut streams = vec![
            ("faulty", origin.url("faulty")),
            ("control", control.url("control")),
        ];
        streams.extend(extra(&origin));
        let sw = Streamwatch::start(&config(&streams), &[]);
        wait_up(&sw, &["faulty", "control"]);
        Setup {
            sw,
            origin,
            _control: control,
            encoder,
        }
    }
}

fn wait_up(sw: &Streamwatch, ids: &[&str]) {
    for id in ids {
        sw.wait_stream(id, Duration::from_secs(30), "up with frames", |s| {
            state(s) == "up" && frames(s) > 50
        });
    }
}

#[test]
fn playlist_faults_are_reported_and_heal() {
    let mut setup = Setup::start(|o| vec![("multi", o.master_url("multi"))]);
    let sw = &setup.sw;
    wait_up(sw, &["multi"]);
    let mut run = FaultRun {
        sw,
        control: "control",
    };
    let o = std::cell::RefCell::new(&mut setup.origin);
    // A master playlist: each rendition is checked on its own, and a fault in the one the
    // player does not use is still reported, on that variant only.
    let multi = sw.stream("multi");
    let variants: Vec<&str> = multi["hls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["variant"].as_str().unwrap())
        .collect();
    assert_eq!(variants, ["v0", "v1"], "{multi:#}");
    run.fault(
        "multi",
        "second rendition's playlist stops",
        || o.borrow_mut().set("multi-b", "freeze"),
        || o.borrow_mut().set("multi-b", ""),
        Duration::from_secs(20),
        |s| {
            let stale: Vec<&Value> = s["active_defects"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["detector"] == "playlist_stale")
                .collect();
            stale.len() == 1 && stale[0]["variant"] == "v1"
        },
    );
    let ages = sw.metrics();
    for v in ["v0", "v1"] {
        assert!(
            ages.contains(&format!(
                "streamwatch_hls_playlist_age_seconds{{stream=\"multi\",variant=\"{v}\"}}"
            )),
            "no playlist age for variant {v}"
        );
    }
    run.origin_faults(
        &o,
        "faulty",
        &[
            fault("playlist stops updating", "freeze", 20, |s| {
                active(s, "playlist_stale")
            }),
            fault("media sequence goes back", "sequence_back", 20, |s| {
                active(s, "sequence")
            }),
            fault("segments longer than target", "long_segments", 20, |s| {
                active(s, "segment_duration")
            }),
            fault("playlist with broken syntax", "broken", 20, |s| {
                active(s, "http_errors")
            }),
            fault("playlist redirects forever", "redirect", 20, |s| {
                active(s, "http_errors")
            }),
            fault("playlist answers 404", "playlist_404", 20, |s| {
                active(s, "http_errors")
            }),
        ],
    );
    let m = sw.metrics();
    for code in ["404", "invalid", "redirect"] {
        assert!(
            crate::support::metric_sum(
                &m,
                "streamwatch_http_requests_total",
                &["stream=\"faulty\"", &format!("code=\"{code}\"")]
            ) > 0.0,
            "no http request counted with code {code}"
        );
    }
    assert_eq!(
        crate::support::metric_sum(
            &m,
            "streamwatch_http_requests_total",
            &["stream=\"control\"", "kind=\"playlist\""]
        ),
        crate::support::metric_sum(
            &m,
            "streamwatch_http_requests_total",
            &["stream=\"control\"", "kind=\"playlist\"", "code=\"200\""]
        ),
        "the control origin never failed"
    );
    assert!(
        setup.sw.terminate().success(),
        "streamwatch did not exit cleanly"
    );
}

#[test]
fn segment_faults_are_reported_and_heal() {
    let mut setup = Setup::start(|_| Vec::new());
    let sw = &setup.sw;
    let mut run = FaultRun {
        sw,
        control: "control",
    };
    let o = std::cell::RefCell::new(&mut setup.origin);
    // A clean stream has no continuity errors: any seen afterwards come from the truncation.
    assert_eq!(sw.stream("faulty")["ts_cc_errors"], 0);
    run.origin_faults(
        &o,
        "faulty",
        &[
            fault("segments truncated", "truncated", 30, |s| {
                s["ts_cc_errors"].as_u64() > Some(0)
            }),
            fault("segments answer 404", "segment_404", 20, |s| {
                active(s, "http_errors")
            }),
            fault("segments answer 500", "segment_500", 20, |s| {
                active(s, "http_errors")
            }),
            fault("segments of garbage", "garbage", 30, |s| {
                active(s, "stall") || state(s) == "down"
            }),
            fault("server trickles bytes", "slow", 30, |s| {
                active(s, "http_errors") && (active(s, "stall") || state(s) == "down")
            }),
        ],
    );
    assert!(
        setup.sw.terminate().success(),
        "streamwatch did not exit cleanly"
    );
}

#[test]
fn connection_faults_take_streams_down_with_a_reason_and_heal() {
    let refused_port = free_port();
    let mut setup = Setup::start(|_| {
        vec![
            ("nodns", "http://streamwatch-test.invalid/live.m3u8".into()),
            (
                "refused",
                format!("http://127.0.0.1:{refused_port}/refused/live.m3u8"),
            ),
        ]
    });
    let sw = &setup.sw;
    for id in ["nodns", "refused"] {
        let s = sw.wait_stream(id, Duration::from_secs(20), "down, http_errors", |s| {
            state(s) == "down" && active(s, "http_errors") && s["restarts"].as_u64() >= Some(2)
        });
        eprintln!(
            "{id}: down, reason `{}`",
            s["reason"].as_str().unwrap_or("")
        );
        assert!(!s["reason"].as_str().unwrap_or("").is_empty());
    }
    let mut run = FaultRun {
        sw,
        control: "control",
    };
    let o = std::cell::RefCell::new(&mut setup.origin);
    run.fault(
        "faulty",
        "server killed, then restarted",
        || o.borrow_mut().kill(),
        || o.borrow_mut().restart(),
        Duration::from_secs(20),
        |s| state(s) == "down" && active(s, "http_errors"),
    );
    // The refused stream's server comes up: it heals by itself.
    let late = FaultOrigin::start_on(&setup.encoder.www(), refused_port);
    let s = sw.wait_stream(
        "refused",
        Duration::from_secs(30),
        "up once its server exists",
        |s| state(s) == "up" && !active(s, "http_errors"),
    );
    eprintln!(
        "refused: up after its server started, {} restarts",
        s["restarts"]
    );
    drop(late);
    assert!(
        setup.sw.terminate().success(),
        "streamwatch did not exit cleanly"
    );
}

/// Media bitrate of the encoder's live window: segment bytes over their EXTINF durations.
fn playlist_bitrate(www: &std::path::Path) -> f64 {
    let playlist = std::fs::read_to_string(www.join("live.m3u8")).unwrap();
    let (mut bytes, mut seconds) = (0u64, 0f64);
    let mut duration = 0f64;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.trim_end_matches(',').parse().unwrap();
        } else if line.ends_with(".ts")
            && let Ok(meta) = std::fs::metadata(www.join(line))
        {
            bytes += meta.len();
            seconds += duration;
        }
    }
    bytes as f64 * 8.0 / seconds
}

#[test]
fn input_bitrate_follows_the_segments_and_a_floor_is_enforced() {
    let encoder = HlsEncoder::start(&LiveSpec::new(426, 240, 25));
    let origin = FaultOrigin::start(&encoder.www());
    let sw = Streamwatch::start(
        &format!(
            "{}[streams.detectors.bitrate]\nmin_bits_per_second = 1e9\nwindow = 4.0\nmin_duration = 2.0\n",
            config(&[
                ("measured", origin.url("measured")),
                ("floor", origin.url("floor"))
            ])
        ),
        &[],
    );
    wait_up(&sw, &["measured", "floor"]);
    let s = sw.wait_stream("measured", Duration::from_secs(30), "a bitrate", |s| {
        s["input_bitrate"].as_f64().is_some()
    });
    let measured = s["input_bitrate"].as_f64().unwrap();
    let truth = playlist_bitrate(&encoder.www());
    eprintln!("input bitrate {measured:.0} b/s, segments {truth:.0} b/s");
    assert!(
        (measured / truth - 1.0).abs() < 0.35,
        "input bitrate {measured:.0} b/s, the segments carry {truth:.0} b/s"
    );
    // Under its (absurdly high) floor for 2 s after a 4 s window.
    let s = sw.wait_stream("floor", Duration::from_secs(20), "bitrate defect", |s| {
        active(s, "bitrate")
    });
    assert_eq!(state(&s), "up", "a low bitrate is a defect, not an outage");
    assert!(
        !active(&sw.stream("measured"), "bitrate"),
        "no floor, no defect"
    );
    assert!(
        sw.metric_sum(
            "streamwatch_input_bitrate_bits_per_second",
            &["stream=\"floor\""]
        ) > 0.0
    );
}
