//! Bad input gets one clear error and no panic, and broken streams never affect good ones.

use std::time::Duration;

use crate::support::{ClipSpec, Streamwatch, StubServer, clip, http_get, run_cli, temp_dir};

const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `streamwatch scan SOURCE` and returns stderr after checking the exit code is 2.
fn scan_fails(source: &str, extra: &[&str]) -> String {
    let mut args = vec!["scan", source];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_cli(&args, CLI_TIMEOUT);
    assert_eq!(
        code, 2,
        "scan {source}: expected exit 2, got {code}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let last = stderr.lines().last().unwrap_or("").to_owned();
    assert!(
        last.starts_with("streamwatch: error:"),
        "no one-line error: {stderr}"
    );
    last
}

#[test]
fn scan_of_bad_sources_exits_2_with_a_clear_error() {
    let dir = temp_dir("bad-input");
    let missing = dir.join("no-such-clip.mp4");
    let e = scan_fails(missing.to_str().unwrap(), &[]);
    assert!(
        e.contains("no-such-clip.mp4") && e.contains("cannot be opened"),
        "{e}"
    );

    let garbage = dir.join("garbage.mp4");
    std::fs::write(
        &garbage,
        (0..200_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let e = scan_fails(garbage.to_str().unwrap(), &[]);
    assert!(e.contains("garbage.mp4"), "{e}");

    // streamwatch fetches HTTP sources itself first: the error names the URL once, and the
    // cause.
    let e = scan_fails("http://127.0.0.1:1/live.m3u8", &[]);
    assert!(
        e.matches("http://127.0.0.1:1/live.m3u8").count() == 1 && e.contains("Connection refused"),
        "{e}"
    );

    let not_found = StubServer::start("");
    not_found.set_response(404, "not here");
    let e = scan_fails(
        &format!("http://127.0.0.1:{}/live.m3u8", not_found.port()),
        &[],
    );
    assert!(e.contains("404") || e.contains("Not Found"), "{e}");

    let e = scan_fails("gopher://example/stream", &[]);
    assert!(e.contains("gopher"), "{e}");

    let bad_config = dir.join("bad.toml");
    std::fs::write(&bad_config, "[detectors.black]\nmin_dark_ratoi = 0.9\n").unwrap();
    let good_clip = clip(&ClipSpec {
        seconds: 2.0,
        ..Default::default()
    });
    let e = scan_fails(
        good_clip.to_str().unwrap(),
        &["--config", bad_config.to_str().unwrap()],
    );
    assert!(e.contains("min_dark_ratoi"), "{e}");
}

#[test]
fn check_config_names_the_bad_key_and_accepts_a_good_file() {
    let dir = temp_dir("check-config");
    let cases = [
        ("listen = 5\n", "listen"),
        (
            "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n[[streams]]\nid = \"a\"\nurl = \"rtmp://h/b\"\n",
            "duplicate stream id",
        ),
        (
            "[[streams]]\nid = \"a\"\nurl = \"ftp://h/a\"\n",
            "streams[0].url",
        ),
        (
            "[detectors.freeze]\nmax_changed_ratio = 7\n",
            "detectors.freeze.max_changed_ratio",
        ),
        ("[ingest]\nstall_timeout = 0\n", "ingest.stall_timeout"),
        (
            "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n[streams.detectors.black]\nbogus = 1\n",
            "bogus",
        ),
        ("not toml at all [", "bad.toml"),
    ];
    for (text, wanted) in cases {
        let path = dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let (code, _, stderr) = run_cli(&["check-config", path.to_str().unwrap()], CLI_TIMEOUT);
        assert_eq!(code, 2, "{text}: {stderr}");
        assert!(
            stderr.contains(wanted),
            "{text}: expected `{wanted}` in {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    }
    let good = dir.join("good.toml");
    std::fs::write(&good, "listen = \"127.0.0.1:9999\"\n[[streams]]\nid = \"news\"\nurl = \"srt://127.0.0.1:9000?mode=caller\"\n").unwrap();
    let (code, stdout, stderr) = run_cli(&["check-config", good.to_str().unwrap()], CLI_TIMEOUT);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("news"), "{stdout}");
}

#[test]
fn broken_streams_go_down_with_a_reason_while_a_good_one_keeps_running() {
    let dir = temp_dir("bad-streams");
    let garbage = dir.join("garbage.ts");
    std::fs::write(&garbage, vec![0x47u8; 50_000]).unwrap();
    let not_found = StubServer::start("");
    not_found.set_response(404, "not here");
    let good = clip(&ClipSpec {
        seconds: 60.0,
        ..Default::default()
    });
    let config = format!(
        r#"
[ingest]
restart_backoff_initial = 0.5
restart_backoff_max = 1.0

[[streams]]
id = "good"
url = "file://{good}"

[[streams]]
id = "missing-file"
url = "file://{dir}/nothing-here.mp4"

[[streams]]
id = "garbage"
url = "file://{garbage}"

[[streams]]
id = "refused"
url = "rtmp://127.0.0.1:1/live/x"

[[streams]]
id = "playlist-404"
url = "http://127.0.0.1:{port}/live.m3u8"
"#,
        good = good.display(),
        dir = dir.display(),
        garbage = garbage.display(),
        port = not_found.port()
    );
    let sw = Streamwatch::start(&config, &[]);
    sw.wait_stream("good", Duration::from_secs(20), "up", |s| {
        s["state"] == "up" && s["frames"].as_u64() > Some(25)
    });
    for (id, reason) in [
        ("missing-file", "does not exist"),
        ("garbage", ""),
        ("refused", "refused"),
        ("playlist-404", "404"),
    ] {
        let s = sw.wait_stream(id, Duration::from_secs(20), "down after a restart", |s| {
            s["state"] == "down" && s["restarts"].as_u64() >= Some(1)
        });
        let why = s["reason"].as_str().unwrap_or("");
        assert!(
            !why.is_empty() && why.contains(reason),
            "{id}: reason `{why}` lacks `{reason}`"
        );
    }
    let before = sw.stream("good")["frames"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(2));
    let good_now = sw.stream("good");
    assert_eq!(good_now["state"], "up");
    assert!(
        good_now["frames"].as_u64().unwrap_or(0) >= before + 40,
        "good stream slowed down: {good_now:#}"
    );
    assert_eq!(good_now["restarts"], 0, "{good_now:#}");

    assert!(matches!(
        http_get(&sw.url("/api/streams/nope")),
        Ok((404, _))
    ));
    assert!(!sw.log().contains("panicked"), "a panic was logged");
    let status = sw.terminate();
    assert!(status.success(), "exit status {status}");
}
