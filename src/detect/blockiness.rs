//! Blockiness: macroblocking and block corruption, from [`FrameStats::blockiness`], the share of
//! block-edge shaped steps that lie on the 8x8 coding grid rather than inside blocks.
//!
//! Two departures are defects: a rise well above the stream's own normal share (blocking: the
//! grid shows; some is normal for a given channel and encoder, hence the baseline), and a fall
//! below one half, which content alone cannot produce since it does not know where the grid is
//! (corruption: concealment smears garbage across blocks). The share of one frame is noisy,
//! so it is smoothed over a few frames (an exponential mean over `smoothing` media seconds).
//!
//! Corruption that the decoder conceals well (damaged macroblocks replaced by their neighbours)
//! barely moves the share, but the decoder reports it: frames within `damage_hold` seconds of
//! a decoder error count as blocky too.

use crate::config::BlockinessConfig;
use crate::detect::baseline::Baseline;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct BlockinessDetector {
    config: BlockinessConfig,
    smoothed: Option<(f64, f64)>,
    last_damage: Option<f64>,
    baseline: Baseline,
    pub(super) tracker: DefectTracker,
}

impl BlockinessDetector {
    pub fn new(config: BlockinessConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Blockiness, config.timing());
        let baseline = Baseline::new(config.baseline_window, config.baseline_warmup);
        Self {
            config,
            smoothed: None,
            last_damage: None,
            baseline,
            tracker,
        }
    }

    /// The smoothed share (the detector's statistic), once a frame had enough edges.
    pub fn smoothed(&self) -> Option<f64> {
        self.smoothed.map(|(_, v)| v)
    }

    /// `decode_errors`: errors the decoder reported since the previous frame. `masked` frames
    /// (black, flat, bars) are other detectors' and do not move the baseline.
    pub fn observe(
        &mut self,
        at: Sample,
        stats: &FrameStats,
        decode_errors: u64,
        masked: bool,
        out: &mut Vec<Transition>,
    ) {
        if decode_errors > 0 {
            self.last_damage = Some(at.media);
        }
        if !self.config.enabled || masked {
            return;
        }
        let damaged = self
            .last_damage
            .is_some_and(|t| at.media >= t && at.media - t <= self.config.damage_hold);
        let Some(share) = stats.blockiness() else {
            if damaged {
                out.extend(
                    self.tracker
                        .update(at, true, self.smoothed().unwrap_or(0.5)),
                );
            }
            return;
        };
        let value = match self.smoothed {
            None => share,
            Some((last, v)) => {
                let dt = (at.media - last).clamp(0.0, 1.0);
                v + (1.0 - (-dt / self.config.smoothing.max(1e-3)).exp()) * (share - v)
            }
        };
        self.smoothed = Some((at.media, value));
        let engaged = self.tracker.engaged();
        let c = &self.config;
        let (rise, low) = if engaged {
            (c.clear_increase, c.clear_low_share)
        } else {
            (c.min_increase, c.max_low_share)
        };
        let picture_blocky = self
            .baseline
            .get()
            .is_some_and(|normal| value >= normal + rise || value <= low);
        let blocky = picture_blocky || damaged;
        if !blocky && !engaged {
            self.baseline.update(at.media, value);
        }
        out.extend(self.tracker.update(at, blocky, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stats of a 640x360 frame whose block-edge steps are `share` on the grid.
    fn frame(share: f64) -> FrameStats {
        let (grid, control) = crate::stats::block_test_points(640, 360);
        // Rates per position tested: share = g / (g + c) with g + c = 0.06.
        let (g, c) = (0.06 * share, 0.06 * (1.0 - share));
        FrameStats {
            width: 640,
            height: 360,
            pixels: 640 * 360,
            block_hits: (g * grid as f64).round() as u64,
            block_control: (c * control as f64).round() as u64,
            ..Default::default()
        }
    }

    fn run(series: impl Fn(usize) -> f64) -> Vec<(f64, f64)> {
        let mut d = BlockinessDetector::new(BlockinessConfig::default());
        let mut out = Vec::new();
        for i in 0..500 {
            d.observe(
                Sample::at(i as f64 * 0.04),
                &frame(series(i)),
                0,
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
    fn a_rise_above_the_normal_share_is_blocking() {
        let found = run(|i| if (200..300).contains(&i) { 0.82 } else { 0.6 } + jitter(i));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            (found[0].0 - 8.0).abs() < 0.4 && (found[0].1 - 12.0).abs() < 0.4,
            "{found:?}"
        );
    }

    #[test]
    fn a_share_below_one_half_is_corruption() {
        let found = run(|i| if (200..300).contains(&i) { 0.4 } else { 0.6 } + jitter(i));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            (found[0].0 - 8.0).abs() < 0.4 && (found[0].1 - 12.0).abs() < 0.4,
            "{found:?}"
        );
    }

    #[test]
    fn a_channel_that_is_always_a_little_blocky_is_normal() {
        assert!(run(|i| 0.75 + jitter(i)).is_empty());
        assert!(run(|i| 0.5 + jitter(i) / 2.0).is_empty());
    }

    #[test]
    fn decoder_errors_are_blockiness_even_when_the_picture_hides_them() {
        let mut d = BlockinessDetector::new(BlockinessConfig::default());
        let mut out = Vec::new();
        for i in 0..500 {
            // Errors in every other frame from 8 s to 12 s; the picture stays normal.
            let errors = u64::from((200..300).contains(&i) && i % 2 == 0);
            d.observe(
                Sample::at(f64::from(i) * 0.04),
                &frame(0.6),
                errors,
                false,
                &mut out,
            );
        }
        let ended: Vec<(f64, f64)> = out
            .iter()
            .filter_map(|t| match t {
                Transition::Ended { start, end, .. } => Some((start.media, end.media)),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert!((ended[0].0 - 8.0).abs() < 0.05, "{ended:?}");
        assert!((ended[0].1 - 12.0).abs() < 0.3, "{ended:?}");
    }

    #[test]
    fn flat_frames_have_no_share() {
        assert_eq!(FrameStats::default().blockiness(), None);
    }
}
