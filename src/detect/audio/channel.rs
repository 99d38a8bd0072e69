//! Channel faults: a channel missing (nothing carried) while another carries programme, and
//! the first two channels identical (fake stereo) or phase-inverted (L ≈ -R). The pair is
//! judged by its mid (L+R) and side (L-R) energies: identical channels have no side, inverted
//! ones no mid; their normalised correlation is the event value.

use crate::config::ChannelConfig;
use crate::detect::audio::ChannelTrackers;
use crate::detect::audio::silence::energy_dbfs;
use crate::detect::{DefectTracker, DetectorKind, Sample};
use crate::detect::{Scope, Scoped};
use crate::frame::AudioBuffer;

#[derive(Debug)]
pub struct ChannelDetector {
    config: ChannelConfig,
    pair: DefectTracker,
    missing: ChannelTrackers,
    /// Seconds of programme in which the pair was real stereo, and the time of the last pair
    /// judged: identical channels are a fault only in a stream that carried stereo.
    stereo_seen: f64,
    last_pair: Option<f64>,
}

/// Seconds of real stereo needed before identical channels are judged. A programme that is
/// mono in both channels from its start (dual mono: news, archive) is normal; a stereo
/// programme whose channels become identical has lost a channel upstream.
const STEREO_EVIDENCE_SECS: f64 = 1.0;
/// Gaps between buffers count as at most this much programme.
const MAX_PAIR_STEP_SECS: f64 = 0.5;

/// Normalised correlation of channels `a` and `b` and their side/mid energy ratio in dB.
pub fn pair_stats(buffer: &AudioBuffer, (a, b): (usize, usize)) -> Option<(f64, f64)> {
    let n = buffer.channels as usize;
    if a.max(b) >= n {
        return None;
    }
    let (mut mid, mut side) = (0.0f64, 0.0f64);
    for f in buffer.samples.chunks_exact(n) {
        let (l, r) = (f64::from(f[a]), f64::from(f[b]));
        mid += (l + r) * (l + r);
        side += (l - r) * (l - r);
    }
    if mid + side <= 0.0 {
        return None;
    }
    let correlation = (mid - side) / (mid + side);
    let ratio = energy_dbfs(side / mid.max(f64::MIN_POSITIVE)).max(-200.0);
    Some((correlation, ratio))
}

impl ChannelDetector {
    pub fn new(config: ChannelConfig) -> Self {
        let pair = DefectTracker::new(DetectorKind::Channel, config.timing());
        Self {
            missing: ChannelTrackers::new(DetectorKind::Channel, config.timing()),
            config,
            pair,
            stereo_seen: 0.0,
            last_pair: None,
        }
    }

    /// `levels` are the buffer's per-channel RMS levels in dBFS; `judged` the channels that
    /// may be reported missing; `pair` the front pair (left, right) judged for fake stereo and
    /// inverted phase.
    pub fn observe(
        &mut self,
        at: Sample,
        buffer: &AudioBuffer,
        levels: &[f64],
        (judged, pair): (&[usize], Option<(usize, usize)>),
        out: &mut Vec<Scoped>,
    ) {
        if !self.config.enabled || levels.len() < 2 || judged.is_empty() {
            return;
        }
        let loudest = judged
            .iter()
            .filter_map(|&ch| levels.get(ch).copied())
            .fold(f64::NEG_INFINITY, f64::max);
        // Without programme in any channel there is nothing to compare: verdicts wait.
        if loudest < self.config.programme_dbfs {
            return;
        }
        self.judge_missing(at, levels, judged, out);
        let c = &self.config;
        let Some((a, b)) = pair else {
            return;
        };
        let (l, r) = (levels[a], levels[b]);
        if l.max(r) < c.programme_dbfs || l.min(r) <= c.missing_dbfs {
            return;
        }
        if let Some((correlation, side_to_mid)) = pair_stats(buffer, (a, b)) {
            let identical = side_to_mid <= c.similarity_db;
            let inverted = -side_to_mid <= c.similarity_db;
            let step = self
                .last_pair
                .replace(at.media)
                .map_or(0.0, |last| (at.media - last).clamp(0.0, MAX_PAIR_STEP_SECS));
            if !identical && !inverted {
                self.stereo_seen += step;
            }
            let identical =
                identical && c.report_identical && self.stereo_seen >= STEREO_EVIDENCE_SECS;
            out.extend(
                self.pair
                    .update(at, identical || inverted, correlation)
                    .map(|t| (t, Scope::default())),
            );
        }
    }

