//! Programme silence: the RMS level of all channels together below a threshold.

use crate::config::SilenceConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::frame::AudioBuffer;

/// Level reported for digital silence, where the logarithm is undefined.
pub const FLOOR_DBFS: f64 = -200.0;

#[derive(Debug)]
pub struct SilenceDetector {
    config: SilenceConfig,
    pub(super) tracker: DefectTracker,
}

impl SilenceDetector {
    pub fn new(config: SilenceConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Silence, config.timing());
        Self { config, tracker }
    }

    pub fn observe(&mut self, at: Sample, buffer: &AudioBuffer, out: &mut Vec<Transition>) {
        if !self.config.enabled || buffer.samples.is_empty() {
            return;
        }
        let level = rms_dbfs(&buffer.samples);
        out.extend(
            self.tracker
                .update(at, level < self.config.threshold_dbfs, level),
        );
    }
}

/// RMS level in dBFS of interleaved samples (full scale = 1.0).
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt();
    if rms > 0.0 {
        (20.0 * rms.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tone(amplitude: f32) -> AudioBuffer {
        let samples = (0..1024)
            .flat_map(|i| {
                let s = amplitude * (i as f32 * 0.13).sin();
                [s, s]
            })
            .collect();
        AudioBuffer {
            channels: 2,
            rate: 48_000,
            samples,
            pts: Duration::ZERO,
        }
    }

    #[test]
    fn full_scale_sine_is_minus_3_dbfs() {
        let level = rms_dbfs(&tone(1.0).samples);
        assert!((level + 3.01).abs() < 0.05, "{level}");
        assert_eq!(rms_dbfs(&[0.0; 16]), FLOOR_DBFS);
    }

    #[test]
    fn silence_between_tones_is_one_event() {
        let mut d = SilenceDetector::new(SilenceConfig::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..400 {
            let t = i as f64 * step;
            let buf = if (2.0..5.0).contains(&t) {
                tone(0.0005)
            } else {
                tone(0.1)
            };
            d.observe(Sample::at(t), &buf, &mut out);
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        let Transition::Ended { start, end, .. } = &out[1] else {
            panic!("{out:?}")
        };
        assert!((start.media - 2.0).abs() <= step && (end.media - 5.0).abs() <= step);
    }
}
