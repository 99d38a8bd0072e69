//! A stream's judgement: its media clock and all its detectors, behind the one lock of its
//! [`Stream`](super::Stream). It does no I/O and reads no clock: every input carries its time,
//! and every finding leaves as an [`Event`] through the `emit` callback, in order. That makes
//! it testable in process with synthetic statistics and made-up times.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{AnalysisTier, ChannelSelection, DetectorsConfig};
use crate::detect::audio::{AudioDetectors, AudioSummary};
use crate::detect::captions::{CaptionBytes, CaptionsDetector};
use crate::detect::transport::psi::Program;
use crate::detect::transport::tr101290::{CONTINUITY_COUNT_ERROR, IndicatorErrors, TsFindings};
use crate::detect::transport::{PlaylistVerdict, TransportDetectors};
use crate::detect::video::{Decoded, VideoDetectors};
use crate::detect::{DetectorKind, Sample, Scoped, Transition};
use crate::events::{DefectEvent, Event, InfoEvent, Scope, StreamState, rfc3339, round_ms};
use crate::frame::{AudioBuffer, VideoFrame};
use crate::media::{Carried, MediaFormat};
use crate::stats::FrameStats;

/// Audio waits this long for a first video frame to define media time zero before the stream is
/// taken to be audio-only.
const AUDIO_ONLY_AFTER: Duration = Duration::from_secs(2);

/// Audio buffers held while waiting for media time zero (about 4 s of AAC frames).
const EARLY_AUDIO_BUFFERS: usize = 200;

/// A transport problem older than this no longer explains a failed run.
const PROBLEM_RELEVANCE: Duration = Duration::from_secs(15);

/// A configured program must be listed by a program table this soon after a run starts (PATs
/// repeat every 100 ms or so; a few seconds cover a slow start).
const PROGRAM_WAIT: Duration = Duration::from_secs(3);

/// Where every event goes, with the video frame that caused it (if any).
pub type Emit<'a> = dyn FnMut(&Event, Option<&VideoFrame>) + 'a;

/// What the monitor is told once and never changes (a changed setting makes a new stream).
#[derive(Clone, Debug)]
pub struct Settings {
    pub stream: String,
    pub detectors: DetectorsConfig,
    /// Defect events name their evidence thumbnail (`/api/events/{id}/evidence`).
    pub evidence_links: bool,
    /// The MPEG-TS program to monitor (`program` in the config).
    pub program: Option<u16>,
    /// The audio channels the silence and channel detectors judge.
    pub channels: ChannelSelection,
}

/// Media time of one pipeline run: the first buffer's PTS is zero.
#[derive(Default)]
struct MediaClock {
    session: u64,
    base: Option<Duration>,
    /// Added to every PTS once a looped file was rewound: the flushing seek restarts running
    /// time at zero, and media time must continue where the previous pass ended, so the
    /// detectors see one monotonic timeline and no gap or jump at the loop point.
    loop_offset: Duration,
    /// A file was rewound: the next buffer re-anchors `loop_offset`.
    rewound: bool,
    /// The latest video media time handed out, and the spacing of the last two frames (the
    /// step the first frame of the next pass comes after).
    last_media: Option<Duration>,
    frame_interval: Option<Duration>,
    first_audio: Option<Duration>,
    last_video: Option<Sample>,
    last_audio: Option<Sample>,
}

/// Step between the last frame of a pass and the first of the next when the frame rate is not
/// known yet (a file shorter than two frames): one frame at 25 fps.
const LOOP_STEP: Duration = Duration::from_millis(40);

pub struct Monitor {
    settings: Settings,
    clock: MediaClock,
    run_started: Instant,
    state: StreamState,
    /// The picture size of the latest frame, to tell a format change.
    picture: Option<(u32, u32)>,
    /// Codecs and layouts as the caps told them (kept across runs: a restart in a new format
    /// is a format change).
    format: MediaFormat,
    /// The media of the current run.
    carried: Carried,
    /// The programs of the current run's transport stream, once its PAT is read, and the one
    /// monitored.
    programs: Option<(Vec<Program>, Option<u16>)>,
    video: VideoDetectors,
    audio: AudioDetectors,
    transport: TransportDetectors,
    captions: CaptionsDetector,
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
    /// The analysis tier of the latest analysed frame of this run.
    tier: Option<AnalysisTier>,
}

