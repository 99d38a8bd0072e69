//! UDP and RTP MPEG-TS inputs (multicast in a network namespace, unicast on loopback), an SDP
//! file of two RTP streams, RTP loss counted through a relay that drops packets, an SRT
//! listener with a passphrase that never shows, source-specific multicast (`source=`) that
//! receives one sender of a group, and bad URL options refused at load time. The UDP and RTP
//! multicast, SDP and SRT cases carry injected black and silence and must find exactly those.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::support::proc::{Proc, free_udp_port, udp_bound, wait_until};
use crate::support::udp::{LossyRelay, NetNs, Output, live_sender, rtp_sender_with_sdp};
use crate::support::{LiveSpec, Streamwatch, events_of, run_cli, temp_dir};

/// Ground truth of the defect cases, in seconds of the sender's timeline: black 5-9 s,
/// silence 11-15 s (the detectors' minimum durations are 2 s), the sender ending at 19 s,
/// before the stall that follows its end could be reported.
const BLACK: (f64, f64) = (5.0, 9.0);
const SILENCE: (f64, f64) = (11.0, 15.0);
const DEFECT_SECONDS: u32 = 19;

/// A live signal of `width`x`height` @ 25 fps with the black window of [`BLACK`].
fn defect_spec(width: u32, height: u32) -> LiveSpec {
    LiveSpec {
        seconds: DEFECT_SECONDS,
        ..LiveSpec::new(width, height, 25).with_black(BLACK.0, BLACK.1)
    }
}

/// The first ended event of `detector` on the stream: (start, end) in media seconds.
fn ended_event(s: &Value, detector: &str) -> Option<(f64, f64)> {
    events_of(s, detector)
        .into_iter()
        .find_map(|e| Some((e["start"].as_f64()?, e["end"].as_f64()?)))
}

/// Waits until stream `id` has reported the injected black and silence, both ended, then
/// checks that nothing else was reported, that each lasted about its 4 s and that the two
/// starts are the 6 s apart they were sent (media time counts from the stream's first frame,
/// which the sender's clock does not know), and prints the figures. Returns the status.
fn expect_black_and_silence_only(
    label: &str,
    sw: &Streamwatch,
    id: &str,
    sender: &Proc,
    min_frames: u64,
) -> Value {
    let s = sw.wait_stream(
        id,
        Duration::from_secs(25),
        "black and silence ended",
        |s| ended_event(s, "black").is_some() && ended_event(s, "silence").is_some(),
    );
    let (black, silence) = (
        ended_event(&s, "black").unwrap_or_default(),
        ended_event(&s, "silence").unwrap_or_default(),
    );
    eprintln!(
        "{label}: state {}, frames {}, black {:.2}-{:.2} ({:.2} s; sent {:.0}-{:.0}), silence \
         {:.2}-{:.2} ({:.2} s; sent {:.0}-{:.0}), silence - black starts {:.2} s (sent {:.0}), \
         rtp lost {}, ts cc errors {}, events {:?}",
        s["state"],
        frames(&s),
        black.0,
        black.1,
        black.1 - black.0,
        BLACK.0,
        BLACK.1,
        silence.0,
        silence.1,
        silence.1 - silence.0,
        SILENCE.0,
        SILENCE.1,
        silence.0 - black.0,
        SILENCE.0 - BLACK.0,
        s["rtp_packets_lost"],
        s["ts_cc_errors"],
        detectors_reported(&s)
    );
    let only = BTreeSet::from(["black".to_owned(), "silence".to_owned()]);
    let sent = (BLACK.1 - BLACK.0, SILENCE.1 - SILENCE.0);
    let gap = SILENCE.0 - BLACK.0;
    let problems = [
        (s["state"] != "up", "not up"),
        (
            detectors_reported(&s) != only,
            "events other than the injected ones",
        ),
        (frames(&s) <= min_frames, "too few frames analysed"),
        ((black.1 - black.0 - sent.0).abs() > 1.0, "black duration"),
        (
            (silence.1 - silence.0 - sent.1).abs() > 1.0,
            "silence duration",
        ),
        (
            (silence.0 - black.0 - gap).abs() > 1.0,
            "black-to-silence gap",
        ),
    ];
    let failed: Vec<&str> = problems.iter().filter(|p| p.0).map(|p| p.1).collect();
    if !failed.is_empty() {
        sender.dump_log();
        sw.dump_log();
        panic!("{label}: {failed:?} (frames > {min_frames} wanted): {s:#}");
    }
    s
}

