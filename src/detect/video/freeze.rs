//! Frozen picture: consecutive frames that differ only by encoder noise.
//!
//! A pixel changed when its luma moved by more than `noise_threshold`; a frame is frozen when at
//! most `max_changed_ratio` of its pixels changed. Counting pixels rather than averaging the
//! difference keeps a small moving element (a ticker, a clock) from being averaged away, while
//! the per-pixel threshold absorbs the low-amplitude noise of re-encoded static pictures.

use crate::config::FreezeConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct FreezeDetector {
    config: FreezeConfig,
    pub(super) tracker: DefectTracker,
}

impl FreezeDetector {
    pub fn new(config: FreezeConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Freeze, config.timing());
        Self { config, tracker }
    }

    /// `masked` frames (black ones) count as not frozen: the black detector reports them.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        masked: bool,
        out: &mut Vec<Transition>,
    ) {
        if !self.config.enabled || !stats.has_prev {
            return;
        }
        let changed = stats.changed_ratio();
        // Once a freeze is under way, a re-encoded still may flicker in a few more pixels (a
        // coding refresh); motion changes far more.
        let limit = if self.tracker.engaged() {
            self.config.clear_changed_ratio
        } else {
            self.config.max_changed_ratio
        };
        let frozen = !masked && changed <= limit;
        out.extend(self.tracker.update(at, frozen, changed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(changed: u64) -> FrameStats {
        FrameStats {
            pixels: 1_000_000,
            has_prev: true,
            changed_pixels: changed,
            ..Default::default()
        }
    }

    #[test]
    fn repeated_frames_freeze_and_motion_ends_it() {
        let mut d = FreezeDetector::new(FreezeConfig::default());
        let mut out = Vec::new();
        for i in 0..200 {
            let changed = if (50..150).contains(&i) { 20 } else { 50_000 };
            d.observe(
                Sample::at(i as f64 / 25.0),
                &stats(changed),
                false,
                &mut out,
            );
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        let Transition::Ended { start, end, .. } = &out[1] else {
            panic!("{out:?}")
        };
        assert_eq!((start.media, end.media), (2.0, 6.0));
    }

    #[test]
    fn a_coding_refresh_inside_a_freeze_does_not_split_it_but_stutter_motion_does() {
        let run = |pattern: &dyn Fn(usize) -> u64| {
            let mut d = FreezeDetector::new(FreezeConfig::default());
            let mut out = Vec::new();
            for i in 0..200 {
                d.observe(
                    Sample::at(i as f64 / 25.0),
                    &stats(pattern(i)),
                    false,
                    &mut out,
                );
            }
            out.retain(|t| matches!(t, Transition::Ended { .. }));
            out
        };
        // 1,000,000 pixels: a refresh of 350 pixels at 2.4 s inside a freeze from 2 s to 6 s.
        let refreshed = run(&|i| match i {
            60 => 350,
            50..150 => 0,
            _ => 50_000,
        });
        assert_eq!(refreshed.len(), 1, "{refreshed:?}");
        let Transition::Ended { start, .. } = &refreshed[0] else {
            unreachable!()
        };
        assert_eq!(start.media, 2.0);
        // Each picture three times: every third frame moves, so it is no freeze.
        assert!(run(&|i| if i % 3 == 0 { 50_000 } else { 0 }).is_empty());
    }

    #[test]
    fn masked_frames_are_not_frozen() {
        let mut d = FreezeDetector::new(FreezeConfig::default());
        let mut out = Vec::new();
        for i in 0..200 {
            d.observe(Sample::at(i as f64 / 25.0), &stats(0), true, &mut out);
        }
        assert!(out.is_empty());
    }

    #[test]
    fn a_small_moving_element_is_motion() {
        // 0.05 % of the picture changing each frame (a 30x30 box at 1080p moving 1 px/frame
        // changes more than that).
        let mut d = FreezeDetector::new(FreezeConfig::default());
        let mut out = Vec::new();
        for i in 0..200 {
            d.observe(Sample::at(i as f64 / 25.0), &stats(500), false, &mut out);
        }
        assert!(out.is_empty());
    }
}
