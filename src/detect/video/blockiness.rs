//! Blockiness: macroblocking and block corruption.
//!
//! Blocking shows as luma steps on the 8x8 coding grid with flat pixels on both sides. Content
//! has such steps too, at the grid and off it alike, so two statistics of them are compared
//! with the stream's own normal values (some blocking is normal for a given channel and
//! encoder): the rate of such steps on the grid, and their share on the grid against control
//! positions inside the blocks ([`FrameStats::blockiness`]). A frame is blocky when both rise:
//! the share alone also rises when blur removes the steps inside blocks, the rate alone when a
//! busier scene comes on. The share of one frame is noisy, so the onset (until the defect is
//! reported) is judged on its mean over `smoothing` seconds; the end on the frame's own share,
//! so that it is not late.
//!
//! Corruption that the decoder conceals well (damaged macroblocks replaced by their neighbours)
//! barely moves either, but the decoder reports it. Damage spreads through every frame
//! predicted from a damaged one, so it lasts from the first frame with a decoder error until
//! the next keyframe after the last error (at most `damage_max_hold` seconds); in a stream
//! whose keyframes are not known (intra refresh), `damage_hold` seconds after the last error.

use crate::config::BlockinessConfig;
use crate::detect::baseline::Baseline;
use crate::detect::video::Decoded;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct BlockinessDetector {
    config: BlockinessConfig,
    smoothed: Option<(f64, f64)>,
    damage: Damage,
    normal_share: Baseline,
    normal_rate: Baseline,
    pub(super) tracker: DefectTracker,
}

impl BlockinessDetector {
    pub fn new(config: BlockinessConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Blockiness, config.timing());
        let baseline = || {
            Baseline::new(
                config.baseline_window,
                config.baseline_warmup,
                config.baseline_relearn,
            )
        };
        Self {
            normal_share: baseline(),
            normal_rate: baseline(),
            config,
            smoothed: None,
            damage: Damage::default(),
            tracker,
        }
    }

    /// The smoothed share (the detector's statistic), once a frame had enough edges.
    pub fn smoothed(&self) -> Option<f64> {
        self.smoothed.map(|(_, v)| v)
    }

    /// `decoded`: the decoder's errors since the previous frame and whether this frame is a
    /// keyframe. `masked` frames (black, flat, bars) are other detectors' and do not move the
    /// baseline.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        decoded: Decoded,
        masked: bool,
        out: &mut Vec<Transition>,
    ) {
        let damaged = self.damage.update(at.media, decoded, &self.config);
        if !self.config.enabled || masked {
            return;
        }
        let Some(share) = stats.blockiness() else {
            if damaged {
                out.extend(
                    self.tracker
                        .update(at, true, self.smoothed().unwrap_or(0.5)),
                );
            }
            return;
        };
        let rate = stats.block_grid_rate();
        let smoothed = match self.smoothed {
            None => share,
            Some((last, v)) => {
                let dt = (at.media - last).clamp(0.0, 1.0);
                v + (1.0 - (-dt / self.config.smoothing.max(1e-3)).exp()) * (share - v)
            }
        };
        self.smoothed = Some((at.media, smoothed));
        let engaged = self.tracker.engaged();
        let c = &self.config;
        let rise = if engaged {
            c.clear_increase
        } else {
            c.min_increase
        };
        // Until the defect is reported one clean B-frame among blocky ones would restart its
        // minimum duration, so the onset is judged on the smoothed share; once it is
        // reported, the frame's own share ends it on time (the tracker bridges lone frames).
        let judged = if engaged && self.tracker.active() {
            share
        } else {
            smoothed
        };
        let mut picture_blocky = self.picture_blocky(judged, rise, rate);
        if !picture_blocky && !damaged && !engaged {
            self.normal_share.update(at.media, smoothed);
            self.normal_rate.update(at.media, rate);
        } else if !damaged {
            // Decoder damage is never relearnt as normal; a lasting change of the picture is.
            let share_relearnt = self.normal_share.reject(at.media, smoothed);
            if self.normal_rate.reject(at.media, rate) || share_relearnt {
                picture_blocky = self.picture_blocky(judged, rise, rate);
            }
        }
        out.extend(self.tracker.update(at, picture_blocky || damaged, smoothed));
    }

    /// Whether both the grid share (`judged`) and the grid rate rose above their normal.
    fn picture_blocky(&self, judged: f64, rise: f64, rate: f64) -> bool {
        match (self.normal_share.get(), self.normal_rate.get()) {
            (Some(normal_share), Some(normal_rate)) => {
                judged >= normal_share + rise && rate >= self.config.min_rate_ratio * normal_rate
            }
            _ => false,
        }
    }

    /// The picture's format or timeline changed: its normal blocking is learnt anew.
    pub fn relearn(&mut self) {
        self.normal_share.reset();
        self.normal_rate.reset();
        self.smoothed = None;
    }
}

