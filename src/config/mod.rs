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

/// The `decoder` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderChoice {
    /// NVDEC where GStreamer has it for the stream's codec, the libav decoders otherwise.
    #[default]
    Auto,
    /// The libav (FFmpeg) software decoders only.
    Software,
    /// NVDEC only; a stream fails to start, with an error naming it, where it is absent.
    Nvdec,
}

impl DecoderChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Software => "software",
            Self::Nvdec => "nvdec",
        }
    }
}

/// Which backend computes the statistics (`--backend`, config `backend`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A GPU when one exists; otherwise (no adapter, or only a software rasteriser such as
    /// lavapipe) the CPU backend.
    #[default]
    Auto,
    Gpu,
    Cpu,
}

pub const DEFAULT_LISTEN: &str = "0.0.0.0:9723";
pub const DEFAULT_STALL_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_QUEUE_FRAMES: usize = 8;
pub const DEFAULT_BACKOFF_INITIAL_SECS: f64 = 1.0;
pub const DEFAULT_BACKOFF_MAX_SECS: f64 = 30.0;
pub const DEFAULT_HTTP_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_HLS_MAX_VARIANTS: usize = 8;
pub const DEFAULT_BATCH_TIMEOUT_MS: u64 = 20;
/// Two batches in flight: the next batch is uploaded while the device works on the previous.
pub const DEFAULT_BATCHES_IN_FLIGHT: usize = 2;
/// Hardware decoding where GStreamer has NVDEC, software otherwise.
pub const DEFAULT_DECODER: DecoderChoice = DecoderChoice::Auto;
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
/// Freeze: share of changed pixels above which a freeze under way ends (hysteresis).
pub const DEFAULT_FREEZE_CLEAR_CHANGED_RATIO: f64 = 0.001;
pub const DEFAULT_SILENCE_THRESHOLD_DBFS: f64 = -60.0;
/// Flat: luma standard deviation (0-255 scale) up to which a frame is uniform.
pub const DEFAULT_FLAT_MAX_STDDEV: f64 = 2.0;
/// Flat: standard deviation above which a flat frame has picture again (hysteresis).
pub const DEFAULT_FLAT_CLEAR_STDDEV: f64 = 3.0;
/// Colour bars: minimum luma standard deviation (bars span black to white).
pub const DEFAULT_COLORBARS_MIN_STDDEV: f64 = 25.0;
/// Colour bars: minimum strong steps per row (the bar edges).
pub const DEFAULT_COLORBARS_MIN_EDGES_PER_ROW: f64 = 4.0;
/// Colour bars: maximum share of pixels with a strong step to the right neighbour.
pub const DEFAULT_COLORBARS_MAX_EDGES_ACROSS: f64 = 0.05;
/// Colour bars: minimum share of rows equal to the row below (stripes run the full height).
pub const DEFAULT_COLORBARS_MIN_QUIET_ROWS: f64 = 0.9;
/// Baseline detectors: seconds of normal frames their mean covers.
pub const DEFAULT_BASELINE_WINDOW_SECS: f64 = 30.0;
/// Baseline detectors: seconds of normal frames needed before they judge anything.
pub const DEFAULT_BASELINE_WARMUP_SECS: f64 = 2.0;
/// Blur: detail below this share of the stream's normal detail is blur.
pub const DEFAULT_BLUR_MAX_DETAIL_RATIO: f64 = 0.4;
/// Blur: detail above this share of the normal ends blur (hysteresis).
pub const DEFAULT_BLUR_CLEAR_DETAIL_RATIO: f64 = 0.55;
/// Blockiness: rise of the grid share of block edges above the stream's normal that is blocking.
pub const DEFAULT_BLOCKINESS_MIN_INCREASE: f64 = 0.08;
/// Blockiness: rise below which blocking ends (hysteresis).
pub const DEFAULT_BLOCKINESS_CLEAR_INCREASE: f64 = 0.04;
/// Blockiness: the rate of block edges on the grid must also reach this multiple of normal.
pub const DEFAULT_BLOCKINESS_MIN_RATE_RATIO: f64 = 1.4;
/// Blockiness: media seconds the per-frame share is smoothed over.
pub const DEFAULT_BLOCKINESS_SMOOTHING_SECS: f64 = 0.3;
/// Blockiness: seconds after a decoder error during which the picture counts as damaged.
pub const DEFAULT_BLOCKINESS_DAMAGE_HOLD_SECS: f64 = 0.4;
/// Blockiness: seconds without blocking needed to end it (longer than the smoothing).
pub const DEFAULT_BLOCKINESS_CLEAR_DURATION_SECS: f64 = 0.5;
/// Blockiness reacts faster than the picture-loss detectors: corruption often lasts until the
/// next keyframe only.
pub const DEFAULT_BLOCKINESS_MIN_DURATION_SECS: f64 = 1.0;
/// Letterbox: each bar must cover at least this share of the height (or width).
pub const DEFAULT_LETTERBOX_MIN_BAR_RATIO: f64 = 0.04;
/// Letterbox: the two bars of a pair may differ by at most this share of the height (width).
pub const DEFAULT_LETTERBOX_MAX_BAR_DIFFERENCE: f64 = 0.03;
/// Letterbox: minimum fall of the active picture area below the stream's normal.
pub const DEFAULT_LETTERBOX_MIN_AREA_DROP: f64 = 0.05;
/// Stutter: share of changed pixels up to which a frame repeats the previous picture.
pub const DEFAULT_STUTTER_MAX_CHANGED_RATIO: f64 = 0.0001;
/// Stutter: an interval this many times the nominal one is a gap (frames missing).
pub const DEFAULT_STUTTER_GAP_FACTOR: f64 = 1.5;
/// Stutter: runs of up to this many repeated frames are stutter; longer runs are freezes.
pub const DEFAULT_STUTTER_MAX_REPEAT_RUN: u32 = 4;
/// Stutter: seconds a sign of stutter keeps the picture stuttering.
pub const DEFAULT_STUTTER_HOLD_SECS: f64 = 0.2;
/// Stutter: a stream whose normal share of frames ending a repeat run is above this is taken
/// to have a repeating cadence (25p in 50p) and is not judged.
pub const DEFAULT_STUTTER_MAX_CADENCE_SHARE: f64 = 0.2;
pub const DEFAULT_STUTTER_MIN_DURATION_SECS: f64 = 1.0;
/// Colour bars are unambiguous: a second on air is enough.
pub const DEFAULT_COLORBARS_MIN_DURATION_SECS: f64 = 1.0;
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
/// Seconds without a decoded frame, on a stream that was up, that make a stall.
pub const DEFAULT_STALL_AFTER_SECS: f64 = 2.0;
/// Seconds over which the input bitrate is averaged (HLS delivers a segment at a time).
pub const DEFAULT_BITRATE_WINDOW_SECS: f64 = 10.0;
/// Seconds the bitrate must stay below its floor before it is a defect.
pub const DEFAULT_BITRATE_MIN_DURATION_SECS: f64 = 5.0;
/// A live playlist unchanged for this many target durations is stale. HLS clients re-poll
/// after half a target duration and a normal update comes once per target duration, so three
/// leaves room for a late origin without the false alarms users complain of.
pub const DEFAULT_PLAYLIST_STALE_TARGET_DURATIONS: f64 = 3.0;
/// Seconds an instantaneous manifest fault (a sequence error, an overlong segment) stays
/// reported after it was last seen.
pub const DEFAULT_MANIFEST_FAULT_HOLD_SECS: f64 = 10.0;
/// Seconds a segment may exceed the target duration: RFC 8216 requires EXTINF, rounded to
/// the nearest integer, to be at most the target duration.
pub const DEFAULT_SEGMENT_MAX_OVERRUN_SECS: f64 = 0.5;
/// Largest tolerated gap between media time added to a live playlist and wall time, as a
/// share of the wall time (0.1: 6 s per minute).
pub const DEFAULT_SEGMENT_DRIFT_TOLERANCE: f64 = 0.1;
/// Wall seconds over which playlist drift is measured.
pub const DEFAULT_SEGMENT_DRIFT_WINDOW_SECS: f64 = 60.0;
/// Seconds of failing requests before HTTP errors are a defect, and of good ones to end it.
pub const DEFAULT_HTTP_ERRORS_MIN_DURATION_SECS: f64 = 2.0;
pub const DEFAULT_HTTP_ERRORS_CLEAR_DURATION_SECS: f64 = 2.0;

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
    /// Seconds to wait for an HTTP answer when streamwatch fetches HLS playlists itself.
    pub http_timeout: f64,
    /// Renditions of an HLS master playlist that are checked, in playlist order (a bound on
    /// requests and on the `variant` label).
    pub hls_max_variants: usize,
    /// Video decoder of the streams that do not set their own: "auto" (NVDEC where GStreamer
    /// has it, libav otherwise), "software" (libav only) or "nvdec" (NVDEC only; a stream
    /// fails to start where it is absent).
    pub decoder: DecoderChoice,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            stall_timeout: DEFAULT_STALL_TIMEOUT_SECS,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            restart_backoff_initial: DEFAULT_BACKOFF_INITIAL_SECS,
            restart_backoff_max: DEFAULT_BACKOFF_MAX_SECS,
            http_timeout: DEFAULT_HTTP_TIMEOUT_SECS,
            hls_max_variants: DEFAULT_HLS_MAX_VARIANTS,
            decoder: DEFAULT_DECODER,
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
    /// Most batches submitted to the statistics backend and not yet decided. With 2 or more,
    /// a batch whose frames are all waiting is uploaded while the device still works on the
    /// one before (each has its own GPU buffers); at light load batches are still decided as
    /// soon as they are done. 1 waits for every batch before gathering the next.
    pub batches_in_flight: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            batch_timeout_ms: DEFAULT_BATCH_TIMEOUT_MS,
            max_frames_per_stream: DEFAULT_MAX_FRAMES_PER_STREAM,
            batches_in_flight: DEFAULT_BATCHES_IN_FLIGHT,
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
    /// Share of changed pixels above which a freeze under way (or starting) ends (hysteresis).
    pub clear_changed_ratio: f64,
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
            clear_changed_ratio: DEFAULT_FREEZE_CLEAR_CHANGED_RATIO,
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

