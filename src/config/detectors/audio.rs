//! Audio detectors' settings.

use serde::Deserialize;

use super::{DEFAULT_CLEAR_DURATION_SECS, DEFAULT_MIN_DURATION_SECS};
use crate::config::check::{count, in_range, invalid, timing};
use crate::error::ConfigError;

pub const DEFAULT_SILENCE_THRESHOLD_DBFS: f64 = -60.0;

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

impl SilenceConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        let threshold = self.threshold_dbfs;
        if !(threshold.is_finite() && (-200.0..=0.0).contains(&threshold)) {
            return Err(invalid(
                &k("threshold_dbfs"),
                "must be between -200 and 0 dBFS",
            ));
        }
        timing(key, self.timing())
    }
}

/// EBU R128 programme loudness target (LUFS) and the tolerated deviation (LU) of the
/// short-term loudness; R128 allows ±1 LU for live, broadcast monitoring alarms are wider.
pub const DEFAULT_LOUDNESS_TARGET_LUFS: f64 = -23.0;
pub const DEFAULT_LOUDNESS_TOLERANCE_LU: f64 = 5.0;
/// Short-term loudness must stay out of the window this long to be a defect.
pub const DEFAULT_LOUDNESS_MIN_DURATION_SECS: f64 = 10.0;
/// Seconds of programme whose gated loudness must also be below the window for "too quiet".
pub const DEFAULT_LOUDNESS_QUIET_WINDOW_SECS: f64 = 30.0;
/// EBU R128's maximum true peak level.
pub const DEFAULT_TRUE_PEAK_MAX_DBTP: f64 = -1.0;

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
    /// Short-term loudness below the window is too quiet only when the programme's loudness
    /// over this many seconds, gated as BS.1770 gates integrated loudness (passages 10 LU
    /// below the rest do not count), is below the window too: a quiet passage of music or
    /// drama is not a fault, a programme that stays quiet is. 0: short-term alone decides.
    pub quiet_window: f64,
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
            quiet_window: DEFAULT_LOUDNESS_QUIET_WINDOW_SECS,
        }
    }
}

impl LoudnessConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("target_lufs"), self.target_lufs, -70.0, 0.0)?;
        in_range(&k("tolerance_lu"), self.tolerance_lu, 0.0, 70.0)?;
        in_range(
            &k("max_true_peak_dbtp"),
            self.max_true_peak_dbtp,
            -70.0,
            20.0,
        )?;
        in_range(&k("quiet_window"), self.quiet_window, 0.0, 3600.0)?;
        timing(key, self.timing())
    }
}

/// A sample at or above this magnitude is at full scale (16-bit full scale is 0.99997).
pub const DEFAULT_CLIPPING_LEVEL: f64 = 0.999;
/// Consecutive full-scale samples that make a clip (single peaks touching full scale are legal).
pub const DEFAULT_CLIPPING_MIN_RUN: usize = 3;
/// Clipping is intermittent by nature (only the peaks clip): gaps up to this do not end it.
pub const DEFAULT_CLIPPING_CLEAR_DURATION_SECS: f64 = 0.5;

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

impl ClippingConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("level"), self.level, 0.0, 1.0)?;
        // A second of 192 kHz audio: a longer run could never be seen in one buffer anyway.
        count(&k("min_run"), self.min_run, 1, 192_000)?;
        timing(key, self.timing())
    }
}

/// Channel level (dBFS) at or below which a channel is missing (nothing carried, not just quiet).
pub const DEFAULT_CHANNEL_MISSING_DBFS: f64 = -90.0;
/// Level (dBFS) from which a channel carries programme.
pub const DEFAULT_CHANNEL_PROGRAMME_DBFS: f64 = -50.0;
/// Side-to-mid (or mid-to-side) energy ratio in dB below which two channels are identical
/// (or phase-inverted); real stereo mixes stay well above -20 dB.
pub const DEFAULT_CHANNEL_SIMILARITY_DB: f64 = -40.0;

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

impl ChannelConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("missing_dbfs"), self.missing_dbfs, -200.0, 0.0)?;
        in_range(&k("programme_dbfs"), self.programme_dbfs, -200.0, 0.0)?;
        in_range(&k("similarity_db"), self.similarity_db, -200.0, 0.0)?;
        timing(key, self.timing())
    }
}

/// Seconds of missing audio (while video goes on), or of a forward timestamp jump, that make a
/// loss.
pub const DEFAULT_AUDIO_LOSS_MIN_GAP_SECS: f64 = 0.5;
/// Wall seconds without an audio buffer, while video frames arrive, before audio counts as
/// gone; longer than the second of audio the demuxer's queue (decodebin's multiqueue) can
/// hold back.
pub const DEFAULT_AUDIO_LOSS_TIMEOUT_SECS: f64 = 2.0;

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

impl AudioLossConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("min_gap"), self.min_gap, 0.01, 3600.0)?;
        in_range(&k("timeout"), self.timeout, 0.01, 3600.0)
    }
}

/// Largest tolerated |audio - video| offset, seconds.
pub const DEFAULT_AV_SYNC_MAX_OFFSET_SECS: f64 = 0.1;

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

impl AvSyncConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("max_offset"), self.max_offset, 0.0, 10.0)?;
        timing(key, self.timing())
    }
}
