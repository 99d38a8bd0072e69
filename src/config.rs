//! Configuration: TOML with documented defaults; unknown keys and invalid values are errors
//! naming the key.
//!
//! Per-stream detector settings override the global `[detectors]` table key by key: the two
//! TOML tables are merged before they are turned into typed settings, so a stream that only
//! sets `black.min_duration` keeps every other global value.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::error::ConfigError;
use crate::stats::BackendChoice;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9723";
pub const DEFAULT_STALL_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_QUEUE_FRAMES: usize = 8;
pub const DEFAULT_BACKOFF_INITIAL_SECS: f64 = 1.0;
pub const DEFAULT_BACKOFF_MAX_SECS: f64 = 30.0;
pub const DEFAULT_BATCH_TIMEOUT_MS: u64 = 20;
pub const DEFAULT_MAX_FRAMES_PER_STREAM: usize = 8;
pub const DEFAULT_MIN_DURATION_SECS: f64 = 2.0;
pub const DEFAULT_CLEAR_DURATION_SECS: f64 = 0.2;
/// 8-bit luma at or below which a pixel counts as dark: video-range black is 16, and encoders
/// smear it by a few levels; ffmpeg's blackdetect default (pix_th 0.10) is about 38.
pub const DEFAULT_BLACK_LUMA_THRESHOLD: u8 = 32;
/// A frame is black when at least this share of its pixels is dark (a small logo stays black).
pub const DEFAULT_BLACK_MIN_DARK_RATIO: f64 = 0.98;
/// Once black, the frame stays black until the dark share falls below this (hysteresis).
pub const DEFAULT_BLACK_CLEAR_DARK_RATIO: f64 = 0.95;
/// Luma differences up to this are treated as encoder noise, not motion.
pub const DEFAULT_FREEZE_NOISE_THRESHOLD: u8 = 16;
/// A frame is frozen when at most this share of its pixels changed beyond the noise threshold.
pub const DEFAULT_FREEZE_MAX_CHANGED_RATIO: f64 = 0.0001;
pub const DEFAULT_SILENCE_THRESHOLD_DBFS: f64 = -60.0;
/// EBU R128 programme loudness target (LUFS) and the tolerated deviation (LU) of the
/// short-term loudness; R128 allows ±1 LU for live, broadcast monitoring alarms are wider.
pub const DEFAULT_LOUDNESS_TARGET_LUFS: f64 = -23.0;
pub const DEFAULT_LOUDNESS_TOLERANCE_LU: f64 = 5.0;
/// Short-term loudness must stay out of the window this long to be a defect.
pub const DEFAULT_LOUDNESS_MIN_DURATION_SECS: f64 = 10.0;
/// EBU R128's maximum true peak level.
pub const DEFAULT_TRUE_PEAK_MAX_DBTP: f64 = -1.0;
/// A sample at or above this magnitude is at full scale (16-bit full scale is 0.99997).
pub const DEFAULT_CLIPPING_LEVEL: f64 = 0.999;
/// Consecutive full-scale samples that make a clip (single peaks touching full scale are legal).
pub const DEFAULT_CLIPPING_MIN_RUN: usize = 3;
/// Clipping is intermittent by nature (only the peaks clip): gaps up to this do not end it.
pub const DEFAULT_CLIPPING_CLEAR_DURATION_SECS: f64 = 0.5;
/// Channel level (dBFS) at or below which a channel is missing (nothing carried, not just quiet).
pub const DEFAULT_CHANNEL_MISSING_DBFS: f64 = -90.0;
/// Level (dBFS) from which a channel carries programme.
pub const DEFAULT_CHANNEL_PROGRAMME_DBFS: f64 = -50.0;
/// Side-to-mid (or mid-to-side) energy ratio in dB below which two channels are identical
/// (or phase-inverted); real stereo mixes stay well above -20 dB.
pub const DEFAULT_CHANNEL_SIMILARITY_DB: f64 = -40.0;
/// Seconds of missing audio (while video goes on), or of a forward timestamp jump, that make a
/// loss.
pub const DEFAULT_AUDIO_LOSS_MIN_GAP_SECS: f64 = 0.5;
/// Wall seconds without an audio buffer, while video frames arrive, before audio counts as
/// gone; longer than the audio queue of the pipeline (1 s), which can hold audio back.
pub const DEFAULT_AUDIO_LOSS_TIMEOUT_SECS: f64 = 2.0;
/// Largest tolerated |audio - video| offset, seconds.
pub const DEFAULT_AV_SYNC_MAX_OFFSET_SECS: f64 = 0.1;