impl Monitor {
    pub fn new(settings: Settings, now: Instant) -> Self {
        Self {
            video: VideoDetectors::new(&settings.detectors),
            audio: AudioDetectors::new(&settings.detectors, &settings.channels),
            transport: TransportDetectors::new(&settings.detectors),
            captions: CaptionsDetector::new(&settings.detectors.captions),
            settings,
            clock: MediaClock::default(),
            run_started: now,
            state: StreamState::Starting,
            picture: None,
            format: MediaFormat::default(),
            carried: Carried::default(),
            programs: None,
            early_audio: Vec::new(),
            errors_seen: 0,
            active: BTreeMap::new(),
            transport_problem: None,
            tier: None,
        }
    }

    pub fn state(&self) -> StreamState {
        self.state
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
        self.programs = None;
        if self.state != StreamState::Down {
            self.state = StreamState::Starting;
        }
        emit(&Event::RunStarted, None);
        if self.carried != Carried::default() {
            self.carried = Carried::default();
            emit(&Event::MediaCarried(self.carried), None);
        }
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
        self.captions.end_run(&mut transitions);
        self.video = VideoDetectors::new(&self.settings.detectors);
        self.tier = None;
        self.apply(&transitions, &Scope::default(), None, emit);
        let mut tagged = Vec::new();
        if let Some(last) = self.clock.last_audio {
            self.audio.finish(last, &mut tagged);
        }
        self.audio = AudioDetectors::new(&self.settings.detectors, &self.settings.channels);
        self.apply_scoped(&tagged, emit);
        let mut ended = Vec::new();
        self.transport.end_run(at, &mut ended);
        self.apply_scoped(&ended, emit);
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
        if std::mem::take(&mut clock.rewound) {
            let step = clock.frame_interval.unwrap_or(LOOP_STEP);
            let resume = clock.last_media.map_or(Duration::ZERO, |m| m + step);
            // media = pts + offset - base, and the first buffer of the new pass is `resume`.
            clock.loop_offset = (resume + base).saturating_sub(pts);
        }
        let media = (pts + clock.loop_offset).saturating_sub(base);
        if video {
            if let Some(prev) = clock.last_media.filter(|&p| media > p) {
                clock.frame_interval = Some(media - prev);
            }
            clock.last_media = Some(media);
        }
        Some((clock.session, media))
    }

    /// A looped file was rewound to its start (its running time restarts at zero).
    pub fn rewound(&mut self) {
        self.clock.rewound = true;
    }

    /// Keeps an audio buffer that came before media time zero (its PTS is the running time).
    pub fn hold_audio(&mut self, buffer: AudioBuffer) {
        if self.early_audio.len() < EARLY_AUDIO_BUFFERS {
            self.early_audio.push(buffer);
        }
    }

    /// A video frame as the decoder hands it over (before the engine), with the caption
    /// bytes of the coded pictures it covers (those up to its PTS not yet judged).
    pub fn on_video_arrival(&mut self, at: Sample, captions: &CaptionBytes, emit: &mut Emit<'_>) {
        self.carry(true, false, emit);
        let mut tagged = Vec::new();
        self.audio.on_video_arrival(at, &mut tagged);
        self.apply_scoped(&tagged, emit);
        let mut transitions = Vec::new();
        let rates = self.captions.observe(at, captions, &mut transitions);
        self.apply(&transitions, &Scope::default(), None, emit);
        if let Some(rates) = rates {
            emit(&Event::Captions(rates), None);
        }
    }

    /// An audio buffer in media time; the ones held before media time zero go first.
    pub fn on_audio(
        &mut self,
        session: u64,
        buffer: &AudioBuffer,
        (wall, now): (SystemTime, Instant),
        emit: &mut Emit<'_>,
    ) {
        if !self.early_audio.is_empty() {
            let base = self.clock.base.unwrap_or_default();
            for mut held in std::mem::take(&mut self.early_audio) {
                held.pts = held.pts.saturating_sub(base);
                self.analyse_audio(session, &held, (wall, now), emit);
            }
        }
        self.analyse_audio(session, buffer, (wall, now), emit);
    }

