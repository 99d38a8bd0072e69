//! Loudness (EBU R128 / ITU-R BS.1770) with the `ebur128` crate: momentary, short-term and
//! integrated loudness and true peak. Defects: short-term loudness outside the target window
//! for longer than `min_duration` (programme; below it only while the gated loudness of the
//! last `quiet_window` seconds is below it too, so that a quiet passage is not a fault), and
//! true peak above the limit (per channel).

use std::collections::VecDeque;

use crate::config::LoudnessConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample, Transition};
use crate::detect::{Scope, Scoped};
use crate::frame::AudioBuffer;

use super::meter::{GridMeter, SubBlockReading, energy_to_lufs, lufs_to_energy};

/// BS.1770's absolute gate: quieter short-term loudness is silence, left to that detector.
const ABSOLUTE_GATE_LUFS: f64 = -70.0;
/// The momentary window is 400 ms long; its value describes the audio around its centre.
const MOMENTARY_CENTRE: f64 = 0.2;
/// Integrated loudness is recomputed at most this often (media seconds).
const INTEGRATED_EVERY: f64 = 0.5;
/// Momentary loudness is kept for the quiet window this often: BS.1770's gating blocks are
/// 400 ms long and overlap by 75 %.
const BLOCK_STEP: f64 = 0.1;
/// Sub-blocks of 100 ms in the momentary (400 ms) and short-term (3 s) windows.
pub(super) const MOMENTARY_SUB_BLOCKS: usize = 4;
pub(super) const SHORT_TERM_SUB_BLOCKS: usize = 30;
/// BS.1770's relative gate: blocks this far below the ungated level do not count.
const RELATIVE_GATE_LU: f64 = 10.0;

/// The latest loudness figures, for the gauges.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reading {
    pub momentary: Option<f64>,
    pub short_term: Option<f64>,
    pub integrated: Option<f64>,
    /// Highest true peak of the latest buffer over all channels, dBTP.
    pub true_peak: Option<f64>,
}

pub struct LoudnessDetector {
    config: LoudnessConfig,
    meter: Option<GridMeter>,
    format: (u32, u32),
    window: DefectTracker,
    peaks: Vec<DefectTracker>,
    /// Start of the current run of momentary loudness outside (resp. inside) the window:
    /// short-term loudness lags a step by up to 3 s, momentary by 0.4 s, so the event edges
    /// are taken from the momentary runs once short-term loudness has decided.
    momentary_out_since: Option<f64>,
    momentary_in_since: Option<f64>,
    event_start: Option<f64>,
    reading: Reading,
    integrated_at: f64,
    max_true_peak: Option<f64>,
    max_momentary: Option<f64>,
    max_short_term: Option<f64>,
    /// (media time, energy) of momentary blocks over the last `quiet_window` seconds.
    blocks: VecDeque<(f64, f64)>,
    /// Readings of the sub-blocks the latest buffer completed, kept to reuse the allocation.
    sub_blocks: Vec<SubBlockReading>,
}

impl std::fmt::Debug for LoudnessDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessDetector")
            .field("format", &self.format)
            .field("reading", &self.reading)
            .finish_non_exhaustive()
    }
}

/// The larger of two readings, either of which may be missing.
fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// BS.1770 gated loudness of blocks given as energies: the absolute gate, then the relative
/// gate 10 LU below the mean of what passed it. None when nothing passes.
fn gated_loudness(energies: impl Iterator<Item = f64> + Clone) -> Option<f64> {
    let absolute = lufs_to_energy(ABSOLUTE_GATE_LUFS);
    let mean_above = |gate: f64| {
        let (sum, n) = energies
            .clone()
            .filter(|&e| e >= gate)
            .fold((0.0, 0u32), |(s, n), e| (s + e, n + 1));
        (n > 0).then(|| sum / f64::from(n))
    };
    let ungated = mean_above(absolute)?;
    let relative = ungated * 10f64.powf(-RELATIVE_GATE_LU / 10.0);
    mean_above(relative.max(absolute)).and_then(energy_to_lufs)
}

fn db(linear: f64) -> Option<f64> {
    (linear > 0.0).then(|| 20.0 * linear.log10())
}

/// The crate reports -inf for empty windows; gauges and JSON need a number or nothing.
fn finite(v: Result<f64, ebur128::Error>) -> Option<f64> {
    v.ok().filter(|v| v.is_finite())
}