/// The whole configuration file.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of the HTTP server (metrics, health, API).
    pub listen: SocketAddr,
    /// Statistics backend.
    pub backend: BackendChoice,
    pub ingest: IngestConfig,
    pub engine: EngineConfig,
    /// Global detector settings (before per-stream overrides).
    pub detectors: DetectorsConfig,
    pub streams: Vec<StreamConfig>,
    /// Endpoints that receive every defect start and end as JSON.
    pub webhooks: Vec<WebhookConfig>,
    pub evidence: EvidenceConfig,
}

pub const DEFAULT_EVIDENCE_MAX_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_THUMBNAIL_WIDTH: u32 = 320;
pub const DEFAULT_THUMBNAIL_INTERVAL_SECS: f64 = 1.0;

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

pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_WEBHOOK_RETRIES: u32 = 5;
pub const DEFAULT_WEBHOOK_QUEUE: usize = 1000;

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

/// Settings of the media converter and the stream supervisor.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Seconds without a decoded frame after which a stream is declared down and restarted.
    pub stall_timeout: f64,
    /// Frames buffered per stream between the decoder and the engine; when full the oldest is
    /// dropped and counted (live streams never wait for analysis).
    pub queue_frames: usize,
    /// First restart delay in seconds; doubles after each failed attempt.
    pub restart_backoff_initial: f64,
    /// Upper bound of the restart delay in seconds.
    pub restart_backoff_max: f64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            stall_timeout: DEFAULT_STALL_TIMEOUT_SECS,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            restart_backoff_initial: DEFAULT_BACKOFF_INITIAL_SECS,
            restart_backoff_max: DEFAULT_BACKOFF_MAX_SECS,
        }
    }
}

/// Settings of the batching analysis engine.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Longest wait, in milliseconds, for the other streams' frames once one frame is queued.
    pub batch_timeout_ms: u64,
    /// Most frames of one stream analysed in one batch.
    pub max_frames_per_stream: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            batch_timeout_ms: DEFAULT_BATCH_TIMEOUT_MS,
            max_frames_per_stream: DEFAULT_MAX_FRAMES_PER_STREAM,
        }
    }
}

/// How long a condition must hold before it is a defect, and how long it must be gone before the
/// defect ends.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Seconds the condition must last to raise a defect (the event is back-dated to its start).
    pub min_duration: f64,
    /// Seconds the condition must be absent to end the defect (the end is back-dated too).
    pub clear_duration: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Black picture detector.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlackConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Luma (0-255) at or below which a pixel is dark.
    pub luma_threshold: u8,
    /// Share of dark pixels (0-1) from which a frame is black.
    pub min_dark_ratio: f64,
    /// Share of dark pixels below which a black frame is no longer black (hysteresis).
    pub clear_dark_ratio: f64,
    /// Seconds black must last before it is a defect.
    pub min_duration: f64,
    /// Seconds of picture needed to end a black defect.
    pub clear_duration: f64,
}

impl Default for BlackConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            luma_threshold: DEFAULT_BLACK_LUMA_THRESHOLD,
            min_dark_ratio: DEFAULT_BLACK_MIN_DARK_RATIO,
            clear_dark_ratio: DEFAULT_BLACK_CLEAR_DARK_RATIO,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Frozen picture detector.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FreezeConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Luma difference (0-255) up to which a pixel counts as unchanged (encoder noise).
    pub noise_threshold: u8,
    /// Share of changed pixels (0-1) up to which a frame counts as a repeat of the previous one.
    pub max_changed_ratio: f64,
    /// Seconds the picture must stay frozen before it is a defect.
    pub min_duration: f64,
    /// Seconds of motion needed to end a freeze.
    pub clear_duration: f64,
}