    fn analyse_audio(
        &mut self,
        session: u64,
        buffer: &AudioBuffer,
        (wall, now): (SystemTime, Instant),
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
        self.carry(false, true, emit);
        if !self.carried.video && matches!(self.state, StreamState::Starting | StreamState::Down) {
            self.audio_only_up(now, emit);
        }
        let mut tagged = Vec::new();
        self.audio.observe(at, buffer, &mut tagged);
        let rms_dbfs = (!buffer.samples.is_empty())
            .then(|| crate::detect::audio::silence::rms_dbfs(&buffer.samples));
        let levels = self.audio.levels();
        emit(&Event::AudioMeasured { rms_dbfs, levels }, None);
        self.apply_scoped(&tagged, emit);
    }

    /// An audio-only stream is up with its first analysed audio (it has no picture size).
    fn audio_only_up(&mut self, now: Instant, emit: &mut Emit<'_>) {
        self.state = StreamState::Up;
        let up = Event::StreamUp {
            time_to_first_frame: round_ms(now.duration_since(self.run_started).as_secs_f64()),
            width: 0,
            height: 0,
        };
        emit(&up, None);
    }

    // ---- what the stream carries (ingest threads) ----

    /// Notes media the run carries (a decoder created, a first buffer).
    fn carry(&mut self, video: bool, audio: bool, emit: &mut Emit<'_>) {
        let carried = Carried {
            video: self.carried.video || video,
            audio: self.carried.audio || audio,
        };
        if carried != self.carried {
            self.carried = carried;
            emit(&Event::MediaCarried(carried), None);
        }
    }

    pub fn carried(&self) -> Carried {
        self.carried
    }

    /// What caps told about the format. A known value changing (codec, layout, rate) is a
    /// `format_change` info event, as a new picture size is; `wall` is now.
    pub fn on_format(&mut self, update: &MediaFormat, wall: SystemTime, emit: &mut Emit<'_>) {
        self.carry(update.video.is_some(), update.audio.is_some(), emit);
        let before = self.format.clone();
        let mut changes = self.format.merge(&MediaFormat {
            video: update.video.clone(),
            audio: None,
        });
        if !changes.is_empty() {
            self.video.relearn();
        }
        changes.extend(self.format.merge(&MediaFormat {
            video: None,
            audio: update.audio.clone(),
        }));
        let video = self.format.video.as_ref();
        self.video
            .set_declared_fps(video.and_then(|v| v.frame_rate));
        if self.format == before {
            return;
        }
        if !changes.is_empty() {
            let info = InfoEvent {
                stream: self.settings.stream.clone(),
                kind: "format_change",
                at: round_ms(self.last_media_time().unwrap_or(0.0)),
                time: rfc3339(wall),
                detail: changes.join(", "),
            };
            emit(&Event::Info(info), None);
        }
        emit(&Event::FormatKnown(self.format.clone()), None);
    }

    /// The transport stream's programs (a new PAT, PMT or SDT content), and the one monitored.
    pub fn on_programs(
        &mut self,
        programs: Vec<Program>,
        selected: Option<u16>,
        emit: &mut Emit<'_>,
    ) {
        let event = Event::Programs {
            programs: programs.clone(),
            selected,
        };
        self.programs = Some((programs, selected));
        emit(&event, None);
    }

    /// Why the run cannot deliver its program: the configured (or chosen) one is not in the
    /// transport stream's program table, or no table came within `PROGRAM_WAIT`.
    pub fn program_problem(&self, now: Instant) -> Option<String> {
        if let Some(missing) = self.missing_program() {
            return Some(missing);
        }
        let wanted = self.settings.program?;
        (self.programs.is_none() && now.duration_since(self.run_started) >= PROGRAM_WAIT).then(
            || {
                format!(
                    "program {wanted} not found: no MPEG-TS program table (PAT) within {} s",
                    PROGRAM_WAIT.as_secs()
                )
            },
        )
    }

