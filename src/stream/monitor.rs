//! A stream's judgement: its media clock and all its detectors, behind the one lock of its
//! [`Stream`](super::Stream). It does no I/O and reads no clock: every input carries its time,
//! and every finding leaves as an [`Event`] through the `emit` callback, in order. That makes
//! it testable in process with synthetic statistics and made-up times.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crate::config::DetectorsConfig;
use crate::detect::audio::{AudioDetectors, AudioSummary, Tagged};
use crate::detect::transport::{PlaylistVerdict, ScopedTransition, TransportDetectors};
use crate::detect::video::VideoDetectors;
use crate::detect::{DetectorKind, Sample, Transition};
use crate::events::{DefectEvent, Event, InfoEvent, Scope, StreamState, rfc3339, round_ms};
use crate::frame::{AudioBuffer, VideoFrame};
use crate::stats::FrameStats;

/// Audio waits this long for a first video frame to define media time zero before the stream is
/// taken to be audio-only.
const AUDIO_ONLY_AFTER: Duration = Duration::from_secs(2);

/// Audio buffers held while waiting for media time zero (about 4 s of AAC frames).
const EARLY_AUDIO_BUFFERS: usize = 200;

/// A transport problem older than this no longer explains a failed run.
const PROBLEM_RELEVANCE: Duration = Duration::from_secs(15);

/// Where every event goes, with the video frame that caused it (if any).
pub type Emit<'a> = dyn FnMut(&Event, Option<&VideoFrame>) + 'a;

/// What the monitor is told once and never changes (a changed setting makes a new stream).
#[derive(Clone, Debug)]
pub struct Settings {
    pub stream: String,
    pub detectors: DetectorsConfig,
    /// Defect events name their evidence thumbnail (`/api/events/{id}/evidence`).
    pub evidence_links: bool,
}

/// Media time of one pipeline run: the first buffer's PTS is zero.
#[derive(Default)]
struct MediaClock {
    session: u64,
    base: Option<Duration>,
    first_audio: Option<Duration>,
    last_video: Option<Sample>,
    last_audio: Option<Sample>,
}

pub struct Monitor {
    settings: Settings,
    clock: MediaClock,
    run_started: Instant,
    state: StreamState,
    /// The picture size of the latest frame, to tell a format change.
    picture: Option<(u32, u32)>,
    video: VideoDetectors,
    audio: AudioDetectors,
    transport: TransportDetectors,
    /// Audio that came before media time zero was known (PTS = running time), analysed once it
    /// is: loudness integrates the whole programme, as other meters do.
    early_audio: Vec<AudioBuffer>,
    /// Decoder errors already credited to an analysed frame.
    errors_seen: u64,
    /// Active defects per detector (over channels and variants).
    active: BTreeMap<DetectorKind, usize>,
    /// The latest failure the manifest checks saw, and when: it names the cause that GStreamer
    /// reports as a bare "internal data stream error".
    transport_problem: Option<(Instant, String)>,
}

impl Monitor {
    pub fn new(settings: Settings, now: Instant) -> Self {
        Self {
            video: VideoDetectors::new(&settings.detectors),
            audio: AudioDetectors::new(&settings.detectors),
            transport: TransportDetectors::new(&settings.detectors),
            settings,
            clock: MediaClock::default(),
            run_started: now,
            state: StreamState::Starting,
            picture: None,
            early_audio: Vec::new(),
            errors_seen: 0,
            active: BTreeMap::new(),
            transport_problem: None,
        }
    }

    pub fn state(&self) -> StreamState {
        self.state
    }

    pub fn session(&self) -> u64 {
        self.clock.session
    }

    // ---- pipeline runs ----

    /// A pipeline run begins: media time restarts at zero.
    pub fn begin_run(&mut self, now: Instant, emit: &mut Emit<'_>) -> u64 {
        self.clock = MediaClock {
            session: self.clock.session + 1,
            ..MediaClock::default()
        };
        self.run_started = now;
        self.early_audio.clear();
        if self.state != StreamState::Down {
            self.state = StreamState::Starting;
        }
        emit(&Event::RunStarted, None);
        self.clock.session
    }

