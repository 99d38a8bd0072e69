//! Stutter: the picture does not advance smoothly. Two signs, both per frame:
//! - a short run of repeated pictures followed by motion (a source that drops to a lower rate
//!   and repeats frames to fill in); long runs are freezes, the freeze detector's;
//! - a timestamp gap: frames missing, judged against the stream's frame interval: the median
//!   interval of the last seconds, or the declared frame rate where the median agrees with it.
//!   A median, because one short interval (a splice of two files, a field-rate frame) must not
//!   make every normal frame look like a gap; it is learnt anew after a splice that steps back
//!   in time and on a format change.
//!
//! A frame is stuttering while such a sign was seen within `hold` seconds, so a steady pattern
//! (every third frame new) is one defect. Whether a repeated frame belongs to a short run or to
//! a freeze is known only when its run ends, so repeated frames wait (at most
//! `max_repeat_run` of them) before they are judged. A stream whose normal cadence repeats frames (25p
//! content in a 50p stream) is not reported: the detector keeps the stream's normal share of
//! repeats and stays quiet while it is above `max_cadence_share`. The event value is the frame
//! rate during the defect.

use std::collections::VecDeque;

use crate::config::StutterConfig;
use crate::detect::baseline::Baseline;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::stats::FrameStats;

/// Seconds of intervals that give the nominal frame interval: a lasting change of frame rate is
/// reported for about half this long, then becomes the new normal.
const INTERVAL_WINDOW_SECS: f64 = 10.0;
/// Intervals needed before their median is trusted (without a declared frame rate).
const MIN_INTERVALS: usize = 5;
/// New intervals between two computations of the median (a sort of the window).
const MEDIAN_REFRESH: u32 = 8;
/// The declared frame interval is used when the observed median is within this share of it.
const DECLARED_TOLERANCE: f64 = 0.15;
/// Seconds of frames needed before the normal cadence is known and stutter can be judged.
const CADENCE_WARMUP_SECS: f64 = 2.0;
/// Seconds of frames counted for the frame-rate gauge.
const FPS_WINDOW_SECS: f64 = 1.0;

#[derive(Debug)]
pub struct StutterDetector {
    config: StutterConfig,
    last_pts: Option<f64>,
    /// (pts, interval to the previous frame) of the last INTERVAL_WINDOW_SECS.
    intervals: VecDeque<(f64, f64)>,
    /// Median of `intervals` when last computed, and intervals added since.
    median_interval: Option<f64>,
    since_median: u32,
    /// The frame interval the stream's caps declare.
    declared_interval: Option<f64>,
    /// Frame times of the last FPS_WINDOW_SECS.
    recent: VecDeque<f64>,
    /// Repeated frames of the current run, waiting for their verdict: `(sample, gap)`.
    pending: VecDeque<(Sample, bool)>,
    /// The current run of repeats is longer than `max_repeat_run`: a freeze.
    in_freeze: bool,
    last_sign: Option<f64>,
    cadence: Baseline,
    pub(super) tracker: DefectTracker,
}