/// Damage from decoder errors, held until the picture is refreshed.
#[derive(Debug, Default)]
struct Damage {
    last_error: Option<f64>,
    /// Keyframes seen in the stream: from the second on, they are known to come.
    keyframes: u32,
}

impl Damage {
    /// Whether the frame at `media` shows damage.
    fn update(&mut self, media: f64, decoded: Decoded, config: &BlockinessConfig) -> bool {
        if decoded.keyframe {
            self.keyframes = self.keyframes.saturating_add(1);
        }
        if config.damage_hold <= 0.0 {
            return false;
        }
        if decoded.errors > 0 {
            self.last_error = Some(media);
            return true;
        }
        let Some(last) = self.last_error else {
            return false;
        };
        let held = if self.keyframes >= 2 {
            !decoded.keyframe && media - last <= config.damage_max_hold
        } else {
            media - last <= config.damage_hold
        };
        if !held || media < last {
            self.last_error = None;
        }
        held && media >= last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stats of a 640x360 frame whose block-edge steps are `share` on the grid, with step
    /// rates per position tested adding up to `total`.
    fn frame_with(share: f64, total: f64) -> FrameStats {
        let (grid, control) = crate::stats::block_test_points(640, 360, 1);
        let (g, c) = (total * share, total * (1.0 - share));
        FrameStats {
            width: 640,
            height: 360,
            pixels: 640 * 360,
            block_hits: (g * grid as f64).round() as u64,
            block_control: (c * control as f64).round() as u64,
            ..Default::default()
        }
    }

    /// A frame whose steps are `share` on the grid: as blocking adds steps on the grid, the
    /// rates rise with the share.
    fn frame(share: f64) -> FrameStats {
        frame_with(share, 0.06 / (1.0 - share.min(0.9)) * 0.4)
    }

    fn run(series: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        let mut d = BlockinessDetector::new(BlockinessConfig::default());
        let mut out = Vec::new();
        for i in 0..500 {
            d.observe(
                Sample::at(i as f64 * 0.04),
                &frame(series(i)),
                Decoded::default(),
                false,
                &mut out,
            );
        }
        let mut found = Vec::new();
        for t in out {
            if let Transition::Ended { start, end, .. } = t {
                found.push((start.media, end.media));
            }
        }
        found
    }

    /// Frame-to-frame jitter like that of real content (±0.07 around the level). Smoothing
    /// delays both edges by a few frames, within the ±0.5 s asked of blockiness.
    fn jitter(i: usize) -> f64 {
        [0.0, 0.07, -0.05, 0.03, -0.07, 0.05][i % 6]
    }

    #[test]
    fn b_frames_without_grid_dominance_among_blocky_ones_do_not_delay_the_onset() {
        // MPEG-2 at its coarsest quantiser over scrolling credits, 8-12 s: every seventh frame
        // (a B-frame) has steps everywhere, as many inside the blocks as on the grid. Judged
        // frame by frame, each one restarted the minimum duration: found 0.9 s late.
        let mut d = BlockinessDetector::new(BlockinessConfig::default());
        let mut out = Vec::new();
        for i in 0..500 {
            let stats = match i {
                200..300 if i % 7 == 3 => frame_with(0.5, 0.1),
                200..300 => frame(0.72),
                _ => frame(0.51),
            };
            let at = Sample::at(i as f64 * 0.04);
            d.observe(at, &stats, Decoded::default(), false, &mut out);
        }
        let found = crate::detect::tracker::ended_spans(&out);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0].0 - 8.0).abs() < 0.2, "{found:?}");
        assert!((found[0].1 - 12.0).abs() < 0.4, "{found:?}");
    }

    #[test]
    fn a_rise_above_the_normal_share_is_blocking() {
        let found = run(|i| if (200..300).contains(&i) { 0.82 } else { 0.6 } + jitter(i));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            (found[0].0 - 8.0).abs() < 0.4 && (found[0].1 - 12.0).abs() < 0.4,
            "{found:?}"
        );
    }

    #[test]
    fn a_higher_share_without_more_steps_on_the_grid_is_not_blocking() {
        // Blur: the steps inside blocks vanish, those on the grid stay as they were.
        let mut d = BlockinessDetector::new(BlockinessConfig::default());
        let mut out = Vec::new();
        for i in 0..500 {
            let s = if (200..300).contains(&i) {
                frame_with(0.8, 0.03 / 0.8 * 0.6)
            } else {
                frame_with(0.6, 0.05)
            };
            d.observe(
                Sample::at(f64::from(i) * 0.04),
                &s,
                Decoded::default(),
                false,
                &mut out,
            );
        }
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_channel_that_is_always_a_little_blocky_is_normal() {
        assert!(run(|i| 0.75 + jitter(i)).is_empty());
        assert!(run(|i| 0.45 + jitter(i) / 2.0).is_empty());
    }

    /// Runs 20 s of a normal picture at 25 fps with `errors(i)` decoder errors on frame `i`
    /// and a keyframe every `gop` frames (0: none known); returns the (start, end) of events.
    fn damage_events(errors: impl Fn(usize) -> u64, gop: usize) -> Vec<(f64, f64)> {
        let mut d = BlockinessDetector::new(BlockinessConfig::default());
        let mut out = Vec::new();
        for i in 0..500 {
            let decoded = Decoded {
                errors: errors(i),
                keyframe: gop > 0 && i % gop == 0,
            };
            d.observe(
                Sample::at(i as f64 * 0.04),
                &frame(0.6),
                decoded,
                false,
                &mut out,
            );
        }
        crate::detect::tracker::ended_spans(&out)
    }

    #[test]
    fn decoder_errors_are_blockiness_even_when_the_picture_hides_them() {
        // Errors in every other frame from 8 s to 12 s; the picture stays normal; no keyframes
        // known (intra refresh): the end waits out damage_hold after the last error.
        let ended = damage_events(|i| u64::from((200..300).contains(&i) && i % 2 == 0), 0);
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert!((ended[0].0 - 8.0).abs() < 0.05, "{ended:?}");
        assert!((ended[0].1 - 12.0).abs() < 0.45, "{ended:?}");
    }

    #[test]
    fn damage_lasts_until_the_keyframe_after_the_last_error() {
        // The damage report: errors from 8 s to 11 s (decoded frames conceal, the picture
        // stays wrong), keyframes every 2 s (8, 10, 12...): the event ends at 12 s exactly,
        // the keyframe after the last error, not 0.4 s after it.
        let ended = damage_events(|i| u64::from((200..275).contains(&i) && i % 3 == 0), 50);
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert!((ended[0].0 - 8.0).abs() < 0.05, "{ended:?}");
        assert!((ended[0].1 - 12.0).abs() < 0.05, "{ended:?}");
    }

    #[test]
    fn flat_frames_have_no_share() {
        assert_eq!(FrameStats::default().blockiness(), None);
    }
}
