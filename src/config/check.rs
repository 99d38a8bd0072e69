//! Checks shared by the settings' `validate` methods, so that one kind of value (a ratio, a
//! duration in seconds) is refused with the same message whichever setting holds it.

use crate::config::Timing;
use crate::error::ConfigError;

/// Longest duration any setting may hold unless it says otherwise: one day. Past it a typo
/// (an extra zero, milliseconds given as seconds) is likelier than intent, and `Duration`
/// conversions stay far from overflow.
pub const MAX_SECONDS: f64 = 86_400.0;
/// Shortest duration of a setting that drives a timer or a poll: below it a typo turns a loop
/// into a busy loop (`restart_backoff_initial = 1e-9` restarted 20 refused streams 600 times a
/// second on two full cores).
pub const MIN_TIMER_SECONDS: f64 = 0.1;
/// Shortest window or hold of a detector: a few frames at 25 fps.
pub const MIN_DETECTOR_SECONDS: f64 = 0.01;

/// The one range check of a duration in seconds: finite and within `min..=max`, else an error
/// naming the key, the value as written and the bound it broke.
pub(super) fn seconds(key: &str, v: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    let problem = if !v.is_finite() {
        "must be a finite number of seconds".to_owned()
    } else if v < min {
        format!("must be at least {min} s")
    } else if v > max {
        format!("must be at most {max} s")
    } else {
        return Ok(());
    };
    Err(invalid(key, &format!("{v:?}: {problem}")))
}

pub(super) fn timing(key: &str, t: Timing) -> Result<(), ConfigError> {
    seconds(
        &format!("{key}.min_duration"),
        t.min_duration,
        0.0,
        MAX_SECONDS,
    )?;
    seconds(
        &format!("{key}.clear_duration"),
        t.clear_duration,
        0.0,
        MAX_SECONDS,
    )
}

pub(super) fn unit_ratio(key: &str, v: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, &format!("{v} is not a ratio between 0 and 1")))
    }
}

/// A detector's window or hold: above zero by at least a few frames, at most a day.
pub(super) fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    seconds(key, v, MIN_DETECTOR_SECONDS, MAX_SECONDS)
}

pub(super) fn in_range(key: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, &format!("{v:?} is not between {lo} and {hi}")))
    }
}

/// An integer setting within `lo..=hi` (sizes, counts).
pub(super) fn count<T>(key: &str, v: T, lo: T, hi: T) -> Result<(), ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, &format!("{v}: must be between {lo} and {hi}")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_names_the_key_the_value_and_the_bound() {
        let e = seconds("ingest.restart_backoff_initial", 1e-9, 0.1, 3600.0)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "config key `ingest.restart_backoff_initial`: 1e-9: must be at least 0.1 s"
        );
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = seconds("k", bad, 0.0, 1.0).unwrap_err().to_string();
            assert!(e.contains("finite"), "{e}");
        }
        assert!(
            seconds("k", 1e20, 0.0, MAX_SECONDS)
                .unwrap_err()
                .to_string()
                .contains("at most 86400 s")
        );
        seconds("k", 0.1, 0.1, 0.1).unwrap();
    }

    #[test]
    fn counts_are_bounded_both_ways() {
        assert!(count("k", 0usize, 1, 8).is_err());
        assert!(count("k", 9usize, 1, 8).is_err());
        count("k", 8usize, 1, 8).unwrap();
    }
}
