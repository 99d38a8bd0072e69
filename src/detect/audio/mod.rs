//! Audio analysis, on the CPU (it is cheap next to video): silence, loudness, clipping, channel
//! faults, audio loss and A/V sync. Each detector owns its settings and a [`DefectTracker`]
//! (or one per channel); transitions are tagged with the channel they concern, if any, which
//! becomes the event's `channel` field (the metrics stay labelled by stream and detector).
//!
//! [`DefectTracker`]: crate::detect::DefectTracker

pub mod channel;
pub mod clipping;
pub mod loss;
pub mod loudness;
mod meter;
pub mod silence;
pub mod sync;

use serde::Serialize;

use crate::config::{ChannelSelection, DetectorsConfig};
use crate::detect::{Sample, Scope, Scoped};
use crate::frame::AudioBuffer;

/// One defect tracker per judged channel, made anew (the open defects ended) when the judged
/// set changes with the layout.
#[derive(Debug)]
pub struct ChannelTrackers {
    detector: crate::detect::DetectorKind,
    timing: crate::config::Timing,
    trackers: Vec<(usize, crate::detect::DefectTracker)>,
}

impl ChannelTrackers {
    pub fn new(detector: crate::detect::DetectorKind, timing: crate::config::Timing) -> Self {
        Self {
            detector,
            timing,
            trackers: Vec::new(),
        }
    }

    /// Follows the judged set; ends the defects of a set that changed.
    pub fn follow(&mut self, at: Sample, judged: &[usize], out: &mut Vec<Scoped>) {
        if self
            .trackers
            .iter()
            .map(|(ch, _)| *ch)
            .eq(judged.iter().copied())
        {
            return;
        }
        self.finish(at, out);
        self.trackers = judged
            .iter()
            .map(|&ch| {
                (
                    ch,
                    crate::detect::DefectTracker::new(self.detector, self.timing),
                )
            })
            .collect();
    }

    /// Feeds each judged channel its level and whether `faulty(level)`.
    pub fn update(
        &mut self,
        at: Sample,
        levels: &[f64],
        faulty: impl Fn(f64) -> bool,
        out: &mut Vec<Scoped>,
    ) {
        for (ch, tracker) in &mut self.trackers {
            let level = levels.get(*ch).copied().unwrap_or(silence::FLOOR_DBFS);
            let t = tracker.update(at, faulty(level), level);
            out.extend(t.map(|t| (t, Scope::channel(*ch as u32))));
        }
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        for (ch, tracker) in &mut self.trackers {
            out.extend(tracker.finish(at).map(|t| (t, Scope::channel(*ch as u32))));
        }
    }
}

/// The latest audio measurements of a stream, for the gauges.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioLevels {
    /// RMS level of each channel of the latest buffer, dBFS.
    pub channel_dbfs: Vec<f64>,
    pub loudness: loudness::Reading,
    pub received_offset: Option<f64>,
    pub measured_offset: Option<f64>,
}

/// What `scan` reports about a stream's audio.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AudioSummary {
    pub channels: u32,
    pub rate: u32,
    /// Integrated loudness (EBU R128) of the whole run, LUFS.
    pub integrated_lufs: Option<f64>,
    /// Highest true peak, dBTP.
    pub true_peak_dbtp: Option<f64>,
    /// Loudness range (EBU Tech 3342), LU.
    pub loudness_range_lu: Option<f64>,
    /// Highest momentary (400 ms) and short-term (3 s) loudness, LUFS.
    pub max_momentary_lufs: Option<f64>,
    pub max_short_term_lufs: Option<f64>,
    /// A/V offsets measured from the sync test signal, one per flash/beep pair, seconds
    /// (positive: audio late).
    pub av_offsets: Vec<f64>,
    /// Smoothed offset between audio and video timestamps as received, seconds.
    pub received_av_offset: Option<f64>,
}

/// The audio detectors of one stream.
#[derive(Debug)]
pub struct AudioDetectors {
    silence: silence::SilenceDetector,
    loudness: loudness::LoudnessDetector,
    clipping: clipping::ClippingDetector,
    channel: channel::ChannelDetector,
    loss: loss::AudioLossDetector,
    sync: sync::AvSyncDetector,
    levels: Vec<f64>,
    format: (u32, u32),
    layout: ChannelLayout,
}

/// The positions of a buffer's channels and the ones the silence and channel detectors judge.
#[derive(Debug, Default)]
struct ChannelLayout {
    selection: ChannelSelection,
    /// (channels, channel-mask) the rest was worked out for.
    key: Option<(u32, Option<u64>)>,
    positions: Option<Vec<&'static str>>,
    judged: Vec<usize>,
    /// The front pair (left, right) judged for fake stereo and inverted phase.
    pair: Option<(usize, usize)>,
}