impl LoudnessDetector {
    pub fn new(config: LoudnessConfig) -> Self {
        let window = DefectTracker::new(DetectorKind::Loudness, config.timing());
        Self {
            config,
            meter: None,
            format: (0, 0),
            window,
            peaks: Vec::new(),
            momentary_out_since: None,
            momentary_in_since: None,
            event_start: None,
            reading: Reading::default(),
            integrated_at: f64::NEG_INFINITY,
            max_true_peak: None,
            max_momentary: None,
            max_short_term: None,
            blocks: VecDeque::new(),
            sub_blocks: Vec::new(),
        }
    }

    pub fn reading(&self) -> Reading {
        self.reading
    }

    /// Integrated loudness of everything seen so far (this pipeline run).
    pub fn integrated(&self) -> Option<f64> {
        self.meter.as_ref().and_then(|m| finite(m.integrated()))
    }

    pub fn max_true_peak(&self) -> Option<f64> {
        self.max_true_peak
    }

    /// Highest momentary and short-term loudness seen, LUFS.
    pub fn max_momentary(&self) -> Option<f64> {
        self.max_momentary
    }

    pub fn max_short_term(&self) -> Option<f64> {
        self.max_short_term
    }

    /// Loudness range (EBU Tech 3342) of everything seen so far, LU.
    pub fn range(&self) -> Option<f64> {
        self.meter.as_ref().and_then(|m| finite(m.range()))
    }

    pub fn observe(&mut self, at: Sample, buffer: &AudioBuffer, out: &mut Vec<Scoped>) {
        if !self.config.enabled || buffer.samples.is_empty() {
            return;
        }
        let format = (buffer.channels.max(1), buffer.rate);
        if !self.meter_for(format) {
            return;
        }
        let Some(meter) = self.meter.as_mut() else {
            return;
        };
        let whole = buffer.samples.len() - buffer.samples.len() % format.0 as usize;
        let mut sub_blocks = std::mem::take(&mut self.sub_blocks);
        sub_blocks.clear();
        let fed = meter.add(&buffer.samples[..whole], &mut sub_blocks);
        let rate = f64::from(format.1);
        let end = at.media + (whole / format.0 as usize) as f64 / rate;
        if fed.is_ok() {
            if end - self.integrated_at >= INTEGRATED_EVERY {
                self.integrated_at = end;
                self.reading.integrated = finite(meter.integrated());
            }
            let buffer_peak = self.true_peaks(at, out);
            self.max_true_peak = larger(self.max_true_peak, buffer_peak);
            self.reading.true_peak = buffer_peak;
        }
        for sub_block in &sub_blocks {
            let sub_block_end = at.media + sub_block.frames_in as f64 / rate;
            self.on_sub_block(at, sub_block_end, sub_block, out);
        }
        self.sub_blocks = sub_blocks;
    }

    /// A sub-block's momentary and short-term loudness, read every 100 ms of audio (EBU Tech
    /// 3341 asks for at least 10 Hz).
    fn on_sub_block(
        &mut self,
        at: Sample,
        end: f64,
        sub_block: &SubBlockReading,
        out: &mut Vec<Scoped>,
    ) {
        let (momentary, short_term) = (sub_block.momentary, sub_block.short_term);
        self.max_momentary = larger(self.max_momentary, momentary);
        self.max_short_term = larger(self.max_short_term, short_term);
        self.reading.momentary = momentary;
        self.reading.short_term = short_term;
        self.judge_window(at, end, momentary, short_term, out);
    }

    /// A meter for this channel count and rate (a new one when the format changed); false
    /// when none can be made, which switches the detector off.
    fn meter_for(&mut self, format: (u32, u32)) -> bool {
        if self.meter.is_some() && self.format == format {
            return true;
        }
        match GridMeter::new(format.0, format.1) {
            Ok(m) => self.meter = Some(m),
            Err(e) => {
                tracing::warn!(error = %e, channels = format.0, rate = format.1, "loudness meter unavailable");
                self.config.enabled = false;
                return false;
            }
        }
        self.format = format;
        let timing = crate::config::Timing {
            min_duration: 0.0,
            clear_duration: self.config.clear_duration,
        };
        self.peaks = (0..format.0)
            .map(|_| DefectTracker::new(DetectorKind::Loudness, timing))
            .collect();
        true
    }

    /// Each channel's true peak of the latest buffer against the limit; returns the highest.
    fn true_peaks(&mut self, at: Sample, out: &mut Vec<Scoped>) -> Option<f64> {
        let meter = self.meter.as_ref()?;
        let mut buffer_peak: Option<f64> = None;
        for (tracker, (ch, &linear)) in self
            .peaks
            .iter_mut()
            .zip(meter.true_peaks().iter().enumerate())
        {
            let Some(peak) = db(linear) else {
                continue;
            };
            buffer_peak = Some(buffer_peak.map_or(peak, |p: f64| p.max(peak)));
            let t = tracker.update(at, peak > self.config.max_true_peak_dbtp, peak);
            out.extend(t.map(|t| (t, Scope::channel(ch as u32))));
        }
        buffer_peak
    }