/// Stall: no decoded frame for a while on a stream that was up (its source still connected).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StallConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Seconds without a decoded frame that make a stall (back-dated to the last frame).
    pub after: f64,
}

impl Default for StallConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            after: DEFAULT_STALL_AFTER_SECS,
        }
    }
}

/// Input bitrate below a floor (bytes entering the demuxer, or the RTP depayloader).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BitrateConfig {
    /// Bits per second below which the input is a defect; 0 switches the check off (the
    /// gauge is always published).
    pub min_bits_per_second: f64,
    /// Seconds over which the bitrate is averaged.
    pub window: f64,
    /// Seconds below the floor before it is a defect.
    pub min_duration: f64,
    /// Seconds back above the floor needed to end it.
    pub clear_duration: f64,
}

impl Default for BitrateConfig {
    fn default() -> Self {
        Self {
            min_bits_per_second: 0.0,
            window: DEFAULT_BITRATE_WINDOW_SECS,
            min_duration: DEFAULT_BITRATE_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Stale HLS playlist: a live media playlist that stops advancing.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlaylistStaleConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// A playlist unchanged for this many target durations is stale.
    pub max_target_durations: f64,
}

impl Default for PlaylistStaleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_target_durations: DEFAULT_PLAYLIST_STALE_TARGET_DURATIONS,
        }
    }
}

