//! Direct webhooks: streamwatch POSTs each defect start and end as JSON, retries a receiver that
//! is down until it comes back, and one dead receiver does not hold up another.

use std::time::{Duration, Instant};

use crate::support::{ClipSpec, Streamwatch, WebhookReceiver, clip, free_port, wait_until};

fn events_named<'a>(
    d: &'a [crate::support::Delivery],
    event: &str,
) -> Vec<&'a crate::support::Delivery> {
    d.iter().filter(|d| d.body["event"] == event).collect()
}

#[test]
fn defect_start_and_end_reach_webhooks_and_a_down_receiver_gets_them_on_retry() {
    // Played in real time: black from 4 s to 9 s.
    let file = clip(&ClipSpec {
        seconds: 30.0,
        black: vec![(4.0, 9.0)],
        ..Default::default()
    });
    let up = WebhookReceiver::start();
    let down_port = free_port();
    let config = format!(
        r#"
[[streams]]
id = "channel1"
url = "file://{file}"

[[webhooks]]
name = "noc"
url = "{up}"

[[webhooks]]
name = "late"
url = "http://127.0.0.1:{down_port}/hook"
max_retries = 8
"#,
        file = file.display(),
        up = up.url("/hook")
    );
    let sw = Streamwatch::start(&config, &[]);
    let started = Instant::now();

    assert!(
        wait_until(Duration::from_secs(20), || !events_named(
            &up.deliveries(),
            "defect_start"
        )
        .is_empty()),
        "no defect_start delivered"
    );
    let start = events_named(&up.deliveries(), "defect_start")[0].clone();
    let latency = start
        .at
        .saturating_duration_since(started + Duration::from_secs(4));
    println!(
        "defect start → direct webhook: {:.2} s (2 s of it is the detector's minimum duration)",
        latency.as_secs_f64()
    );
    let body = &start.body;
    assert_eq!(body["stream"], "channel1");
    assert_eq!(body["detector"], "black");
    assert!(
        (body["start"].as_f64().unwrap_or(-1.0) - 4.0).abs() <= 0.1,
        "{body}"
    );
    assert!(
        body["start_time"].is_string() && body["end"].is_null(),
        "{body}"
    );
    assert_eq!(start.path, "/hook");

    // The second receiver comes up only now; retries must deliver the start event to it.
    let late = WebhookReceiver::start_on(down_port);
    assert!(
        wait_until(Duration::from_secs(25), || !events_named(
            &late.deliveries(),
            "defect_start"
        )
        .is_empty()),
        "the receiver that was down never got the event"
    );

    assert!(
        wait_until(Duration::from_secs(20), || !events_named(
            &up.deliveries(),
            "defect_end"
        )
        .is_empty()),
        "no defect_end delivered"
    );
    let end = events_named(&up.deliveries(), "defect_end")[0].body.clone();
    assert!(
        (end["end"].as_f64().unwrap_or(-1.0) - 9.0).abs() <= 0.1,
        "{end}"
    );
    assert!(
        (end["duration"].as_f64().unwrap_or(-1.0) - 5.0).abs() <= 0.2,
        "{end}"
    );
    assert_eq!(
        events_named(&up.deliveries(), "defect_start").len(),
        1,
        "one defect, one start"
    );

    let text = sw.metrics();
    assert!(
        crate::support::metric_sum(
            &text,
            "streamwatch_webhook_deliveries_total",
            &["webhook=\"noc\"", "result=\"ok\""]
        ) >= 2.0,
        "{text}"
    );
    assert!(sw.terminate().success());
}
