//! Settings of the stages every stream goes through: the media pipeline and its supervisor
//! (`[ingest]`), and the batching analysis engine (`[engine]`).

use serde::Deserialize;

use super::{AnalysisTier, DecoderChoice};
use crate::config::check::{MIN_TIMER_SECONDS, count, invalid, seconds};
use crate::error::ConfigError;

pub const DEFAULT_STALL_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_QUEUE_FRAMES: usize = 8;
pub const DEFAULT_BACKOFF_INITIAL_SECS: f64 = 1.0;
pub const DEFAULT_BACKOFF_MAX_SECS: f64 = 30.0;
pub const DEFAULT_HTTP_TIMEOUT_SECS: f64 = 5.0;
pub const DEFAULT_HLS_MAX_VARIANTS: usize = 8;
/// Below half a second a stream with a one-frame hiccup (a 2 fps slideshow, a slow keyframe
/// after a restart) would be torn down; past an hour a dead stream is never noticed.
pub const MIN_STALL_TIMEOUT_SECS: f64 = 0.5;
pub const MAX_STALL_TIMEOUT_SECS: f64 = 3600.0;
/// Restart delays beyond an hour leave a recovered source unmonitored for too long.
pub const MAX_BACKOFF_SECS: f64 = 3600.0;
/// A request that takes ten minutes is a hung origin, not a slow one.
pub const MAX_HTTP_TIMEOUT_SECS: f64 = 600.0;
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
    /// Analysis of the streams that do not set their own: "full" (every frame), "reference"
    /// (frames that other frames predict from) or "keyframes" (keyframes only). Audio and
    /// transport checks are complete in every tier.
    pub analysis: AnalysisTier,
    /// Under overload (decoding or analysis falling behind), move the lowest-`priority`
    /// streams to lighter tiers one at a time, and back when there is room, instead of
    /// dropping decoded frames at random.
    pub shed_load: bool,
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
            analysis: AnalysisTier::Full,
            shed_load: true,
        }
    }
}

impl IngestConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        seconds(
            &k("stall_timeout"),
            self.stall_timeout,
            MIN_STALL_TIMEOUT_SECS,
            MAX_STALL_TIMEOUT_SECS,
        )?;
        let initial = self.restart_backoff_initial;
        seconds(
            &k("restart_backoff_initial"),
            initial,
            MIN_TIMER_SECONDS,
            MAX_BACKOFF_SECS,
        )?;
        seconds(
            &k("restart_backoff_max"),
            self.restart_backoff_max,
            MIN_TIMER_SECONDS,
            MAX_BACKOFF_SECS,
        )?;
        if self.restart_backoff_max < self.restart_backoff_initial {
            return Err(invalid(
                &k("restart_backoff_max"),
                "must not be smaller than ingest.restart_backoff_initial",
            ));
        }
        seconds(
            &k("http_timeout"),
            self.http_timeout,
            MIN_TIMER_SECONDS,
            MAX_HTTP_TIMEOUT_SECS,
        )?;
        count(&k("hls_max_variants"), self.hls_max_variants, 1, 64)?;
        count(&k("queue_frames"), self.queue_frames, 1, 1024)
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
    /// soon as they are done. 1 waits for every batch before gathering the next. The CPU
    /// backend computes inside the submission, so it always takes one batch at a time.
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
        count(&k("batch_timeout_ms"), self.batch_timeout_ms, 1, 10_000)?;
        count(
            &k("max_frames_per_stream"),
            self.max_frames_per_stream,
            1,
            256,
        )?;
        count(&k("batches_in_flight"), self.batches_in_flight, 1, 16)
    }
}