    /// The program followed is not in the program table read in this run.
    fn missing_program(&self) -> Option<String> {
        let (programs, selected) = self.programs.as_ref()?;
        let wanted = selected.or(self.settings.program)?;
        if programs.iter().any(|p| p.number == wanted) {
            return None;
        }
        let present: Vec<String> = programs.iter().map(|p| p.number.to_string()).collect();
        Some(format!(
            "program {wanted} not in the transport stream; programs present: {}",
            if present.is_empty() {
                "none".to_owned()
            } else {
                present.join(", ")
            }
        ))
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
        self.follow_tier(frame.tier, at, &mut transitions, emit);
        let decoded = Decoded {
            errors: new_errors,
            keyframe: frame.keyframe,
        };
        let readings = self.video.observe(at, stats, decoded, &mut transitions);
        self.apply(&transitions, &Scope::default(), Some(frame), emit);
        if self.video.every_frame() {
            // Flash timing needs the frame before each one.
            let mut tagged = Vec::new();
            self.audio.on_video_luma(at, stats.luma_mean(), &mut tagged);
            self.apply_scoped(&tagged, emit);
        }
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

    /// The detectors follow the tier the frames were decoded in; a change within a run (load
    /// shedding) is an info event.
    fn follow_tier(
        &mut self,
        tier: AnalysisTier,
        at: Sample,
        transitions: &mut Vec<Transition>,
        emit: &mut Emit<'_>,
    ) {
        let previous = self.tier.replace(tier);
        if previous == Some(tier) {
            return;
        }
        self.video.set_tier(tier, at, transitions);
        emit(&Event::AnalysisTier(tier), None);
        // The first frame of a run only tells the gauge.
        if let Some(previous) = previous {
            let info = InfoEvent {
                stream: self.settings.stream.clone(),
                kind: "analysis_tier",
                at: at.media,
                time: rfc3339(at.wall),
                detail: format!("{} -> {}", previous.as_str(), tier.as_str()),
            };
            emit(&Event::Info(info), None);
        }
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
        self.apply_scoped(&out, emit);
        if let Some(bps) = bitrate {
            emit(&Event::InputBitrate(bps), None);
        }
    }

    /// What one buffer entering the demuxer showed: TR 101 290 errors, SCTE-35 cues and the
    /// ad break's changes.
    pub fn on_ts_findings(&mut self, at: Sample, found: TsFindings, emit: &mut Emit<'_>) {
        let mut out = Vec::new();
        if !found.cues.is_empty() {
            self.transport.note_cues(at, &mut out);
        }
        self.transport.observe_breaks(at, &found.breaks, &mut out);
        self.apply_scoped(&out, emit);
        for cue in found.cues {
            emit(&Event::Scte35Cue(cue), None);
        }
        for change in found.breaks {
            emit(&Event::AdBreak(change), None);
        }
        if !found.errors.is_empty() {
            self.on_ts_errors(at, found.errors, emit);
        }
    }

    fn on_ts_errors(&mut self, at: Sample, errors: Vec<IndicatorErrors>, emit: &mut Emit<'_>) {
        let mut out = Vec::new();
        self.transport.observe_ts_errors(at, &errors, &mut out);
        self.apply_scoped(&out, emit);
        let lost: u64 = errors
            .iter()
            .filter(|e| e.indicator == CONTINUITY_COUNT_ERROR)
            .map(|e| e.count)
            .sum();
        if lost > 0 {
            emit(&Event::TsContinuityErrors(lost), None);
        }
        emit(&Event::TsErrors(errors), None);
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
        self.apply_scoped(&out, emit);
        for cue in &verdict.cues {
            emit(&Event::Scte35Cue(cue.clone()), None);
        }
        for change in &verdict.breaks {
            emit(&Event::AdBreak(change.clone()), None);
        }
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
        self.apply_scoped(&out, emit);
        emit(&Event::VariantForgotten(variant.to_owned()), None);
    }

    pub fn note_transport_problem(&mut self, problem: &str, now: Instant) {
        self.transport_problem = Some((now, problem.to_owned()));
    }

    /// The reason a run failed, with the transport problem seen shortly before, if any.
    pub fn explain_failure(&self, pipeline_reason: &str, now: Instant) -> String {
        // A demuxer that found no program to play says only that ("no program activated").
        if let Some(missing) = self.missing_program() {
            return if pipeline_reason == missing {
                missing
            } else {
                format!("{missing} (pipeline: {pipeline_reason})")
            };
        }
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

    /// The latest media time of either kind (audio-only streams have no video time).
    pub fn last_media_time(&self) -> Option<f64> {
        let (v, a) = (self.clock.last_video, self.clock.last_audio);
        match (v, a) {
            (Some(v), Some(a)) => Some(v.media.max(a.media)),
            _ => v.or(a).map(|s| s.media),
        }
    }

    // ---- transitions into events ----

    fn apply_scoped(&mut self, scoped: &[Scoped], emit: &mut Emit<'_>) {
        for (t, scope) in scoped {
            self.apply(std::slice::from_ref(t), scope, None, emit);
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
            channel_position: scope.position,
            variant: scope.variant.clone(),
            priority: scope.priority,
            rule: scope.rule,
            indicators: scope.indicators.clone(),
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
    match (&scope.channel, &scope.variant, scope.priority) {
        (Some(ch), _, _) => format!("{id}-ch{ch}"),
        (None, Some(v), _) => format!("{id}-{v}"),
        (None, None, Some(p)) => format!("{id}-p{p}"),
        (None, None, None) => match scope.rule {
            Some(rule) => format!("{id}-{rule}"),
            None => id,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::cpu::frame_stats_cpu;

    /// Settings of stream `s` with default detectors, following `program`.
    fn test_settings(program: Option<u16>) -> Settings {
        Settings {
            stream: "s".into(),
            detectors: DetectorsConfig::default(),
            evidence_links: false,
            program,
            channels: ChannelSelection::default(),
        }
    }

    const FPS: f64 = 25.0;
    const WIDTH: u32 = 64;
    const HEIGHT: u32 = 36;

    /// A picture of pseudo-random noise, new every frame: detailed, moving, never dark.
    fn noise(n: u64, width: u32, height: u32) -> Vec<u8> {
        let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..width * height)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                64 + (x % 160) as u8
            })
            .collect()
    }

    /// Feeds frames to a monitor the way the engine does, on a made-up clock, and keeps every
    /// event it emits.
    struct Harness {
        monitor: Monitor,
        session: u64,
        frames: u64,
        prev: Option<VideoFrame>,
        origin: Instant,
        wall: SystemTime,
        events: Vec<Event>,
    }

    impl Harness {
        fn new() -> Self {
            let origin = Instant::now();
            let mut monitor = Monitor::new(test_settings(None), origin);
            let mut events = Vec::new();
            let session = monitor.begin_run(origin, &mut |e, _| events.push(e.clone()));
            Self {
                monitor,
                session,
                frames: 0,
                prev: None,
                origin,
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                events,
            }
        }

        fn media(&self) -> Duration {
            Duration::from_secs_f64(self.frames as f64 / FPS)
        }

        /// One frame at the next media time: noise, or black; `size` overrides the picture size.
        fn frame(&mut self, black: bool, size: Option<(u32, u32)>) -> bool {
            let (w, h) = size.unwrap_or((WIDTH, HEIGHT));
            let plane = if black {
                vec![16; (w * h) as usize]
            } else {
                noise(self.frames, w, h)
            };
            let pts = self.media();
            let frame = VideoFrame::from_plane(w, h, &plane, w as usize, pts, self.origin)
                .expect("whole plane");
            let params = VideoDetectors::stat_params(&self.monitor.settings.detectors);
            let stats = frame_stats_cpu(&frame, self.prev.as_ref(), params);
            let (wall, now) = (self.wall + pts, self.origin + pts);
            let events = &mut self.events;
            let accepted =
                self.monitor
                    .on_frame(self.session, &frame, &stats, wall, now, &mut |e, _| {
                        events.push(e.clone())
                    });
            self.prev = Some(frame);
            self.frames += 1;
            accepted
        }

        fn seconds(&mut self, seconds: f64, black: bool) {
            for _ in 0..(seconds * FPS).round() as u64 {
                self.frame(black, None);
            }
        }

        fn end_run(&mut self, state: StreamState, reason: &str) {
            let events = &mut self.events;
            let at = Sample::at(100.0);
            self.monitor
                .end_run(state, Some(reason.into()), at, &mut |e, _| {
                    events.push(e.clone())
                });
        }

        /// Defect edges as (started?, detector, start, end).
        fn defects(&self) -> Vec<(bool, DetectorKind, f64, Option<f64>)> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Event::DefectStarted { defect, .. } => {
                        Some((true, defect.detector, defect.start, defect.end))
                    }
                    Event::DefectEnded { defect, .. } => {
                        Some((false, defect.detector, defect.start, defect.end))
                    }
                    _ => None,
                })
                .collect()
        }
    }

