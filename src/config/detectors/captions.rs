//! Closed captions presence.

use serde::Deserialize;

use crate::config::check::positive;
use crate::error::ConfigError;

/// Seconds without caption data before a stream that carried captions (or must carry them) is
/// a `captions` defect: pauses between sentences send only padding, which is not caption data.
pub const DEFAULT_CAPTIONS_MIN_DURATION_SECS: f64 = 10.0;

/// Closed captions (CEA-608/708 in the video's user data): a stream that carried them and
/// stops, or one that must carry them and has none.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionsConfig {
    /// Whether the detector runs (caption bytes are always counted).
    pub enabled: bool,
    /// Seconds without caption data before it is a defect.
    pub min_duration: f64,
    /// The stream must carry captions: none from its start is a defect too. A stream's
    /// `expect_captions = true` sets it.
    pub expect: bool,
}

impl Default for CaptionsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_duration: DEFAULT_CAPTIONS_MIN_DURATION_SECS,
            expect: false,
        }
    }
}

impl CaptionsConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ConfigError> {
        positive(&format!("{key}.min_duration"), self.min_duration)
    }
}
