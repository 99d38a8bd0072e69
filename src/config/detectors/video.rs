//! Picture detectors' settings. Blur, blockiness, letterbox and stutter judge a frame against
//! the stream's own normal, learnt over a baseline window; the others use fixed thresholds.

use serde::Deserialize;

use super::{DEFAULT_CLEAR_DURATION_SECS, DEFAULT_MIN_DURATION_SECS};
use crate::config::check::{baseline, in_range, invalid, positive, timing, unit_ratio};
use crate::error::ConfigError;

/// 8-bit luma at or below which a pixel counts as dark: video-range black is 16, and encoders
/// smear it by a few levels; ffmpeg's blackdetect default (pix_th 0.10) is about 38.
pub const DEFAULT_BLACK_LUMA_THRESHOLD: u8 = 32;
/// A frame is black when at least this share of its pixels is dark (a small logo stays black).
pub const DEFAULT_BLACK_MIN_DARK_RATIO: f64 = 0.98;
/// Once black, the frame stays black until the dark share falls below this (hysteresis).
pub const DEFAULT_BLACK_CLEAR_DARK_RATIO: f64 = 0.95;
/// A dark frame following a dark frame is moving content, not black, when more than this share
/// of its pixels changed (by more than the freeze noise threshold): white credits scrolling over
/// black are 96-99.9% dark yet change 0.05-3.6% of their pixels per frame, while a black
/// picture, with or without a static logo, changes none (5x freeze's limit for a still).
pub const DEFAULT_BLACK_MAX_CHANGED_RATIO: f64 = 0.0005;

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
    /// Share of pixels changed since the previous (dark) frame above which a dark frame is
    /// moving content such as scrolling credits, not black; 1 switches the check off.
    pub max_changed_ratio: f64,
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
            max_changed_ratio: DEFAULT_BLACK_MAX_CHANGED_RATIO,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

impl BlackConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        unit_ratio(&k("min_dark_ratio"), self.min_dark_ratio)?;
        unit_ratio(&k("clear_dark_ratio"), self.clear_dark_ratio)?;
        unit_ratio(&k("max_changed_ratio"), self.max_changed_ratio)?;
        if self.clear_dark_ratio > self.min_dark_ratio {
            return Err(invalid(
                &k("clear_dark_ratio"),
                "must not exceed black.min_dark_ratio (it is the lower hysteresis bound)",
            ));
        }
        timing(key, self.timing())
    }
}

/// Luma differences up to this are treated as encoder noise, not motion.
pub const DEFAULT_FREEZE_NOISE_THRESHOLD: u8 = 16;
/// A frame is frozen when at most this share of its pixels changed beyond the noise threshold.
pub const DEFAULT_FREEZE_MAX_CHANGED_RATIO: f64 = 0.0001;
/// Freeze: share of changed pixels above which a freeze under way ends (hysteresis).
pub const DEFAULT_FREEZE_CLEAR_CHANGED_RATIO: f64 = 0.001;

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

impl FreezeConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        unit_ratio(&k("max_changed_ratio"), self.max_changed_ratio)?;
        unit_ratio(&k("clear_changed_ratio"), self.clear_changed_ratio)?;
        if self.clear_changed_ratio < self.max_changed_ratio {
            return Err(invalid(
                &k("clear_changed_ratio"),
                "must not be below freeze.max_changed_ratio (it is the upper hysteresis bound)",
            ));
        }
        timing(key, self.timing())
    }
}

/// Flat: luma standard deviation (0-255 scale) up to which a frame is uniform.
pub const DEFAULT_FLAT_MAX_STDDEV: f64 = 2.0;
/// Flat: standard deviation above which a flat frame has picture again (hysteresis).
pub const DEFAULT_FLAT_CLEAR_STDDEV: f64 = 3.0;

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

impl FlatConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("max_stddev"), self.max_stddev, 0.0, 128.0)?;
        in_range(
            &k("clear_stddev"),
            self.clear_stddev,
            self.max_stddev,
            128.0,
        )?;
        timing(key, self.timing())
    }
}

/// Colour bars: minimum luma standard deviation (bars span black to white).
pub const DEFAULT_COLORBARS_MIN_STDDEV: f64 = 25.0;
/// Colour bars: minimum strong steps per row (the bar edges).
pub const DEFAULT_COLORBARS_MIN_EDGES_PER_ROW: f64 = 4.0;
/// Colour bars: maximum share of pixels with a strong step to the right neighbour.
pub const DEFAULT_COLORBARS_MAX_EDGES_ACROSS: f64 = 0.05;
/// Colour bars: minimum share of rows equal to the row below (stripes run the full height).
/// Coded SMPTE bars score 0.99 or more (their three sections leave two rows of steps); a studio
/// set of flat walls scored 0.89-0.90 for minutes on end, so 0.9 was no margin. 0.95 leaves
/// room for a clock or caption over 5% of the rows.
pub const DEFAULT_COLORBARS_MIN_QUIET_ROWS: f64 = 0.95;
/// Colour bars are unambiguous: a second on air is enough.
pub const DEFAULT_COLORBARS_MIN_DURATION_SECS: f64 = 1.0;

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