impl Default for FreezeConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            noise_threshold: DEFAULT_FREEZE_NOISE_THRESHOLD,
            max_changed_ratio: DEFAULT_FREEZE_MAX_CHANGED_RATIO,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Silence detector: the programme (all channels together) and, optionally, each channel.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// RMS level in dBFS below which audio is silent.
    pub threshold_dbfs: f64,
    /// Also watch each channel on its own; its events carry a `channel` field (0-based).
    pub per_channel: bool,
    /// Seconds silence must last before it is a defect.
    pub min_duration: f64,
    /// Seconds of sound needed to end a silence defect.
    pub clear_duration: f64,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            threshold_dbfs: DEFAULT_SILENCE_THRESHOLD_DBFS,
            per_channel: true,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Loudness detector (EBU R128 / ITU-R BS.1770, via the `ebur128` crate).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoudnessConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Target loudness in LUFS.
    pub target_lufs: f64,
    /// Allowed deviation of the short-term loudness from the target, in LU (either way).
    pub tolerance_lu: f64,
    /// Highest allowed true peak in dBTP; any sample above it is a defect (per channel).
    pub max_true_peak_dbtp: f64,
    /// Seconds the short-term loudness must stay outside the window before it is a defect.
    pub min_duration: f64,
    /// Seconds back inside the window needed to end a loudness defect.
    pub clear_duration: f64,
}

impl Default for LoudnessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            target_lufs: DEFAULT_LOUDNESS_TARGET_LUFS,
            tolerance_lu: DEFAULT_LOUDNESS_TOLERANCE_LU,
            max_true_peak_dbtp: DEFAULT_TRUE_PEAK_MAX_DBTP,
            min_duration: DEFAULT_LOUDNESS_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Clipping detector: runs of samples at full scale.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClippingConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Magnitude (0-1) from which a sample is at full scale.
    pub level: f64,
    /// Consecutive full-scale samples in one channel that count as a clip.
    pub min_run: usize,
    /// Seconds of clipping before it is a defect.
    pub min_duration: f64,
    /// Seconds without a clip needed to end a clipping defect.
    pub clear_duration: f64,
}

impl Default for ClippingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            level: DEFAULT_CLIPPING_LEVEL,
            min_run: DEFAULT_CLIPPING_MIN_RUN,
            min_duration: 0.0,
            clear_duration: DEFAULT_CLIPPING_CLEAR_DURATION_SECS,
        }
    }
}

/// Channel detector: a missing channel, identical channels (fake stereo), phase inversion.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// RMS level in dBFS at or below which a channel is missing.
    pub missing_dbfs: f64,
    /// RMS level in dBFS from which a channel carries programme.
    pub programme_dbfs: f64,
    /// Side/mid (identical) or mid/side (inverted) energy ratio in dB at or below which the
    /// first two channels are a defect.
    pub similarity_db: f64,
    /// Report identical channels (fake stereo); off for sources that are mono by design.
    pub report_identical: bool,
    /// Seconds the condition must last before it is a defect.
    pub min_duration: f64,
    /// Seconds without the condition needed to end the defect.
    pub clear_duration: f64,
}

impl Default for ChannelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            missing_dbfs: DEFAULT_CHANNEL_MISSING_DBFS,
            programme_dbfs: DEFAULT_CHANNEL_PROGRAMME_DBFS,
            similarity_db: DEFAULT_CHANNEL_SIMILARITY_DB,
            report_identical: true,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Audio loss: audio gone while video goes on, or audio timestamps jumping forward.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AudioLossConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Seconds of media time without audio (or of a timestamp jump) that make a loss.
    pub min_gap: f64,
    /// Wall seconds without an audio buffer, while video frames keep arriving, after which a
    /// loss is reported before audio returns (it is back-dated to where audio stopped).
    pub timeout: f64,
}

impl Default for AudioLossConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_gap: DEFAULT_AUDIO_LOSS_MIN_GAP_SECS,
            timeout: DEFAULT_AUDIO_LOSS_TIMEOUT_SECS,
        }
    }
}

/// A/V sync: the offset measured from a sync test signal (flash frame + beep).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AvSyncConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Largest tolerated |offset| in seconds (positive offset: audio late).
    pub max_offset: f64,
    /// Seconds of out-of-tolerance measurements (one per flash) before it is a defect.
    pub min_duration: f64,
    /// Seconds of in-tolerance measurements needed to end the defect.
    pub clear_duration: f64,
}

impl Default for AvSyncConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_offset: DEFAULT_AV_SYNC_MAX_OFFSET_SECS,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// All detector settings; the same table appears globally and per stream.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorsConfig {
    pub black: BlackConfig,
    pub freeze: FreezeConfig,
    pub silence: SilenceConfig,
    pub loudness: LoudnessConfig,
    pub clipping: ClippingConfig,
    pub channel: ChannelConfig,
    pub audio_loss: AudioLossConfig,
    pub av_sync: AvSyncConfig,
}

