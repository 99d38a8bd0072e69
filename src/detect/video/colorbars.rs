//! Colour bars on air: a test pattern left running instead of programme.
//!
//! Bars are vertical stripes: a high spread of luma, a few strong steps along each row (the bar
//! edges), and nearly every row equal to the row below (only the borders between the pattern's
//! sections differ). Natural pictures and other test patterns have something changing down
//! most columns; a blurred picture has no strong steps; a flat one has no spread. Frames carry luma only,
//! so the bars' colour is not checked: any pattern of full-height vertical stripes counts.

use crate::config::ColorbarsConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct ColorbarsDetector {
    config: ColorbarsConfig,
    pub(super) tracker: DefectTracker,
}

impl ColorbarsDetector {
    pub fn new(config: ColorbarsConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Colorbars, config.timing());
        Self { config, tracker }
    }

    /// Whether the frame looks like bars, by the thresholds alone.
    pub fn looks_like_bars(config: &ColorbarsConfig, stats: &FrameStats) -> bool {
        // Stripes span the frame: at least a few edges per row, at any width.
        let edges_per_row = stats.edges_h as f64 / f64::from(stats.height.max(1));
        stats.luma_stddev() >= config.min_stddev
            && edges_per_row >= config.min_edges_per_row
            && stats.edges_h_ratio() <= config.max_edges_across
            && stats.quiet_row_ratio() >= config.min_quiet_rows
    }

    /// `masked` frames (black or flat) are not bars; returns whether the frame counts as bars.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        masked: bool,
        out: &mut Vec<Transition>,
    ) -> bool {
        let bars = !masked && Self::looks_like_bars(&self.config, stats);
        if self.config.enabled {
            out.extend(self.tracker.update(at, bars, stats.quiet_row_ratio()));
        }
        bars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stddev_sq: u64, edges_h: u64, quiet_rows: u64) -> FrameStats {
        // 1280x720, luma mean 120.
        let n = 1280 * 720;
        FrameStats {
            width: 1280,
            height: 720,
            pixels: n,
            luma_sum: 120 * n,
            luma_sq_sum: (120 * 120 + stddev_sq) * n,
            edges_h,
            quiet_rows,
            ..Default::default()
        }
    }

    #[test]
    fn stripes_are_bars_and_pictures_are_not() {
        let c = ColorbarsConfig::default();
        // Seven bar edges per row, each two pixels wide after coding; three section borders.
        let bars = frame(60 * 60, 720 * 14, 716);
        assert!(ColorbarsDetector::looks_like_bars(&c, &bars));
        // A natural picture: edges in both directions.
        let picture = frame(50 * 50, 40_000, 300);
        assert!(!ColorbarsDetector::looks_like_bars(&c, &picture));
        // Soft picture: no strong steps at all.
        let soft = frame(40 * 40, 0, 719);
        assert!(!ColorbarsDetector::looks_like_bars(&c, &soft));
        // Flat: no spread.
        let flat = frame(1, 720 * 14, 719);
        assert!(!ColorbarsDetector::looks_like_bars(&c, &flat));
    }

    #[test]
    fn one_event_for_a_slate() {
        let mut d = ColorbarsDetector::new(ColorbarsConfig::default());
        let mut out = Vec::new();
        for i in 0..250 {
            let s = if (50..150).contains(&i) {
                frame(60 * 60, 720 * 14, 716)
            } else {
                frame(50 * 50, 40_000, 300)
            };
            d.observe(Sample::at(f64::from(i) * 0.04), &s, false, &mut out);
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
    }
}