impl ChannelLayout {
    fn follow(&mut self, buffer: &AudioBuffer) {
        let key = (buffer.channels, buffer.channel_mask);
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        self.positions = crate::media::channel_positions(buffer.channel_mask, buffer.channels);
        let positions = self.positions.as_deref();
        self.judged = self.selection.judged(positions, buffer.channels as usize);
        let index_of = |name: &str| positions.and_then(|p| p.iter().position(|&q| q == name));
        self.pair = match (index_of("FL"), index_of("FR")) {
            (Some(l), Some(r)) if self.judged.contains(&l) && self.judged.contains(&r) => {
                Some((l, r))
            }
            (Some(_), Some(_)) => None,
            _ => (self.judged.len() >= 2).then(|| (self.judged[0], self.judged[1])),
        };
    }

    /// Names the position of the channel of each per-channel transition from `from` on.
    fn name_positions(&self, out: &mut [Scoped], from: usize) {
        let Some(positions) = &self.positions else {
            return;
        };
        for (_, scope) in out.iter_mut().skip(from) {
            if let Some(ch) = scope.channel {
                scope.position = positions.get(ch as usize).copied();
            }
        }
    }
}

impl AudioDetectors {
    pub fn new(config: &DetectorsConfig, channels: &ChannelSelection) -> Self {
        Self {
            silence: silence::SilenceDetector::new(config.silence.clone()),
            loudness: loudness::LoudnessDetector::new(config.loudness.clone()),
            clipping: clipping::ClippingDetector::new(config.clipping.clone()),
            channel: channel::ChannelDetector::new(config.channel.clone()),
            loss: loss::AudioLossDetector::new(config.audio_loss.clone()),
            sync: sync::AvSyncDetector::new(config.av_sync.clone()),
            levels: Vec::new(),
            format: (0, 0),
            layout: ChannelLayout {
                selection: channels.clone(),
                ..ChannelLayout::default()
            },
        }
    }

    /// Feeds one audio buffer; `at` is its start (media time) and arrival (wall-clock).
    pub fn observe(&mut self, at: Sample, buffer: &AudioBuffer, out: &mut Vec<Scoped>) {
        if buffer.samples.is_empty() {
            return;
        }
        self.format = (buffer.channels, buffer.rate);
        let frames = buffer.samples.len() / buffer.channels.max(1) as usize;
        let end = at.media + frames as f64 / f64::from(buffer.rate.max(1));
        self.loss.on_audio(at, end, out);
        self.levels = silence::channel_dbfs(buffer);
        self.layout.follow(buffer);
        let first = out.len();
        let judged = &self.layout.judged;
        self.silence.observe(at, &self.levels, judged, out);
        self.loudness.observe(at, buffer, out);
        self.clipping.observe(at, buffer, out);
        let channels = (judged.as_slice(), self.layout.pair);
        self.channel
            .observe(at, buffer, &self.levels, channels, out);
        self.sync.on_audio(at, buffer, out);
        self.layout.name_positions(out, first);
    }

    /// A video frame as the decoder hands it over (before the engine): media time advances
    /// for the audio-loss check, and its arrival feeds the received A/V offset.
    pub fn on_video_arrival(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        self.sync.on_video_arrival(at);
        self.loss.on_video(at, out);
    }

    /// A video frame's mean luma (0-255), after the engine: flashes of the sync test signal.
    pub fn on_video_luma(&mut self, at: Sample, luma_mean: f64, out: &mut Vec<Scoped>) {
        self.sync.on_luma(at, luma_mean, out);
    }

    pub fn levels(&self) -> AudioLevels {
        AudioLevels {
            channel_dbfs: self.levels.clone(),
            loudness: self.loudness.reading(),
            received_offset: self.sync.received_offset(),
            measured_offset: self.sync.measured_offset(),
        }
    }

    /// None when no audio was seen.
    pub fn summary(&self) -> Option<AudioSummary> {
        (self.format.0 > 0).then(|| AudioSummary {
            channels: self.format.0,
            rate: self.format.1,
            integrated_lufs: self.loudness.integrated().map(round2),
            true_peak_dbtp: self.loudness.max_true_peak().map(round2),
            loudness_range_lu: self.loudness.range().map(round2),
            max_momentary_lufs: self.loudness.max_momentary().map(round2),
            max_short_term_lufs: self.loudness.max_short_term().map(round2),
            av_offsets: self
                .sync
                .measured_offsets()
                .iter()
                .map(|&o| (o * 10_000.0).round() / 10_000.0)
                .collect(),
            received_av_offset: self.sync.received_offset(),
        })
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Scoped>) {
        let first = out.len();
        self.silence.finish(at, out);
        self.loudness.finish(at, out);
        out.extend(
            self.clipping
                .tracker
                .finish(at)
                .map(|t| (t, Scope::default())),
        );
        self.channel.finish(at, out);
        self.loss.finish(at, out);
        self.sync.finish(at, out);
        self.layout.name_positions(out, first);
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
