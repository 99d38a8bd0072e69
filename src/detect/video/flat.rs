//! Flat picture: a uniform frame that is not black (a blue, grey or white screen, a
//! single-colour slate), measured by the spread of luma.

use crate::config::FlatConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct FlatDetector {
    config: FlatConfig,
    pub(super) tracker: DefectTracker,
}

impl FlatDetector {
    pub fn new(config: FlatConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Flat, config.timing());
        Self { config, tracker }
    }

    /// `black` frames are the black detector's; returns whether the frame counts as flat.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        black: bool,
        out: &mut Vec<Transition>,
    ) -> bool {
        let spread = stats.luma_stddev();
        let limit = if self.tracker.engaged() {
            self.config.clear_stddev
        } else {
            self.config.max_stddev
        };
        let flat = !black && spread <= limit;
        if self.config.enabled {
            out.extend(self.tracker.update(at, flat, spread));
        }
        flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stats of a frame with luma `mean` and standard deviation `sd` (half the pixels at
    /// mean - sd, half at mean + sd).
    pub(crate) fn spread(mean: f64, sd: f64) -> FrameStats {
        let n = 10_000u64;
        let sq = (mean * mean + sd * sd) * n as f64;
        FrameStats {
            width: 100,
            height: 100,
            pixels: n,
            luma_sum: (mean * n as f64) as u64,
            luma_sq_sum: sq as u64,
            ..Default::default()
        }
    }

    #[test]
    fn uniform_frames_are_flat_and_black_is_not() {
        let mut d = FlatDetector::new(FlatConfig::default());
        let mut out = Vec::new();
        for i in 0..150 {
            let sd = if (25..100).contains(&i) { 1.0 } else { 40.0 };
            d.observe(
                Sample::at(f64::from(i) * 0.04),
                &spread(41.0, sd),
                false,
                &mut out,
            );
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        match (&out[0], &out[1]) {
            (Transition::Started { start, .. }, Transition::Ended { end, .. }) => {
                assert!((start.media - 1.0).abs() < 1e-9);
                assert!((end.media - 4.0).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }

        let mut d = FlatDetector::new(FlatConfig::default());
        let mut out = Vec::new();
        for i in 0..150 {
            d.observe(
                Sample::at(f64::from(i) * 0.04),
                &spread(16.0, 0.0),
                true,
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
    }
}