impl ColorbarsConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("min_stddev"), self.min_stddev, 0.0, 128.0)?;
        in_range(&k("min_edges_per_row"), self.min_edges_per_row, 0.0, 1e6)?;
        unit_ratio(&k("max_edges_across"), self.max_edges_across)?;
        unit_ratio(&k("min_quiet_rows"), self.min_quiet_rows)?;
        timing(key, self.timing())
    }
}

/// Baseline detectors: seconds of normal frames their mean covers.
pub const DEFAULT_BASELINE_WINDOW_SECS: f64 = 30.0;
/// Baseline detectors: seconds of normal frames needed before they judge anything.
pub const DEFAULT_BASELINE_WARMUP_SECS: f64 = 2.0;
/// Baseline detectors: seconds a defect lasts before its level is taken as the new normal. Long
/// enough that a real fault is reported for minutes, short enough that a channel whose content
/// changed for good (4:3 programmes, a cartoon after sport) stops alarming.
pub const DEFAULT_BASELINE_RELEARN_SECS: f64 = 300.0;

/// Blur: detail below this share of the stream's normal detail is blur.
pub const DEFAULT_BLUR_MAX_DETAIL_RATIO: f64 = 0.4;
/// Blur: detail above this share of the normal ends blur (hysteresis).
pub const DEFAULT_BLUR_CLEAR_DETAIL_RATIO: f64 = 0.55;
/// Blur: sharpness below this share of the stream's normal sharpness is blur (with the detail).
pub const DEFAULT_BLUR_MAX_SHARPNESS_RATIO: f64 = 0.35;
/// Blur: sharpness above this share of the normal ends blur (hysteresis).
pub const DEFAULT_BLUR_CLEAR_SHARPNESS_RATIO: f64 = 0.5;

/// Blur detector: detail (mean luma step between neighbours) and sharpness (the share of it in
/// strong steps) against the stream's normal; both must fall, because a less detailed scene
/// has less detail but edges as sharp as before.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BlurConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Detail below this share of the normal detail is blur.
    pub max_detail_ratio: f64,
    /// Detail above this share of the normal ends blur (hysteresis).
    pub clear_detail_ratio: f64,
    /// Sharpness below this share of the normal sharpness is blur (with the detail).
    pub max_sharpness_ratio: f64,
    /// Sharpness above this share of the normal ends blur (hysteresis).
    pub clear_sharpness_ratio: f64,
    /// Seconds of normal frames the normal detail is averaged over.
    pub baseline_window: f64,
    /// Seconds of normal frames needed before blur is judged.
    pub baseline_warmup: f64,
    /// Seconds a defect may last before its level becomes the stream\'s new normal (a lasting
    /// change of content or format ends it); 0: never.
    pub baseline_relearn: f64,
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
            max_sharpness_ratio: DEFAULT_BLUR_MAX_SHARPNESS_RATIO,
            clear_sharpness_ratio: DEFAULT_BLUR_CLEAR_SHARPNESS_RATIO,
            baseline_window: DEFAULT_BASELINE_WINDOW_SECS,
            baseline_warmup: DEFAULT_BASELINE_WARMUP_SECS,
            baseline_relearn: DEFAULT_BASELINE_RELEARN_SECS,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

impl BlurConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        unit_ratio(&k("max_detail_ratio"), self.max_detail_ratio)?;
        in_range(
            &k("clear_detail_ratio"),
            self.clear_detail_ratio,
            self.max_detail_ratio,
            1.0,
        )?;
        unit_ratio(&k("max_sharpness_ratio"), self.max_sharpness_ratio)?;
        in_range(
            &k("clear_sharpness_ratio"),
            self.clear_sharpness_ratio,
            self.max_sharpness_ratio,
            1.0,
        )?;
        baseline(
            key,
            self.baseline_window,
            self.baseline_warmup,
            self.baseline_relearn,
        )?;
        timing(key, self.timing())
    }
}

