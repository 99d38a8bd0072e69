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
        let mut relative = self.relative_detail(stats);
        let mut blurred = self.is_blurred(relative);
        if !blurred && !self.tracker.engaged() {
            self.baseline.update(at.media, stats.detail());
        } else if self.baseline.reject(at.media, stats.detail()) {
            relative = self.relative_detail(stats);
            blurred = self.is_blurred(relative);
        }
        out.extend(self.tracker.update(at, blurred, relative.unwrap_or(1.0)));
    }

    fn is_blurred(&self, relative: Option<f64>) -> bool {
        let limit = if self.tracker.engaged() {
            self.config.clear_detail_ratio
        } else {
            self.config.max_detail_ratio
        };
        relative.is_some_and(|r| r < limit)
    }

    /// The picture's format or timeline changed: its normal detail is learnt anew.
    pub fn relearn(&mut self) {
        self.baseline.reset();
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

    /// Feeds `series(i)` (None: a black frame, masked) at 25 fps; returns (start, end) pairs.
    fn events_of(series: impl Fn(usize) -> Option<f64>, frames: usize) -> Vec<(f64, f64)> {
        let mut d = BlurDetector::new(BlurConfig::default());
        let mut out = Vec::new();
        for i in 0..frames {
            let (value, masked) = series(i).map_or((0.0, true), |v| (v, false));
            d.observe(
                Sample::at(i as f64 * 0.04),
                &detail(value),
                masked,
                &mut out,
            );
        }
        d.tracker
            .finish(Sample::at(frames as f64 * 0.04))
            .into_iter()
            .for_each(|t| out.push(t));
        crate::detect::tracker::ended_spans(&out)
    }

    #[test]
    fn one_detailed_frame_after_black_does_not_make_the_rest_blurred() {
        // The report's sequence: detail ~4 for 10 s, black 10-12 s, one frame of detail 40 (a
        // noisy cut) at 12 s, then detail ~4 to 40 s. Before: blur from 12 s to the end.
        let found = events_of(
            |i| match i {
                250..300 => None,
                300 => Some(40.0),
                _ => Some(4.0 + (i % 5) as f64 * 0.1),
            },
            1000,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_field_split_first_frame_does_not_set_the_normal() {
        // 1080i MPEG-2: the first frame after black shows the fields apart (three times the
        // detail); before, blur from 12.04 s to 23.96 s.
        let found = events_of(
            |i| match i {
                0..300 => None,
                300 => Some(30.0),
                _ => Some(10.0 + (i % 4) as f64 * 0.2),
            },
            600,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_lasting_change_of_content_stops_being_blur_after_the_relearn_time() {
        // Sport (detail 8) then a soft cartoon (detail 2) for good from 20 s: reported as blur
        // for baseline_relearn seconds, then normal.
        let relearn = BlurConfig::default().baseline_relearn;
        let frames = ((20.0 + relearn + 60.0) / 0.04) as usize;
        let found = events_of(|i| Some(if i < 500 { 8.0 } else { 2.0 }), frames);
        assert_eq!(found.len(), 1, "{found:?}");
        let (start, end) = found[0];
        assert!((start - 20.0).abs() < 0.05, "{found:?}");
        assert!((end - (20.0 + relearn)).abs() < 1.0, "{found:?}");
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