/// HLS sequence errors: media sequence going backwards, a numbered segment changing, the
/// discontinuity sequence not following the discontinuities that left the window.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SequenceConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Seconds an error stays reported after it was last seen.
    pub hold: f64,
}

impl Default for SequenceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            hold: DEFAULT_MANIFEST_FAULT_HOLD_SECS,
        }
    }
}

/// HLS segment durations: segments longer than the target duration, or media time added to
/// the playlist drifting from wall time.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentDurationConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Seconds a segment may last beyond the target duration.
    pub max_overrun: f64,
    /// Largest tolerated |media added / wall time - 1| over `drift_window`.
    pub drift_tolerance: f64,
    /// Wall seconds over which drift is measured.
    pub drift_window: f64,
    /// Seconds a fault stays reported after it was last seen.
    pub hold: f64,
}

impl Default for SegmentDurationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_overrun: DEFAULT_SEGMENT_MAX_OVERRUN_SECS,
            drift_tolerance: DEFAULT_SEGMENT_DRIFT_TOLERANCE,
            drift_window: DEFAULT_SEGMENT_DRIFT_WINDOW_SECS,
            hold: DEFAULT_MANIFEST_FAULT_HOLD_SECS,
        }
    }
}

/// HTTP errors on HLS playlists and segments: 4xx/5xx answers, refused or timed-out requests,
/// redirect loops, playlists that do not parse.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpErrorsConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Also check each new segment with a HEAD request (the playlist alone otherwise).
    pub check_segments: bool,
    /// Seconds of failing requests before it is a defect.
    pub min_duration: f64,
    /// Seconds of successful requests needed to end it.
    pub clear_duration: f64,
}