    /// A run ended: its active defects close at the last analysed media time, the detectors
    /// start afresh, and the stream is down (with `reason`) or stopped. `at` is now on the
    /// transport clock.
    pub fn end_run(
        &mut self,
        state: StreamState,
        reason: Option<String>,
        at: Sample,
        emit: &mut Emit<'_>,
    ) {
        // Frames still queued or in the engine belong to the old run: a new session id makes
        // them stale.
        self.clock.session += 1;
        let mut transitions = Vec::new();
        if let Some(last) = self.clock.last_video {
            self.video.finish(last, &mut transitions);
        }
        self.video = VideoDetectors::new(&self.settings.detectors);
        self.apply(&transitions, &Scope::default(), None, emit);
        let mut tagged = Vec::new();
        if let Some(last) = self.clock.last_audio {
            self.audio.finish(last, &mut tagged);
        }
        self.audio = AudioDetectors::new(&self.settings.detectors);
        self.apply_tagged(&tagged, emit);
        let mut ended = Vec::new();
        self.transport.end_run(at, &mut ended);
        self.apply_transport(&ended, emit);
        self.state = state;
        emit(&Event::RunEnded { state, reason }, None);
    }

    // ---- media clock (ingest threads) ----

    /// Media time of a buffer PTS in the current run, and the run's session. The first video
    /// frame defines zero; audio that comes before it waits (None), unless the stream turns
    /// out to carry no video at all.
    pub fn media_time(&mut self, pts: Duration, video: bool) -> Option<(u64, Duration)> {
        let clock = &mut self.clock;
        if clock.base.is_none() {
            if video {
                clock.base = Some(pts);
            } else {
                let first = *clock.first_audio.get_or_insert(pts);
                if pts.saturating_sub(first) < AUDIO_ONLY_AFTER {
                    return None;
                }
                clock.base = Some(first);
            }
        }
        let base = clock.base.unwrap_or(pts);
        Some((clock.session, pts.saturating_sub(base)))
    }

    /// Keeps an audio buffer that came before media time zero (its PTS is the running time).
    pub fn hold_audio(&mut self, buffer: AudioBuffer) {
        if self.early_audio.len() < EARLY_AUDIO_BUFFERS {
            self.early_audio.push(buffer);
        }
    }

    /// A video frame as the decoder hands it over (before the engine).
    pub fn on_video_arrival(&mut self, at: Sample, emit: &mut Emit<'_>) {
        let mut tagged = Vec::new();
        self.audio.on_video_arrival(at, &mut tagged);
        self.apply_tagged(&tagged, emit);
    }

    /// An audio buffer in media time; the ones held before media time zero go first.
    pub fn on_audio(
        &mut self,
        session: u64,
        buffer: &AudioBuffer,
        wall: SystemTime,
        emit: &mut Emit<'_>,
    ) {
        if !self.early_audio.is_empty() {
            let base = self.clock.base.unwrap_or_default();
            for mut held in std::mem::take(&mut self.early_audio) {
                held.pts = held.pts.saturating_sub(base);
                self.analyse_audio(session, &held, wall, emit);
            }
        }
        self.analyse_audio(session, buffer, wall, emit);
    }

    fn analyse_audio(
        &mut self,
        session: u64,
        buffer: &AudioBuffer,
        wall: SystemTime,
        emit: &mut Emit<'_>,
    ) {
        if self.clock.session != session {
            return;
        }
        let at = Sample {
            media: buffer.pts.as_secs_f64(),
            wall,
        };
        self.clock.last_audio = Some(at);
        let mut tagged = Vec::new();
        self.audio.observe(at, buffer, &mut tagged);
        let rms_dbfs = (!buffer.samples.is_empty())
            .then(|| crate::detect::audio::silence::rms_dbfs(&buffer.samples));
        let levels = self.audio.levels();
        emit(&Event::AudioMeasured { rms_dbfs, levels }, None);
        self.apply_tagged(&tagged, emit);
    }

