//! Self-tests of tests/support: every server helper really serves media, clips carry the
//! defects they claim. Run with `--nocapture` to see start-up timings.

use std::time::{Duration, Instant};

use crate::support::*;

const READ_TIMEOUT: Duration = Duration::from_secs(15);

fn near(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[test]
fn clip_defects_match_ground_truth() {
    let spec = ClipSpec {
        seconds: 10.0,
        freeze: vec![(2.0, 3.0)],
        black: vec![(5.0, 7.0)],
        black_with_logo: vec![(8.0, 9.0)],
        ..Default::default()
    };
    let t = Instant::now();
    let path = clip(&spec);
    eprintln!(
        "clip generated/cached in {:?}: {}",
        t.elapsed(),
        path.display()
    );
    assert_eq!(clip(&spec), path, "cache must return the same file");
    let d = detect_defects(&path).unwrap();
    eprintln!("detections: {d:?}");
    // Black to the frame; black with a 1% logo is black for blackdetect's pic_th=0.98.
    assert_eq!(d.black.len(), 2, "{d:?}");
    assert!(
        near(d.black[0].0, 5.0, 0.001) && near(d.black[0].1, 7.0, 0.001),
        "{d:?}"
    );
    assert!(
        near(d.black[1].0, 8.0, 0.001) && near(d.black[1].1, 9.0, 0.001),
        "{d:?}"
    );
    // The frozen picture starts one frame before the window (the repeated frame) and ends at b.
    assert!(
        d.freeze
            .iter()
            .any(|&(a, b)| near(a, 2.0 - 1.0 / 25.0, 0.001) && near(b, 3.0, 0.001)),
        "{d:?}"
    );
    let ts = mpegts_clip(&ClipSpec {
        seconds: 2.0,
        ..Default::default()
    });
    read_frames(ts.to_str().unwrap(), 25, READ_TIMEOUT).unwrap();
}

#[test]
fn clip_contents_look_as_documented() {
    let dark = clip(&ClipSpec::new(320, 240, 25, 3.0, Content::DarkScene));
    let s = luma_stats(&dark, 3.0).unwrap();
    eprintln!("DarkScene luma: {s:?}");
    assert!(s.mean > 35.0 && s.mean < 65.0, "{s:?}");
    assert!(s.frac_below_32 < 0.5, "{s:?}");
    assert!(detect_defects(&dark).unwrap().black.is_empty());

    let still = clip(&ClipSpec::new(
        320,
        240,
        25,
        3.0,
        Content::StillWithMovingBox,
    ));
    let d = detect_defects_with(&still, -60.0).unwrap();
    assert!(d.black.is_empty() && d.freeze.is_empty(), "{d:?}");

    let noisy = clip(&ClipSpec {
        audio: false,
        ..ClipSpec::new(320, 240, 25, 2.0, Content::HighMotion)
    });
    read_frames(noisy.to_str().unwrap(), 50, READ_TIMEOUT).unwrap();
}

#[test]
fn nginx_serves_rtmp_and_hls_and_restarts_on_same_ports() {
    let t = Instant::now();
    let mut nginx = Nginx::start();
    eprintln!("nginx accepting after {:?}", t.elapsed());
    let ports = (nginx.rtmp_port(), nginx.http_port());
    let spec = LiveSpec::default();
    let t = Instant::now();
    let _push = push_rtmp(&nginx, "cam", &spec);
    let rtmp = nginx.rtmp_url("cam");
    let mut last = Err(String::new());
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = read_frames(&rtmp, 5, READ_TIMEOUT);
            last.is_ok()
        }),
        "{last:?}"
    );
    eprintln!("RTMP: 5 frames read {:?} after push start", t.elapsed());
    let hls = nginx.hls_url("cam");
    assert!(
        wait_until(Duration::from_secs(10), || {
            matches!(http_get(&hls), Ok((200, b)) if b.contains(".ts"))
        }),
        "no HLS playlist"
    );
    eprintln!("HLS: playlist {:?} after push start", t.elapsed());
    read_frames(&hls, 5, READ_TIMEOUT).unwrap();
    eprintln!("HLS: 5 frames read {:?} after push start", t.elapsed());

    // Kill by PID, check it is gone, restart on the same ports, push again.
    let pid = nginx.pid().unwrap();
    nginx.stop();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(http_get(&hls).is_err(), "nginx still answering");
    let t = Instant::now();
    nginx.restart();
    assert_eq!((nginx.rtmp_port(), nginx.http_port()), ports);
    assert_ne!(nginx.pid(), Some(pid));
    let _push2 = push_rtmp(&nginx, "cam", &spec);
    assert!(wait_until(Duration::from_secs(10), || {
        read_frames(&rtmp, 5, READ_TIMEOUT).is_ok()
    }));
    eprintln!("restart: RTMP frames again {:?} after restart", t.elapsed());
}

#[test]
fn srt_source_serves_callers_and_reconnects() {
    let port = free_udp_port();
    let t = Instant::now();
    let mut src = srt_source(port, &LiveSpec::default());
    eprintln!("SRT listener bound after {:?}", t.elapsed());
    let url = format!("srt://127.0.0.1:{port}?mode=caller");
    for round in 0..2 {
        let t = Instant::now();
        if let Err(e) = read_frames(&url, 5, READ_TIMEOUT) {
            src.dump_log();
            panic!("round {round}: {e}");
        }
        eprintln!("SRT round {round}: 5 frames in {:?}", t.elapsed());
    }
    assert!(src.is_running(), "listener must survive caller disconnects");
}