    /// Short-term loudness outside the target window is the programme's loudness defect; the
    /// momentary crossings are kept to date its edges.
    fn judge_window(
        &mut self,
        at: Sample,
        end: f64,
        momentary: Option<f64>,
        short_term: Option<f64>,
        out: &mut Vec<Scoped>,
    ) {
        let lo = self.config.target_lufs - self.config.tolerance_lu;
        let hi = self.config.target_lufs + self.config.tolerance_lu;
        let m_time = (end - MOMENTARY_CENTRE).max(0.0);
        if momentary.is_some_and(|m| (lo..=hi).contains(&m)) {
            self.momentary_out_since = None;
            self.momentary_in_since.get_or_insert(m_time);
        } else {
            self.momentary_in_since = None;
            self.momentary_out_since.get_or_insert(m_time);
        }
        self.keep_block(end, momentary);
        let Some(st) = short_term else {
            return;
        };
        let too_quiet = st < lo && self.programme_quiet(lo);
        let outside = st >= ABSOLUTE_GATE_LUFS && (st > hi || too_quiet);
        let at_end = Sample {
            media: end,
            wall: at.wall,
        };
        if let Some(t) = self.window.update(at_end, outside, st) {
            out.push((self.refine(t), Scope::default()));
        }
    }

    /// Keeps the momentary loudness ending at `end` as a block of the quiet window.
    fn keep_block(&mut self, end: f64, momentary: Option<f64>) {
        if self.config.quiet_window <= 0.0 {
            return;
        }
        if let Some(m) = momentary
            && self
                .blocks
                .back()
                .is_none_or(|&(t, _)| end - t >= BLOCK_STEP || end < t)
        {
            self.blocks.push_back((end, lufs_to_energy(m)));
        }
        while self
            .blocks
            .front()
            .is_some_and(|&(t, _)| end - t > self.config.quiet_window || t > end)
        {
            self.blocks.pop_front();
        }
    }

    /// Whether the gated loudness of the quiet window is below `lo` (always, without one).
    fn programme_quiet(&self, lo: f64) -> bool {
        if self.config.quiet_window <= 0.0 {
            return true;
        }
        gated_loudness(self.blocks.iter().map(|&(_, e)| e)).is_none_or(|l| l < lo)
    }

