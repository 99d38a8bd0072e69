//! A/V sync. Always: the offset between audio and video timestamps as received (how much later
//! audio arrives, relative to its timestamps, than video): `streamwatch_av_offset_seconds`.
//! When the stream carries a sync test signal (a white flash frame and a beep, once a second),
//! the true offset from content: beep onset minus flash frame, positive when audio is late.
//! Flashes come from the per-frame luma mean after the engine; beeps from the samples.

use std::collections::VecDeque;

use crate::config::AvSyncConfig;
use crate::detect::{DefectTracker, DetectorKind, Sample};
use crate::detect::{Scope, Scoped};
use crate::frame::AudioBuffer;

/// Rise of the mean luma (0-255) from one frame to the next that marks a flash.
const FLASH_STEP: f64 = 100.0;
/// Sample magnitude of a beep, and the level below which audio counts as quiet before it.
const BEEP_LEVEL: f32 = 0.1;
const QUIET_LEVEL: f32 = 0.01;
/// Quiet needed before a beep onset, seconds (rejects the loud parts of normal programme).
const QUIET_BEFORE_BEEP: f64 = 0.3;
/// Longest rise from the first audible sample to beep level, seconds.
const BEEP_RISE: f64 = 0.01;
/// A flash and a beep further apart than this are not a pair (the signal repeats every second).
const MAX_PAIRING: f64 = 0.5;
/// Unpaired flashes or beeps kept: a minute of the signal.
const PENDING: usize = 60;
/// Received-offset smoothing (exponential moving average weight of a new value).
const SMOOTHING: f64 = 0.05;
/// Content offsets kept for the `scan` report.
const KEPT_OFFSETS: usize = 10_000;

#[derive(Debug)]
pub struct AvSyncDetector {
    config: AvSyncConfig,
    tracker: DefectTracker,
    audio_latency: Option<f64>,
    video_latency: Option<f64>,
    received: Option<f64>,
    prev_luma: Option<f64>,
    flashes: VecDeque<Sample>,
    beeps: VecDeque<f64>,
    last_sound: Option<f64>,
    onset: Option<f64>,
    offsets: Vec<f64>,
    latest: Option<f64>,
}

