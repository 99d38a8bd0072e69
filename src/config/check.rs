//! Checks shared by the settings' `validate` methods, so that one kind of value (a ratio, a
//! duration in seconds) is refused with the same message whichever setting holds it.

use crate::config::Timing;
use crate::error::ConfigError;

pub(super) fn timing(key: &str, t: Timing) -> Result<(), ConfigError> {
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

pub(super) fn unit_ratio(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, &format!("{v} is not a ratio between 0 and 1")))
    }
}

pub(super) fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(())
    } else {
        Err(invalid(
            key,
            &format!("{v} is not a number of seconds between 0 (excluded) and 86400"),
        ))
    }
}

pub(super) fn in_range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, &format!("{v} is not between {lo} and {hi}")))
    }
}

/// The learning window of a detector's baseline (`<key>.baseline_window`), its warm-up
/// (`<key>.baseline_warmup`), which cannot be longer than the window, and the time after which
/// a lasting defect is relearnt as normal (`<key>.baseline_relearn`, 0 or at least the
/// warm-up, at most a day).
pub(super) fn baseline(
    key: &str,
    window: f64,
    warmup: f64,
    relearn: f64,
) -> Result<(), ConfigError> {
    positive(&format!("{key}.baseline_window"), window)?;
    in_range(&format!("{key}.baseline_warmup"), warmup, 0.0, window)?;
    if relearn != 0.0 {
        in_range(
            &format!("{key}.baseline_relearn"),
            relearn,
            warmup,
            86_400.0,
        )?;
    }
    Ok(())
}

pub(super) fn invalid(key: &str, message: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.to_owned(),
    }
}