impl Default for HttpErrorsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            check_segments: true,
            min_duration: DEFAULT_HTTP_ERRORS_MIN_DURATION_SECS,
            clear_duration: DEFAULT_HTTP_ERRORS_CLEAR_DURATION_SECS,
        }
    }
}

/// Flat picture detector: a uniform frame that is not black (blue, grey or white screen).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FlatConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Luma standard deviation (0-255 scale) up to which a frame is flat.
    pub max_stddev: f64,
    /// Standard deviation above which a flat frame has picture again (hysteresis).
    pub clear_stddev: f64,
    /// Seconds the picture must stay flat before it is a defect.
    pub min_duration: f64,
    /// Seconds of picture needed to end a flat defect.
    pub clear_duration: f64,
}

impl Default for FlatConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_stddev: DEFAULT_FLAT_MAX_STDDEV,
            clear_stddev: DEFAULT_FLAT_CLEAR_STDDEV,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Colour bars detector: full-height vertical stripes (a test pattern on air).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ColorbarsConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Minimum luma standard deviation (0-255 scale).
    pub min_stddev: f64,
    /// Minimum strong luma steps per row (the bar edges).
    pub min_edges_per_row: f64,
    /// Maximum share of pixels with a strong step to the right neighbour.
    pub max_edges_across: f64,
    /// Minimum share of rows equal to the row below up to coding noise.
    pub min_quiet_rows: f64,
    /// Seconds bars must stay on air before it is a defect.
    pub min_duration: f64,
    /// Seconds of programme needed to end it.
    pub clear_duration: f64,
}

impl Default for ColorbarsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_stddev: DEFAULT_COLORBARS_MIN_STDDEV,
            min_edges_per_row: DEFAULT_COLORBARS_MIN_EDGES_PER_ROW,
            max_edges_across: DEFAULT_COLORBARS_MAX_EDGES_ACROSS,
            min_quiet_rows: DEFAULT_COLORBARS_MIN_QUIET_ROWS,
            min_duration: DEFAULT_COLORBARS_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Blur detector: detail (mean luma step between neighbours) against the stream's normal.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlurConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Detail below this share of the normal detail is blur.
    pub max_detail_ratio: f64,
    /// Detail above this share of the normal ends blur (hysteresis).
    pub clear_detail_ratio: f64,
    /// Seconds of normal frames the normal detail is averaged over.
    pub baseline_window: f64,
    /// Seconds of normal frames needed before blur is judged.
    pub baseline_warmup: f64,
    /// Seconds the picture must stay blurred before it is a defect.
    pub min_duration: f64,
    /// Seconds of sharp picture needed to end it.
    pub clear_duration: f64,
}

impl Default for BlurConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_detail_ratio: DEFAULT_BLUR_MAX_DETAIL_RATIO,
            clear_detail_ratio: DEFAULT_BLUR_CLEAR_DETAIL_RATIO,
            baseline_window: DEFAULT_BASELINE_WINDOW_SECS,
            baseline_warmup: DEFAULT_BASELINE_WARMUP_SECS,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Blockiness detector: block-edge steps on the 8x8 grid against the stream's normal, and
/// decoder errors.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlockinessConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Rise of the grid share above the stream's normal from which the picture is blocky.
    pub min_increase: f64,
    /// Rise below which blocking ends (hysteresis).
    pub clear_increase: f64,
    /// The rate of block edges on the grid must also reach this multiple of its normal.
    pub min_rate_ratio: f64,
    /// Media seconds the per-frame share is smoothed over.
    pub smoothing: f64,
    /// Seconds after a decoder error during which the picture counts as damaged (0: decoder
    /// errors alone are no defect).
    pub damage_hold: f64,
    /// Seconds of normal frames the normal share is averaged over.
    pub baseline_window: f64,
    /// Seconds of normal frames needed before blockiness is judged.
    pub baseline_warmup: f64,
    /// Seconds the picture must stay blocky before it is a defect.
    pub min_duration: f64,
    /// Seconds of clean picture needed to end it.
    pub clear_duration: f64,
}

