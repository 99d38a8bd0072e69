//! Blur: loss of detail against the stream's own normal level. How much detail is normal
//! depends on the channel (a cartoon has less than sport) and on the scene (a wide shot of sky
//! has less than a crowd), so the detector compares two statistics with their recent normal
//! over normal frames: the detail (mean luma step between neighbours), and the sharpness (the
//! share of that detail in strong steps). A blurred picture loses both; a plainer scene loses
//! detail but keeps its edges as sharp as before, so both must fall.

use crate::config::BlurConfig;
use crate::detect::baseline::Baseline;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

#[derive(Debug)]
pub struct BlurDetector {
    config: BlurConfig,
    detail: Baseline,
    sharpness: Baseline,
    pub(super) tracker: DefectTracker,
}

/// A frame against the stream's normal (1 = normal).
#[derive(Clone, Copy, Debug)]
struct Relative {
    detail: f64,
    sharpness: f64,
}

impl BlurDetector {
    pub fn new(config: BlurConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Blur, config.timing());
        let baseline = || {
            Baseline::new(
                config.baseline_window,
                config.baseline_warmup,
                config.baseline_relearn,
            )
        };
        Self {
            detail: baseline(),
            sharpness: baseline(),
            config,
            tracker,
        }
    }

    /// Detail relative to the baseline (1 = normal), once the baseline exists.
    pub fn relative_detail(&self, stats: &FrameStats) -> Option<f64> {
        relative_to(&self.detail, stats.detail())
    }

    fn relative(&self, stats: &FrameStats) -> Option<Relative> {
        Some(Relative {
            detail: self.relative_detail(stats)?,
            // A stream with no strong steps at all has no sharpness to lose: detail decides.
            sharpness: relative_to(&self.sharpness, stats.sharpness()).unwrap_or(0.0),
        })
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
        let mut relative = self.relative(stats);
        let mut blurred = self.is_blurred(relative);
        if !blurred && !self.tracker.engaged() {
            self.detail.update(at.media, stats.detail());
            self.sharpness.update(at.media, stats.sharpness());
        } else {
            // Both learn the lasting level together, so they adopt it at the same frame.
            let adopted = self.detail.reject(at.media, stats.detail());
            self.sharpness.reject(at.media, stats.sharpness());
            if adopted {
                relative = self.relative(stats);
                blurred = self.is_blurred(relative);
            }
        }
        let value = relative.map_or(1.0, |r| r.detail);
        out.extend(self.tracker.update(at, blurred, value));
    }

    fn is_blurred(&self, relative: Option<Relative>) -> bool {
        let (detail_limit, sharpness_limit) = if self.tracker.engaged() {
            (
                self.config.clear_detail_ratio,
                self.config.clear_sharpness_ratio,
            )
        } else {
            (
                self.config.max_detail_ratio,
                self.config.max_sharpness_ratio,
            )
        };
        relative.is_some_and(|r| r.detail < detail_limit && r.sharpness < sharpness_limit)
    }

    /// The picture's format or timeline changed: its normal detail is learnt anew.
    pub fn relearn(&mut self) {
        self.detail.reset();
        self.sharpness.reset();
    }
}