/// Short restarts (a UDP/TS pipeline takes ~1.5 s to its first frame: tsdemux alone adds
/// 700 ms of live latency, then a keyframe), and a bitrate averaged over 2 s so it shows within a short test.
const LIVE_INGEST: &str = r#"
[ingest]
stall_timeout = 4.0
restart_backoff_initial = 0.5
restart_backoff_max = 1.0

[detectors.bitrate]
window = 2.0
"#;

fn frames(s: &Value) -> u64 {
    s["frames"].as_u64().unwrap_or(0)
}

/// Every detector with an active or ended event on the stream.
fn detectors_reported(s: &Value) -> BTreeSet<String> {
    ["active_defects", "last_events"]
        .iter()
        .filter_map(|key| s[key].as_array())
        .flatten()
        .filter_map(|e| e["detector"].as_str().map(str::to_owned))
        .collect()
}

fn config(streams: &[(&str, &str)]) -> String {
    let mut text = LIVE_INGEST.to_owned();
    for (id, url) in streams {
        text.push_str(&format!("\n[[streams]]\nid = \"{id}\"\nurl = \"{url}\"\n"));
    }
    text
}

#[test]
fn udp_multicast_in_a_namespace_finds_injected_black_and_silence_and_nothing_else() {
    let ns = NetNs::create("udp");
    let _inside = ns.enter();
    let port = free_udp_port();
    let url = format!("udp://239.255.10.1:{port}");
    let sw = Streamwatch::start(
        &config(&[("mc", &format!("{url}?iface=lo&buffer=1048576"))]),
        &[],
    );
    let sender = live_sender(&defect_spec(320, 240), Some(SILENCE), Output::Udp, &url);

    sw.wait_stream("mc", Duration::from_secs(20), "up", |s| s["state"] == "up");
    let s = expect_black_and_silence_only("udp multicast", &sw, "mc", &sender, 250);
    assert_eq!(s["ts_cc_errors"], 0, "clean loopback multicast: {s:#}");
    assert_eq!(s["rtp_packets_lost"], 0, "{s:#}");
    assert!(
        s["input_bitrate"].as_f64().is_some_and(|b| b > 100_000.0),
        "{s:#}"
    );
    eprintln!(
        "udp multicast: {} frames, {} bit/s",
        frames(&s),
        s["input_bitrate"]
    );
}

#[test]
fn rtp_multicast_finds_injected_black_and_silence_and_nothing_else() {
    let ns = NetNs::create("rtpbs");
    let _inside = ns.enter();
    let port = free_udp_port();
    let group = format!("239.255.10.3:{port}");
    let sw = Streamwatch::start(&config(&[("rtp", &format!("rtp://{group}"))]), &[]);
    let sender = live_sender(
        &defect_spec(320, 240),
        Some(SILENCE),
        Output::RtpMpegts,
        &format!("rtp://{group}?ttl=1"),
    );
    sw.wait_stream("rtp", Duration::from_secs(20), "up", |s| s["state"] == "up");
    let s = expect_black_and_silence_only("rtp multicast", &sw, "rtp", &sender, 250);
    assert_eq!(s["rtp_packets_lost"], 0, "clean loopback multicast: {s:#}");
    assert_eq!(s["ts_cc_errors"], 0, "{s:#}");
}