impl Default for BlockinessConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_increase: DEFAULT_BLOCKINESS_MIN_INCREASE,
            clear_increase: DEFAULT_BLOCKINESS_CLEAR_INCREASE,
            min_rate_ratio: DEFAULT_BLOCKINESS_MIN_RATE_RATIO,
            smoothing: DEFAULT_BLOCKINESS_SMOOTHING_SECS,
            damage_hold: DEFAULT_BLOCKINESS_DAMAGE_HOLD_SECS,
            baseline_window: DEFAULT_BASELINE_WINDOW_SECS,
            baseline_warmup: DEFAULT_BASELINE_WARMUP_SECS,
            min_duration: DEFAULT_BLOCKINESS_MIN_DURATION_SECS,
            clear_duration: DEFAULT_BLOCKINESS_CLEAR_DURATION_SECS,
        }
    }
}

/// Letterbox/pillarbox detector: dark bars appearing at the edges.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LetterboxConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Each bar of a pair must cover at least this share of the height (or width).
    pub min_bar_ratio: f64,
    /// The two bars of a pair may differ by at most this share of the height (or width).
    pub max_bar_difference: f64,
    /// Minimum fall of the active picture area (0-1) below the stream's normal.
    pub min_area_drop: f64,
    /// Seconds of normal frames the normal active area is averaged over.
    pub baseline_window: f64,
    /// Seconds of normal frames needed before bars are judged.
    pub baseline_warmup: f64,
    /// Seconds bars must stay before it is a defect.
    pub min_duration: f64,
    /// Seconds without bars needed to end it.
    pub clear_duration: f64,
}

impl Default for LetterboxConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_bar_ratio: DEFAULT_LETTERBOX_MIN_BAR_RATIO,
            max_bar_difference: DEFAULT_LETTERBOX_MAX_BAR_DIFFERENCE,
            min_area_drop: DEFAULT_LETTERBOX_MIN_AREA_DROP,
            baseline_window: DEFAULT_BASELINE_WINDOW_SECS,
            baseline_warmup: DEFAULT_BASELINE_WARMUP_SECS,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

/// Stutter detector: repeated frames between moving ones, and timestamp gaps.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StutterConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Share of changed pixels (0-1) up to which a frame repeats the previous picture.
    pub max_changed_ratio: f64,
    /// An interval this many times the stream's frame interval is a gap.
    pub gap_factor: f64,
    /// Runs of up to this many repeated frames are stutter (longer runs are freezes).
    pub max_repeat_run: u32,
    /// Seconds one sign of stutter keeps the picture stuttering.
    pub hold: f64,
    /// Seconds of normal frames over which the stream's repeat cadence is learnt.
    pub cadence_window: f64,
    /// Streams whose normal share of repeat runs is above this (0-1) are not judged.
    pub max_cadence_share: f64,
    /// Seconds stutter must last before it is a defect.
    pub min_duration: f64,
    /// Seconds of smooth picture needed to end it.
    pub clear_duration: f64,
}

impl Default for StutterConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_changed_ratio: DEFAULT_STUTTER_MAX_CHANGED_RATIO,
            gap_factor: DEFAULT_STUTTER_GAP_FACTOR,
            max_repeat_run: DEFAULT_STUTTER_MAX_REPEAT_RUN,
            hold: DEFAULT_STUTTER_HOLD_SECS,
            cadence_window: DEFAULT_BASELINE_WINDOW_SECS,
            max_cadence_share: DEFAULT_STUTTER_MAX_CADENCE_SHARE,
            min_duration: DEFAULT_STUTTER_MIN_DURATION_SECS,
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
    pub flat: FlatConfig,
    pub colorbars: ColorbarsConfig,
    pub blur: BlurConfig,
    pub blockiness: BlockinessConfig,
    pub letterbox: LetterboxConfig,
    pub stutter: StutterConfig,
    pub loudness: LoudnessConfig,
    pub clipping: ClippingConfig,
    pub channel: ChannelConfig,
    pub audio_loss: AudioLossConfig,
    pub av_sync: AvSyncConfig,
    pub stall: StallConfig,
    pub bitrate: BitrateConfig,
    pub playlist_stale: PlaylistStaleConfig,
    pub sequence: SequenceConfig,
    pub segment_duration: SegmentDurationConfig,
    pub http_errors: HttpErrorsConfig,
}