    /// Moves the edges of a window defect to the momentary-loudness crossings.
    fn refine(&mut self, t: Transition) -> Transition {
        match t {
            Transition::Started {
                detector,
                mut start,
                value,
                elapsed,
            } => {
                if let Some(m) = self.momentary_out_since.filter(|&m| m < start.media) {
                    start.media = m;
                }
                self.event_start = Some(start.media);
                Transition::Started {
                    detector,
                    start,
                    value,
                    elapsed,
                }
            }
            Transition::Ended {
                detector,
                mut start,
                mut end,
                value,
            } => {
                if let Some(s) = self.event_start.take() {
                    start.media = s;
                }
                if let Some(m) = self
                    .momentary_in_since
                    .filter(|&m| m > start.media && m < end.media)
                {
                    end.media = m;
                }
                Transition::Ended {
                    detector,
                    start,
                    end,
                    value,
                }
            }
            other => other,
        }
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        if let Some(t) = self.window.finish(at) {
            out.push((self.refine(t), Scope::default()));
        }
        for (ch, tracker) in self.peaks.iter_mut().enumerate() {
            out.extend(tracker.finish(at).map(|t| (t, Scope::channel(ch as u32))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 48_000;
    const N: usize = 1024;

    /// 1 kHz stereo sine buffers with amplitude by time.
    fn run(seconds: f64, amplitude: impl Fn(f64) -> f32) -> (LoudnessDetector, Vec<Scoped>) {
        let mut d = LoudnessDetector::new(LoudnessConfig::default());
        let mut out = Vec::new();
        let mut n = 0usize;
        while (n as f64) / f64::from(RATE) < seconds {
            let t = n as f64 / f64::from(RATE);
            let samples = (n..n + N)
                .flat_map(|i| {
                    let x = i as f64 / f64::from(RATE);
                    let s = amplitude(x) * (2.0 * std::f64::consts::PI * 1000.0 * x).sin() as f32;
                    [s, s * 0.9]
                })
                .collect();
            let buf = AudioBuffer {
                channels: 2,
                channel_mask: None,
                rate: RATE,
                samples,
                pts: std::time::Duration::from_secs_f64(t),
            };
            d.observe(Sample::at(t), &buf, &mut out);
            n += N;
        }
        d.finish(Sample::at(n as f64 / f64::from(RATE)), &mut out);
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        (d, out)
    }

    /// Amplitude of a stereo (L, 0.9 L) 1 kHz sine at about `lufs`.
    fn amp(lufs: f64) -> f32 {
        // Two channels of a sine at amplitude a: 10 log10(a²/2 · (1 + 0.81)) - 0.691 + K-gain(1 kHz).
        10f64.powf((lufs + 0.691 - 0.69 - 10.0 * (1.81f64 / 2.0).log10()) / 20.0) as f32
    }

    #[test]
    fn steady_programme_at_target_gives_no_event_and_reads_its_level() {
        let (d, out) = run(20.0, |_| amp(-23.0));
        assert!(out.is_empty(), "{out:?}");
        let i = d.integrated().expect("integrated");
        assert!((i + 23.0).abs() < 0.5, "{i}");
        assert!(d.max_true_peak().expect("peak") < -1.0);
    }

    #[test]
    fn a_loud_section_is_one_event_with_edges_near_the_step() {
        let (_, out) = run(40.0, |t| {
            if (10.0..25.0).contains(&t) {
                amp(-10.0)
            } else {
                amp(-23.0)
            }
        });
        assert_eq!(out.len(), 2, "{out:?}");
        let (Transition::Ended { start, end, .. }, Scope { channel: None, .. }) = &out[1] else {
            panic!("{out:?}")
        };
        assert!((start.media - 10.0).abs() < 0.5, "{start:?}");
        assert!((end.media - 25.0).abs() < 0.5, "{end:?}");
    }

    /// (start, end) of the programme loudness events in `out`.
    fn window_events(out: &[Scoped]) -> Vec<(f64, f64)> {
        out.iter()
            .filter_map(|(t, scope)| match t {
                Transition::Ended { start, end, .. } if scope.channel.is_none() => {
                    Some((start.media, end.media))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn quiet_passages_of_music_are_not_too_quiet() {
        // The concert: music at -23 LUFS with a pianissimo at -48 LUFS for 14 s in every 50.
        let (_, out) = run(150.0, |t| {
            if (31.0..45.0).contains(&(t % 50.0)) {
                amp(-48.0)
            } else {
                amp(-23.0)
            }
        });
        assert!(window_events(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn a_programme_that_stays_quiet_is_too_quiet_from_the_start() {
        // 12 LU down from 12 s to 52 s: found once the quiet fills the window, dated from 12 s.
        let (_, out) = run(60.0, |t| {
            if (12.0..52.0).contains(&t) {
                amp(-35.0)
            } else {
                amp(-23.0)
            }
        });
        let found = window_events(&out);
        assert_eq!(found.len(), 1, "{out:?}");
        assert!((found[0].0 - 12.0).abs() < 0.5, "{found:?}");
        assert!((found[0].1 - 52.0).abs() < 0.5, "{found:?}");
    }

    #[test]
    fn gating_ignores_blocks_10_lu_below_the_rest() {
        let energy = |lufs: f64| 10f64.powf((lufs + 0.691) / 10.0);
        let blocks = [energy(-23.0), energy(-23.0), energy(-48.0), energy(-80.0)];
        let gated = gated_loudness(blocks.iter().copied()).unwrap();
        assert!((gated + 23.0).abs() < 1e-9, "{gated}");
        let level = [energy(-35.0), energy(-35.0), energy(-23.0)];
        let gated = gated_loudness(level.iter().copied()).unwrap();
        assert!((-28.0..-23.0).contains(&gated), "{gated}");
        assert_eq!(gated_loudness([energy(-90.0)].into_iter()), None);
    }

    #[test]
    fn true_peak_over_the_limit_is_reported_per_channel() {
        let (_, out) = run(6.0, |t| if (2.0..4.0).contains(&t) { 1.0 } else { 0.05 });
        let ended: Vec<_> = out
            .iter()
            .filter_map(|(t, scope)| match t {
                Transition::Ended { start, end, .. } => {
                    Some((scope.channel, start.media, end.media))
                }
                _ => None,
            })
            .collect();
        // Left at 0 dBFS, right at -0.9 dBFS: both above -1 dBTP.
        assert_eq!(ended.len(), 2, "{out:?}");
        for (ch, s, e) in ended {
            assert!(ch.is_some());
            assert!((s - 2.0).abs() < 0.05 && (e - 4.0).abs() < 0.05, "{s} {e}");
        }
    }
}