#[test]
fn rtp_multicast_counts_the_packets_a_relay_drops() {
    let ns = NetNs::create("rtp");
    let _inside = ns.enter();
    let port = free_udp_port();
    let group: SocketAddr = format!("239.255.10.2:{port}").parse().unwrap();
    let sw = Streamwatch::start(&config(&[("rtp", &format!("rtp://{group}"))]), &[]);
    let mut relay = LossyRelay::start(group, 25);
    let spec = LiveSpec::new(640, 360, 25);
    let sender = live_sender(
        &spec,
        None,
        Output::RtpMpegts,
        &format!("rtp://127.0.0.1:{}", relay.port()),
    );

    sw.wait_stream("rtp", Duration::from_secs(20), "up with frames", |s| {
        s["state"] == "up" && frames(s) >= 200
    });
    relay.stop();
    // Gaps are decided once 128 later packets have arrived; at 1 in 25 that leaves at most
    // 6 of the last drops undecided when the relay stops.
    let (dropped, forwarded) = (relay.dropped(), relay.forwarded());
    std::thread::sleep(Duration::from_millis(500));
    let lost = sw.metric_sum("streamwatch_rtp_packets_lost_total", &["stream=\"rtp\""]) as u64;
    let s = sw.stream("rtp");
    eprintln!(
        "rtp: relay forwarded {forwarded} and dropped {dropped} packets; streamwatch counted {lost} lost, {} TS CC errors, {} frames",
        s["ts_cc_errors"],
        frames(&s)
    );
    if !(dropped >= 10 && lost + 6 >= dropped && lost <= dropped) {
        sender.dump_log();
        sw.dump_log();
        panic!("dropped {dropped}, counted {lost}");
    }
    assert_eq!(s["rtp_packets_lost"].as_u64(), Some(lost), "{s:#}");
    // rtpmp2tdepay flags the TS after a gap as a discontinuity, so the loss is counted once,
    // as RTP packets; the TS check restarts there (see the UDP test for TS losses).
    assert_eq!(s["ts_cc_errors"], 0, "{s:#}");
    assert!(
        s["input_bitrate"].as_f64().is_some_and(|b| b > 0.0),
        "{s:#}"
    );
}

#[test]
fn an_sdp_file_of_rtp_video_and_audio_is_received() {
    let dir = temp_dir("sdp");
    let sdp = dir.join("session.sdp");
    let (video_port, audio_port) = (free_udp_port(), free_udp_port());
    let sender = rtp_sender_with_sdp(
        &defect_spec(320, 240),
        Some(SILENCE),
        video_port,
        audio_port,
        &sdp,
    );
    let written = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&sdp).is_ok_and(|t| t.contains("m=audio"))
    });
    if !written {
        sender.dump_log();
        panic!("ffmpeg wrote no SDP file");
    }
    let sw = Streamwatch::start(LIVE_INGEST, &[sdp.to_str().unwrap()]);
    let id = "session-0";
    let s = sw.wait_stream(id, Duration::from_secs(20), "up with frames", |s| {
        s["state"] == "up" && frames(s) >= 100
    });
    assert_eq!(
        (s["width"].as_u64(), s["height"].as_u64()),
        (Some(320), Some(240))
    );
    let metrics = sw.metrics();
    assert!(
        metrics.contains(&format!("streamwatch_audio_level_dbfs{{stream=\"{id}\"}}")),
        "the audio RTP stream was not decoded"
    );
    // Started once the SDP file exists, so a second or so of the sender's timeline is gone.
    let s = expect_black_and_silence_only("sdp", &sw, id, &sender, 250);
    assert_eq!(s["rtp_packets_lost"], 0, "{s:#}");
    eprintln!("sdp: {} frames, audio decoded", frames(&s));
}

