//! Transport detectors' settings: the stream's delivery (decoded frames arriving, input
//! bitrate) and, for HLS, its playlists and HTTP requests.

use serde::Deserialize;

use super::DEFAULT_CLEAR_DURATION_SECS;
use crate::config::check::{in_range, invalid, positive, timing};
use crate::error::ConfigError;

/// Seconds without a decoded frame, on a stream that was up, that make a stall.
pub const DEFAULT_STALL_AFTER_SECS: f64 = 2.0;

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

impl StallConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        positive(&k("after"), self.after)
    }
}

/// Seconds over which the input bitrate is averaged (HLS delivers a segment at a time).
pub const DEFAULT_BITRATE_WINDOW_SECS: f64 = 10.0;
/// Seconds the bitrate must stay below its floor before it is a defect.
pub const DEFAULT_BITRATE_MIN_DURATION_SECS: f64 = 5.0;

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

impl BitrateConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        let floor = self.min_bits_per_second;
        if !(floor.is_finite() && (0.0..=1e12).contains(&floor)) {
            return Err(invalid(
                &k("min_bits_per_second"),
                &format!("{floor} is not between 0 and 1e12"),
            ));
        }
        positive(&k("window"), self.window)?;
        timing(key, self.timing())
    }
}

/// A live playlist unchanged for this many target durations is stale. HLS clients re-poll
/// after half a target duration and a normal update comes once per target duration, so three
/// leaves room for a late origin without the false alarms users complain of.
pub const DEFAULT_PLAYLIST_STALE_TARGET_DURATIONS: f64 = 3.0;

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

impl PlaylistStaleConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(
            &k("max_target_durations"),
            self.max_target_durations,
            1.0,
            100.0,
        )
    }
}

/// Seconds an instantaneous manifest fault (a sequence error, an overlong segment) stays
/// reported after it was last seen.
pub const DEFAULT_MANIFEST_FAULT_HOLD_SECS: f64 = 10.0;

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

impl SequenceConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        positive(&k("hold"), self.hold)
    }
}

/// Seconds a program date time may be off the one the previous segment's gives, and two
/// renditions may date one segment apart: a frame or two of rounding, and packagers that
/// date segments from a wall clock a little off the media.
pub const DEFAULT_PROGRAM_DATE_TIME_TOLERANCE_SECS: f64 = 1.0;
/// Segments a rendition may fall behind the others (beyond the offset first seen).
pub const DEFAULT_MAX_VARIANT_DRIFT_SEGMENTS: f64 = 2.0;

/// HLS conformance (RFC 8216 and 8216bis): the rules a live origin can break beyond the
/// sequence and durations (target duration and version changes, EXT-X-GAP, dates, LL-HLS
/// parts, the playlist changing after EXT-X-ENDLIST) and across the renditions of a ladder.
/// Each broken rule family is an event of its own (`rule`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConformanceConfig {
    /// Whether the detector runs.
    pub enabled: bool,
    /// Seconds a broken rule stays reported after it was last seen.
    pub hold: f64,
    /// Seconds a segment's program date time may be off.
    pub program_date_time_tolerance: f64,
    /// Segments a rendition may fall behind or run ahead of the others.
    pub max_variant_drift: f64,
}

impl Default for HlsConformanceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            hold: DEFAULT_MANIFEST_FAULT_HOLD_SECS,
            program_date_time_tolerance: DEFAULT_PROGRAM_DATE_TIME_TOLERANCE_SECS,
            max_variant_drift: DEFAULT_MAX_VARIANT_DRIFT_SEGMENTS,
        }
    }
}

impl HlsConformanceConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        positive(&k("hold"), self.hold)?;
        positive(
            &k("program_date_time_tolerance"),
            self.program_date_time_tolerance,
        )?;
        in_range(&k("max_variant_drift"), self.max_variant_drift, 0.0, 1000.0)
    }
}

/// Seconds a segment may exceed the target duration: RFC 8216 requires EXTINF, rounded to
/// the nearest integer, to be at most the target duration.
pub const DEFAULT_SEGMENT_MAX_OVERRUN_SECS: f64 = 0.5;
/// Largest tolerated gap between media time added to a live playlist and wall time, as a
/// share of the wall time (0.1: 6 s per minute).
pub const DEFAULT_SEGMENT_DRIFT_TOLERANCE: f64 = 0.1;
/// Wall seconds over which playlist drift is measured.
pub const DEFAULT_SEGMENT_DRIFT_WINDOW_SECS: f64 = 60.0;

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