/// `timing()` for detector settings that carry `min_duration` and `clear_duration`.
macro_rules! timing_from_fields {
    ($($config:ty),+) => {$(
        impl $config {
            pub fn timing(&self) -> Timing {
                Timing {
                    min_duration: self.min_duration,
                    clear_duration: self.clear_duration,
                }
            }
        }
    )+};
}

timing_from_fields!(
    BlackConfig,
    FreezeConfig,
    SilenceConfig,
    LoudnessConfig,
    ClippingConfig,
    ChannelConfig,
    AvSyncConfig,
    FlatConfig,
    ColorbarsConfig,
    BlurConfig,
    BlockinessConfig,
    LetterboxConfig,
    StutterConfig,
    BitrateConfig,
    HttpErrorsConfig
);

/// One monitored stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamConfig {
    /// Short identifier used as the `stream` label: letters, digits, `-`, `_`, `.`.
    pub id: String,
    /// Source URL (file://, http(s):// HLS, rtmp://, srt://, rtsp://, demo://).
    pub url: String,
    /// Effective detector settings: the global ones with this stream's overrides applied.
    pub detectors: DetectorsConfig,
    /// Video decoder: the stream's own `decoder`, else `ingest.decoder`.
    pub decoder: DecoderChoice,
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
    decoder: Option<DecoderChoice>,
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
                decoder: s.decoder.unwrap_or(raw.ingest.decoder),
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
        positive("ingest.http_timeout", ingest.http_timeout)?;
        if !(1..=64).contains(&ingest.hls_max_variants) {
            return Err(invalid(
                "ingest.hls_max_variants",
                "must be between 1 and 64",
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
        if !(1..=16).contains(&self.engine.batches_in_flight) {
            return Err(invalid(
                "engine.batches_in_flight",
                "must be between 1 and 16",
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
    unit_ratio(
        &format!("{key}.freeze.clear_changed_ratio"),
        f.clear_changed_ratio,
    )?;
    if f.clear_changed_ratio < f.max_changed_ratio {
        return Err(invalid(
            &format!("{key}.freeze.clear_changed_ratio"),
            "must not be below freeze.max_changed_ratio (it is the upper hysteresis bound)",
        ));
    }
    timing(&format!("{key}.freeze"), f.timing())?;
    let s = &d.silence;
    if !(s.threshold_dbfs.is_finite() && (-200.0..=0.0).contains(&s.threshold_dbfs)) {
        return Err(invalid(
            &format!("{key}.silence.threshold_dbfs"),
            "must be between -200 and 0 dBFS",
        ));
    }
    timing(&format!("{key}.silence"), s.timing())?;
    validate_video_detectors(d, key)?;
    validate_audio_detectors(d, key)?;
    validate_transport_detectors(d, key)
}

fn validate_video_detectors(d: &DetectorsConfig, key: &str) -> Result<(), ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    let in_range = |name: &str, v: f64, lo: f64, hi: f64| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err(invalid(
                &k(name),
                &format!("{v} is not between {lo} and {hi}"),
            ))
        }
    };
    let f = &d.flat;
    in_range("flat.max_stddev", f.max_stddev, 0.0, 128.0)?;
    in_range("flat.clear_stddev", f.clear_stddev, f.max_stddev, 128.0)?;
    timing(&k("flat"), f.timing())?;
    let c = &d.colorbars;
    in_range("colorbars.min_stddev", c.min_stddev, 0.0, 128.0)?;
    in_range("colorbars.min_edges_per_row", c.min_edges_per_row, 0.0, 1e6)?;
    unit_ratio(&k("colorbars.max_edges_across"), c.max_edges_across)?;
    unit_ratio(&k("colorbars.min_quiet_rows"), c.min_quiet_rows)?;
    timing(&k("colorbars"), c.timing())?;
    let b = &d.blur;
    unit_ratio(&k("blur.max_detail_ratio"), b.max_detail_ratio)?;
    in_range(
        "blur.clear_detail_ratio",
        b.clear_detail_ratio,
        b.max_detail_ratio,
        1.0,
    )?;
    positive(&k("blur.baseline_window"), b.baseline_window)?;
    in_range(
        "blur.baseline_warmup",
        b.baseline_warmup,
        0.0,
        b.baseline_window,
    )?;
    timing(&k("blur"), b.timing())?;
    let bl = &d.blockiness;
    unit_ratio(&k("blockiness.min_increase"), bl.min_increase)?;
    in_range(
        "blockiness.clear_increase",
        bl.clear_increase,
        0.0,
        bl.min_increase,
    )?;
    in_range("blockiness.min_rate_ratio", bl.min_rate_ratio, 0.0, 100.0)?;
    in_range("blockiness.smoothing", bl.smoothing, 0.0, 60.0)?;
    in_range("blockiness.damage_hold", bl.damage_hold, 0.0, 60.0)?;
    positive(&k("blockiness.baseline_window"), bl.baseline_window)?;
    in_range(
        "blockiness.baseline_warmup",
        bl.baseline_warmup,
        0.0,
        bl.baseline_window,
    )?;
    timing(&k("blockiness"), bl.timing())?;
    let l = &d.letterbox;
    in_range("letterbox.min_bar_ratio", l.min_bar_ratio, 0.0, 0.5)?;
    unit_ratio(&k("letterbox.max_bar_difference"), l.max_bar_difference)?;
    unit_ratio(&k("letterbox.min_area_drop"), l.min_area_drop)?;
    positive(&k("letterbox.baseline_window"), l.baseline_window)?;
    in_range(
        "letterbox.baseline_warmup",
        l.baseline_warmup,
        0.0,
        l.baseline_window,
    )?;
    timing(&k("letterbox"), l.timing())?;
    let st = &d.stutter;
    unit_ratio(&k("stutter.max_changed_ratio"), st.max_changed_ratio)?;
    in_range("stutter.gap_factor", st.gap_factor, 1.01, 100.0)?;
    if !(1..=100).contains(&st.max_repeat_run) {
        return Err(invalid(
            &k("stutter.max_repeat_run"),
            "must be between 1 and 100",
        ));
    }
    positive(&k("stutter.hold"), st.hold)?;
    positive(&k("stutter.cadence_window"), st.cadence_window)?;
    unit_ratio(&k("stutter.max_cadence_share"), st.max_cadence_share)?;
    timing(&k("stutter"), st.timing())?;
    Ok(())
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

fn validate_transport_detectors(d: &DetectorsConfig, key: &str) -> Result<(), ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    positive(&k("stall.after"), d.stall.after)?;
    let b = &d.bitrate;
    if !(b.min_bits_per_second.is_finite() && (0.0..=1e12).contains(&b.min_bits_per_second)) {
        return Err(invalid(
            &k("bitrate.min_bits_per_second"),
            &format!("{} is not between 0 and 1e12", b.min_bits_per_second),
        ));
    }
    positive(&k("bitrate.window"), b.window)?;
    timing(&k("bitrate"), b.timing())?;
    let stale = d.playlist_stale.max_target_durations;
    if !(stale.is_finite() && (1.0..=100.0).contains(&stale)) {
        return Err(invalid(
            &k("playlist_stale.max_target_durations"),
            &format!("{stale} is not between 1 and 100"),
        ));
    }
    positive(&k("sequence.hold"), d.sequence.hold)?;
    let sd = &d.segment_duration;
    if !(sd.max_overrun.is_finite() && (0.0..=3600.0).contains(&sd.max_overrun)) {
        return Err(invalid(
            &k("segment_duration.max_overrun"),
            &format!(
                "{} is not a number of seconds between 0 and 3600",
                sd.max_overrun
            ),
        ));
    }
    if !(sd.drift_tolerance.is_finite() && sd.drift_tolerance > 0.0 && sd.drift_tolerance <= 1.0) {
        return Err(invalid(
            &k("segment_duration.drift_tolerance"),
            &format!(
                "{} is not a ratio between 0 (excluded) and 1",
                sd.drift_tolerance
            ),
        ));
    }
    positive(&k("segment_duration.drift_window"), sd.drift_window)?;
    positive(&k("segment_duration.hold"), sd.hold)?;
    timing(&k("http_errors"), d.http_errors.timing())?;
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
        assert_eq!(c.engine.batches_in_flight, DEFAULT_BATCHES_IN_FLIGHT);
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
        assert!(
            err("[engine]\nbatches_in_flight = 0").contains("engine.batches_in_flight"),
            "at least one batch must be able to go out"
        );
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