/// `value` against the baseline's level, once the level exists and is above 0.
fn relative_to(baseline: &Baseline, value: f64) -> Option<f64> {
    let normal = baseline.get()?;
    (normal > 0.0).then(|| value / normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 100x100 picture of `detail` whose strong steps carry `sharpness` of it.
    fn picture(detail: f64, sharpness: f64) -> FrameStats {
        let steps = (detail * 5_000.0) as u64;
        let strong = (detail * 5_000.0 * sharpness / 12.0) as u64;
        FrameStats {
            width: 100,
            height: 100,
            pixels: 10_000,
            grad_h_sum: steps,
            grad_v_sum: steps,
            edges_h: strong,
            edges_v: strong,
            ..Default::default()
        }
    }

    /// Edges as sharp as normal content's.
    fn sharp(detail: f64) -> FrameStats {
        picture(detail, 0.5)
    }

    /// Edges spread over small steps.
    fn soft(detail: f64) -> FrameStats {
        picture(detail, 0.1)
    }

    fn run(series: impl Fn(usize) -> FrameStats, frames: usize) -> Vec<Transition> {
        let mut d = BlurDetector::new(BlurConfig::default());
        let mut out = Vec::new();
        for i in 0..frames {
            d.observe(Sample::at(i as f64 * 0.04), &series(i), false, &mut out);
        }
        out.retain(|t| !matches!(t, Transition::Progress { .. }));
        out
    }

    #[test]
    fn a_drop_in_detail_is_blur_and_its_return_ends_it() {
        // Normal detail 8 (with a little jitter), blurred to 2 from 10 s to 14 s.
        let out = run(
            |i| {
                if (250..350).contains(&i) {
                    soft(2.0)
                } else {
                    sharp(8.0 + (i % 3) as f64 * 0.3)
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
    fn events_of(series: impl Fn(usize) -> Option<FrameStats>, frames: usize) -> Vec<(f64, f64)> {
        let mut d = BlurDetector::new(BlurConfig::default());
        let mut out = Vec::new();
        for i in 0..frames {
            let (stats, masked) = series(i).map_or((sharp(0.0), true), |s| (s, false));
            d.observe(Sample::at(i as f64 * 0.04), &stats, masked, &mut out);
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
                300 => Some(sharp(40.0)),
                _ => Some(sharp(4.0 + (i % 5) as f64 * 0.1)),
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
                300 => Some(sharp(30.0)),
                _ => Some(sharp(10.0 + (i % 4) as f64 * 0.2)),
            },
            600,
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn a_lasting_change_to_soft_content_stops_being_blur_after_the_relearn_time() {
        // Sport (detail 8) then an upscaled SD programme (detail 2, soft edges) for good from
        // 20 s: reported as blur for baseline_relearn seconds, then normal.
        let relearn = BlurConfig::default().baseline_relearn;
        let frames = ((20.0 + relearn + 60.0) / 0.04) as usize;
        let found = events_of(
            |i| Some(if i < 500 { sharp(8.0) } else { soft(2.0) }),
            frames,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let (start, end) = found[0];
        assert!((start - 20.0).abs() < 0.05, "{found:?}");
        assert!((end - (20.0 + relearn)).abs() < 1.0, "{found:?}");
    }

    #[test]
    fn content_that_is_always_soft_is_normal() {
        assert!(run(|_| soft(1.5), 500).is_empty());
    }

    #[test]
    fn no_verdict_before_the_baseline_exists() {
        // Blurred from the first frame: nothing to compare with, so nothing is reported.
        assert!(run(|i| if i < 100 { soft(2.0) } else { sharp(8.0) }, 300).is_empty());
    }

    #[test]
    fn a_plainer_scene_with_sharp_edges_is_not_blur() {
        // The slideshow: a detailed slide (detail 11), then plainer ones (detail 3 to 4.5)
        // for 40 s, all sharp. Detail alone called that 40 s of blur.
        let slides = [11.0, 3.1, 4.2, 4.5, 3.6];
        let found = events_of(|i| Some(sharp(slides[(i / 250) % 5])), 150 * 25);
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn blur_on_a_plainer_scene_is_blur() {
        // The same slides, the second one blurred from 12 s to 15 s.
        let found = events_of(
            |i| match i {
                300..375 => Some(soft(0.45)),
                _ => Some(sharp([11.0, 3.1, 4.2][(i / 250) % 3])),
            },
            30 * 25,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0].0 - 12.0).abs() < 1e-6, "{found:?}");
        assert!((found[0].1 - 15.0).abs() < 1e-6, "{found:?}");
    }

    #[test]
    fn sharpness_is_the_share_of_detail_in_strong_steps() {
        use crate::frame::VideoFrame;
        use crate::stats::StatParams;
        use crate::stats::cpu::frame_stats_cpu;
        use std::time::{Duration, Instant};
        // 64x16: a step of 120 at x = 32, then the same step blurred into a ramp of 16 pixels.
        let measure = |luma: &dyn Fn(u32) -> u8| {
            let pixels: Vec<u8> = (0..16).flat_map(|_| (0..64).map(luma)).collect();
            let frame = VideoFrame::from_plane(64, 16, &pixels, 64, Duration::ZERO, Instant::now())
                .unwrap();
            let params = StatParams {
                dark_threshold: 16,
                noise_threshold: 2,
            };
            frame_stats_cpu(&frame, None, params)
        };
        let step = measure(&|x| if x < 32 { 60 } else { 180 });
        let ramp = measure(&|x| (60 + 15 * x.saturating_sub(28).min(8)) as u8);
        assert!(
            (step.sharpness() - 0.1).abs() < 1e-9,
            "{}",
            step.sharpness()
        );
        assert_eq!(
            ramp.sharpness(),
            (8 * 16 * 12) as f64 / (8 * 16 * 15) as f64
        );
        // A plainer picture, the step at half the height: less detail, as sharp.
        let plain = measure(&|x| if x < 32 { 60 } else { 120 });
        assert!(plain.detail() < step.detail());
        assert_eq!(plain.sharpness(), step.sharpness() * 2.0);
    }
}
