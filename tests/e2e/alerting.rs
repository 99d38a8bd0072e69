//! The shipped alerting set-up: rules and configs pass Prometheus' and Alertmanager's own
//! checks and unit tests, and an injected defect travels streamwatch → Prometheus →
//! Alertmanager → webhook while it lasts, then resolves.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Alertmanager, ClipSpec, Prometheus, Streamwatch, WebhookReceiver, clip, wait_until,
};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run_ok(program: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

#[test]
fn shipped_rules_and_configs_pass_promtool_and_amtool() {
    let prom = repo("deploy/prometheus");
    let text = run_ok(
        "promtool",
        &["check", "rules", "rules/streamwatch.rules.yml"],
        &prom,
    );
    assert!(text.contains("6 rules found"), "{text}");
    let text = run_ok(
        "promtool",
        &["test", "rules", "tests/streamwatch.rules.test.yml"],
        &prom,
    );
    assert!(text.contains("SUCCESS"), "{text}");
    run_ok("promtool", &["check", "config", "prometheus.yml"], &prom);
    run_ok(
        "amtool",
        &["check-config", "alertmanager/alertmanager.yml"],
        &repo("deploy"),
    );
}

/// Firing or resolved alerts named `alertname` for `detector` among the receiver's deliveries.
fn alert_status(body: &serde_json::Value, alertname: &str, detector: &str) -> Option<String> {
    body["alerts"].as_array()?.iter().find_map(|a| {
        (a["labels"]["alertname"] == alertname && a["labels"]["detector"] == detector)
            .then(|| a["status"].as_str().unwrap_or("").to_owned())
    })
}

#[test]
fn a_defect_reaches_the_webhook_through_prometheus_and_alertmanager_and_resolves() {
    // Played in real time: black from 10 s to 20 s after the stream starts.
    let file = clip(&ClipSpec {
        seconds: 40.0,
        black: vec![(10.0, 20.0)],
        ..Default::default()
    });
    let receiver = WebhookReceiver::start();
    let am = Alertmanager::start(&format!(
        "route:\n  receiver: hook\n  group_by: [alertname, stream, detector]\n  group_wait: 0s\n  \
         group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      \
         - url: {}\n        send_resolved: true\n",
        receiver.url("/alerts")
    ));
    let sw = Streamwatch::start(
        &format!(
            "[[streams]]\nid = \"channel1\"\nurl = \"file://{}\"\n",
            file.display()
        ),
        &[],
    );
    let stream_start = Instant::now();
    let prom = Prometheus::start_alerting(
        &[&sw.target()],
        &[repo("deploy/prometheus/rules/streamwatch.rules.yml")],
        &[&am.target()],
    );
    assert!(
        prom.wait_targets_up(Duration::from_secs(30)),
        "Prometheus never scraped streamwatch"
    );

    let firing = wait_until(Duration::from_secs(40), || {
        receiver
            .deliveries()
            .iter()
            .any(|d| alert_status(&d.body, "StreamDefect", "black").as_deref() == Some("firing"))
    });
    if !firing {
        am.dump_log();
        panic!(
            "no firing StreamDefect reached the webhook: {:?}",
            receiver.deliveries()
        );
    }
    let first = receiver
        .deliveries()
        .into_iter()
        .find(|d| alert_status(&d.body, "StreamDefect", "black").as_deref() == Some("firing"))
        .expect("firing delivery");
    // The black started 10 s into the stream (its first frame came about when it went up).
    let defect_start = stream_start + Duration::from_secs(10);
    let latency = first.at.saturating_duration_since(defect_start);
    println!(
        "defect start → Alertmanager webhook: {:.2} s (2 s of it is the detector's minimum duration)",
        latency.as_secs_f64()
    );
    assert!(
        first.at < stream_start + Duration::from_secs(21),
        "alert arrived after the defect ended"
    );
    let alert = &first.body["alerts"][0]["labels"];
    assert_eq!(alert["stream"], "channel1");
    assert_eq!(alert["severity"], "critical");

    let resolved = wait_until(Duration::from_secs(30), || {
        receiver
            .deliveries()
            .iter()
            .any(|d| alert_status(&d.body, "StreamDefect", "black").as_deref() == Some("resolved"))
    });
    assert!(
        resolved,
        "the alert never resolved: {:?}",
        receiver.deliveries()
    );
    let resolved_at = receiver
        .deliveries()
        .into_iter()
        .find(|d| alert_status(&d.body, "StreamDefect", "black").as_deref() == Some("resolved"))
        .expect("resolved delivery")
        .at;
    assert!(
        resolved_at > stream_start + Duration::from_secs(20),
        "resolved before the defect ended"
    );
    assert!(sw.terminate().success());
}
