//! Silence: the RMS level of all channels together (the programme) below a threshold and,
//! while the programme is not silent, each channel on its own (events tagged with the channel).

use crate::config::SilenceConfig;
use crate::detect::audio::ChannelTrackers;
use crate::detect::{DefectTracker, DetectorKind, Sample};
use crate::detect::{Scope, Scoped};
use crate::frame::AudioBuffer;

/// Level reported for digital silence, where the logarithm is undefined.
pub const FLOOR_DBFS: f64 = -200.0;

#[derive(Debug)]
pub struct SilenceDetector {
    config: SilenceConfig,
    pub(super) tracker: DefectTracker,
    channels: ChannelTrackers,
}

impl SilenceDetector {
    pub fn new(config: SilenceConfig) -> Self {
        let tracker = DefectTracker::new(DetectorKind::Silence, config.timing());
        Self {
            channels: ChannelTrackers::new(DetectorKind::Silence, config.timing()),
            config,
            tracker,
        }
    }

    /// `levels` are the buffer's per-channel RMS levels in dBFS; `judged` the channels that
    /// make the programme (the others, an LFE or quiet surrounds, are neither the programme's
    /// level nor reported on their own).
    pub fn observe(&mut self, at: Sample, levels: &[f64], judged: &[usize], out: &mut Vec<Scoped>) {
        if !self.config.enabled || judged.is_empty() {
            return;
        }
        let level = programme_dbfs(levels, judged);
        let silent = level < self.config.threshold_dbfs;
        out.extend(
            self.tracker
                .update(at, silent, level)
                .map(|t| (t, Scope::default())),
        );
        self.channels.follow(at, judged, out);
        // Mono has no channel of its own to report; a silent programme is one event, not one
        // per channel as well, so the channels are not judged while it lasts.
        if !self.config.per_channel || judged.len() < 2 || silent {
            return;
        }
        let threshold = self.config.threshold_dbfs;
        self.channels.update(at, levels, |l| l < threshold, out);
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        out.extend(self.tracker.finish(at).map(|t| (t, Scope::default())));
        self.channels.finish(at, out);
    }
}

/// The level of the judged channels together (their RMS over all their samples), dBFS.
pub fn programme_dbfs(levels: &[f64], judged: &[usize]) -> f64 {
    let powers: Vec<f64> = judged
        .iter()
        .filter_map(|&ch| levels.get(ch))
        .map(|l| 10f64.powf(l / 10.0))
        .collect();
    if powers.is_empty() {
        return FLOOR_DBFS;
    }
    energy_dbfs(powers.iter().sum::<f64>() / powers.len() as f64)
}

/// RMS level in dBFS of each channel of interleaved samples.
pub fn channel_dbfs(buffer: &AudioBuffer) -> Vec<f64> {
    let n = buffer.channels.max(1) as usize;
    let frames = (buffer.samples.len() / n).max(1) as f64;
    channel_square_sums(&buffer.samples, n)
        .into_iter()
        .map(|s| energy_dbfs(s / frames))
        .collect()
}

/// Sum of squares of each channel of interleaved samples (whole frames only). Eight frames
/// are summed side by side and folded per channel at the end: with one chain of dependent
/// additions per channel the loop waited on each addition, and it ran every audio buffer of
/// every stream.
fn channel_square_sums(samples: &[f32], channels: usize) -> Vec<f64> {
    const FRAMES_SIDE_BY_SIDE: usize = 8;
    let whole = &samples[..samples.len() - samples.len() % channels];
    let width = channels * FRAMES_SIDE_BY_SIDE;
    let mut lanes = vec![0.0f64; width];
    let blocks = whole.chunks_exact(width);
    let rest = blocks.remainder();
    for block in blocks {
        for (lane, &s) in lanes.iter_mut().zip(block) {
            *lane += f64::from(s) * f64::from(s);
        }
    }
    let mut sums = vec![0.0f64; channels];
    // `rest` starts on a frame boundary, so sample i of it belongs to channel i % channels.
    for (i, square) in lanes
        .into_iter()
        .chain(rest.iter().map(|&s| f64::from(s) * f64::from(s)))
        .enumerate()
    {
        sums[i % channels] += square;
    }
    sums
}

