//! Detector settings: the `[detectors]` table, which each stream may override key by key.
//! One file per family of detectors, as in the `detect` module.

use serde::Deserialize;

use crate::error::ConfigError;

mod audio;
mod captions;
mod transport;
mod video;

pub use audio::*;
pub use captions::*;
pub use transport::*;
pub use video::*;

pub const DEFAULT_MIN_DURATION_SECS: f64 = 2.0;
pub const DEFAULT_CLEAR_DURATION_SECS: f64 = 0.2;

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
    pub tr101290: Tr101290Config,
    pub scte35: Scte35Config,
    pub hls_conformance: HlsConformanceConfig,
    pub captions: CaptionsConfig,
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

impl DetectorsConfig {
    /// `key` is where the table sits: `detectors`, or `streams[N].detectors` once a stream's
    /// overrides are merged in.
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        self.black.validate(&k("black"))?;
        self.freeze.validate(&k("freeze"))?;
        self.silence.validate(&k("silence"))?;
        self.flat.validate(&k("flat"))?;
        self.colorbars.validate(&k("colorbars"))?;
        self.blur.validate(&k("blur"))?;
        self.blockiness.validate(&k("blockiness"))?;
        self.letterbox.validate(&k("letterbox"))?;
        self.stutter.validate(&k("stutter"))?;
        self.loudness.validate(&k("loudness"))?;
        self.clipping.validate(&k("clipping"))?;
        self.channel.validate(&k("channel"))?;
        self.audio_loss.validate(&k("audio_loss"))?;
        self.av_sync.validate(&k("av_sync"))?;
        self.stall.validate(&k("stall"))?;
        self.bitrate.validate(&k("bitrate"))?;
        self.playlist_stale.validate(&k("playlist_stale"))?;
        self.sequence.validate(&k("sequence"))?;
        self.segment_duration.validate(&k("segment_duration"))?;
        self.http_errors.validate(&k("http_errors"))?;
        self.tr101290.validate(&k("tr101290"))?;
        self.scte35.validate(&k("scte35"))?;
        self.hls_conformance.validate(&k("hls_conformance"))?;
        self.captions.validate(&k("captions"))
    }
}