impl StutterDetector {
    pub fn new(config: StutterConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Stutter, config.timing());
        Self {
            cadence: Baseline::new(config.cadence_window, CADENCE_WARMUP_SECS, 0.0),
            config,
            last_pts: None,
            intervals: VecDeque::new(),
            median_interval: None,
            since_median: 0,
            declared_interval: None,
            recent: VecDeque::new(),
            pending: VecDeque::new(),
            in_freeze: false,
            last_sign: None,
            tracker,
        }
    }

    /// Frames per second of media time over the last second; None before two frames.
    pub fn fps(&self) -> Option<f64> {
        let (first, last) = (self.recent.front()?, self.recent.back()?);
        (last > first).then(|| (self.recent.len() - 1) as f64 / (last - first))
    }

    /// The stream's frame interval: the declared one where the stream keeps to it, otherwise
    /// the median of the recent intervals.
    fn nominal_interval(&self) -> Option<f64> {
        match (self.declared_interval, self.median_interval) {
            (Some(declared), Some(median))
                if (median / declared - 1.0).abs() <= DECLARED_TOLERANCE =>
            {
                Some(declared)
            }
            (_, Some(median)) => Some(median),
            (declared, None) => declared,
        }
    }

    /// The frame rate the stream's caps declare (None or 0: unknown or variable).
    pub fn set_declared_fps(&mut self, fps: Option<f64>) {
        self.declared_interval = fps.filter(|f| f.is_finite() && *f > 0.0).map(|f| 1.0 / f);
    }

    /// A splice back in time or a format change: the frame interval is learnt anew.
    pub fn relearn(&mut self) {
        self.intervals.clear();
        self.median_interval = None;
        self.since_median = 0;
        self.last_pts = None;
    }

    fn note_interval(&mut self, pts: f64, interval: f64) {
        if interval > 1e-4 {
            self.intervals.push_back((pts, interval));
            self.since_median += 1;
        }
        while self
            .intervals
            .front()
            .is_some_and(|&(t, _)| pts - t > INTERVAL_WINDOW_SECS)
        {
            self.intervals.pop_front();
        }
        let due = self.since_median >= MEDIAN_REFRESH || self.median_interval.is_none();
        if due && self.intervals.len() >= MIN_INTERVALS {
            let mut values: Vec<f64> = self.intervals.iter().map(|&(_, d)| d).collect();
            values.sort_by(f64::total_cmp);
            self.median_interval = Some(values[values.len() / 2]);
            self.since_median = 0;
        }
    }

    /// `masked` frames (black, flat, bars) are still pictures by nature: they neither repeat
    /// nor move for this detector.
    pub fn observe(
        &mut self,
        mut at: Sample,
        stats: &FrameStats,
        masked: bool,
        out: &mut Vec<Transition>,
    ) {
        let pts = at.media;
        let mut gap = false;
        if let Some(last) = self.last_pts.replace(pts) {
            let interval = pts - last;
            if let Some(nominal) = self.nominal_interval()
                && interval > self.config.gap_factor * nominal
            {
                gap = true;
                // The stutter began with the first missing frame, not with this one.
                at.media = last + nominal;
            }
            self.note_interval(pts, interval);
        }
        self.recent.push_back(pts);
        while self
            .recent
            .front()
            .is_some_and(|&t| pts - t > FPS_WINDOW_SECS)
        {
            self.recent.pop_front();
        }

        let repeat =
            !masked && stats.has_prev && stats.changed_ratio() <= self.config.max_changed_ratio;
        if repeat && !self.in_freeze {
            self.pending.push_back((at, gap));
            if self.pending.len() > self.config.max_repeat_run as usize {
                self.in_freeze = true;
                while let Some((sample, gap)) = self.pending.pop_front() {
                    self.judge(sample, gap, out);
                }
            }
            return;
        }
        if repeat {
            self.judge(at, gap, out);
            return;
        }
        // Motion (or a masked frame) ends the run: a short run and the jump after it are
        // stutter, a long one was a freeze.
        let short_run = !self.pending.is_empty() && !masked;
        while let Some((sample, gap)) = self.pending.pop_front() {
            self.judge(sample, gap || short_run, out);
        }
        self.in_freeze = false;
        self.judge(at, gap || short_run, out);
    }

    /// Feeds one frame, in order, with whether it shows a sign of stutter.
    fn judge(&mut self, at: Sample, sign: bool, out: &mut Vec<Transition>) {
        let pts = at.media;
        if sign {
            self.last_sign = Some(pts);
        }
        if !self.config.enabled {
            return;
        }
        // Learnt from normal frames only, so a long stutter does not become the normal; a
        // stream that repeats frames from its start learns its cadence during the warm-up,
        // when nothing is judged yet.
        if !self.tracker.engaged() {
            self.cadence.update(pts, if sign { 1.0 } else { 0.0 });
        }
        let normal_share = self.cadence.get();
        let stuttering = normal_share.is_some_and(|s| s <= self.config.max_cadence_share)
            && self
                .last_sign
                .is_some_and(|t| pts - t <= self.config.hold && pts >= t);
        let fps = self.fps().unwrap_or(0.0);
        out.extend(self.tracker.update(at, stuttering, fps));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(moved: bool) -> FrameStats {
        FrameStats {
            width: 100,
            height: 100,
            pixels: 10_000,
            has_prev: true,
            changed_pixels: if moved { 5_000 } else { 0 },
            ..Default::default()
        }
    }

    fn events(out: &[Transition]) -> Vec<(f64, f64)> {
        let mut started = None;
        let mut found = Vec::new();
        for t in out {
            match t {
                Transition::Started { start, .. } => started = Some(start.media),
                Transition::Ended { start, end, .. } => {
                    found.push((start.media, end.media));
                    started = None;
                }
                Transition::Progress { .. } => {}
            }
        }
        assert!(started.is_none(), "unfinished event");
        found
    }

    #[test]
    fn every_picture_three_times_is_stutter_and_a_freeze_is_not() {
        let mut d = StutterDetector::new(StutterConfig::default());
        let mut out = Vec::new();
        // 25 fps: 0-8 s smooth, 8-12 s each picture three times, 12-16 smooth, 16-20 frozen,
        // 20-24 smooth.
        for i in 0..600 {
            let t = f64::from(i) * 0.04;
            let moved = match t {
                t if (8.0..12.0).contains(&t) => (i - 200) % 3 == 0,
                t if (16.0..20.0).contains(&t) => false,
                _ => true,
            };
            d.observe(Sample::at(t), &frame(moved), false, &mut out);
        }
        let found = events(&out);
        assert_eq!(found.len(), 1, "{found:?}");
        let (start, end) = found[0];
        assert!((start - 8.0).abs() <= 0.1, "{found:?}");
        assert!((end - 12.0).abs() <= 0.25, "{found:?}");
        assert!((d.fps().unwrap() - 25.0).abs() < 0.01);
    }

    #[test]
    fn gaps_in_timestamps_are_stutter() {
        let mut d = StutterDetector::new(StutterConfig::default());
        let mut out = Vec::new();
        // 30 fps; from 5 s to 8 s every other frame is missing.
        let mut t = 0.0;
        while t < 12.0 {
            d.observe(Sample::at(t), &frame(true), false, &mut out);
            t += if (5.0..8.0).contains(&t) {
                2.0 / 30.0
            } else {
                1.0 / 30.0
            };
        }
        let found = events(&out);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0].0 - 5.0).abs() <= 0.1, "{found:?}");
        assert!((found[0].1 - 8.0).abs() <= 0.25, "{found:?}");
    }

    #[test]
    fn one_short_interval_at_a_splice_is_not_the_frame_interval() {
        // The splice report: 25 fps, and at 12 s two files joined with one 18.7 ms interval.
        let mut d = StutterDetector::new(StutterConfig::default());
        let mut out = Vec::new();
        let mut t = 0.0;
        for i in 0..1000 {
            d.observe(Sample::at(t), &frame(true), false, &mut out);
            t += if i == 300 { 0.0187 } else { 0.04 };
        }
        assert!(events(&out).is_empty(), "{:?}", events(&out));
    }

    #[test]
    fn the_declared_rate_is_the_interval_only_where_the_stream_keeps_to_it() {
        // 29.97 fps with timestamps rounded to the millisecond (33 and 34 ms intervals).
        let nominal = |declared: Option<f64>| {
            let mut d = StutterDetector::new(StutterConfig::default());
            d.set_declared_fps(declared);
            let mut out = Vec::new();
            for i in 0..300 {
                let t = (f64::from(i) * 1000.0 / 29.97).round() / 1000.0;
                d.observe(Sample::at(t), &frame(true), false, &mut out);
            }
            assert!(events(&out).is_empty());
            d.nominal_interval().unwrap()
        };
        assert!((nominal(Some(29.97)) - 1.0 / 29.97).abs() < 1e-9);
        let observed = nominal(None);
        assert!(
            (observed - 0.033).abs() < 1e-6 || (observed - 0.034).abs() < 1e-6,
            "{observed}"
        );
        // Caps that say 59.94 (a field rate) for this picture: the observed interval wins.
        assert!((nominal(Some(59.94)) - observed).abs() < 1e-9);
    }

    #[test]
    fn a_splice_back_in_time_relearns_the_interval() {
        // 25 fps, then a splice to a 50 fps file whose timeline restarts at 0.
        let mut d = StutterDetector::new(StutterConfig::default());
        let mut out = Vec::new();
        for i in 0..300 {
            d.observe(
                Sample::at(f64::from(i) * 0.04),
                &frame(true),
                false,
                &mut out,
            );
        }
        d.relearn();
        for i in 0..600 {
            d.observe(
                Sample::at(f64::from(i) * 0.02),
                &frame(true),
                false,
                &mut out,
            );
        }
        assert!(events(&out).is_empty(), "{:?}", events(&out));
    }

    #[test]
    fn a_steady_repeat_cadence_is_normal() {
        let mut d = StutterDetector::new(StutterConfig::default());
        let mut out = Vec::new();
        // 50p carrying 25p: every other frame repeats, for a minute.
        for i in 0..3000 {
            d.observe(
                Sample::at(f64::from(i) * 0.02),
                &frame(i % 2 == 0),
                false,
                &mut out,
            );
        }
        assert!(events(&out).is_empty());
    }
}