#[test]
fn udp_unicast_counts_ts_losses_stalls_when_the_sender_stops_and_resumes() {
    let port = free_udp_port();
    let sw = Streamwatch::start(
        &config(&[("uni", &format!("udp://@127.0.0.1:{port}"))]),
        &[],
    );
    // One datagram (7 TS packets) in 100 dropped on the way.
    let relay = LossyRelay::start(([127, 0, 0, 1], port).into(), 100);
    let url = format!("udp://127.0.0.1:{}", relay.port());
    let spec = LiveSpec::new(320, 240, 25);
    let mut sender = live_sender(&spec, None, Output::Udp, &url);
    let s = sw.wait_stream("uni", Duration::from_secs(20), "up with a bitrate", |s| {
        s["state"] == "up" && frames(s) >= 100 && s["input_bitrate"].as_f64().is_some()
    });
    let first_run_frames = frames(&s);
    let ts_cc_errors = s["ts_cc_errors"].as_u64().unwrap_or(0);
    assert!(
        ts_cc_errors > 0,
        "{} datagrams dropped but no TS continuity error: {s:#}",
        relay.dropped()
    );
    assert_eq!(s["rtp_packets_lost"], 0, "no RTP here: {s:#}");
    // The same losses as TR 101 290 priority 1: counted by indicator, and a defect naming it.
    let metrics = sw.metrics();
    let tr101290 = |indicator: &str| {
        sw.metric_sum(
            "streamwatch_tr101290_errors_total",
            &["stream=\"uni\"", &format!("indicator=\"{indicator}\"")],
        )
    };
    assert!(
        tr101290("Continuity_count_error") >= ts_cc_errors as f64,
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "streamwatch_tr101290_errors_total{indicator=\"PAT_error_2\",priority=\"1\",stream=\"uni\"} 0"
        ),
        "priority 1 and 2 counters start at zero: {metrics}"
    );
    let status = sw.stream("uni");
    let defects = events_of(&status, "tr101290");
    assert!(
        defects.iter().any(|d| d["priority"] == 1
            && d["indicators"]
                .as_str()
                .is_some_and(|i| i.contains("Continuity_count_error"))),
        "{defects:#?}"
    );

    sender.stop();
    let down = sw.wait_stream("uni", Duration::from_secs(10), "down", |s| {
        s["state"] == "down"
    });
    assert!(
        down["reason"]
            .as_str()
            .is_some_and(|r| r.contains("stalled")),
        "{down:#}"
    );

    let _sender = live_sender(&spec, None, Output::Udp, &url);
    let back = sw.wait_stream("uni", Duration::from_secs(20), "back up", |s| {
        s["state"] == "up" && frames(s) >= first_run_frames + 50
    });
    assert!(
        back["restarts"].as_u64().is_some_and(|r| r >= 1),
        "{back:#}"
    );
    assert!(!events_of(&back, "stall").is_empty(), "{back:#}");
    eprintln!(
        "udp unicast: {} frames, {} restarts, {ts_cc_errors} TS CC errors after {} of {} datagrams dropped",
        frames(&back),
        back["restarts"],
        relay.dropped(),
        relay.dropped() + relay.forwarded()
    );
}

#[test]
fn an_srt_listener_with_a_passphrase_never_shows_it() {
    let passphrase = "Sw0rdf1sh-never-shown";
    let port = free_udp_port();
    let listen =
        format!("srt://127.0.0.1:{port}?mode=listener&passphrase={passphrase}&pbkeylen=16");
    // On the command line, so the stream id is derived from the URL too.
    let sw = Streamwatch::start(LIVE_INGEST, &[&listen]);
    assert!(
        wait_until(Duration::from_secs(10), || udp_bound(port)),
        "streamwatch did not listen on udp {port}"
    );
    let caller = format!("srt://127.0.0.1:{port}?mode=caller&passphrase={passphrase}&pbkeylen=16");
    let sender = live_sender(&defect_spec(320, 240), Some(SILENCE), Output::Srt, &caller);
    let streams = sw.streams();
    let id = streams[0]["id"].as_str().unwrap_or_default().to_owned();
    let s = sw.wait_stream(&id, Duration::from_secs(20), "up with frames", |s| {
        s["state"] == "up" && frames(s) >= 50
    });
    assert!(
        s["url"]
            .as_str()
            .is_some_and(|u| u.contains("passphrase=***") && u.contains("mode=listener")),
        "{s:#}"
    );
    let api = serde_json::to_string(&sw.streams()).unwrap_or_default();
    let (metrics, log) = (sw.metrics(), sw.log());
    for (what, text) in [
        ("/api/streams", &api),
        ("/metrics", &metrics),
        ("the log", &log),
    ] {
        assert!(!text.contains(passphrase), "the passphrase shows in {what}");
        assert!(
            !text.contains("Sw0rdf1sh"),
            "part of the passphrase shows in {what}"
        );
    }
    assert!(!id.contains("Sw0rdf1sh"), "{id}");
    let s = expect_black_and_silence_only("srt listener", &sw, &id, &sender, 250);
    eprintln!("srt listener: stream {id} up with {} frames", frames(&s));
}