    // ---- analysed frames (the engine thread) ----

    /// Feeds one analysed frame to the video detectors. Returns false for a frame of an ended
    /// run, which is discarded.
    pub fn on_frame(
        &mut self,
        session: u64,
        frame: &VideoFrame,
        stats: &FrameStats,
        wall: SystemTime,
        now: Instant,
        emit: &mut Emit<'_>,
    ) -> bool {
        if self.clock.session != session {
            return false;
        }
        let at = Sample {
            media: frame.pts.as_secs_f64(),
            wall,
        };
        self.clock.last_video = Some(at);
        let new_errors = frame.decode_errors.saturating_sub(self.errors_seen);
        self.errors_seen = frame.decode_errors;
        let mut transitions = Vec::new();
        let readings = self.video.observe(at, stats, new_errors, &mut transitions);
        self.apply(&transitions, &Scope::default(), Some(frame), emit);
        let mut tagged = Vec::new();
        self.audio.on_video_luma(at, stats.luma_mean(), &mut tagged);
        self.apply_tagged(&tagged, emit);
        self.note_picture(at, frame, now, emit);
        let measured = Event::FrameAnalysed {
            media: at.media,
            wall,
            stats: *stats,
            readings,
        };
        emit(&measured, Some(frame));
        true
    }

    /// The stream comes up with its first frame; a new picture size is a format change.
    fn note_picture(&mut self, at: Sample, frame: &VideoFrame, now: Instant, emit: &mut Emit<'_>) {
        if matches!(self.state, StreamState::Starting | StreamState::Down) {
            self.state = StreamState::Up;
            let up = Event::StreamUp {
                time_to_first_frame: round_ms(now.duration_since(self.run_started).as_secs_f64()),
                width: frame.width,
                height: frame.height,
            };
            emit(&up, Some(frame));
        }
        let size = (frame.width, frame.height);
        if let Some(old) = self.picture.replace(size)
            && old != size
        {
            let info = InfoEvent {
                stream: self.settings.stream.clone(),
                kind: "format_change",
                at: at.media,
                time: rfc3339(at.wall),
                detail: format!("{}x{} -> {}x{}", old.0, old.1, size.0, size.1),
            };
            emit(&Event::Info(info), Some(frame));
        }
    }

    // ---- transport (supervisor watchdog, manifest checks) ----

    /// A watchdog tick of the running pipeline: stall and bitrate. `silence`: time since the
    /// last decoded frame; `input_bytes`: bytes into the demuxer so far.
    pub fn transport_tick(
        &mut self,
        at: Sample,
        now: Instant,
        silence: Duration,
        input_bytes: u64,
        emit: &mut Emit<'_>,
    ) {
        let silence = (self.state == StreamState::Up).then_some(silence);
        let mut out = Vec::new();
        let bitrate = self.transport.tick(at, now, silence, input_bytes, &mut out);
        self.apply_transport(&out, emit);
        if let Some(bps) = bitrate {
            emit(&Event::InputBitrate(bps), None);
        }
    }

    /// One poll of one HLS variant's playlist.
    pub fn observe_playlist(
        &mut self,
        variant: &str,
        at: Sample,
        verdict: &PlaylistVerdict,
        emit: &mut Emit<'_>,
    ) {
        let mut out = Vec::new();
        self.transport
            .observe_playlist(variant, at, verdict, &mut out);
        self.apply_transport(&out, emit);
        let polled = Event::PlaylistPolled {
            variant: variant.to_owned(),
            age: verdict.age,
        };
        emit(&polled, None);
    }

    /// An HLS variant is no longer checked: its defects end.
    pub fn forget_variant(&mut self, variant: &str, at: Sample, emit: &mut Emit<'_>) {
        let mut out = Vec::new();
        self.transport.forget_variant(variant, at, &mut out);
        self.apply_transport(&out, emit);
        emit(&Event::VariantForgotten(variant.to_owned()), None);
    }

