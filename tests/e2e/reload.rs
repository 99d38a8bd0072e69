//! Config reload: SIGHUP and `POST /api/reload` apply a changed stream list (added, removed,
//! changed) without touching the other streams, and a bad file changes nothing while its
//! problem is named.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{
    ClipSpec, Proc, Streamwatch, clip, free_port, http_get, http_get_with_token, metric_sum,
    run_cli, temp_dir, wait_until,
};
use serde_json::Value;

const UP: Duration = Duration::from_secs(40);
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The API token these tests give streamwatch (`STREAMWATCH_TOKEN`): reloads need one.
const TOKEN: &str = "reload-test-token-0123456789";

/// `POST url` with an empty body and the API token → (status, JSON body).
fn post(url: &str) -> (u16, Value) {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent();
    let mut resp = agent
        .post(url)
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send_empty()
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("POST {url}: status {status}, body not JSON ({e}): {body}"));
    (status, json)
}

fn sighup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP {pid} failed");
}

fn ids(sw: &Streamwatch) -> BTreeSet<String> {
    sw.streams()
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn frames(s: &Value) -> u64 {
    s["frames"].as_u64().unwrap_or(0)
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

const INGEST: &str = "[ingest]\nrestart_backoff_initial = 0.5\nrestart_backoff_max = 1.0\n";

fn stream_toml(id: &str, url: &str, extra: &str) -> String {
    format!("\n[[streams]]\nid = \"{id}\"\nurl = \"{url}\"\n{extra}")
}

/// Config files that must be refused, each with a text the error must contain and the HTTP
/// status `POST /api/reload` answers with. Each also lists valid streams, so the problem named
/// is the only one in the file.
fn bad_configs(url: &str) -> Vec<(&'static str, String, &'static str, u16)> {
    let good = stream_toml("keep", url, "");
    vec![
        (
            "malformed TOML",
            format!("{INGEST}{good}\n[[streams]\nid = \"x\"\n"),
            "streamwatch.toml",
            400,
        ),
        (
            "unknown key",
            format!("colour = \"red\"\n{INGEST}{good}"),
            "colour",
            400,
        ),
        (
            "unknown detector key",
            format!("{INGEST}{good}[streams.detectors.black]\nmin_dark_ratoi = 0.9\n"),
            "min_dark_ratoi",
            422,
        ),
        (
            "invalid scheme",
            format!(
                "{INGEST}{good}{}",
                stream_toml("ftp", "ftp://127.0.0.1/a.ts", "")
            ),
            "streams[1].url",
            422,
        ),
        (
            "invalid URL",
            format!("{INGEST}{good}{}", stream_toml("nourl", "not a url", "")),
            "streams[1].url",
            422,
        ),
        (
            "duplicate id",
            format!("{INGEST}{good}{good}"),
            "duplicate stream id `keep`",
            422,
        ),
        (
            "absurd threshold",
            format!("{INGEST}[detectors.freeze]\nmax_changed_ratio = 7\n{good}"),
            "detectors.freeze.max_changed_ratio",
            422,
        ),
        (
            "negative duration",
            format!("{INGEST}{good}[streams.detectors.black]\nmin_duration = -1\n"),
            "streams[0].detectors.black.min_duration",
            422,
        ),
    ]
}

/// Lines of the JSON log where a supervisor started monitoring `id`.
fn monitoring_lines(log: &str, id: &str) -> usize {
    let stream = format!("\"stream\":\"{id}\"");
    log.lines()
        .filter(|l| l.contains("\"message\":\"monitoring\"") && l.contains(&stream))
        .count()
}

#[test]
fn reload_adds_removes_and_restarts_only_the_changed_streams_and_refuses_bad_files() {
    let clip = clip(&ClipSpec {
        seconds: 120.0,
        ..Default::default()
    });
    // A second path to the same media: a changed URL that still plays.
    let clips = temp_dir("reload-clips");
    let moved_clip = clips.join("moved.mp4");
    std::fs::copy(&clip, &moved_clip).expect("copy clip");
    let (url, moved_url) = (file_url(&clip), file_url(&moved_clip));

    let first = format!(
        "{INGEST}{}{}{}",
        stream_toml("keep", &url, ""),
        stream_toml("drop", &url, ""),
        stream_toml("moved", &url, "")
    );
    let sw = Streamwatch::start_with_env(&first, &[], &[("STREAMWATCH_TOKEN", TOKEN)]);
    for id in ["keep", "drop", "moved"] {
        sw.wait_stream(id, UP, "up", |s| s["state"] == "up" && frames(s) > 25);
    }
    assert_eq!(
        sw.metric_sum("streamwatch_stream_info", &["stream=\"drop\""]),
        1.0
    );
    let keep_before = frames(&sw.stream("keep"));

    // SIGHUP: `drop` removed, `moved` gets another URL, `fresh` added, `keep` as it was.
    let second = format!(
        "{INGEST}{}{}{}",
        stream_toml("keep", &url, ""),
        stream_toml("moved", &moved_url, ""),
        stream_toml("fresh", &url, "")
    );
    sw.rewrite_config(&second);
    sighup(sw.pid());
    let reloaded = wait_until(UP, || ids(&sw) == set(&["keep", "moved", "fresh"]));
    if !reloaded {
        sw.dump_log();
        panic!("stream set after SIGHUP: {:?}", ids(&sw));
    }
    let fresh = sw.wait_stream("fresh", UP, "up", |s| s["state"] == "up" && frames(s) > 25);
    assert_eq!(fresh["url"], url.as_str());
    let moved = sw.wait_stream("moved", UP, "up on its new URL", |s| {
        s["state"] == "up" && frames(s) > 25
    });
    assert_eq!(moved["url"], moved_url.as_str(), "{moved:#}");

    assert_removed_and_moved_series(&sw, &url, &moved_url);

    assert_keep_untouched(&sw, keep_before);

    bad_files_through_the_api_change_nothing(&sw, &url);

    a_good_file_restarts_only_what_changed(&sw, &url, &moved_url);

    a_bad_file_on_sighup_is_logged(&sw, &url);

    assert!(!sw.log().contains("panicked"), "a panic was logged");
    let status = sw.terminate();
    assert!(status.success(), "exit status {status}");
}

#[test]
fn without_a_config_file_reload_is_refused_and_sighup_does_not_end_the_process() {
    let clip = clip(&ClipSpec {
        seconds: 120.0,
        ..Default::default()
    });
    let dir = temp_dir("reload-no-config");
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamwatch"));
    cmd.args(["run", "--listen", &format!("127.0.0.1:{port}")])
        .arg(&clip)
        .env("STREAMWATCH_TOKEN", TOKEN)
        .env("NODEVICE_SELECT", "1");
    let mut proc = Proc::spawn("streamwatch", &mut cmd, &dir.join("streamwatch.log"));
    let base = format!("http://127.0.0.1:{port}");
    let ready = wait_until(Duration::from_secs(30), || {
        matches!(http_get(&format!("{base}/readyz")), Ok((200, _)))
    });
    if !ready {
        proc.dump_log();
        panic!("streamwatch did not become ready");
    }
    let (code, body) = post(&format!("{base}/api/reload"));
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("--config"),
        "{body}"
    );

    sighup(proc.pid());
    let log = || std::fs::read_to_string(proc.log_path()).unwrap_or_default();
    let logged = wait_until(Duration::from_secs(10), || {
        log().contains("no file to reload")
    });
    assert!(logged, "SIGHUP without --config was not logged:\n{}", log());
    assert!(proc.is_running(), "SIGHUP ended the process");
    assert!(matches!(
        http_get(&format!("{base}/readyz")),
        Ok((200, body)) if body.contains("1 streams")
    ));
    proc.stop();
}

#[test]
fn run_and_check_config_refuse_each_bad_file_with_one_line_naming_the_problem() {
    let dir = temp_dir("reload-bad-files");
    let url = file_url(&dir.join("unused.mp4"));
    let path = dir.join("streamwatch.toml");
    let path = path.to_str().expect("utf-8 path");
    for (what, text, wanted, _) in bad_configs(&url) {
        std::fs::write(path, &text).unwrap();
        for args in [
            vec!["run", "--config", path, "--listen", "127.0.0.1:0"],
            vec!["check-config", path],
        ] {
            let (code, _, stderr) = run_cli(&args, CLI_TIMEOUT);
            assert_eq!(code, 2, "{what} {args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
            assert!(
                stderr.starts_with("streamwatch: error:") && stderr.contains(wanted),
                "{what} {args:?}: `{wanted}` not in {stderr}"
            );
        }
    }
}

/// The removed stream left no series; the moved one is listed under its new URL only.
fn assert_removed_and_moved_series(sw: &Streamwatch, url: &str, moved_url: &str) {
    let metrics = sw.metrics();
    assert!(
        !metrics.contains("stream=\"drop\""),
        "series of the removed stream remain:\n{}",
        metrics
            .lines()
            .filter(|l| l.contains("stream=\"drop\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let info = |id: &str, u: &str| {
        metric_sum(
            &metrics,
            "streamwatch_stream_info",
            &[&format!("stream=\"{id}\""), &format!("url=\"{u}\"")],
        )
    };
    assert_eq!(info("moved", moved_url), 1.0, "new URL of `moved`");
    assert_eq!(info("moved", url), 0.0, "old URL of `moved` still listed");
    assert_eq!(info("fresh", url), 1.0);
    assert!(matches!(
        http_get_with_token(&sw.url("/api/streams/drop"), Some(TOKEN)),
        Ok((404, _))
    ));
}

/// `keep` kept its pipeline: never restarted, never re-started by the reload, still counting.
fn assert_keep_untouched(sw: &Streamwatch, keep_before: u64) {
    let keep = sw.wait_stream(
        "keep",
        UP,
        "frames beyond the count before the reload",
        |s| frames(s) > keep_before + 25,
    );
    assert_eq!(keep["state"], "up", "{keep:#}");
    assert_eq!(keep["restarts"], 0, "{keep:#}");
    let restarts = "streamwatch_stream_restarts_total{stream=\"keep\"} 0";
    assert!(
        sw.metrics().lines().any(|l| l == restarts),
        "no `{restarts}` in /metrics"
    );
    let log = sw.log();
    assert_eq!(
        monitoring_lines(&log, "keep"),
        1,
        "`keep` was started again"
    );
    assert_eq!(
        monitoring_lines(&log, "moved"),
        2,
        "`moved` was not restarted"
    );
    assert!(log.contains("config reloaded"), "no reload logged");
}

/// Bad files through the API: an error naming the problem, and nothing changes.
fn bad_files_through_the_api_change_nothing(sw: &Streamwatch, url: &str) {
    let before = ids(sw);
    for (what, text, wanted, status) in bad_configs(url) {
        sw.rewrite_config(&text);
        let (code, body) = post(&sw.url("/api/reload"));
        let error = body["error"].as_str().unwrap_or("");
        assert_eq!(code, status, "{what}: {body}");
        assert!(
            error.contains(wanted),
            "{what}: `{wanted}` not in `{error}`"
        );
        assert_eq!(ids(sw), before, "{what}: the running set changed");
    }
    let keep = sw.stream("keep");
    assert_eq!(
        (&keep["state"], &keep["restarts"]),
        (&"up".into(), &0.into())
    );
}

/// A good file through the API: a detector threshold of `moved` and an ingest setting change.
fn a_good_file_restarts_only_what_changed(sw: &Streamwatch, url: &str, moved_url: &str) {
    let third = format!(
        "[ingest]\nrestart_backoff_initial = 0.5\nrestart_backoff_max = 2.0\n{}{}{}",
        stream_toml("keep", url, ""),
        stream_toml(
            "moved",
            moved_url,
            "[streams.detectors.black]\nmin_duration = 5.0\n"
        ),
        stream_toml("fresh", url, "")
    );
    sw.rewrite_config(&third);
    let (code, summary) = post(&sw.url("/api/reload"));
    assert_eq!(code, 200, "{summary}");
    assert_eq!(
        summary,
        serde_json::json!({
            "added": [], "removed": [], "restarted": ["moved"], "unchanged": 2,
            "needs_restart": ["ingest"]
        })
    );
    assert!(
        sw.log()
            .contains("takes effect only when streamwatch restarts")
    );
    sw.wait_stream("moved", UP, "up after its threshold changed", |s| {
        s["state"] == "up" && frames(s) > 25
    });
}

/// A bad file on SIGHUP: logged, and the process and its streams carry on.
fn a_bad_file_on_sighup_is_logged(sw: &Streamwatch, url: &str) {
    sw.rewrite_config(&format!(
        "[ingest]\nqueue_frames = 0\n{}",
        stream_toml("keep", url, "")
    ));
    sighup(sw.pid());
    let logged = wait_until(Duration::from_secs(10), || {
        sw.log()
            .lines()
            .any(|l| l.contains("config reload failed") && l.contains("ingest.queue_frames"))
    });
    assert!(logged, "the bad file on SIGHUP was not logged");
    assert_eq!(ids(sw), set(&["keep", "moved", "fresh"]));
    let keep = sw.stream("keep");
    assert_eq!(
        (&keep["state"], &keep["restarts"]),
        (&"up".into(), &0.into())
    );
}
