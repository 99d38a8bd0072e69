//! Security and resilience as a clumsy operator meets them: extreme values on every
//! subcommand give one clear error (exit 2), never a panic; a closed stdout ends quietly; an
//! unusable evidence directory disables evidence, not monitoring; a file loops in place; and
//! no secret of a URL shows in any output.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{ClipSpec, Streamwatch, clip, run_cli, temp_dir};

const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The lines of stderr that report an error, without Mesa's harmless XDG_RUNTIME_DIR notice.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("error") && !l.contains("XDG_RUNTIME_DIR"))
        .collect()
}

fn short_clip() -> String {
    let spec = ClipSpec::new(160, 120, 25, 2.0, crate::support::Content::TestPattern);
    clip(&spec).display().to_string()
}

#[test]
fn every_subcommand_refuses_extreme_values_with_one_clear_line() {
    let dir = temp_dir("resilience-cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[ingest]\nrestart_backoff_initial = 1e-9\n").unwrap();
    let bad = bad.display().to_string();
    let file = short_clip();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["scan", &file, "--duration", "1e20"], "--duration"),
        (vec!["scan", &file, "--duration", "-5"], "--duration"),
        (vec!["scan", &file, "--duration", "NaN"], "--duration"),
        (vec!["scan", &file, "--duration", "inf"], "--duration"),
        (vec!["scan", &file, "--program", "0"], "--program"),
        (
            vec!["scan", &file, "--config", &bad],
            "restart_backoff_initial",
        ),
        (vec!["bench", "--duration", "1e20"], "--duration"),
        (vec!["bench", "--duration", "-inf"], "--duration"),
        (vec!["bench", "--fps", "1e-300"], "--fps"),
        (vec!["bench", "--fps", "-1"], "--fps"),
        (vec!["bench", "--fps", "1e300"], "--fps"),
        (
            vec!["bench", "--streams", "99999999999999999999"],
            "--streams",
        ),
        (vec!["bench", "--streams", "0"], "--streams"),
        (vec!["bench", "--resolution", "99999x1"], "--resolution"),
        (vec!["bench", "--config", &bad], "restart_backoff_initial"),
        (vec!["run", "--listen", "1.2.3.4:99999"], "--listen"),
        (vec!["run", "--shard", "7/0", "rtmp://h/a"], "--shard"),
        (vec!["run", "--config", &bad], "restart_backoff_initial"),
        (vec!["demo", "--listen", "nowhere"], "--listen"),
        (vec!["check-config", &bad], "restart_backoff_initial"),
    ];
    for (args, option) in &cases {
        let (code, _, stderr) = run_cli(args, CLI_TIMEOUT);
        assert_eq!(code, 2, "{args:?}: exit {code}\n{stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        let errors = error_lines(&stderr);
        assert!(
            errors.len() == 1 && errors[0].contains(option),
            "{args:?}: expected one error line naming {option}: {stderr}"
        );
    }
    // Extreme but valid values run.
    for args in [
        [
            "bench",
            "--streams",
            "64",
            "--fps",
            "1000",
            "--resolution",
            "16x16",
        ],
        [
            "bench",
            "--streams",
            "1",
            "--fps",
            "0.1",
            "--resolution",
            "8192x16",
        ],
    ] {
        let mut args = args.to_vec();
        args.extend(["--duration", "0.3", "--backend", "cpu"]);
        let (code, stdout, stderr) = run_cli(&args, CLI_TIMEOUT);
        assert_eq!(code, 0, "{args:?}: exit {code}\n{stderr}");
        assert!(stdout.contains("streamwatch bench"), "{stdout}");
    }
}

