//! Settings of the outputs streamwatch drives itself: defect thumbnails (`[evidence]`, with
//! an optional S3 upload) and webhooks (`[[webhooks]]`).

use serde::Deserialize;

use super::validate_stream_id;
use crate::config::check::{MIN_TIMER_SECONDS, count, invalid, seconds};
use crate::error::ConfigError;

pub const DEFAULT_EVIDENCE_MAX_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_THUMBNAIL_WIDTH: u32 = 320;
pub const DEFAULT_THUMBNAIL_INTERVAL_SECS: f64 = 1.0;
/// A status page refreshed less than hourly shows nothing useful.
pub const MAX_THUMBNAIL_INTERVAL_SECS: f64 = 3600.0;
/// 1 MiB holds a few dozen thumbnails; 1 TiB is more disk than evidence deserves.
pub const MIN_EVIDENCE_MAX_BYTES: u64 = 1024 * 1024;
pub const MAX_EVIDENCE_MAX_BYTES: u64 = 1 << 40;

/// Thumbnails: per defect (on disk) and the latest per stream (in memory).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Directory of the defect thumbnails; created if missing.
    pub dir: std::path::PathBuf,
    /// Size cap of that directory in bytes; the oldest thumbnails are removed first.
    pub max_bytes: u64,
    /// Thumbnail width in pixels (height keeps the aspect ratio).
    pub thumbnail_width: u32,
    /// Seconds between refreshes of each stream's latest thumbnail.
    pub thumbnail_interval: f64,
    /// Also upload each defect's thumbnail to S3-compatible object storage.
    pub s3: Option<S3Config>,
}

/// An S3 (or S3-compatible) bucket for evidence. Credentials come from the usual AWS
/// environment variables / instance role unless given here.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix, e.g. `streamwatch/evidence/`.
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Endpoint of an S3-compatible service (MinIO, Ceph...); AWS when absent.
    pub endpoint: Option<String>,
    /// Allow a plain-http endpoint.
    #[serde(default)]
    pub allow_http: bool,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            dir: std::env::temp_dir().join("streamwatch-evidence"),
            max_bytes: DEFAULT_EVIDENCE_MAX_BYTES,
            thumbnail_width: DEFAULT_THUMBNAIL_WIDTH,
            thumbnail_interval: DEFAULT_THUMBNAIL_INTERVAL_SECS,
            s3: None,
        }
    }
}

impl EvidenceConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        seconds(
            &k("thumbnail_interval"),
            self.thumbnail_interval,
            MIN_TIMER_SECONDS,
            MAX_THUMBNAIL_INTERVAL_SECS,
        )?;
        count(&k("thumbnail_width"), self.thumbnail_width, 16, 3840)?;
        count(
            &k("max_bytes"),
            self.max_bytes,
            MIN_EVIDENCE_MAX_BYTES,
            MAX_EVIDENCE_MAX_BYTES,
        )
    }
}

pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_WEBHOOK_RETRIES: u32 = 5;
pub const DEFAULT_WEBHOOK_QUEUE: usize = 1000;
/// A receiver that needs more than ten minutes to answer is down.
pub const MAX_WEBHOOK_TIMEOUT_SECS: f64 = 600.0;

/// A webhook notified directly by streamwatch on each defect start and end.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Label value in `streamwatch_webhook_deliveries_total`; defaults to `webhook<N>`.
    #[serde(default)]
    pub name: String,
    /// http:// or https:// URL receiving a POST with a JSON body per event.
    pub url: String,
    /// Seconds to wait for the receiver's answer.
    #[serde(default = "default_webhook_timeout")]
    pub timeout: f64,
    /// Retries after a failed delivery (exponential backoff from 0.5 s, capped at 30 s).
    #[serde(default = "default_webhook_retries")]
    pub max_retries: u32,
    /// Notifications waiting for delivery; beyond this new ones are dropped and counted.
    #[serde(default = "default_webhook_queue")]
    pub queue: usize,
}

fn default_webhook_timeout() -> f64 {
    DEFAULT_WEBHOOK_TIMEOUT_SECS
}
fn default_webhook_retries() -> u32 {
    DEFAULT_WEBHOOK_RETRIES
}
fn default_webhook_queue() -> usize {
    DEFAULT_WEBHOOK_QUEUE
}

impl WebhookConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        let url = &self.url;
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            return Err(invalid(
                &k("url"),
                &format!("`{url}` is not an http(s) URL"),
            ));
        }
        validate_stream_id(&self.name).map_err(|m| invalid(&k("name"), &m))?;
        seconds(
            &k("timeout"),
            self.timeout,
            MIN_TIMER_SECONDS,
            MAX_WEBHOOK_TIMEOUT_SECS,
        )?;
        count(&k("max_retries"), self.max_retries, 0, 100)?;
        count(&k("queue"), self.queue, 1, 1_000_000)
    }
}