    #[test]
    fn a_black_stretch_is_one_defect_dated_to_its_first_and_last_frame() {
        let mut h = Harness::new();
        h.seconds(4.0, false);
        h.seconds(3.0, true);
        h.seconds(4.0, false);
        assert_eq!(
            h.defects(),
            [
                (true, DetectorKind::Black, 4.0, None),
                (false, DetectorKind::Black, 4.0, Some(7.0)),
            ]
        );
        let ups = h
            .events
            .iter()
            .filter(|e| matches!(e, Event::StreamUp { .. }))
            .count();
        assert_eq!(ups, 1, "the stream comes up once");
        let frames = h
            .events
            .iter()
            .filter(|e| matches!(e, Event::FrameAnalysed { .. }))
            .count();
        assert_eq!(frames, 275);
    }

    #[test]
    fn ending_a_run_closes_its_defects_and_makes_its_frames_stale() {
        let mut h = Harness::new();
        h.seconds(2.0, false);
        h.seconds(3.0, true);
        h.end_run(StreamState::Down, "gone");
        let last = h.defects().pop().expect("an ended defect");
        assert_eq!(last, (false, DetectorKind::Black, 2.0, Some(4.96)));
        assert!(matches!(
            h.events.last(),
            Some(Event::RunEnded {
                state: StreamState::Down,
                ..
            })
        ));
        assert_eq!(h.monitor.state(), StreamState::Down);
        let before = h.events.len();
        assert!(!h.frame(false, None), "a frame of the ended run is decided");
        assert_eq!(h.events.len(), before);
    }

