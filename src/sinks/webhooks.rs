//! Direct notifications: every defect start and end is POSTed as JSON to the configured
//! webhooks, without Prometheus in the way (lower latency, no extra infrastructure).
//!
//! Events are handed over through a bounded queue per webhook and never block detection: when
//! a receiver is down and its queue fills, new events are dropped and counted. Each delivery is
//! retried with exponential backoff.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::WebhookConfig;
use crate::events::{DefectEvent, Event, Sink};
use crate::frame::VideoFrame;
use crate::sinks::metrics::Metrics;

/// First retry delay; doubles after each failed attempt.
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Which edge of a defect a notification reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    DefectStart,
    DefectEnd,
}

/// The JSON body of a webhook call.
#[derive(Clone, Debug, Serialize)]
pub struct Notification {
    pub event: Phase,
    #[serde(flatten)]
    pub defect: DefectEvent,
}

struct Hook {
    name: String,
    queue: mpsc::Sender<Notification>,
}

/// Fans events out to the webhooks' delivery tasks. With no webhooks it does nothing.
#[derive(Default)]
pub struct Notifier {
    hooks: Vec<Hook>,
    metrics: Option<Arc<Metrics>>,
}

impl Notifier {
    /// Spawns one delivery task per webhook on the current tokio runtime.
    pub fn start(webhooks: &[WebhookConfig], metrics: Arc<Metrics>) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("streamwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        let hooks = webhooks
            .iter()
            .map(|w| {
                let (tx, rx) = mpsc::channel(w.queue);
                tokio::spawn(deliver(client.clone(), w.clone(), rx, metrics.clone()));
                Hook {
                    name: w.name.clone(),
                    queue: tx,
                }
            })
            .collect();
        Self {
            hooks,
            metrics: Some(metrics),
        }
    }

    /// Queues the event for every webhook; never waits.
    pub fn publish(&self, event: Phase, defect: &DefectEvent) {
        for hook in &self.hooks {
            let note = Notification {
                event,
                defect: defect.clone(),
            };
            if hook.queue.try_send(note).is_err() {
                tracing::warn!(webhook = %hook.name, "webhook queue full or closed; notification dropped");
                if let Some(m) = &self.metrics {
                    m.webhook_deliveries
                        .with_label_values(&[&hook.name, "dropped"])
                        .inc();
                }
            }
        }
    }
}

async fn deliver(
    client: reqwest::Client,
    hook: WebhookConfig,
    mut queue: mpsc::Receiver<Notification>,
    metrics: Arc<Metrics>,
) {
    let timeout = Duration::from_secs_f64(hook.timeout);
    while let Some(note) = queue.recv().await {
        let mut delay = RETRY_INITIAL;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            let sent = client
                .post(&hook.url)
                .timeout(timeout)
                .json(&note)
                .send()
                .await;
            let error = match sent {
                Ok(r) if r.status().is_success() => break "ok",
                Ok(r) => format!("HTTP {}", r.status()),
                // reqwest quotes the whole URL, whose path or query often is the secret.
                Err(e) => e.without_url().to_string(),
            };
            if attempt > hook.max_retries {
                tracing::warn!(webhook = %hook.name, endpoint = %endpoint(&hook.url), error = %error, attempts = attempt, "webhook delivery failed");
                break "failed";
            }
            tracing::debug!(webhook = %hook.name, error = %error, retry_in = ?delay, "webhook delivery failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RETRY_MAX);
        };
        metrics
            .webhook_deliveries
            .with_label_values(&[&hook.name, result])
            .inc();
    }
}

/// A stream's defects, as notifications.
pub struct WebhookSink {
    notifier: Arc<Notifier>,
}

impl WebhookSink {
    pub fn new(notifier: Arc<Notifier>) -> Self {
        Self { notifier }
    }
}

impl Sink for WebhookSink {
    fn consume(&self, event: &Event, _frame: Option<&VideoFrame>) {
        match event {
            Event::DefectStarted { defect, .. } => {
                self.notifier.publish(Phase::DefectStart, defect)
            }
            Event::DefectEnded { defect, .. } => self.notifier.publish(Phase::DefectEnd, defect),
            _ => {}
        }
    }
}

/// Where a webhook goes, as it may be logged: scheme and host only, since receivers such as
/// Slack's carry their token in the path (and others in the query or userinfo).
fn endpoint(url: &str) -> String {
    let redacted = crate::config::redact_url(url);
    let Some((scheme, rest)) = redacted.split_once("://") else {
        return "***".to_owned();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_endpoints_are_logged_without_path_query_or_credentials() {
        assert_eq!(
            endpoint("https://hooks.slack.com/services/T0/B0/XXXXsecret"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            endpoint("http://u:pw@127.0.0.1:9/hook?token=t"),
            "http://127.0.0.1:9"
        );
    }
}
