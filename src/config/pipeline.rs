//! Settings of the stages every stream goes through: the media pipeline and its supervisor
//! (`[ingest]`), and the batching analysis engine (`[engine]`).

use serde::Deserialize;

use super::DecoderChoice;
use crate::config::check::{invalid, positive};
use crate::error::ConfigError;

pub const DEFAULT_STALL_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_QUEUE_FRAMES: usize = 8;
pub const DEFAULT_BACKOFF_INITIAL_SECS: f64 = 1.0;
pub const DEFAULT_BACKOFF_MAX_SECS: f64 = 30.0;
pub const DEFAULT_HTTP_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_HLS_MAX_VARIANTS: usize = 8;
/// Hardware decoding where GStreamer has NVDEC, software otherwise.
pub const DEFAULT_DECODER: DecoderChoice = DecoderChoice::Auto;

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

impl IngestConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        positive(&k("stall_timeout"), self.stall_timeout)?;
        positive(&k("restart_backoff_initial"), self.restart_backoff_initial)?;
        positive(&k("restart_backoff_max"), self.restart_backoff_max)?;
        if self.restart_backoff_max < self.restart_backoff_initial {
            return Err(invalid(
                &k("restart_backoff_max"),
                "must not be smaller than ingest.restart_backoff_initial",
            ));
        }
        positive(&k("http_timeout"), self.http_timeout)?;
        if !(1..=64).contains(&self.hls_max_variants) {
            return Err(invalid(&k("hls_max_variants"), "must be between 1 and 64"));
        }
        if !(1..=1024).contains(&self.queue_frames) {
            return Err(invalid(&k("queue_frames"), "must be between 1 and 1024"));
        }
        Ok(())
    }
}

pub const DEFAULT_BATCH_TIMEOUT_MS: u64 = 20;
/// Two batches in flight: the next batch is uploaded while the device works on the previous.
pub const DEFAULT_BATCHES_IN_FLIGHT: usize = 2;
pub const DEFAULT_MAX_FRAMES_PER_STREAM: usize = 8;

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

impl EngineConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        if !(1..=10_000).contains(&self.batch_timeout_ms) {
            return Err(invalid(
                &k("batch_timeout_ms"),
                "must be between 1 and 10000",
            ));
        }
        if !(1..=256).contains(&self.max_frames_per_stream) {
            return Err(invalid(
                &k("max_frames_per_stream"),
                "must be between 1 and 256",
            ));
        }
        if !(1..=16).contains(&self.batches_in_flight) {
            return Err(invalid(&k("batches_in_flight"), "must be between 1 and 16"));
        }
        Ok(())
    }
}