/// Runs `streamwatch ARGS` with its stdout a pipe whose reader is already gone.
fn run_into_closed_pipe(args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(crate::support::streamwatch::binary())
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run streamwatch");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_quietly() {
    let dir = temp_dir("resilience-pipe");
    let config = dir.join("ok.toml");
    let streams: String = (0..200)
        .map(|i| format!("[[streams]]\nid = \"s{i}\"\nurl = \"rtmp://h/live/s{i}\"\n"))
        .collect();
    std::fs::write(&config, streams).unwrap();
    let config = config.display().to_string();
    let file = short_clip();
    for args in [
        vec!["check-config", config.as_str()],
        vec!["scan", file.as_str(), "--format", "json"],
        vec![
            "bench",
            "--streams",
            "1",
            "--duration",
            "0.2",
            "--backend",
            "cpu",
        ],
    ] {
        let (code, stderr) = run_into_closed_pipe(&args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn an_unusable_evidence_directory_disables_evidence_not_monitoring() {
    let dir = temp_dir("resilience-evidence");
    // Tests run as root, which no permission stops: a path under a regular file cannot be
    // created by anyone.
    let blocker = dir.join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let spec = ClipSpec {
        seconds: 6.0,
        black: vec![(1.0, 4.5)],
        ..ClipSpec::default()
    };
    let config = format!(
        "backend = \"cpu\"\n[evidence]\ndir = \"{}\"\n[[streams]]\nid = \"dark\"\nurl = \"file://{}\"\n",
        blocker.join("evidence").display(),
        clip(&spec).display()
    );
    let sw = Streamwatch::start(&config, &[]);
    let s = sw.wait_stream("dark", Duration::from_secs(30), "a black defect", |s| {
        !crate::support::events_of(s, "black").is_empty()
    });
    assert_eq!(s["state"], "up", "{s:#}");
    for e in crate::support::events_of(&s, "black") {
        assert!(
            e.get("evidence").is_none(),
            "evidence link advertised: {e:#}"
        );
        let id = e["id"].as_str().unwrap_or_default();
        let one = crate::support::http_get_json(&sw.url(&format!("/api/events/{id}"))).unwrap();
        assert!(one.get("evidence").is_none(), "{one:#}");
    }
    assert!(sw.metric_sum("streamwatch_evidence_errors_total", &[]) >= 1.0);
    assert!(sw.log().contains("evidence directory"), "no warning logged");
}

#[test]
fn a_file_loops_in_place_without_restarts_or_events() {
    let file = short_clip();
    let config =
        format!("backend = \"cpu\"\n[[streams]]\nid = \"loop\"\nurl = \"file://{file}\"\n");
    let sw = Streamwatch::start(&config, &[]);
    // Three passes and more of a 2 s clip.
    let s = sw.wait_stream("loop", Duration::from_secs(30), "three loops", |s| {
        s["frames"].as_u64() > Some(160)
    });
    let before = s["frames"].as_u64().unwrap_or(0);
    std::thread::sleep(Duration::from_secs(2));
    let s = sw.stream("loop");
    assert_eq!(s["state"], "up", "{s:#}");
    assert_eq!(s["restarts"], 0, "{s:#}");
    assert!(s["frames"].as_u64().unwrap_or(0) >= before + 40, "{s:#}");
    for key in ["active_defects", "last_events"] {
        assert_eq!(s[key].as_array().map(Vec::len), Some(0), "{key}: {s:#}");
    }
    assert!(!sw.log().contains("stream down"), "{}", sw.log());
}

#[test]
fn url_secrets_show_in_no_output() {
    let secrets = [
        "sk-live-7f3e9a21",
        "cdntok-5b8c",
        "sig-8d2e0f",
        "AKIAEXAMPLE77",
        "pw-hunter2-x",
        "pass-0123456789",
        "sid-key-4242",
    ];
    let config = r#"
redact_query_params = ["X-Cdn-Token"]
[[streams]]
id = "rtmpkey"
url = "rtmp://127.0.0.1:1/live/sk-live-7f3e9a21"
secret_path = true
[[streams]]
id = "signed"
url = "http://127.0.0.1:1/hls/a.m3u8?x-cdn-token=cdntok-5b8c&Signature=sig-8d2e0f&X-Amz-Credential=AKIAEXAMPLE77"
[[streams]]
id = "cam"
url = "rtsp://admin:pw-hunter2-x@127.0.0.1:1/stream"
[[streams]]
id = "srt"
url = "srt://127.0.0.1:1?mode=caller&passphrase=pass-0123456789&streamid=sid-key-4242"
"#;
    let sw = Streamwatch::start(config, &[]);
    let mut shown = String::new();
    for id in ["rtmpkey", "signed", "cam", "srt"] {
        let s = sw.wait_stream(id, Duration::from_secs(40), "down", |s| {
            s["state"] == "down" && s["reason"].is_string()
        });
        shown.push_str(&s.to_string());
    }
    shown.push_str(&serde_json::to_string(&sw.streams()).unwrap());
    shown.push_str(&sw.metrics());
    assert!(shown.contains("rtmp://127.0.0.1:1/live/***"), "{shown}");
    let path = sw.dir.join("streamwatch.toml");
    let (code, stdout, stderr) = run_cli(&["check-config", path.to_str().unwrap()], CLI_TIMEOUT);
    assert_eq!(code, 0, "{stderr}");
    shown.push_str(&stdout);
    shown.push_str(&sw.log());
    for secret in secrets {
        assert!(!shown.contains(secret), "`{secret}` shown:\n{shown}");
    }
}
