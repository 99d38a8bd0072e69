//! Black picture: nearly every pixel dark, like a broadcast monitor (a small logo on black is
//! still black), and still: a dark picture that keeps changing after a dark frame is content
//! (white credits scrolling over black are 96-99.9% dark), not a lost picture.

use crate::config::BlackConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct BlackDetector {
    config: BlackConfig,
    pub(super) tracker: DefectTracker,
    /// Whether the previous frame was dark enough to be black.
    prev_dark: bool,
}

impl BlackDetector {
    pub fn new(config: BlackConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Black, config.timing());
        Self {
            config,
            tracker,
            prev_dark: false,
        }
    }

    /// Returns whether the frame counts as black (used to mask the freeze detector).
    pub fn observe(&mut self, at: Sample, stats: &FrameStats, out: &mut Vec<Transition>) -> bool {
        let dark = stats.dark_ratio();
        let threshold = if self.tracker.engaged() {
            self.config.clear_dark_ratio
        } else {
            self.config.min_dark_ratio
        };
        let is_dark = dark >= threshold;
        // Motion only counts between two dark frames: the cut from a picture to black changes
        // most pixels and is the black's first frame.
        let moving = self.prev_dark
            && stats.has_prev
            && stats.changed_ratio() > self.config.max_changed_ratio;
        self.prev_dark = is_dark;
        let black = is_dark && !moving;
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
        moving(dark_ratio, 0.0)
    }

    /// A frame with `changed_ratio` of its pixels changed since the previous one.
    fn moving(dark_ratio: f64, changed_ratio: f64) -> FrameStats {
        FrameStats {
            pixels: 1_000_000,
            dark_pixels: (dark_ratio * 1_000_000.0) as u64,
            has_prev: true,
            changed_pixels: (changed_ratio * 1_000_000.0) as u64,
            ..Default::default()
        }
    }

    fn run_frames(frames: &[FrameStats]) -> Vec<Transition> {
        let mut d = BlackDetector::new(BlackConfig::default());
        let mut out = Vec::new();
        for (i, s) in frames.iter().enumerate() {
            d.observe(Sample::at(i as f64 / 25.0), s, &mut out);
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        out
    }

    fn run(ratios: &[f64]) -> Vec<Transition> {
        run_frames(&ratios.iter().map(|&r| stats(r)).collect::<Vec<_>>())
    }

    /// (dark ratio, changed ratio) once a second of the corpus' `credits` programme (white
    /// names scrolling up over black at 60 px/s, 1280x720 H.264): reported black for all 20 s.
    const CREDITS: [(f64, f64); 20] = [
        (1.0, 0.0),
        (0.99856, 0.000551),
        (0.99822, 0.000785),
        (0.99591, 0.002898),
        (0.99102, 0.007292),
        (0.98839, 0.009942),
        (0.98540, 0.012708),
        (0.97933, 0.018112),
        (0.97660, 0.021527),
        (0.97479, 0.022412),
        (0.97346, 0.023516),
        (0.97032, 0.026718),
        (0.96805, 0.028958),
        (0.96537, 0.032333),
        (0.96299, 0.035136),
        (0.96225, 0.036069),
        (0.96350, 0.034367),
        (0.96607, 0.031853),
        (0.96657, 0.031376),
        (0.96704, 0.030779),
    ];

    #[test]
    fn scrolling_credits_over_black_are_not_black() {
        let frames: Vec<FrameStats> = (CREDITS.iter())
            .flat_map(|&(dark, changed)| std::iter::repeat_n(moving(dark, changed), 25))
            .collect();
        assert!(run_frames(&frames).is_empty());
    }

    #[test]
    fn black_after_a_cut_starts_on_its_first_frame_and_a_static_logo_stays_black() {
        // Moving picture, then black with a static logo (99% dark, nothing changes): the cut
        // changes most pixels, yet the first black frame counts.
        let mut frames = vec![moving(0.2, 0.3); 50];
        frames.push(moving(0.99, 0.6));
        frames.extend(vec![moving(0.99, 0.0); 74]);
        frames.extend(vec![moving(0.2, 0.6); 25]);
        let out = run_frames(&frames);
        assert_eq!(out.len(), 2, "{out:?}");
        let Transition::Started { start, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert!((start.media - 2.0).abs() < 1e-9, "{out:?}");
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
