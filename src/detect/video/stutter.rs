//! Stutter: the picture does not advance smoothly. Two signs, both per frame:
//! - a repeat cadence: over the last `PATTERN_MIN_FRAMES` frames, which frames move and which
//!   repeat the previous picture follows a fixed pattern of period 2 to `max_repeat_run + 1`:
//!   some phases always repeat, the others mostly move (each picture shown three times: move,
//!   repeat, repeat, move, ...; 15 pictures a second in a 25 fps stream: move, move, repeat,
//!   move, repeat, ...). A source that drops to a
//!   lower rate and repeats frames to fill in keeps such a pattern; content that moves slowly
//!   in whole pixels (a light beam turning round, a slow pan, an easing graphic) or
//!   sporadically (a talking head) repeats frames too, but its pattern keeps changing with
//!   the speed, so a run of repeats alone is not a sign. Runs longer than `max_repeat_run`
//!   are freezes, the freeze detector's;
//! - a timestamp gap: frames missing, judged against the stream's frame interval: the median
//!   interval of the last seconds, or the declared frame rate where the median agrees with it.
//!   A median, because one short interval (a splice of two files, a field-rate frame) must not
//!   make every normal frame look like a gap; it is learnt anew after a splice that steps back
//!   in time and on a format change.
//!
//! Frames are judged once the pattern windows have passed over them and over the frames after
//! them, so every frame of a stutter, its first included, is known as such, and the shorter
//! stretches of the same cadence between the source's slips (two new pictures in a row) are
//! part of it. A frame is stuttering when it is part of a
//! cadence, or within `hold` seconds of a gap. A stream whose normal cadence repeats frames (25p content in a
//! 50p stream, 3:2 pulldown) is not reported: the detector keeps the stream's normal share of
//! signs and stays quiet while it is above `max_cadence_share`; that share is learnt anew on
//! a format change (an advert in another format, then the programme again). The event value
//! is the frame rate during the defect.

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
/// Frames a repeat pattern must hold to be a cadence: slow whole-pixel motion falls into a
/// fixed pattern for a few tenths of a second as its speed passes 1/2 or 1/3 pixel a frame;
/// 30 frames (1.2 s at 25 fps) is longer than any such moment in the corpus.
const PATTERN_MIN_FRAMES: usize = 30;
/// Whole periods the pattern window holds at least, for long periods.
const PATTERN_MIN_PERIODS: usize = 5;
/// Frames outside a cadence that still belong to it when the cadence resumes after them.
const CADENCE_MAX_HOLE: usize = 15;
/// A pattern this long continues a cadence of the same period next to it: a source dropping
/// frames slips now and then (two new pictures in a row), and one slip breaks every full
/// window over it, so the stretches between slips can be shorter than a full window.
const SHORT_PATTERN_FRAMES: usize = 18;
/// Frames after a frame that are known before it is judged, to find the cadence it leads to.
const LOOKAHEAD_FRAMES: usize = 30;

/// A frame waiting for the pattern verdict.
#[derive(Debug)]
struct Held {
    at: Sample,
    /// Whether the picture moved; None for a masked frame or one without a previous frame,
    /// which breaks any pattern.
    moved: Option<bool>,
    gap: bool,
    /// The period of a cadence over PATTERN_MIN_FRAMES around this frame: a stutter.
    cadence: Option<usize>,
    /// The period of a pattern over SHORT_PATTERN_FRAMES around it: part of a stutter next
    /// to one, nothing on its own.
    short: Option<usize>,
    /// The verdict: part of a stutter's cadence.
    in_cadence: bool,
    /// Format changes before this frame (see `relearn`).
    format: u64,
}

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
    /// The frames not yet judged: the last `pattern_frames` and LOOKAHEAD_FRAMES before them.
    held: VecDeque<Held>,
    pattern_frames: usize,
    /// Scratch: whether each held frame moved.
    pattern: Vec<bool>,
    /// The period of the cadence the last judged frame was part of.
    previous_period: Option<usize>,
    /// Format changes seen, and the number of them before the last judged frame: the
    /// normal cadence is relearnt when the first frame after a change is judged.
    formats_seen: u64,
    formats_judged: u64,
    last_gap: Option<f64>,
    cadence: Baseline,
    pub(super) tracker: DefectTracker,
}

