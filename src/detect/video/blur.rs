//! Blur: loss of detail against the stream's own normal level. How much detail is normal
//! depends on the channel (a cartoon has less than sport), so the detector compares the mean
//! luma step between neighbours with its recent mean over normal frames.

use crate::config::BlurConfig;
use crate::detect::baseline::Baseline;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct BlurDetector {
    config: BlurConfig,
    baseline: Baseline,
    pub(super) tracker: DefectTracker,
}

impl BlurDetector {
    pub fn new(config: BlurConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Blur, config.timing());
        let baseline = Baseline::new(config.baseline_window, config.baseline_warmup);
        Self {
            config,
            baseline,
            tracker,
        }
    }

    /// Detail relative to the baseline (1 = normal), once the baseline exists.
    pub fn relative_detail(&self, stats: &FrameStats) -> Option<f64> {
        let normal = self.baseline.get()?;
        (normal > 0.0).then(|| stats.detail() / normal)
    }

    /// `masked` frames (black, flat, bars) are other detectors' and do not move the baseline.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        masked: bool,
        out: &mut Vec<Transition>,
    ) {
        if !self.config.enabled || masked {
            return;
        }
        let relative = self.relative_detail(stats);
        let limit = if self.tracker.engaged() {
            self.config.clear_detail_ratio
        } else {
            self.config.max_detail_ratio
        };
        let blurred = relative.is_some_and(|r| r < limit);
        if !blurred && !self.tracker.engaged() {
            self.baseline.update(at.media, stats.detail());
        }
        out.extend(self.tracker.update(at, blurred, relative.unwrap_or(1.0)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(d: f64) -> FrameStats {
        FrameStats {
            width: 100,
            height: 100,
            pixels: 10_000,
            grad_h_sum: (d * 5_000.0) as u64,
            grad_v_sum: (d * 5_000.0) as u64,
            ..Default::default()
        }
    }

    fn run(series: impl Fn(usize) -> f64, frames: usize) -> Vec<Transition> {
        let mut d = BlurDetector::new(BlurConfig::default());
        let mut out = Vec::new();
        for i in 0..frames {
            d.observe(
                Sample::at(i as f64 * 0.04),
                &detail(series(i)),
                false,
                &mut out,
            );
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        out
    }

    #[test]
    fn a_drop_in_detail_is_blur_and_its_return_ends_it() {
        // Normal detail 8 (with a little jitter), 2 from 10 s to 14 s.
        let out = run(
            |i| {
                if (250..350).contains(&i) {
                    2.0
                } else {
                    8.0 + (i % 3) as f64 * 0.3
                }
            },
            500,
        );
        assert_eq!(out.len(), 2, "{out:?}");
        match (&out[0], &out[1]) {
            (Transition::Started { start, .. }, Transition::Ended { end, .. }) => {
                assert!((start.media - 10.0).abs() < 1e-6, "{start:?}");
                assert!((end.media - 14.0).abs() < 1e-6, "{end:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn content_that_is_always_soft_is_normal() {
        assert!(run(|_| 1.5, 500).is_empty());
    }

    #[test]
    fn no_verdict_before_the_baseline_exists() {
        // Blurred from the first frame: nothing to compare with, so nothing is reported.
        assert!(run(|i| if i < 100 { 2.0 } else { 8.0 }, 300).is_empty());
    }
}