impl BlackConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

impl FreezeConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

impl SilenceConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

impl LoudnessConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

impl ClippingConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

impl ChannelConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

impl AvSyncConfig {
    pub fn timing(&self) -> Timing {
        Timing {
            min_duration: self.min_duration,
            clear_duration: self.clear_duration,
        }
    }
}

/// One monitored stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    /// Short identifier used as the `stream` label: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Source URL (file://, http(s):// HLS, rtmp://, srt://, rtsp://, demo://).
    pub url: String,
    /// Effective detector settings: the global ones with this stream's overrides applied.
    pub detectors: DetectorsConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<String>,
    #[serde(default)]
    backend: BackendChoice,
    #[serde(default)]
    ingest: IngestConfig,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    detectors: toml::Table,
    #[serde(default)]
    streams: Vec<RawStream>,
    #[serde(default)]
    webhooks: Vec<WebhookConfig>,
    #[serde(default)]
    evidence: EvidenceConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStream {
    id: String,
    url: String,
    #[serde(default)]
    detectors: toml::Table,
}

/// URL schemes a stream may use.
pub const SUPPORTED_SCHEMES: &[&str] = &[
    "file", "http", "https", "rtmp", "rtmps", "srt", "rtsp", "rtsps", "rtspt", "demo",
];

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("default listen address is valid"),
            backend: BackendChoice::Auto,
            ingest: IngestConfig::default(),
            engine: EngineConfig::default(),
            detectors: DetectorsConfig::default(),
            streams: Vec::new(),
            webhooks: Vec::new(),
            evidence: EvidenceConfig::default(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates a configuration; `origin` names it in errors (usually the path).
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            message: one_line(&e.to_string()),
        })?;
        let listen = match raw.listen {
            None => DEFAULT_LISTEN
                .parse()
                .expect("default listen address is valid"),
            Some(s) => s.parse().map_err(|e| ConfigError::Invalid {
                key: "listen".into(),
                message: format!("`{s}` is not an address like 127.0.0.1:9723 ({e})"),
            })?,
        };
        let detectors = typed_detectors(raw.detectors.clone(), "detectors")?;
        let mut streams = Vec::with_capacity(raw.streams.len());
        for (i, s) in raw.streams.into_iter().enumerate() {
            let mut merged = raw.detectors.clone();
            merge_tables(&mut merged, s.detectors);
            let detectors = typed_detectors(merged, &format!("streams[{i}].detectors"))?;
            streams.push(StreamConfig {
                id: s.id,
                url: s.url,
                detectors,
            });
        }
        let mut webhooks = raw.webhooks;
        for (i, w) in webhooks.iter_mut().enumerate() {
            if w.name.is_empty() {
                w.name = format!("webhook{i}");
            }
        }
        let config = Config {
            listen,
            backend: raw.backend,
            ingest: raw.ingest,
            engine: raw.engine,
            detectors,
            streams,
            webhooks,
            evidence: raw.evidence,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges, uniqueness, URL schemes.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ingest = &self.ingest;
        positive("ingest.stall_timeout", ingest.stall_timeout)?;
        positive(
            "ingest.restart_backoff_initial",
            ingest.restart_backoff_initial,
        )?;
        positive("ingest.restart_backoff_max", ingest.restart_backoff_max)?;
        if ingest.restart_backoff_max < ingest.restart_backoff_initial {
            return Err(invalid(
                "ingest.restart_backoff_max",
                "must not be smaller than ingest.restart_backoff_initial",
            ));
        }
        if !(1..=1024).contains(&ingest.queue_frames) {
            return Err(invalid("ingest.queue_frames", "must be between 1 and 1024"));
        }
        if !(1..=10_000).contains(&self.engine.batch_timeout_ms) {
            return Err(invalid(
                "engine.batch_timeout_ms",
                "must be between 1 and 10000",
            ));
        }
        if !(1..=256).contains(&self.engine.max_frames_per_stream) {
            return Err(invalid(
                "engine.max_frames_per_stream",
                "must be between 1 and 256",
            ));
        }
        validate_detectors(&self.detectors, "detectors")?;
        for (i, w) in self.webhooks.iter().enumerate() {
            let key = |k: &str| format!("webhooks[{i}].{k}");
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) || w.url.len() < 10
            {
                return Err(invalid(
                    &key("url"),
                    &format!("`{}` is not an http(s) URL", w.url),
                ));
            }
            validate_stream_id(&w.name).map_err(|m| invalid(&key("name"), &m))?;
            positive(&key("timeout"), w.timeout)?;
            if w.max_retries > 100 {
                return Err(invalid(&key("max_retries"), "must be at most 100"));
            }
            if !(1..=1_000_000).contains(&w.queue) {
                return Err(invalid(&key("queue"), "must be between 1 and 1000000"));
            }
        }
        positive(
            "evidence.thumbnail_interval",
            self.evidence.thumbnail_interval,
        )?;
        if !(16..=3840).contains(&self.evidence.thumbnail_width) {
            return Err(invalid(
                "evidence.thumbnail_width",
                "must be between 16 and 3840",
            ));
        }
        if self.evidence.max_bytes < 1024 * 1024 {
            return Err(invalid(
                "evidence.max_bytes",
                "must be at least 1048576 (1 MiB)",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.streams.iter().enumerate() {
            validate_stream_id(&s.id).map_err(|m| invalid(&format!("streams[{i}].id"), &m))?;
            if !seen.insert(s.id.as_str()) {
                return Err(invalid(
                    &format!("streams[{i}].id"),
                    &format!("duplicate stream id `{}`", s.id),
                ));
            }
            validate_url(&s.url).map_err(|m| invalid(&format!("streams[{i}].url"), &m))?;
            validate_detectors(&s.detectors, &format!("streams[{i}].detectors"))?;
        }
        Ok(())
    }
}

/// Types a (merged) detectors table; errors name the full key, e.g. `detectors.black.x`.
fn typed_detectors(table: toml::Table, key: &str) -> Result<DetectorsConfig, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(
        |e: serde_path_to_error::Error<toml::de::Error>| {
            let path = e.path().to_string();
            ConfigError::Invalid {
                key: if path == "." {
                    key.to_owned()
                } else {
                    format!("{key}.{path}")
                },
                message: one_line(e.inner().message()),
            }
        },
    )
}