    pub fn note_transport_problem(&mut self, problem: &str, now: Instant) {
        self.transport_problem = Some((now, problem.to_owned()));
    }

    /// The reason a run failed, with the transport problem seen shortly before, if any.
    pub fn explain_failure(&self, pipeline_reason: &str, now: Instant) -> String {
        match &self.transport_problem {
            Some((at, problem)) if now.duration_since(*at) < PROBLEM_RELEVANCE => {
                format!("{problem} (pipeline: {pipeline_reason})")
            }
            _ => pipeline_reason.to_owned(),
        }
    }

    // ---- what `scan` reads at the end ----

    /// What the audio detectors measured in this run.
    pub fn audio_summary(&self) -> Option<AudioSummary> {
        self.audio.summary()
    }

    pub fn last_video_media_time(&self) -> Option<f64> {
        self.clock.last_video.map(|s| s.media)
    }

    // ---- transitions into events ----

    fn apply_tagged(&mut self, tagged: &[Tagged], emit: &mut Emit<'_>) {
        for (t, channel) in tagged {
            self.apply(
                std::slice::from_ref(t),
                &Scope::channel(*channel),
                None,
                emit,
            );
        }
    }

    fn apply_transport(&mut self, transitions: &[ScopedTransition], emit: &mut Emit<'_>) {
        for (t, variant) in transitions {
            self.apply(
                std::slice::from_ref(t),
                &Scope::variant(variant.clone()),
                None,
                emit,
            );
        }
    }

    /// Turns detector transitions of one scope into defect events. `frame` caused them (None
    /// for audio and transport).
    fn apply(
        &mut self,
        transitions: &[Transition],
        scope: &Scope,
        frame: Option<&VideoFrame>,
        emit: &mut Emit<'_>,
    ) {
        for t in transitions {
            let event = match *t {
                Transition::Started {
                    detector,
                    start,
                    value,
                    elapsed,
                } => {
                    *self.active.entry(detector).or_default() += 1;
                    let defect = self.defect(detector, start, None, value, scope);
                    Event::DefectStarted { defect, elapsed }
                }
                Transition::Progress { detector, seconds } => {
                    Event::DefectProgress { detector, seconds }
                }
                Transition::Ended {
                    detector,
                    start,
                    end,
                    value,
                } => {
                    let left = self.active.entry(detector).or_default();
                    *left = left.saturating_sub(1);
                    let detector_still_active = *left > 0;
                    let defect = self.defect(detector, start, Some(end), value, scope);
                    Event::DefectEnded {
                        defect,
                        detector_still_active,
                    }
                }
            };
            emit(&event, frame);
        }
    }

    fn defect(
        &self,
        detector: DetectorKind,
        start: Sample,
        end: Option<Sample>,
        value: f64,
        scope: &Scope,
    ) -> DefectEvent {
        let id = defect_id(&self.settings.stream, detector, start.wall, scope);
        DefectEvent {
            evidence: self
                .settings
                .evidence_links
                .then(|| format!("/api/events/{id}/evidence")),
            id,
            stream: self.settings.stream.clone(),
            detector,
            start: round_ms(start.media),
            end: end.map(|e| round_ms(e.media)),
            duration: end.map(|e| round_ms(e.media - start.media)),
            start_time: rfc3339(start.wall),
            end_time: end.map(|e| rfc3339(e.wall)),
            value,
            channel: scope.channel,
            variant: scope.variant.clone(),
        }
    }
}

/// `<stream>-<detector>-<start, unix ms>`, and the channel or variant: per-channel or
/// per-variant events of one detector may start at the same millisecond.
fn defect_id(stream: &str, detector: DetectorKind, start: SystemTime, scope: &Scope) -> String {
    let ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let id = format!("{stream}-{detector}-{ms}");
    match (&scope.channel, &scope.variant) {
        (Some(ch), _) => format!("{id}-ch{ch}"),
        (None, Some(v)) => format!("{id}-{v}"),
        (None, None) => id,
    }
}
