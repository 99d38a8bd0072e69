//! Frozen picture: consecutive frames that differ only by encoder noise.
//!
//! A pixel changed when its luma moved by more than `noise_threshold`; a frame is frozen when at
//! most `max_changed_ratio` of its pixels changed. Counting pixels rather than averaging the
//! difference keeps a small moving element (a ticker, a clock) from being averaged away, while
//! the per-pixel threshold absorbs the low-amplitude noise of re-encoded static pictures.
//!
//! Once a freeze is under way (or about to be), one frame that changes a little is a coding
//! refresh of the still (an I-frame of a re-encoded freeze), not motion: motion changes at least
//! two frames within `clear_duration`. Frames are held for `clear_duration` so that each one is
//! judged knowing the frames after it, and the freeze ends at the first frame of the motion,
//! however that motion goes on (animation on twos and a talking head leave frames unchanged
//! in between).

use std::collections::VecDeque;

use crate::config::FreezeConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

/// Share of changed pixels up to which a lone changed frame inside a freeze can be a coding
/// refresh; a cut or a moving picture changes more.
const MAX_REFRESH_RATIO: f64 = 0.01;

#[derive(Debug)]
struct Held {
    at: Sample,
    changed: f64,
    masked: bool,
}

#[derive(Debug)]
pub struct FreezeDetector {
    config: FreezeConfig,
    held: VecDeque<Held>,
    /// Media time of the last judged frame that changed more than `clear_changed_ratio`.
    last_change: Option<f64>,
    /// Frames up to this media time are part of motion that ended a freeze.
    motion_until: f64,
    /// Keyframes only: each frame is judged at once against the one before, and a freeze is
    /// dated from that earlier frame, whose picture the still one repeats.
    sparse: bool,
    previous: Option<Sample>,
    pub(super) tracker: DefectTracker,
}

impl FreezeDetector {
    pub fn new(config: FreezeConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Freeze, config.timing());
        Self {
            config,
            held: VecDeque::new(),
            last_change: None,
            motion_until: f64::NEG_INFINITY,
            sparse: false,
            previous: None,
            tracker,
        }
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
        if self.sparse {
            self.judge_sparse(at, stats.changed_ratio(), masked, out);
            return;
        }
        self.held.push_back(Held {
            at,
            changed: stats.changed_ratio(),
            masked,
        });
        while let Some(first) = self.held.front()
            && at.media - first.at.media > self.config.clear_duration
        {
            if let Some(frame) = self.held.pop_front() {
                self.judge(frame, out);
            }
        }
    }

    /// Switches between every frame (`false`) and keyframes only (`true`), judging the frames
    /// held so far first.
    pub fn set_sparse(&mut self, sparse: bool, out: &mut Vec<Transition>) {
        while let Some(frame) = self.held.pop_front() {
            self.judge(frame, out);
        }
        self.sparse = sparse;
        self.previous = None;
    }

    /// A keyframe: frozen when it repeats the keyframe before (within the clearing threshold
    /// while a freeze is under way).
    fn judge_sparse(&mut self, at: Sample, changed: f64, masked: bool, out: &mut Vec<Transition>) {
        let limit = if self.tracker.engaged() {
            self.config.clear_changed_ratio
        } else {
            self.config.max_changed_ratio
        };
        let frozen = !masked && changed <= limit;
        let since = self.previous.replace(at).unwrap_or(at);
        out.extend(self.tracker.update_since(at, since, frozen, changed));
    }

    /// Judges the frames still held (end of stream), then ends any freeze.
    pub fn finish(&mut self, at: Sample, out: &mut Vec<Transition>) {
        while let Some(frame) = self.held.pop_front() {
            self.judge(frame, out);
        }
        out.extend(self.tracker.finish(at));
    }

    fn judge(&mut self, frame: Held, out: &mut Vec<Transition>) {
        let media = frame.at.media;
        let frozen = !frame.masked && self.still(&frame);
        if frame.changed > self.config.clear_changed_ratio {
            self.last_change = Some(media);
        }
        out.extend(self.tracker.update(frame.at, frozen, frame.changed));
    }

    /// Whether the frame shows a still picture; notes the motion that ends a freeze.
    fn still(&mut self, frame: &Held) -> bool {
        // Active covers a freeze that is ending, which `engaged` does not.
        let reported = self.tracker.active();
        if !self.tracker.engaged() && !reported {
            return frame.changed <= self.config.max_changed_ratio;
        }
        let media = frame.at.media;
        if frame.changed <= self.config.clear_changed_ratio {
            return !(reported && media <= self.motion_until);
        }
        let window = self.config.clear_duration;
        let changed_before = self.last_change.is_some_and(|t| media - t <= window);
        let changed_after = self
            .held
            .iter()
            .any(|h| h.changed > self.config.clear_changed_ratio);
        if frame.changed <= MAX_REFRESH_RATIO && !changed_before && !changed_after {
            return true;
        }
        self.motion_until = media + window;
        false
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

    /// Freeze events of 25 fps frames with `changed(i)` pixels of 1,000,000.
    fn freezes(frames: usize, changed: impl Fn(usize) -> u64) -> Vec<(f64, f64)> {
        let mut d = FreezeDetector::new(FreezeConfig::default());
        let mut out = Vec::new();
        for i in 0..frames {
            d.observe(
                Sample::at(i as f64 / 25.0),
                &stats(changed(i)),
                false,
                &mut out,
            );
        }
        d.finish(Sample::at(frames as f64 / 25.0), &mut out);
        crate::detect::tracker::ended_spans(&out)
    }

    #[test]
    fn a_coding_refresh_early_in_a_lossy_freeze_does_not_delay_it() {
        // Credits frozen from 26 s, re-encoded: the I-frame at 26.48 s changes 0.34 % of the
        // pixels. The freeze started at 26.52 s before.
        let found = freezes(900, |i| match i {
            662 => 3_400,
            650..725 => 0,
            _ => 30_000,
        });
        assert_eq!(found, vec![(26.0, 29.0)]);
    }

    #[test]
    fn animation_on_twos_after_a_freeze_ends_it_at_its_first_frame() {
        // A cartoon frozen from 8 s to 11 s, then drawn on twos: every other frame repeats.
        // Before, the freeze never ended: no 0.2 s without a repeated frame.
        let found = freezes(900, |i| match i {
            200..275 => 0,
            _ if i % 2 == 0 => 0,
            _ => 15_000,
        });
        assert_eq!(found, vec![(8.0, 11.0)]);
    }

    #[test]
    fn a_talking_head_after_a_freeze_ends_it_at_its_first_frame() {
        // Motion in about half the frames, irregularly, from 11 s.
        let head = |i: usize| (i * 7 + i / 3) % 4 < 2;
        let found = freezes(900, |i| match i {
            200..275 => 0,
            199 | 275 => 20_000,
            _ if head(i) => 2_000,
            _ => 0,
        });
        assert_eq!(found, vec![(8.0, 11.0)]);
    }
}