/// dBFS of a mean square value.
pub fn energy_dbfs(mean_square: f64) -> f64 {
    if mean_square > 0.0 {
        (10.0 * mean_square.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

/// RMS level in dBFS of interleaved samples (full scale = 1.0).
pub fn rms_dbfs(samples: &[f32]) -> f64 {
    let sum = channel_square_sums(samples, 1)[0];
    let rms = (sum / samples.len() as f64).sqrt();
    if rms > 0.0 {
        (20.0 * rms.log10()).max(FLOOR_DBFS)
    } else {
        FLOOR_DBFS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;
    use std::time::Duration;

    fn tone(amplitude: f32) -> AudioBuffer {
        let samples = (0..1024)
            .flat_map(|i| {
                let s = amplitude * (i as f32 * 0.13).sin();
                [s, s]
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

    #[test]
    fn channel_sums_match_a_plain_sum_per_channel_at_any_length() {
        for channels in [1usize, 2, 3, 6, 8] {
            for frames in [0usize, 1, 7, 8, 9, 1023, 1024] {
                // A partial frame at the end is not a frame: it is left out.
                let samples: Vec<f32> = (0..frames * channels + channels / 2)
                    .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                    .collect();
                let mut plain = vec![0.0f64; channels];
                for frame in samples.chunks_exact(channels) {
                    for (sum, &s) in plain.iter_mut().zip(frame) {
                        *sum += f64::from(s) * f64::from(s);
                    }
                }
                let sums = channel_square_sums(&samples, channels);
                for (ch, (a, b)) in sums.iter().zip(&plain).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-9 * b.max(1.0),
                        "{channels} {frames} {ch}: {a} {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn full_scale_sine_is_minus_3_dbfs() {
        let level = rms_dbfs(&tone(1.0).samples);
        assert!((level + 3.01).abs() < 0.05, "{level}");
        assert_eq!(rms_dbfs(&[0.0; 16]), FLOOR_DBFS);
    }

    #[test]
    fn silence_between_tones_is_one_event() {
        let mut d = SilenceDetector::new(SilenceConfig::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..400 {
            let t = i as f64 * step;
            let buf = if (2.0..5.0).contains(&t) {
                tone(0.0005)
            } else {
                tone(0.1)
            };
            d.observe(Sample::at(t), &channel_dbfs(&buf), &[0, 1], &mut out);
        }
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        let (Transition::Ended { start, end, .. }, Scope { channel: None, .. }) = &out[1] else {
            panic!("{out:?}")
        };
        assert!((start.media - 2.0).abs() <= step && (end.media - 5.0).abs() <= step);
    }

    #[test]
    fn a_silent_channel_is_reported_with_its_number() {
        let mut d = SilenceDetector::new(SilenceConfig::default());
        let mut out = Vec::new();
        let step = 1024.0 / 48_000.0;
        for i in 0..400 {
            let t = i as f64 * step;
            let mut buf = tone(0.1);
            if (3.0..6.0).contains(&t) {
                buf.samples
                    .iter_mut()
                    .skip(1)
                    .step_by(2)
                    .for_each(|s| *s = 0.0);
            }
            d.observe(Sample::at(t), &channel_dbfs(&buf), &[0, 1], &mut out);
        }
        d.finish(Sample::at(400.0 * step), &mut out);
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        assert_eq!(out.len(), 2, "{out:?}");
        let (
            Transition::Ended { start, end, .. },
            Scope {
                channel: Some(1), ..
            },
        ) = &out[1]
        else {
            panic!("{out:?}")
        };
        assert!((start.media - 3.0).abs() <= step && (end.media - 6.0).abs() <= step);
    }
}