/// Recursively overlays `overrides` on `base`.
fn merge_tables(base: &mut toml::Table, overrides: toml::Table) {
    for (k, v) in overrides {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge_tables(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn validate_detectors(d: &DetectorsConfig, key: &str) -> Result<(), ConfigError> {
    let b = &d.black;
    unit_ratio(&format!("{key}.black.min_dark_ratio"), b.min_dark_ratio)?;
    unit_ratio(&format!("{key}.black.clear_dark_ratio"), b.clear_dark_ratio)?;
    if b.clear_dark_ratio > b.min_dark_ratio {
        return Err(invalid(
            &format!("{key}.black.clear_dark_ratio"),
            "must not exceed black.min_dark_ratio (it is the lower hysteresis bound)",
        ));
    }
    timing(&format!("{key}.black"), b.timing())?;
    let f = &d.freeze;
    unit_ratio(
        &format!("{key}.freeze.max_changed_ratio"),
        f.max_changed_ratio,
    )?;
    timing(&format!("{key}.freeze"), f.timing())?;
    let s = &d.silence;
    if !(s.threshold_dbfs.is_finite() && (-200.0..=0.0).contains(&s.threshold_dbfs)) {
        return Err(invalid(
            &format!("{key}.silence.threshold_dbfs"),
            "must be between -200 and 0 dBFS",
        ));
    }
    timing(&format!("{key}.silence"), s.timing())?;
    validate_audio_detectors(d, key)
}

fn validate_audio_detectors(d: &DetectorsConfig, key: &str) -> Result<(), ConfigError> {
    let l = &d.loudness;
    for (name, v, lo, hi) in [
        ("loudness.target_lufs", l.target_lufs, -70.0, 0.0),
        ("loudness.tolerance_lu", l.tolerance_lu, 0.0, 70.0),
        (
            "loudness.max_true_peak_dbtp",
            l.max_true_peak_dbtp,
            -70.0,
            20.0,
        ),
        ("clipping.level", d.clipping.level, 0.0, 1.0),
        ("channel.missing_dbfs", d.channel.missing_dbfs, -200.0, 0.0),
        (
            "channel.programme_dbfs",
            d.channel.programme_dbfs,
            -200.0,
            0.0,
        ),
        (
            "channel.similarity_db",
            d.channel.similarity_db,
            -200.0,
            0.0,
        ),
        ("audio_loss.min_gap", d.audio_loss.min_gap, 0.01, 3600.0),
        ("audio_loss.timeout", d.audio_loss.timeout, 0.01, 3600.0),
        ("av_sync.max_offset", d.av_sync.max_offset, 0.0, 10.0),
    ] {
        if !(v.is_finite() && (lo..=hi).contains(&v)) {
            return Err(invalid(
                &format!("{key}.{name}"),
                &format!("{v} is not between {lo} and {hi}"),
            ));
        }
    }
    if d.clipping.min_run == 0 {
        return Err(invalid(
            &format!("{key}.clipping.min_run"),
            "must be at least 1 sample",
        ));
    }
    timing(&format!("{key}.loudness"), l.timing())?;
    timing(&format!("{key}.clipping"), d.clipping.timing())?;
    timing(&format!("{key}.channel"), d.channel.timing())?;
    timing(&format!("{key}.av_sync"), d.av_sync.timing())?;
    Ok(())
}

fn timing(key: &str, t: Timing) -> Result<(), ConfigError> {
    for (name, v) in [
        ("min_duration", t.min_duration),
        ("clear_duration", t.clear_duration),
    ] {
        if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
            return Err(invalid(
                &format!("{key}.{name}"),
                &format!("{v} is not a number of seconds between 0 and 86400"),
            ));
        }
    }
    Ok(())
}

fn unit_ratio(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, &format!("{v} is not a ratio between 0 and 1")))
    }
}

fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            &format!("{v} is not a number of seconds between 0 (excluded) and 86400"),
        ))
    }
}

fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Stream ids become Prometheus label values and URL path segments, so keep them plain.
pub fn validate_stream_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("`{id}` must be 1 to 64 characters long"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "`{id}` contains `{c}`; use letters, digits, `-`, `_` or `.`"
        ));
    }
    Ok(())
}

/// Accepts URLs with a supported scheme and a non-empty rest.
pub fn validate_url(url: &str) -> Result<(), String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "`{url}` is not a URL (expected scheme://..., e.g. rtmp://host/app/key or file:///path)"
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    if !SUPPORTED_SCHEMES.contains(&scheme.as_str()) {
        return Err(format!(
            "`{url}`: scheme `{scheme}` is not supported (one of {})",
            SUPPORTED_SCHEMES.join(", ")
        ));
    }
    if rest.is_empty() && scheme != "demo" {
        return Err(format!("`{url}` has nothing after `{scheme}://`"));
    }
    Ok(())
}

/// Turns a command-line source (a URL or a plain file path) into a URL.
pub fn source_to_url(source: &str) -> Result<String, String> {
    if source.contains("://") {
        validate_url(source)?;
        return Ok(source.to_owned());
    }
    let path = Path::new(source);
    let abs = std::fs::canonicalize(path)
        .map_err(|e| format!("file `{source}` cannot be opened: {e}"))?;
    if !abs.is_file() {
        return Err(format!("`{source}` is not a regular file"));
    }
    Ok(format!("file://{}", abs.display()))
}