impl StutterDetector {
    pub fn new(config: StutterConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Stutter, config.timing());
        let longest_period = config.max_repeat_run as usize + 1;
        Self {
            cadence: Baseline::new(config.cadence_window, CADENCE_WARMUP_SECS, 0.0),
            pattern_frames: PATTERN_MIN_FRAMES.max(PATTERN_MIN_PERIODS * longest_period),
            config,
            last_pts: None,
            intervals: VecDeque::new(),
            median_interval: None,
            since_median: 0,
            declared_interval: None,
            recent: VecDeque::new(),
            held: VecDeque::new(),
            pattern: Vec::new(),
            previous_period: None,
            formats_seen: 0,
            formats_judged: 0,
            last_gap: None,
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

    /// A splice back in time or a format change: the frame interval and the normal cadence
    /// are learnt anew.
    pub fn relearn(&mut self) {
        self.intervals.clear();
        self.median_interval = None;
        self.since_median = 0;
        self.last_pts = None;
        self.formats_seen += 1;
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

    /// Whether `at` follows a gap in the timestamps; moves `at` to the first missing frame.
    fn follows_gap(&mut self, at: &mut Sample) -> bool {
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
        gap
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
        let gap = self.follows_gap(&mut at);
        let moved = (!masked && stats.has_prev)
            .then(|| stats.changed_ratio() > self.config.max_changed_ratio);
        self.held.push_back(Held {
            at,
            moved,
            gap,
            cadence: None,
            short: None,
            in_cadence: false,
            format: self.formats_seen,
        });
        self.mark_cadence();
        // A frame waits until the windows over it and over the LOOKAHEAD_FRAMES after it are
        // all known.
        while self.held.len() > self.pattern_frames + LOOKAHEAD_FRAMES {
            self.release(out);
        }
    }

    /// Judges the oldest held frame.
    fn release(&mut self, out: &mut Vec<Transition>) {
        let Some(mut frame) = self.held.pop_front() else {
            return;
        };
        let period = frame
            .cadence
            .or_else(|| self.continued_period(&frame))
            .or_else(|| self.leading_period(&frame));
        frame.in_cadence = period.is_some();
        self.previous_period = period;
        self.judge(frame, out);
    }

    /// The period of the cadence before `frame` that it continues: with a short pattern of
    /// the same period, or as a hole of at most CADENCE_MAX_HOLE frames before more of it.
    fn continued_period(&self, frame: &Held) -> Option<usize> {
        let period = self.previous_period?;
        let same = |h: &Held| h.cadence == Some(period) || h.short == Some(period);
        (frame.short == Some(period) || self.held.iter().take(CADENCE_MAX_HOLE).any(same))
            .then_some(period)
    }

    /// The period of the cadence after `frame` that it leads into through a short pattern of
    /// the same period (with holes of at most CADENCE_MAX_HOLE frames).
    fn leading_period(&self, frame: &Held) -> Option<usize> {
        let period = frame.short?;
        let mut hole = 0;
        for next in &self.held {
            if next.cadence == Some(period) {
                return Some(period);
            }
            hole = if next.short == Some(period) {
                0
            } else {
                hole + 1
            };
            if hole > CADENCE_MAX_HOLE {
                return None;
            }
        }
        None
    }

    /// Marks the held frames that follow one repeat pattern, over the full and the short
    /// window that end with the newest frame.
    fn mark_cadence(&mut self) {
        let longest = self.config.max_repeat_run as usize + 1;
        if let Some(period) = self.newest_pattern(self.pattern_frames, longest) {
            let first = self.held.len() - self.pattern_frames;
            for frame in self.held.range_mut(first..) {
                frame.cadence.get_or_insert(period);
            }
        }
        if let Some(period) = self.newest_pattern(SHORT_PATTERN_FRAMES, longest) {
            let first = self.held.len() - SHORT_PATTERN_FRAMES;
            for frame in self.held.range_mut(first..) {
                frame.short.get_or_insert(period);
            }
        }
    }

    /// The period of the repeat pattern the newest `frames` held frames follow, if any.
    fn newest_pattern(&mut self, frames: usize, longest: usize) -> Option<usize> {
        let first = self.held.len().checked_sub(frames)?;
        self.pattern.clear();
        for frame in self.held.range(first..) {
            self.pattern.push(frame.moved?);
        }
        repeat_period(&self.pattern, longest)
    }

    /// Judges the frames still held (end of stream), then ends any stutter.
    pub fn finish(&mut self, at: Sample, out: &mut Vec<Transition>) {
        while !self.held.is_empty() {
            self.release(out);
        }
        out.extend(self.tracker.finish(at));
    }

    /// Feeds one frame, in order, once its pattern is known.
    fn judge(&mut self, frame: Held, out: &mut Vec<Transition>) {
        let pts = frame.at.media;
        if frame.format != self.formats_judged {
            self.formats_judged = frame.format;
            self.cadence.reset();
        }
        if frame.gap {
            self.last_gap = Some(pts);
        }
        if !self.config.enabled {
            return;
        }
        let sign = frame.gap || frame.in_cadence;
        // Learnt from normal frames only, so a long stutter does not become the normal; a
        // stream that repeats frames from its start learns its cadence during the warm-up,
        // when nothing is judged yet.
        if !self.tracker.engaged() {
            self.cadence.update(pts, if sign { 1.0 } else { 0.0 });
        }
        let normal_share = self.cadence.get();
        // A gap is one frame; the frames around it are part of the same hiccup.
        let after_gap = self
            .last_gap
            .is_some_and(|t| pts - t <= self.config.hold && pts >= t);
        let stuttering = normal_share.is_some_and(|s| s <= self.config.max_cadence_share)
            && (frame.in_cadence || after_gap);
        let fps = self.fps().unwrap_or(0.0);
        out.extend(self.tracker.update(frame.at, stuttering, fps));
    }
}

/// Share of the frames on a cadence's moving phases that must move: the source's new pictures
/// can show nothing new (a talking head between two words), but most do.
const CADENCE_MIN_MOVING_SHARE: f64 = 0.85;

/// The period (2 to `longest`) of the repeat cadence `moved` follows, if it follows one: some
/// phases of the period always repeat the previous picture, and the others mostly move.
fn repeat_period(moved: &[bool], longest: usize) -> Option<usize> {
    (2..=longest.min(moved.len() / 2)).find(|&period| follows_cadence(moved, period))
}

fn follows_cadence(moved: &[bool], period: usize) -> bool {
    let mut repeating_phases = 0;
    let (mut on_moving_phases, mut moving) = (0usize, 0usize);
    for phase in 0..period {
        let frames = moved.iter().skip(phase).step_by(period);
        let moves = frames.clone().filter(|&&m| m).count();
        if moves == 0 {
            repeating_phases += 1;
        } else {
            on_moving_phases += frames.count();
            moving += moves;
        }
    }
    (1..period).contains(&repeating_phases)
        && moving as f64 >= CADENCE_MIN_MOVING_SHARE * on_moving_phases as f64
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

    /// 25 fps frames 0.. with `moved(i)`, then the end of the stream.
    fn run_frames(
        d: &mut StutterDetector,
        frames: u32,
        moved: impl Fn(u32) -> bool,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        for i in 0..frames {
            let at = Sample::at(f64::from(i) * 0.04);
            d.observe(at, &frame(moved(i)), false, &mut out);
        }
        d.finish(Sample::at(f64::from(frames) * 0.04), &mut out);
        out
    }

    #[test]
    fn whole_pixel_slow_motion_is_not_stutter() {
        // The concert's light beam: x = 300 sin(0.21 t) pixels, drawn at whole pixels, so
        // near each turn it moves one pixel every second, third, fourth... frame.
        let x = |i: u32| (300.0 * (0.21 * f64::from(i) * 0.04).sin()).round();
        let mut d = StutterDetector::new(StutterConfig::default());
        let out = run_frames(&mut d, 150 * 25, |i| i == 0 || x(i) != x(i - 1));
        assert!(events(&out).is_empty(), "{:?}", events(&out));
    }

    /// Whether a talking head moved in frame `i`: two frames in three, irregularly (a
    /// murmur3 finaliser of the frame number).
    fn talking_head(i: u32) -> bool {
        let mut x = u64::from(i);
        x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        (x ^ (x >> 33)) % 100 < 65
    }

    #[test]
    fn sporadic_motion_is_not_stutter_but_a_repeat_cadence_in_it_is() {
        let mut d = StutterDetector::new(StutterConfig::default());
        // 10-13 s: each picture three times, so a new one shows three frames' motion, if any.
        let out = run_frames(&mut d, 40 * 25, |i| match i {
            250..325 => i % 3 == 1 && (i..i + 3).any(talking_head),
            _ => talking_head(i),
        });
        let found = events(&out);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!((found[0].0 - 10.0).abs() <= 0.25, "{found:?}");
        assert!((found[0].1 - 13.0).abs() <= 0.25, "{found:?}");
    }

    #[test]
    fn a_format_change_relearns_the_normal_cadence() {
        // 25p carried in 50p (every other frame repeats: its normal cadence), an advert of
        // 40 s in which every frame moves, then the programme again.
        let programme = |i: u32| i.is_multiple_of(2);
        let after_the_advert = |relearn: bool| {
            let mut d = StutterDetector::new(StutterConfig::default());
            let mut out = Vec::new();
            let mut t = 0.0;
            for (frames, moved) in [(1500, programme as fn(u32) -> bool), (2000, |_| true)] {
                for i in 0..frames {
                    d.observe(Sample::at(t), &frame(moved(i)), false, &mut out);
                    t += 0.02;
                }
            }
            if relearn {
                d.relearn();
            }
            out.clear();
            for i in 0..1500 {
                d.observe(Sample::at(t), &frame(programme(i)), false, &mut out);
                t += 0.02;
            }
            d.finish(Sample::at(t), &mut out);
            events(&out)
        };
        assert!(
            after_the_advert(true).is_empty(),
            "{:?}",
            after_the_advert(true)
        );
        // Without the format change, the programme's cadence is a change from the advert's.
        assert!(!after_the_advert(false).is_empty());
    }

    #[test]
    fn a_slip_of_the_source_does_not_split_delay_or_cut_short_a_stutter() {
        // 25 fps; 8-12 s each picture three times, but the source slips once (two new
        // pictures in a row), which breaks every full pattern window over it: in the middle,
        // 1 s after the start (no full window before it), 1 s before the end (none after).
        for slip in [250, 226, 274] {
            let mut d = StutterDetector::new(StutterConfig::default());
            let out = run_frames(&mut d, 20 * 25, |i| match i {
                _ if i == slip => true,
                200..300 => (i - 200) % 3 == 0,
                _ => true,
            });
            let found = events(&out);
            assert_eq!(found.len(), 1, "slip {slip}: {found:?}");
            assert!((found[0].0 - 8.0).abs() <= 0.1, "slip {slip}: {found:?}");
            assert!((found[0].1 - 12.0).abs() <= 0.25, "slip {slip}: {found:?}");
        }
    }

    #[test]
    fn cadences_are_found_by_their_repeating_phases() {
        let pattern =
            |s: &str| -> Vec<bool> { s.chars().cycle().take(30).map(|c| c == 'M').collect() };
        assert_eq!(repeat_period(&pattern("M.."), 5), Some(3));
        assert_eq!(repeat_period(&pattern("MM.M."), 5), Some(5));
        assert_eq!(repeat_period(&pattern("M"), 5), None);
        assert_eq!(repeat_period(&pattern("."), 5), None);
        // A run of five repeats is a freeze's, not a cadence of at most four.
        assert_eq!(repeat_period(&pattern("M....."), 5), None);
        // One new picture of the cadence shows nothing new: still the cadence.
        let mut held = pattern("M..");
        held[9] = false;
        assert_eq!(repeat_period(&held, 5), Some(3));
        // Mostly still, one move in fifteen frames: no cadence.
        let mut still = vec![false; 30];
        still[7] = true;
        assert_eq!(repeat_period(&still, 5), None);
    }
}