    #[test]
    fn a_new_picture_size_is_an_info_event() {
        let mut h = Harness::new();
        h.seconds(1.0, false);
        h.frame(false, Some((32, 18)));
        let info: Vec<&InfoEvent> = h
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Info(i) => Some(i),
                _ => None,
            })
            .collect();
        assert_eq!(info.len(), 1);
        assert_eq!(info[0].detail, "64x36 -> 32x18");
        assert_eq!(info[0].at, 1.0);
    }

    #[test]
    fn a_stall_needs_a_stream_that_was_up() {
        let mut h = Harness::new();
        let origin = h.origin;
        let tick = |h: &mut Harness, t: f64, silence: f64| {
            let at = Sample::at(t);
            let now = origin + Duration::from_secs_f64(t);
            let events = &mut h.events;
            h.monitor
                .transport_tick(at, now, Duration::from_secs_f64(silence), 0, &mut |e, _| {
                    events.push(e.clone())
                });
        };
        tick(&mut h, 5.0, 5.0);
        assert!(h.defects().is_empty(), "starting is not stalled");
        h.seconds(1.0, false);
        tick(&mut h, 10.0, 3.0);
        let defects = h.defects();
        assert_eq!(defects.len(), 1, "{defects:?}");
        assert_eq!((defects[0].0, defects[0].1), (true, DetectorKind::Stall));
        assert_eq!(defects[0].2, 7.0, "back-dated to the last frame");
    }

    #[test]
    fn silent_channels_are_defects_of_their_own_scope() {
        let mut h = Harness::new();
        h.seconds(0.2, false);
        let wall = h.wall;
        let session = h.session;
        for n in 0..250u32 {
            // Left carries a tone, right is silent.
            let samples = (0..960)
                .flat_map(|i| [((i as f32) * 0.05).sin() * 0.3, 0.0])
                .collect();
            let buffer = AudioBuffer {
                channels: 2,
                channel_mask: None,
                rate: 48_000,
                samples,
                pts: Duration::from_millis(20 * u64::from(n)),
            };
            let events = &mut h.events;
            h.monitor
                .on_audio(session, &buffer, (wall, h.origin), &mut |e, _| {
                    events.push(e.clone())
                });
        }
        let silent: Vec<&DefectEvent> = h
            .events
            .iter()
            .filter_map(|e| match e {
                Event::DefectStarted { defect, .. } if defect.detector == DetectorKind::Silence => {
                    Some(defect)
                }
                _ => None,
            })
            .collect();
        assert_eq!(silent.len(), 1, "{silent:?}");
        assert_eq!(silent[0].channel, Some(1));
        assert!(silent[0].id.ends_with("-ch1"), "{}", silent[0].id);
    }

    fn tone(n: u64) -> AudioBuffer {
        AudioBuffer {
            channels: 1,
            channel_mask: None,
            rate: 48_000,
            samples: (0..960).map(|i| ((i as f32) * 0.05).sin() * 0.3).collect(),
            pts: Duration::from_millis(20 * n),
        }
    }

    fn feed_audio(h: &mut Harness, buffers: u64) {
        let (session, wall, now) = (h.session, h.wall, h.origin);
        for n in 0..buffers {
            let events = &mut h.events;
            h.monitor
                .on_audio(session, &tone(n), (wall, now), &mut |e, _| {
                    events.push(e.clone())
                });
        }
    }

    fn ups(h: &Harness) -> usize {
        h.events
            .iter()
            .filter(|e| matches!(e, Event::StreamUp { width: 0, .. }))
            .count()
    }

    #[test]
    fn an_audio_only_stream_comes_up_with_its_audio_and_an_av_one_waits_for_video() {
        let mut h = Harness::new();
        feed_audio(&mut h, 10);
        assert_eq!(ups(&h), 1, "{:?}", h.events);
        assert_eq!(h.monitor.state(), StreamState::Up);
        assert_eq!(
            h.monitor.carried(),
            Carried {
                video: false,
                audio: true
            }
        );

        let mut h = Harness::new();
        let video = MediaFormat {
            video: Some(crate::media::VideoFormat::default()),
            audio: None,
        };
        let events = &mut h.events;
        h.monitor
            .on_format(&video, h.wall, &mut |e, _| events.push(e.clone()));
        feed_audio(&mut h, 10);
        assert_eq!(
            ups(&h),
            0,
            "a stream with a video decoder is up with its frames"
        );
        assert_eq!(h.monitor.state(), StreamState::Starting);
    }

    #[test]
    fn a_codec_change_is_a_format_change_and_a_first_codec_is_not() {
        let mut h = Harness::new();
        let codec = |c: &'static str| MediaFormat {
            video: Some(crate::media::VideoFormat {
                codec: Some(c),
                ..Default::default()
            }),
            audio: None,
        };
        for c in ["h264", "h264", "hevc"] {
            let events = &mut h.events;
            h.monitor
                .on_format(&codec(c), h.wall, &mut |e, _| events.push(e.clone()));
        }
        let info: Vec<&str> = h
            .events
            .iter()
            .filter_map(|e| match e {
                Event::Info(i) => Some(i.detail.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(info, ["video codec h264 -> hevc"]);
        let known = h
            .events
            .iter()
            .filter(|e| matches!(e, Event::FormatKnown(_)))
            .count();
        assert_eq!(known, 2, "the repeated caps change nothing");
    }

    fn program(number: u16) -> Program {
        Program {
            number,
            pmt_pid: 0x1000 + number,
            service_name: None,
            provider_name: None,
            pcr_pid: Some(0x100),
            streams: Vec::new(),
        }
    }

    #[test]
    fn a_program_missing_from_the_table_or_a_table_that_never_comes_is_a_problem() {
        let origin = Instant::now();
        let mut m = Monitor::new(test_settings(Some(3)), origin);
        let mut sink = |_: &Event, _: Option<&VideoFrame>| {};
        m.begin_run(origin, &mut sink);
        assert_eq!(m.program_problem(origin + Duration::from_secs(1)), None);
        let late = m.program_problem(origin + PROGRAM_WAIT);
        assert!(late.is_some_and(|p| p.contains("no MPEG-TS program table")));
        m.on_programs(vec![program(1), program(2)], Some(3), &mut sink);
        assert_eq!(
            m.program_problem(origin).as_deref(),
            Some("program 3 not in the transport stream; programs present: 1, 2")
        );
        m.on_programs(vec![program(1), program(3)], Some(3), &mut sink);
        assert_eq!(m.program_problem(origin + PROGRAM_WAIT), None);
    }

    /// A looped file restarts its running time at zero; media time carries on one frame after
    /// the last frame of the pass, for video and audio alike.
    #[test]
    fn media_time_continues_across_a_file_loop() {
        let origin = Instant::now();
        let mut m = Monitor::new(test_settings(None), origin);
        m.begin_run(origin, &mut |_: &Event, _: Option<&VideoFrame>| {});
        let ms = Duration::from_millis;
        let mut last = Duration::ZERO;
        for pass in 0..3u64 {
            if pass > 0 {
                m.rewound();
            }
            // Running time after the rewind restarts near zero (a few ms of preroll).
            let start = ms(500) * u32::from(pass == 0) + ms(3) * (pass as u32);
            for n in 0..50u32 {
                let (_, media) = m.media_time(start + ms(40) * n, true).unwrap();
                if pass > 0 || n > 0 {
                    assert_eq!(media, last + ms(40), "pass {pass} frame {n}");
                }
                last = media;
            }
            let (_, audio) = m.media_time(start + ms(40) * 49, false).unwrap();
            assert_eq!(audio, last);
        }
        assert_eq!(last, ms(40) * 149);
    }
}