impl SegmentDurationConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        let overrun = self.max_overrun;
        if !(overrun.is_finite() && (0.0..=3600.0).contains(&overrun)) {
            return Err(invalid(
                &k("max_overrun"),
                &format!("{overrun} is not a number of seconds between 0 and 3600"),
            ));
        }
        let drift = self.drift_tolerance;
        if !(drift.is_finite() && drift > 0.0 && drift <= 1.0) {
            return Err(invalid(
                &k("drift_tolerance"),
                &format!("{drift} is not a ratio between 0 (excluded) and 1"),
            ));
        }
        positive(&k("drift_window"), self.drift_window)?;
        positive(&k("hold"), self.hold)
    }
}

/// Seconds of failing requests before HTTP errors are a defect, and of good ones to end it.
pub const DEFAULT_HTTP_ERRORS_MIN_DURATION_SECS: f64 = 2.0;
pub const DEFAULT_HTTP_ERRORS_CLEAR_DURATION_SECS: f64 = 2.0;

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

impl HttpErrorsConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        timing(key, self.timing())
    }
}

/// Seconds a TR 101 290 priority's defect lasts after its last error: errors come as
/// isolated events, and one a second is one outage, not sixty.
pub const DEFAULT_TR101290_HOLD_SECS: f64 = 5.0;
/// Seconds between PAT, PMT or PCR that are errors in HLS segments. Packagers write the
/// tables (and some the PCR) once per segment, and segments last up to 10 s.
pub const DEFAULT_TR101290_SEGMENT_INTERVAL_SECS: f64 = 10.5;

/// ETSI TR 101 290 measurements on MPEG-TS input (UDP/RTP, SRT, HLS TS segments, files):
/// one defect per priority while its errors keep coming, every error counted per indicator.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tr101290Config {
    /// Whether the measurements run.
    pub enabled: bool,
    /// Seconds a priority's defect lasts after its last error.
    pub hold: f64,
    /// Also report priority 3 (SI repetition, unreferenced PIDs, buffer model): DVB
    /// broadcast contribution checks that most IP and OTT multiplexes do not aim to meet.
    pub priority3: bool,
    /// Seconds between PAT, PMT or PCR that are errors in HLS segments (the standard's
    /// 0.5 s and 0.1 s apply to every other input).
    pub segment_interval: f64,
}

impl Default for Tr101290Config {
    fn default() -> Self {
        Self {
            enabled: true,
            hold: DEFAULT_TR101290_HOLD_SECS,
            priority3: false,
            segment_interval: DEFAULT_TR101290_SEGMENT_INTERVAL_SECS,
        }
    }
}

impl Tr101290Config {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        positive(&k("hold"), self.hold)?;
        in_range(&k("segment_interval"), self.segment_interval, 0.1, 600.0)
    }
}

/// Seconds an ad break may run past the duration its cue declared before it is a fault.
pub const DEFAULT_SCTE35_BREAK_TOLERANCE_SECS: f64 = 2.0;

/// SCTE-35 ad signalling on MPEG-TS input: a break that outlasts its declared duration (and
/// does not return by itself), and a return with no break on.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Scte35Config {
    /// Whether breaks are judged (cues are always read and counted).
    pub enabled: bool,
    /// Seconds a break may run past its declared duration.
    pub break_tolerance: f64,
    /// Seconds a cue in without a break stays reported.
    pub hold: f64,
    /// Seconds without any SCTE-35 message before the signalling counts as lost (`no_cue`);
    /// 0 (the default) is off, for streams that carry cues only now and then.
    pub max_interval: f64,
}

impl Default for Scte35Config {
    fn default() -> Self {
        Self {
            enabled: true,
            break_tolerance: DEFAULT_SCTE35_BREAK_TOLERANCE_SECS,
            hold: DEFAULT_MANIFEST_FAULT_HOLD_SECS,
            max_interval: 0.0,
        }
    }
}

impl Scte35Config {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let k = |name: &str| format!("{key}.{name}");
        in_range(&k("break_tolerance"), self.break_tolerance, 0.0, 3600.0)?;
        in_range(&k("max_interval"), self.max_interval, 0.0, 86_400.0)?;
        positive(&k("hold"), self.hold)
    }
}