#[test]
fn source_specific_multicast_receives_only_the_named_sender() {
    let ns = NetNs::create("ssm");
    let _inside = ns.enter();
    let port = free_udp_port();
    // 232.0.0.0/8: the SSM range. The sender leaves from 127.0.0.1 (the namespace's route to
    // 224.0.0.0/4 says so); 127.0.0.2 is on lo too (127.0.0.0/8) but never sends.
    let group = format!("232.7.7.7:{port}");
    let sw = Streamwatch::start(
        &config(&[
            (
                "ssm",
                &format!("udp://@{group}?source=127.0.0.1&iface=lo&buffer=1048576"),
            ),
            ("other", &format!("udp://@{group}?source=127.0.0.2")),
            // Control: the whole group on the same port, so "other" hearing nothing is the
            // source filter's doing, not the datagrams failing to reach the port.
            ("any", &format!("udp://@{group}")),
            // A join that cannot be made: down, with the reason naming the option.
            (
                "noiface",
                &format!("udp://@{group}?source=127.0.0.1&iface=nosuch0"),
            ),
        ]),
        &[],
    );
    let sender = live_sender(
        &LiveSpec {
            seconds: 20,
            ..LiveSpec::new(320, 240, 25)
        },
        None,
        Output::Udp,
        &format!("udp://{group}"),
    );
    let up = |s: &Value| s["state"] == "up" && frames(s) >= 200;
    let ssm = sw.wait_stream("ssm", Duration::from_secs(20), "up with frames", up);
    let any = sw.wait_stream("any", Duration::from_secs(10), "up with frames", up);
    let other = sw.stream("other");
    eprintln!(
        "ssm: source=127.0.0.1 {} with {} frames ({} bit/s, {} TS CC errors); source=127.0.0.2 \
         {} with {} frames, {} restarts, bitrate {}; whole group {} with {} frames",
        ssm["state"],
        frames(&ssm),
        ssm["input_bitrate"],
        ssm["ts_cc_errors"],
        other["state"],
        frames(&other),
        other["restarts"],
        other["input_bitrate"],
        any["state"],
        frames(&any)
    );
    if other["state"] == "up" || frames(&other) > 0 {
        sender.dump_log();
        sw.dump_log();
        panic!("a join for sender 127.0.0.2 received 127.0.0.1's stream: {other:#}");
    }
    assert!(
        other["input_bitrate"].as_f64().is_none_or(|b| b == 0.0),
        "datagrams reached the source=127.0.0.2 stream: {other:#}"
    );
    assert_eq!(ssm["ts_cc_errors"], 0, "{ssm:#}");
    assert_eq!(
        (ssm["width"].as_u64(), ssm["height"].as_u64()),
        (Some(320), Some(240))
    );
    let noiface = sw.stream("noiface");
    let reason = noiface["reason"].as_str().unwrap_or_default();
    eprintln!("ssm: iface=nosuch0 {}: {reason}", noiface["state"]);
    assert!(
        noiface["state"] == "down"
            && reason.contains("stream `noiface`")
            && reason.contains("option `iface`")
            && reason.contains("nosuch0"),
        "{noiface:#}"
    );
    let log = sw.log();
    assert!(
        log.contains("joined source-specific multicast"),
        "no SSM join logged: {log}"
    );
}

#[test]
fn bad_udp_options_are_config_errors_naming_the_stream_and_the_option() {
    let dir = temp_dir("udp-config");
    for (url, option, says) in [
        ("udp://239.1.1.1:5000?buffer=lots", "buffer", "bytes"),
        (
            "udp://239.1.1.1:5000?bufer=65536",
            "bufer",
            "known: iface, buffer, source",
        ),
        (
            "udp://127.0.0.1:5000?source=10.0.0.7",
            "source",
            "multicast group",
        ),
        (
            "udp://232.1.1.1:5000?source=232.1.1.2",
            "source",
            "not a unicast address",
        ),
        ("rtp://232.1.1.1:5000?source=host", "source", "IPv4 address"),
        ("rtp://127.0.0.1:5000?iface=lo", "iface", "multicast"),
    ] {
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            format!("[[streams]]\nid = \"feed\"\nurl = \"{url}\"\n"),
        )
        .unwrap();
        let (code, _, stderr) = run_cli(
            &["check-config", path.to_str().unwrap()],
            Duration::from_secs(30),
        );
        assert_eq!(code, 2, "{url}: {stderr}");
        for want in [
            "streams[0].url",
            "stream `feed`",
            &format!("option `{option}`"),
            says,
        ] {
            assert!(
                stderr.contains(want),
                "{url}: `{want}` missing from: {stderr}"
            );
        }
    }
    let (code, _, stderr) = run_cli(
        &["run", "--listen", "127.0.0.1:0", "udp://:5000?ttl=1"],
        Duration::from_secs(30),
    );
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("option `ttl`"), "{stderr}");
}
