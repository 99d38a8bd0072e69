//! Black picture: nearly every pixel dark, like a broadcast monitor (a small logo on black is
//! still black).

use crate::config::BlackConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct BlackDetector {
    config: BlackConfig,
    pub(super) tracker: DefectTracker,
}

impl BlackDetector {
    pub fn new(config: BlackConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Black, config.timing());
        Self { config, tracker }
    }

    /// Returns whether the frame counts as black (used to mask the freeze detector).
    pub fn observe(&mut self, at: Sample, stats: &FrameStats, out: &mut Vec<Transition>) -> bool {
        let dark = stats.dark_ratio();
        let threshold = if self.tracker.engaged() {
            self.config.clear_dark_ratio
        } else {
            self.config.min_dark_ratio
        };
        let black = dark >= threshold;
        if self.config.enabled {
            out.extend(self.tracker.update(at, black, dark));
        }
        black
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(dark_ratio: f64) -> FrameStats {
        FrameStats {
            pixels: 10_000,
            dark_pixels: (dark_ratio * 10_000.0) as u64,
            ..Default::default()
        }
    }

    fn run(ratios: &[f64]) -> Vec<Transition> {
        let mut d = BlackDetector::new(BlackConfig::default());
        let mut out = Vec::new();
        for (i, &r) in ratios.iter().enumerate() {
            d.observe(Sample::at(i as f64 / 25.0), &stats(r), &mut out);
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        out
    }

    #[test]
    fn dark_share_between_the_thresholds_keeps_an_active_defect() {
        // Enters at >= 0.98; 0.96 then keeps it (clear threshold 0.95); 0.5 ends it.
        let mut ratios = vec![0.99; 60];
        ratios.extend([0.96; 60]);
        ratios.extend([0.5; 25]);
        let out = run(&ratios);
        assert_eq!(out.len(), 2, "{out:?}");
        let Transition::Ended { end, .. } = &out[1] else {
            panic!("{out:?}")
        };
        assert!((end.media - 120.0 / 25.0).abs() < 1e-9);
    }

    #[test]
    fn between_the_thresholds_never_starts_a_defect() {
        assert!(run(&[0.97; 200]).is_empty());
    }

    #[test]
    fn disabled_detector_reports_nothing_but_still_masks_freeze() {
        let mut d = BlackDetector::new(BlackConfig {
            enabled: false,
            ..Default::default()
        });
        let mut out = Vec::new();
        for i in 0..100 {
            assert!(d.observe(Sample::at(i as f64), &stats(1.0), &mut out));
        }
        assert!(out.is_empty());
    }
}