/// Blockiness: rise of the grid share of block edges above the stream's normal that is blocking.
pub const DEFAULT_BLOCKINESS_MIN_INCREASE: f64 = 0.08;
/// Blockiness: rise below which blocking ends (hysteresis).
pub const DEFAULT_BLOCKINESS_CLEAR_INCREASE: f64 = 0.04;
/// Blockiness: the rate of block edges on the grid must also reach this multiple of normal.
pub const DEFAULT_BLOCKINESS_MIN_RATE_RATIO: f64 = 1.4;
/// Blockiness: media seconds the per-frame share is smoothed over.
pub const DEFAULT_BLOCKINESS_SMOOTHING_SECS: f64 = 0.3;
/// Blockiness: seconds after a decoder error during which the picture counts as damaged, in a
/// stream whose keyframes are not known.
pub const DEFAULT_BLOCKINESS_DAMAGE_HOLD_SECS: f64 = 0.4;
/// Blockiness: the longest damage is held after a decoder error while waiting for the keyframe
/// that refreshes the picture (GOPs are rarely longer).
pub const DEFAULT_BLOCKINESS_DAMAGE_MAX_HOLD_SECS: f64 = 10.0;
/// Blockiness: seconds without blocking needed to end it (longer than the smoothing).
pub const DEFAULT_BLOCKINESS_CLEAR_DURATION_SECS: f64 = 0.5;
/// Blockiness reacts faster than the picture-loss detectors: corruption often lasts until the
/// next keyframe only.
pub const DEFAULT_BLOCKINESS_MIN_DURATION_SECS: f64 = 1.0;

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
    /// Seconds damage is held at most after the last decoder error while waiting for the next
    /// keyframe (the picture stays wrong until one refreshes it).
    pub damage_max_hold: f64,
    /// Seconds of normal frames the normal share is averaged over.
    pub baseline_window: f64,
    /// Seconds of normal frames needed before blockiness is judged.
    pub baseline_warmup: f64,
    /// Seconds a defect may last before its level becomes the stream\'s new normal (a lasting
    /// change of content or format ends it); 0: never.
    pub baseline_relearn: f64,
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
            damage_max_hold: DEFAULT_BLOCKINESS_DAMAGE_MAX_HOLD_SECS,
            baseline_window: DEFAULT_BASELINE_WINDOW_SECS,
            baseline_warmup: DEFAULT_BASELINE_WARMUP_SECS,
            baseline_relearn: DEFAULT_BASELINE_RELEARN_SECS,
            min_duration: DEFAULT_BLOCKINESS_MIN_DURATION_SECS,
            clear_duration: DEFAULT_BLOCKINESS_CLEAR_DURATION_SECS,
        }
    }
}

impl BlockinessConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        unit_ratio(&k("min_increase"), self.min_increase)?;
        in_range(
            &k("clear_increase"),
            self.clear_increase,
            0.0,
            self.min_increase,
        )?;
        in_range(&k("min_rate_ratio"), self.min_rate_ratio, 0.0, 100.0)?;
        in_range(&k("smoothing"), self.smoothing, 0.0, 60.0)?;
        in_range(&k("damage_hold"), self.damage_hold, 0.0, 60.0)?;
        in_range(
            &k("damage_max_hold"),
            self.damage_max_hold,
            self.damage_hold,
            600.0,
        )?;
        baseline(
            key,
            self.baseline_window,
            self.baseline_warmup,
            self.baseline_relearn,
        )?;
        timing(key, self.timing())
    }
}

/// Letterbox: each bar must cover at least this share of the height (or width).
pub const DEFAULT_LETTERBOX_MIN_BAR_RATIO: f64 = 0.04;
/// Letterbox: the two bars of a pair may differ by at most this share of the height (width).
pub const DEFAULT_LETTERBOX_MAX_BAR_DIFFERENCE: f64 = 0.03;
/// Letterbox: minimum fall of the active picture area below the stream's normal.
pub const DEFAULT_LETTERBOX_MIN_AREA_DROP: f64 = 0.05;

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
    /// Seconds a defect may last before its level becomes the stream\'s new normal (a lasting
    /// change of content or format ends it); 0: never.
    pub baseline_relearn: f64,
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
            baseline_relearn: DEFAULT_BASELINE_RELEARN_SECS,
            min_duration: DEFAULT_MIN_DURATION_SECS,
            clear_duration: DEFAULT_CLEAR_DURATION_SECS,
        }
    }
}

impl LetterboxConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("min_bar_ratio"), self.min_bar_ratio, 0.0, 0.5)?;
        unit_ratio(&k("max_bar_difference"), self.max_bar_difference)?;
        unit_ratio(&k("min_area_drop"), self.min_area_drop)?;
        baseline(
            key,
            self.baseline_window,
            self.baseline_warmup,
            self.baseline_relearn,
        )?;
        timing(key, self.timing())
    }
}

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
    /// Seconds a timestamp gap keeps the picture stuttering.
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

impl StutterConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        unit_ratio(&k("max_changed_ratio"), self.max_changed_ratio)?;
        in_range(&k("gap_factor"), self.gap_factor, 1.01, 100.0)?;
        if !(1..=100).contains(&self.max_repeat_run) {
            return Err(invalid(&k("max_repeat_run"), "must be between 1 and 100"));
        }
        positive(&k("hold"), self.hold)?;
        positive(&k("cadence_window"), self.cadence_window)?;
        unit_ratio(&k("max_cadence_share"), self.max_cadence_share)?;
        timing(key, self.timing())
    }
}