fn unix(at: &Sample) -> f64 {
    at.wall
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl AvSyncDetector {
    pub fn new(config: AvSyncConfig) -> Self {
        Self {
            tracker: DefectTracker::new(DetectorKind::AvSync, config.timing()),
            config,
            audio_latency: None,
            video_latency: None,
            received: None,
            prev_luma: None,
            flashes: VecDeque::new(),
            beeps: VecDeque::new(),
            last_sound: None,
            onset: None,
            offsets: Vec::new(),
            latest: None,
        }
    }

    /// Smoothed received offset, seconds (positive: audio arrives late for its timestamps).
    pub fn received_offset(&self) -> Option<f64> {
        self.received
    }

    /// Latest offset measured from a flash/beep pair.
    pub fn measured_offset(&self) -> Option<f64> {
        self.latest
    }

    pub fn measured_offsets(&self) -> &[f64] {
        &self.offsets
    }

    fn update_received(&mut self) {
        if let (Some(a), Some(v)) = (self.audio_latency, self.video_latency) {
            let now = a - v;
            self.received = Some(self.received.map_or(now, |r| r + SMOOTHING * (now - r)));
        }
    }

    /// A video frame handed over by the decoder (media time, wall-clock arrival).
    pub fn on_video_arrival(&mut self, at: Sample) {
        self.video_latency = Some(unix(&at) - at.media);
    }

    /// An audio buffer: received offset, then beep onsets.
    pub fn on_audio(&mut self, at: Sample, buffer: &AudioBuffer, out: &mut Vec<Scoped>) {
        self.audio_latency = Some(unix(&at) - at.media);
        self.update_received();
        if !self.config.enabled {
            return;
        }
        let n = buffer.channels.max(1) as usize;
        let rate = f64::from(buffer.rate.max(1));
        let time_of = |i: usize| at.media + i as f64 / rate;
        // Only the first sample of a run of audible ones can be an onset (the one before it is
        // closer than the quiet a beep needs), so while no onset is pending the rest of a run
        // is skipped and `last_sound` is brought up to date where the run is known to end.
        let mut last_audible: Option<usize> = None;
        for (i, frame) in buffer.samples.chunks_exact(n).enumerate() {
            let v = frame.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            if v < QUIET_LEVEL {
                continue;
            }
            let run_start = i == 0 || last_audible != Some(i - 1);
            if run_start && let Some(previous) = last_audible {
                self.last_sound = Some(time_of(previous));
            }
            last_audible = Some(i);
            if !run_start && self.onset.is_none() {
                continue;
            }
            let t = time_of(i);
            // The onset is the first audible sample after quiet; it is a beep if the level
            // reaches a beep's within a few milliseconds.
            if run_start && self.last_sound.is_none_or(|s| t - s >= QUIET_BEFORE_BEEP) {
                self.onset = Some(t);
            }
            if v >= BEEP_LEVEL
                && let Some(onset) = self.onset.take()
                && t - onset <= BEEP_RISE
            {
                self.beeps.push_back(onset);
                self.pair(at, out);
            }
        }
        if let Some(last) = last_audible {
            self.last_sound = Some(time_of(last));
        }
    }

    /// A video frame's mean luma (0-255) after the engine.
    pub fn on_luma(&mut self, at: Sample, luma_mean: f64, out: &mut Vec<Scoped>) {
        let prev = self.prev_luma.replace(luma_mean);
        if !self.config.enabled || prev.is_none_or(|p| luma_mean - p < FLASH_STEP) {
            return;
        }
        self.flashes.push_back(at);
        self.pair(at, out);
    }

    /// Pairs flashes with beeps within reach; drops those that can no longer pair. Audio and
    /// video reach this point at different times (audio from the decoder, video after the
    /// engine), so either may be waiting for the other.
    fn pair(&mut self, now: Sample, out: &mut Vec<Scoped>) {
        while let Some(&flash) = self.flashes.front() {
            let Some(pos) = self
                .beeps
                .iter()
                .position(|&b| (b - flash.media).abs() <= MAX_PAIRING)
            else {
                let newest_beep = self.beeps.back().copied().unwrap_or(f64::NEG_INFINITY);
                if newest_beep > flash.media + MAX_PAIRING {
                    self.flashes.pop_front();
                    continue;
                }
                break;
            };
            let beep = self.beeps[pos];
            self.beeps.drain(..=pos);
            self.flashes.pop_front();
            let offset = beep - flash.media;
            self.latest = Some(offset);
            if self.offsets.len() < KEPT_OFFSETS {
                self.offsets.push(offset);
            }
            let at = Sample {
                media: flash.media,
                wall: now.wall,
            };
            let bad = offset.abs() > self.config.max_offset;
            out.extend(
                self.tracker
                    .update(at, bad, offset)
                    .map(|t| (t, Scope::default())),
            );
        }
        // Beeps long before every pending flash have lost their partner. Others wait: audio
        // may be decoded seconds ahead of the video the engine has analysed.
        let oldest_flash = self.flashes.front().map(|f| f.media);
        while let Some(&b) = self.beeps.front() {
            if oldest_flash.is_some_and(|f| b < f - MAX_PAIRING) || self.beeps.len() > PENDING {
                self.beeps.pop_front();
            } else {
                break;
            }
        }
        while self.flashes.len() > PENDING {
            self.flashes.pop_front();
        }
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        out.extend(self.tracker.finish(at).map(|t| (t, Scope::default())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;
    use std::time::Duration;

    /// 10 s: a flash frame at every whole second (25 fps), a 1 kHz beep of 80 ms `offset`
    /// seconds later. Audio is fed ahead of video by `audio_lead` seconds, as from a decoder
    /// running ahead of the engine.
    fn run(offset: f64, audio_lead: f64) -> (AvSyncDetector, Vec<Scoped>) {
        let mut d = AvSyncDetector::new(AvSyncConfig::default());
        let mut out = Vec::new();
        let rate = 48_000usize;
        let n = 960;
        let mut next_audio = 0usize;
        // Past the last frame, the rest of the audio (10 s in all) comes in.
        for frame in 0..251 {
            let tv = if frame < 250 {
                frame as f64 / 25.0
            } else {
                10.0
            };
            while (next_audio * n) as f64 / rate as f64 <= (tv + audio_lead).min(10.0)
                || (frame == 250 && next_audio * n < 10 * rate)
            {
                let t0 = (next_audio * n) as f64 / rate as f64;
                let samples = (0..n)
                    .map(|i| {
                        let t = t0 + i as f64 / rate as f64;
                        let phase = (t - offset).rem_euclid(1.0);
                        if t >= offset && phase < 0.08 {
                            0.5 * (std::f64::consts::TAU * 1000.0 * phase).sin() as f32
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let buf = AudioBuffer {
                    channels: 1,
                    channel_mask: None,
                    rate: rate as u32,
                    samples,
                    pts: Duration::from_secs_f64(t0),
                };
                d.on_audio(Sample::at(t0), &buf, &mut out);
                next_audio += 1;
            }
            if frame < 250 {
                let luma = if frame % 25 == 0 { 235.0 } else { 40.0 };
                d.on_luma(Sample::at(tv), luma, &mut out);
            }
        }
        d.finish(Sample::at(10.0), &mut out);
        out.retain(|(t, _)| !matches!(t, Transition::Progress { .. }));
        (d, out)
    }

    #[test]
    fn offsets_are_measured_whichever_track_comes_first() {
        for offset in [0.0, 0.08, 0.2, -0.2] {
            for lead in [0.0, 0.6, 3.5, -0.3, -2.5] {
                let (d, _) = run(offset, lead);
                let got = d.measured_offsets();
                // The first flash (t = 0) is no edge: luma has no previous frame.
                assert!(got.len() >= 8, "{offset} {lead}: {got:?}");
                for g in got {
                    assert!((g - offset).abs() < 0.002, "{offset} {lead}: {got:?}");
                }
            }
        }
    }

    #[test]
    fn only_offsets_beyond_the_limit_are_defects() {
        assert!(run(0.08, 0.5).1.is_empty());
        let (_, out) = run(0.2, 0.5);
        assert_eq!(out.len(), 2, "{out:?}");
        let (_, out) = run(-0.2, 0.5);
        assert_eq!(out.len(), 2, "{out:?}");
    }

    /// Beep onsets need 0.3 s of quiet before them and a rise within 10 ms, wherever the
    /// buffers split the audio: runs of sound are skipped through, not measured per sample.
    #[test]
    fn beep_onsets_do_not_depend_on_buffer_boundaries() {
        let rate = 48_000usize;
        let level = |t: f64| -> f32 {
            match t {
                t if t < 1.0 => 0.5,   // sound from the start: an onset, at full level
                t if t < 1.2 => 0.0,   // 0.2 s of quiet: too short
                t if t < 1.5 => 0.5,   // so no onset here
                t if t < 2.0 => 0.0,   // 0.5 s of quiet
                t if t < 2.5 => 0.5,   // a beep at 2.0
                t if t < 3.0 => 0.0,   // quiet
                t if t < 3.02 => 0.02, // audible, but beep level comes after 20 ms: no beep
                t if t < 3.5 => 0.5,
                _ => 0.0,
            }
        };
        let signal: Vec<f32> = (0..4 * rate)
            .map(|i| level(i as f64 / rate as f64))
            .collect();
        for size in [1, 7, 960, 1023, 48_000] {
            let mut d = AvSyncDetector::new(AvSyncConfig::default());
            let mut out = Vec::new();
            for (k, chunk) in signal.chunks(size).enumerate() {
                let t0 = (k * size) as f64 / rate as f64;
                let buf = AudioBuffer {
                    channels: 1,
                    channel_mask: None,
                    rate: rate as u32,
                    samples: chunk.to_vec(),
                    pts: Duration::from_secs_f64(t0),
                };
                d.on_audio(Sample::at(t0), &buf, &mut out);
            }
            let beeps: Vec<f64> = d.beeps.iter().copied().collect();
            assert_eq!(beeps.len(), 2, "buffers of {size}: {beeps:?}");
            assert!(beeps[0].abs() < 1e-9, "buffers of {size}: {beeps:?}");
            assert!(
                (beeps[1] - 2.0).abs() < 1e-4,
                "buffers of {size}: {beeps:?}"
            );
            let last = d.last_sound.expect("sound heard");
            assert!(
                (last - (3.5 - 1.0 / rate as f64)).abs() < 1e-6,
                "{size}: {last}"
            );
        }
    }
}