/// Derives a stream id from a URL for streams given on the command line.
pub fn id_from_url(url: &str, index: usize) -> String {
    let tail = url
        .trim_end_matches('/')
        .rsplit(['/', ':', '?', '='])
        .find(|s| !s.is_empty())
        .unwrap_or("");
    let stem = tail.split('.').next().unwrap_or("");
    let cleaned: String = stem
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .take(48)
        .collect();
    if cleaned.is_empty() {
        format!("stream{index}")
    } else {
        format!("{cleaned}-{index}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_has_documented_defaults() {
        let c = Config::parse("", "test").unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.detectors, DetectorsConfig::default());
        assert_eq!(c.detectors.black.min_duration, 2.0);
        assert_eq!(c.ingest.stall_timeout, 5.0);
    }

    #[test]
    fn stream_overrides_merge_key_by_key() {
        let c = Config::parse(
            r#"
            [detectors.black]
            luma_threshold = 40
            [[streams]]
            id = "a"
            url = "rtmp://127.0.0.1/live/a"
            [streams.detectors.black]
            min_duration = 5
            [[streams]]
            id = "b"
            url = "srt://127.0.0.1:9000?mode=caller"
            "#,
            "test",
        )
        .unwrap();
        assert_eq!(c.streams[0].detectors.black.min_duration, 5.0);
        assert_eq!(c.streams[0].detectors.black.luma_threshold, 40);
        assert_eq!(c.streams[1].detectors.black.min_duration, 2.0);
        assert_eq!(c.streams[1].detectors.black.luma_threshold, 40);
    }

    fn err(text: &str) -> String {
        Config::parse(text, "test").unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_named() {
        assert!(err("listne = \"x\"").contains("listne"));
        assert!(err("[detectors.black]\nthreshold = 3").contains("threshold"));
        let e = err(
            "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n[streams.detectors.freeze]\nnoise = 1",
        );
        assert!(
            e.contains("streams[0].detectors") && e.contains("noise"),
            "{e}"
        );
    }

    #[test]
    fn invalid_values_are_named() {
        assert!(
            err("[detectors.black]\nmin_dark_ratio = 1.5")
                .contains("detectors.black.min_dark_ratio")
        );
        assert!(
            err("[detectors.freeze]\nmin_duration = -1").contains("detectors.freeze.min_duration")
        );
        assert!(err("[detectors.black]\nluma_threshold = 300").contains("luma_threshold"));
        assert!(err("listen = \"nowhere\"").contains("listen"));
        assert!(err("[ingest]\nqueue_frames = 0").contains("ingest.queue_frames"));
        assert!(err("backend = \"tpu\"").contains("tpu"));
    }

    #[test]
    fn streams_are_checked() {
        let dup = "[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n[[streams]]\nid = \"a\"\nurl = \"rtmp://h/b\"";
        assert!(err(dup).contains("duplicate stream id `a`"));
        assert!(err("[[streams]]\nid = \"a b\"\nurl = \"rtmp://h/a\"").contains("streams[0].id"));
        assert!(err("[[streams]]\nid = \"a\"\nurl = \"gopher://h/a\"").contains("gopher"));
        assert!(err("[[streams]]\nid = \"a\"\nurl = \"not a url\"").contains("streams[0].url"));
        assert!(err("this is = not toml [").contains("config test"));
    }

    #[test]
    fn audio_detectors_have_defaults_and_per_stream_overrides() {
        let c = Config::parse(
            "[detectors.loudness]\ntarget_lufs = -24\n[[streams]]\nid = \"a\"\nurl = \"rtmp://h/a\"\n\
             [streams.detectors.av_sync]\nmax_offset = 0.2\n",
            "test",
        )
        .unwrap();
        let d = &c.streams[0].detectors;
        assert_eq!(d.loudness.target_lufs, -24.0);
        assert_eq!(d.loudness.min_duration, 10.0);
        assert_eq!(d.av_sync.max_offset, 0.2);
        assert_eq!(c.detectors.av_sync.max_offset, 0.1);
        assert!(err("[detectors.clipping]\nlevel = 2").contains("detectors.clipping.level"));
        assert!(err("[detectors.channel]\ncorrelation = 1").contains("correlation"));
    }

    #[test]
    fn webhooks_get_defaults_and_checks() {
        let c = Config::parse("[[webhooks]]\nurl = \"http://127.0.0.1:9/hook\"\n", "test").unwrap();
        assert_eq!(c.webhooks[0].name, "webhook0");
        assert_eq!(c.webhooks[0].max_retries, DEFAULT_WEBHOOK_RETRIES);
        assert!(err("[[webhooks]]\nurl = \"ftp://x/y\"").contains("webhooks[0].url"));
        assert!(
            err("[[webhooks]]\nurl = \"http://h/x\"\ntimeout = 0").contains("webhooks[0].timeout")
        );
        assert!(err("[[webhooks]]\nurl = \"http://h/x\"\nretry = 1").contains("retry"));
    }

    #[test]
    fn ids_from_urls_are_valid_labels() {
        for (i, url) in [
            "rtmp://127.0.0.1:1935/live/news",
            "http://h/hls/ch1.m3u8",
            "srt://127.0.0.1:9000?mode=caller",
            "file:///tmp/clip%20x.mp4",
            "demo://",
        ]
        .iter()
        .enumerate()
        {
            let id = id_from_url(url, i);
            validate_stream_id(&id).unwrap();
        }
        assert_eq!(id_from_url("rtmp://h/live/news", 0), "news-0");
    }
}
