//! Letterbox and pillarbox: dark bars at the top and bottom, or left and right, that appear
//! where the stream normally has none (a wrong aspect-ratio conversion upstream).
//!
//! Bars are rows (columns) with no pixel above the dark threshold, measured on the GPU. They
//! count only in pairs of similar size, since a dark scene with one dark edge is not a bar.
//! The share of the frame inside the bars is the active area; the detector fires when it falls
//! below the stream's normal active area.

use crate::config::LetterboxConfig;
use crate::detect::baseline::Baseline;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct LetterboxDetector {
    config: LetterboxConfig,
    baseline: Baseline,
    pub(super) tracker: DefectTracker,
}

impl LetterboxDetector {
    pub fn new(config: LetterboxConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Letterbox, config.timing());
        let baseline = Baseline::new(
            config.baseline_window,
            config.baseline_warmup,
            config.baseline_relearn,
        );
        Self {
            config,
            baseline,
            tracker,
        }
    }

    /// Whether the frame has a pair of similar bars, top and bottom or left and right.
    pub fn has_bars(config: &LetterboxConfig, stats: &FrameStats) -> bool {
        let b = stats.bars;
        let pair = |a: u32, c: u32, size: u32| {
            let size = f64::from(size.max(1));
            let (a, c) = (f64::from(a) / size, f64::from(c) / size);
            a.min(c) >= config.min_bar_ratio && (a - c).abs() <= config.max_bar_difference
        };
        pair(b.top, b.bottom, stats.height) || pair(b.left, b.right, stats.width)
    }

    /// `masked` frames (black, flat) are other detectors' and do not move the baseline.
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
        let area = stats.active_area_ratio();
        let mut boxed = self.is_boxed(stats, area);
        if !boxed && !self.tracker.engaged() {
            self.baseline.update(at.media, area);
        } else if self.baseline.reject(at.media, area) {
            boxed = self.is_boxed(stats, area);
        }
        out.extend(self.tracker.update(at, boxed, area));
    }

    fn is_boxed(&self, stats: &FrameStats, area: f64) -> bool {
        Self::has_bars(&self.config, stats)
            && self
                .baseline
                .get()
                .is_some_and(|normal| normal - area >= self.config.min_area_drop)
    }

    /// The picture's format or timeline changed: its normal active area is learnt anew.
    pub fn relearn(&mut self) {
        self.baseline.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Bars;

    fn frame(top: u32, bottom: u32, left: u32, right: u32) -> FrameStats {
        FrameStats {
            width: 1280,
            height: 720,
            pixels: 1280 * 720,
            bars: Bars {
                top,
                bottom,
                left,
                right,
            },
            ..Default::default()
        }
    }

    fn run(boxed: FrameStats) -> Vec<Transition> {
        let mut d = LetterboxDetector::new(LetterboxConfig::default());
        let mut out = Vec::new();
        for i in 0..400 {
            let s = if (150..250).contains(&i) {
                boxed
            } else {
                frame(0, 0, 0, 0)
            };
            d.observe(Sample::at(f64::from(i) * 0.04), &s, false, &mut out);
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        out
    }

    #[test]
    fn bars_appearing_are_reported() {
        let letterbox = run(frame(90, 90, 0, 0));
        assert_eq!(letterbox.len(), 2, "{letterbox:?}");
        let pillarbox = run(frame(0, 0, 160, 160));
        assert_eq!(pillarbox.len(), 2, "{pillarbox:?}");
    }

    #[test]
    fn one_dark_edge_is_not_a_bar() {
        assert!(run(frame(200, 0, 0, 0)).is_empty());
        assert!(run(frame(0, 0, 300, 20)).is_empty());
    }

    #[test]
    fn a_stream_that_always_has_bars_is_normal() {
        let mut d = LetterboxDetector::new(LetterboxConfig::default());
        let mut out = Vec::new();
        for i in 0..400 {
            d.observe(
                Sample::at(f64::from(i) * 0.04),
                &frame(90, 90, 0, 0),
                false,
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
    }
}