    fn judge_missing(
        &mut self,
        at: Sample,
        levels: &[f64],
        judged: &[usize],
        out: &mut Vec<Scoped>,
    ) {
        if judged.len() < 2 {
            return;
        }
        self.missing.follow(at, judged, out);
        let missing = self.config.missing_dbfs;
        self.missing.update(at, levels, |l| l <= missing, out);
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        out.extend(self.pair.finish(at).map(|t| (t, Scope::default())));
        self.missing.finish(at, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;
    use crate::detect::audio::silence::channel_dbfs;
    use std::time::Duration;

    /// Stereo buffer: left a 440 Hz tone, right from `right(left, other)` where `other` is an
    /// unrelated 660 Hz tone.
    fn stereo(n0: usize, right: impl Fn(f32, f32) -> f32) -> AudioBuffer {
        let samples = (n0..n0 + 1024)
            .flat_map(|i| {
                let x = i as f32 / 48_000.0;
                let l = 0.2 * (std::f32::consts::TAU * 440.0 * x).sin();
                let o = 0.2 * (std::f32::consts::TAU * 660.0 * x).sin();
                [l, right(l, o)]
            })
            .collect();
        AudioBuffer {
            channels: 2,
            channel_mask: None,
            rate: 48_000,
            samples,
            pts: Duration::ZERO,
        }
    }

    fn run(fault: impl Fn(f32, f32) -> f32) -> Vec<Scoped> {
        run_faulty(fault, 2.0)
    }

    fn run_from_start(fault: impl Fn(f32, f32) -> f32) -> Vec<Scoped> {
        run_faulty(fault, 0.0)
    }

    /// Stereo with `fault` applied from `from` s to 5 s, for 400 buffers.
    fn run_faulty(fault: impl Fn(f32, f32) -> f32, from: f64) -> Vec<Scoped> {
        let mut d = ChannelDetector::new(ChannelConfig::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..400 {
            let t = i as f64 * step;
            let buf = if (from..5.0).contains(&t) {
                stereo(i * 1024, &fault)
            } else {
                stereo(i * 1024, |_, o| o)
            };
            d.observe(
                Sample::at(t),
                &buf,
                &channel_dbfs(&buf),
                (&[0, 1], Some((0, 1))),
                &mut out,
            );
        }
        d.finish(Sample::at(400.0 * step), &mut out);
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        out
    }

    fn ended(out: &[Scoped]) -> Vec<(Option<u32>, f64, f64, f64)> {
        out.iter()
            .filter_map(|(t, scope)| match t {
                Transition::Ended {
                    start, end, value, ..
                } => Some((scope.channel, start.media, end.media, *value)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn dual_mono_from_the_start_is_normal() {
        assert!(run_from_start(|l, _| l).is_empty());
    }

    #[test]
    fn quiet_surrounds_and_lfe_of_5_1_raise_nothing_and_a_missing_front_is_named() {
        use crate::detect::audio::AudioDetectors;
        let five_one_mask = 0b1100_0000_1111u64; // FL FR C LFE SL SR
        let mut d = AudioDetectors::new(&Default::default(), &Default::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..600 {
            let t = i as f64 * step;
            let front = stereo(i * 1024, |_, o| o);
            let left_gone = (5.0..9.0).contains(&t);
            let samples = front
                .samples
                .chunks_exact(2)
                .flat_map(|f| {
                    let l = if left_gone { 0.0 } else { f[0] };
                    // Dialogue in the centre; LFE and surrounds silent.
                    [l, f[1], (f[0] + f[1]) / 2.0, 0.0, 0.0, 0.0]
                })
                .collect();
            let buf = AudioBuffer {
                channels: 6,
                channel_mask: Some(five_one_mask),
                samples,
                ..front
            };
            d.observe(Sample::at(t), &buf, &mut out);
        }
        d.finish(Sample::at(600.0 * step), &mut out);
        let ended: Vec<_> = out
            .iter()
            .filter_map(|(t, scope)| match t {
                Transition::Ended { detector, .. } => {
                    Some((*detector, scope.channel, scope.position))
                }
                _ => None,
            })
            .collect();
        assert!(
            ended.contains(&(DetectorKind::Channel, Some(0), Some("FL")))
                && ended.contains(&(DetectorKind::Silence, Some(0), Some("FL"))),
            "{ended:?}"
        );
        let per_channel = ended
            .iter()
            .filter(|(d, ..)| matches!(d, DetectorKind::Silence | DetectorKind::Channel));
        assert!(
            per_channel.clone().all(|(_, ch, _)| *ch == Some(0)) && per_channel.count() == 2,
            "only the front left may be reported: {ended:?}"
        );
    }

    #[test]
    fn real_stereo_is_clean() {
        assert!(run(|_, o| o).is_empty());
    }

    #[test]
    fn missing_identical_and_inverted_channels_are_found() {
        let step = 1024.0 / 48_000.0;
        let near = |(_, s, e, _): (Option<u32>, f64, f64, f64)| {
            (s - 2.0).abs() <= step && (e - 5.0).abs() <= step
        };
        let missing = ended(&run(|_, _| 0.0));
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert_eq!(missing[0].0, Some(1));
        assert!(near(missing[0]));
        let identical = ended(&run(|l, _| l));
        assert_eq!(identical.len(), 1, "{identical:?}");
        assert!(near(identical[0]) && identical[0].3 > 0.99);
        let inverted = ended(&run(|l, _| -l));
        assert_eq!(inverted.len(), 1, "{inverted:?}");
        assert!(near(inverted[0]) && inverted[0].3 < -0.99);
    }
}