#[test]
fn rtsp_server_serves_and_reconnects() {
    let port = free_port();
    let t = Instant::now();
    let mut srv = rtsp_server(port, &LiveSpec::default());
    eprintln!("RTSP server accepting after {:?}", t.elapsed());
    let url = format!("rtsp://127.0.0.1:{port}/test");
    for round in 0..2 {
        let t = Instant::now();
        if let Err(e) = read_frames(&url, 5, READ_TIMEOUT) {
            srv.dump_log();
            panic!("round {round}: {e}");
        }
        eprintln!("RTSP round {round}: 5 frames in {:?}", t.elapsed());
    }
    assert!(srv.is_running());
}

#[test]
fn hls_origin_serves_and_http_can_be_stopped() {
    let t = Instant::now();
    let mut o = HlsOrigin::start(&LiveSpec::default());
    eprintln!("HLS origin: first playlist after {:?}", t.elapsed());
    read_frames(&o.url(), 5, READ_TIMEOUT).unwrap();
    assert_eq!(http_get(&o.url_missing()).unwrap().0, 404);
    o.stop_http();
    assert!(
        http_get(&o.url()).is_err(),
        "HTTP must refuse while stopped"
    );
    o.start_http();
    let (status, body) = http_get(&o.url()).unwrap();
    assert_eq!(status, 200);
    assert!(body.starts_with("#EXTM3U"), "{body}");
}

#[test]
fn prometheus_scrapes_a_target_and_answers_queries() {
    let stub = StubServer::start(
        "# HELP sw_test_value A test value.\n# TYPE sw_test_value gauge\nsw_test_value{stream=\"a\"} 42\n",
    );
    let rules_dir = temp_dir("rules");
    let rules = rules_dir.join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n- name: t\n  rules:\n  - record: sw_test_value_doubled\n    expr: sw_test_value * 2\n",
    )
    .unwrap();
    let t = Instant::now();
    let prom = Prometheus::start(&[&stub.target()], &[rules]);
    eprintln!("Prometheus ready after {:?}", t.elapsed());
    if !prom.wait_targets_up(Duration::from_secs(20)) {
        prom.dump_log();
        panic!("target not up: {:?}", prom.targets());
    }
    eprintln!("Prometheus: target up after {:?}", t.elapsed());
    let r = prom.query("sw_test_value").unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0["stream"], "a");
    assert_eq!(r[0].1, 42.0);
    assert!(wait_until(Duration::from_secs(10), || {
        prom.query_one("sw_test_value_doubled") == Some(84.0)
    }));
    eprintln!("Prometheus: recording rule after {:?}", t.elapsed());
    assert!(prom.query("sum(").is_err(), "bad PromQL must be an error");
    stub.set_body("# HELP sw_test_value A test value.\n# TYPE sw_test_value gauge\nsw_test_value{stream=\"a\"} 7\n");
    let updated = wait_until(Duration::from_secs(5), || {
        prom.query_one("sw_test_value") == Some(7.0)
    });
    assert!(updated, "new value not scraped");
    drop(prom);
    let _ = std::fs::remove_dir_all(rules_dir);
}

#[test]
fn promtool_and_http_helpers() {
    promtool_check_metrics("# HELP x_total Things.\n# TYPE x_total counter\nx_total 1\n").unwrap();
    assert!(promtool_check_metrics("this is not { a metric\n").is_err());
    let stub = StubServer::start("hello");
    assert_eq!(http_get(&stub.url()).unwrap(), (200, "hello".to_string()));
    stub.set_response(404, "nope");
    assert_eq!(http_get(&stub.url()).unwrap().0, 404);
    assert!(http_get_json(&stub.url()).is_err());
    stub.set_response(200, "{\"a\": 1}");
    assert_eq!(http_get_json(&stub.url()).unwrap()["a"], 1);
    assert!(http_get(&format!("http://127.0.0.1:{}/", free_port())).is_err());
}

#[test]
fn live_black_windows_follow_the_schedule() {
    // Black for the first 2.5 s after the source started, then the test picture.
    let spec = LiveSpec::default().with_black(0.0, 2.5);
    let rtsp_port = free_port();
    let srt_port = free_udp_port();
    let _rtsp = rtsp_server(rtsp_port, &spec);
    let _srt = srt_source(srt_port, &spec);
    let started = Instant::now();
    let rtsp = format!("rtsp://127.0.0.1:{rtsp_port}/test");
    let srt = format!("srt://127.0.0.1:{srt_port}?mode=caller");
    for url in [&rtsp, &srt] {
        let l = read_luma_means(url, 3, READ_TIMEOUT).unwrap();
        eprintln!("{url} at {:?}: luma {l:?}", started.elapsed());
        if started.elapsed() < Duration::from_secs(2) {
            assert!(l.iter().all(|&m| m < 20.0), "{url} should be black: {l:?}");
        }
    }
    std::thread::sleep(Duration::from_millis(3000).saturating_sub(started.elapsed()));
    for url in [&rtsp, &srt] {
        let l = read_luma_means(url, 3, READ_TIMEOUT).unwrap();
        eprintln!("{url} at {:?}: luma {l:?}", started.elapsed());
        assert!(
            l.iter().all(|&m| m > 40.0),
            "{url} should not be black: {l:?}"
        );
    }
}
