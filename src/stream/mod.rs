//! One monitored stream as ingest and the engine see it: a small shared handle with its frame
//! queue and flow counters, and its [`Monitor`] (media clock and detectors) behind one lock.
//!
//! Threads and locks:
//! - GStreamer streaming threads (appsink callbacks, pad probes) call the ingest methods;
//! - the engine thread takes queued frames and calls [`Stream::on_frame_stats`];
//! - the supervisor and manifest tasks (tokio) call the run and transport methods;
//! - the HTTP server reads [`Stream::status`].
//!
//! Lock order: the monitor lock, then a sink's own lock (sinks never call back into the
//! stream); the frame queue's lock is never held with the monitor's, so a decoder waiting on a
//! full queue (`scan`) cannot block the engine that would empty it.

pub mod monitor;
pub mod queue;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::config::{AnalysisTier, StreamConfig};
use crate::detect::Sample;
use crate::detect::audio::AudioSummary;
use crate::detect::captions::{CaptionBytes, CaptionTally};
use crate::detect::transport::PlaylistVerdict;
use crate::detect::transport::hls::VariantStatus;
use crate::detect::transport::psi::Program;
use crate::detect::transport::tr101290::{TsFindings, TsSettings};
use crate::events::{DefectEvent, Event, SegmentDownload, StreamState};
use crate::frame::{AudioBuffer, VideoFrame};
use crate::media::{Decoders, MediaFormat};
use crate::sinks::StreamSinks;
use crate::sinks::status::StreamStatus;
use crate::stats::{FrameStats, StatParams};
use crate::sync::lock;

pub use monitor::{Monitor, Settings};
pub use queue::{FrameQueue, Wake};

/// How a stream's frames are queued.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    pub queue_frames: usize,
    /// `scan`: block the decoder instead of dropping frames.
    pub blocking: bool,
    /// The only stream of the process (`scan`): its decoder may use frame threads, since
    /// every decoder error in the process is its own.
    pub sole: bool,
}

pub struct Stream {
    pub id: String,
    pub url: String,
    /// The stream's reference-frame slot in the statistics backend.
    pub slot: u32,
    pub config: StreamConfig,
    pub params: StatParams,
    /// See [`StreamOptions::sole`].
    pub sole: bool,
    pub queue: FrameQueue,
    wake: Arc<Wake>,
    closed: AtomicBool,
    /// Set when a pipeline run ends; the engine then forgets the slot's reference frame.
    pub slot_reset_pending: AtomicBool,
    monitor: Mutex<Monitor>,
    sinks: StreamSinks,
    /// The monitor's state, readable without its lock (the engine asks every batch).
    state: AtomicU8,
    /// When the handle was made: the origin of the nanosecond clocks below and of the
    /// transport detectors' clock.
    born: Instant,
    run_started_ns: AtomicU64,
    /// When the latest decoded frame arrived (0: none in this run).
    last_frame_ns: AtomicU64,
    /// When the latest decoded audio buffer arrived (0: none in this run).
    last_audio_ns: AtomicU64,
    /// The program chosen when none is configured, kept across runs (see [`ProgramChoice`]).
    program_choice: Mutex<ProgramChoice>,
    /// The latest decoder element the pipeline created for each medium (what `scan` reports).
    decoders: Mutex<Decoders>,
    /// Frames handed to the queue and frames the engine finished (or dropped): `scan` waits
    /// for the two to meet before it reports.
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    frames_analysed: AtomicU64,
    decode_errors: AtomicU64,
    /// Bytes that entered the demuxer (or RTP depayloader), all runs together.
    input_bytes: AtomicU64,
    /// The analysis tier the decoder input follows now: the configured one, or a lighter one
    /// while load is shed (see [`AnalysisTier::level`]).
    analysis_tier: AtomicU8,
    /// Frames dropped from the queue, and frames that reached the sink after their due time:
    /// what load shedding watches.
    frames_dropped: AtomicU64,
    late_frames: AtomicU64,
    /// Caption bytes of the coded pictures, counted at the decoder's input, until the decoded
    /// frame that covers them arrives.
    captions: Mutex<CaptionTally>,
}

impl Stream {
    pub fn new(
        config: StreamConfig,
        slot: u32,
        options: StreamOptions,
        wake: Arc<Wake>,
        sinks: StreamSinks,
    ) -> Self {
        let born = Instant::now();
        let settings = Settings {
            stream: config.id.clone(),
            detectors: config.detectors.clone(),
            evidence_links: sinks.has_evidence(),
            program: config.program,
            channels: config.channels.clone(),
        };
        Self {
            id: config.id.clone(),
            url: config.url.clone(),
            slot,
            params: crate::detect::video::VideoDetectors::stat_params(&config.detectors),
            sole: options.sole,
            queue: FrameQueue::new(options.queue_frames, options.blocking),
            wake,
            closed: AtomicBool::new(false),
            slot_reset_pending: AtomicBool::new(false),
            monitor: Mutex::new(Monitor::new(settings, born)),
            sinks,
            state: AtomicU8::new(StreamState::Starting as u8),
            born,
            run_started_ns: AtomicU64::new(0),
            last_frame_ns: AtomicU64::new(0),
            last_audio_ns: AtomicU64::new(0),
            program_choice: Mutex::new(ProgramChoice::Undecided),
            decoders: Mutex::new(Decoders::default()),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            frames_analysed: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            input_bytes: AtomicU64::new(0),
            analysis_tier: AtomicU8::new(config.analysis.level()),
            frames_dropped: AtomicU64::new(0),
            late_frames: AtomicU64::new(0),
            captions: Mutex::default(),
            config,
        }
    }

    /// Runs `f` on the monitor under its lock, with the callback that hands each event to the
    /// sinks in order.
    fn with_monitor<R>(&self, f: impl FnOnce(&mut Monitor, &mut monitor::Emit<'_>) -> R) -> R {
        let mut monitor = lock(&self.monitor);
        let mut emit = |event: &Event, frame: Option<&VideoFrame>| {
            if let Event::FrameAnalysed { .. } = event {
                self.frames_analysed.fetch_add(1, Ordering::Relaxed);
            }
            self.sinks.consume(event, frame);
        };
        let result = f(&mut monitor, &mut emit);
        self.state.store(monitor.state() as u8, Ordering::Relaxed);
        result
    }

    fn nanos_since_born(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Now on the transport detectors' clock: seconds since the stream was added.
    fn transport_now(&self) -> Sample {
        Sample {
            media: self.born.elapsed().as_secs_f64(),
            wall: SystemTime::now(),
        }
    }

    // ---- ingest side (GStreamer streaming threads) ----

    /// Media time of a buffer PTS in the current run, with the run's session (see
    /// [`Monitor::media_time`]).
    pub fn media_time(&self, pts: Duration, video: bool) -> Option<(u64, Duration)> {
        lock(&self.monitor).media_time(pts, video)
    }

    pub fn push_video(&self, session: u64, frame: VideoFrame) {
        let at = Sample {
            media: frame.pts.as_secs_f64(),
            wall: SystemTime::now(),
        };
        let captions = lock(&self.captions).take_ready();
        self.with_monitor(|m, emit| m.on_video_arrival(at, &captions, emit));
        self.last_frame_ns
            .store(self.nanos_since_born().max(1), Ordering::Relaxed);
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        // Not under the monitor lock: in `scan` this waits for the engine to make room.
        if self.queue.push(session, frame, &self.closed) {
            self.frames_out.fetch_add(1, Ordering::Relaxed);
            self.frames_dropped.fetch_add(1, Ordering::Relaxed);
            self.with_monitor(|_, emit| emit(&Event::FramesDropped(1), None));
        }
        self.wake.notify();
    }

    /// Keeps an audio buffer that came before media time zero.
    pub fn hold_audio(&self, buffer: AudioBuffer) {
        self.note_audio_arrival();
        lock(&self.monitor).hold_audio(buffer);
    }

    pub fn push_audio(&self, session: u64, buffer: &AudioBuffer) {
        self.note_audio_arrival();
        let at = (SystemTime::now(), Instant::now());
        self.with_monitor(|m, emit| m.on_audio(session, buffer, at, emit));
    }

    /// Audio reached the appsink (analysed now, or held until media time zero is known).
    pub fn note_audio_arrival(&self) {
        self.last_audio_ns
            .store(self.nanos_since_born().max(1), Ordering::Relaxed);
    }

    /// What caps told about the stream's format.
    pub fn update_format(&self, update: &MediaFormat) {
        let wall = SystemTime::now();
        self.with_monitor(|m, emit| m.on_format(update, wall, emit));
    }

    /// The programs of the transport stream changed; `selected` is the one monitored.
    pub fn set_programs(&self, programs: Vec<Program>, selected: Option<u16>) {
        self.with_monitor(|m, emit| m.on_programs(programs, selected, emit));
    }

    pub fn program_choice(&self) -> ProgramChoice {
        *lock(&self.program_choice)
    }

    pub fn set_program_choice(&self, choice: ProgramChoice) {
        *lock(&self.program_choice) = choice;
    }

    /// Counts one decoder error or concealed frame.
    pub fn count_decode_error(&self) {
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
        self.with_monitor(|_, emit| emit(&Event::DecodeError, None));
    }

    /// Decoder errors and concealment warnings so far.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    /// Records a decoder element the pipeline created; a video decoder is also an event
    /// (the `decoder` label of `streamwatch_stream_info`).
    pub fn set_decoder(&self, factory: &str, video: bool) {
        {
            let mut decoders = lock(&self.decoders);
            let slot = if video {
                &mut decoders.video
            } else {
                &mut decoders.audio
            };
            *slot = Some(factory.to_owned());
        }
        if video {
            self.with_monitor(|_, emit| emit(&Event::DecoderChosen(factory.to_owned()), None));
        }
    }

    /// The decoder elements the pipeline created.
    pub fn decoders(&self) -> Decoders {
        lock(&self.decoders).clone()
    }

    /// Bytes that entered the demuxer.
    pub fn count_input_bytes(&self, n: u64) {
        self.input_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// What one buffer entering the demuxer showed: TR 101 290 errors, SCTE-35 cues.
    pub fn ts_findings(&self, found: TsFindings) {
        let at = self.transport_now();
        self.with_monitor(|m, emit| m.on_ts_findings(at, found, emit));
    }

    /// The run's MPEG-TS input is measured from now on.
    pub fn ts_measured(&self) {
        self.with_monitor(|_, emit| emit(&Event::TsMeasured, None));
    }

    /// How the stream's MPEG-TS input is measured, None when TR 101 290 is off. `segmented`:
    /// it comes in fetched HLS segments.
    pub fn ts_settings(&self, segmented: bool) -> Option<TsSettings> {
        let c = &self.config.detectors.tr101290;
        c.enabled.then_some(TsSettings {
            segmented,
            priority3: c.priority3,
            segment_interval: c.segment_interval,
            break_tolerance: self.config.detectors.scte35.break_tolerance,
        })
    }

    /// RTP packets found missing from the sequence numbers received.
    pub fn count_rtp_packets_lost(&self, n: u64) {
        if n > 0 {
            self.with_monitor(|_, emit| emit(&Event::RtpPacketsLost(n), None));
        }
    }

    /// The analysis tier the decoder input follows now.
    pub fn analysis_tier(&self) -> AnalysisTier {
        AnalysisTier::from_level(self.analysis_tier.load(Ordering::Relaxed))
    }

    /// Moves the stream to `tier` (load shedding): lighter at once, richer from the next
    /// keyframe. The detectors follow the frames decoded in it.
    pub fn set_analysis_tier(&self, tier: AnalysisTier) {
        self.analysis_tier.store(tier.level(), Ordering::Relaxed);
    }

    /// Caption bytes found on a coded picture (whether or not the tier decodes it).
    pub fn count_captions(&self, pts_ns: Option<u64>, bytes: CaptionBytes) {
        lock(&self.captions).count(pts_ns, bytes);
    }

    /// The decoded frame of PTS `pts_ns` is about to be pushed: the captions of the pictures up
    /// to it go with it.
    pub fn captions_decoded(&self, pts_ns: u64) {
        lock(&self.captions).decoded(pts_ns);
    }

    /// A coded picture the tier kept from the decoder: the stream flows, so the stall watchdog
    /// counts it as an arrival (a keyframe every 2 s would otherwise look like a stall).
    pub fn count_skipped_frame(&self) {
        self.last_frame_ns
            .store(self.nanos_since_born().max(1), Ordering::Relaxed);
        self.with_monitor(|_, emit| emit(&Event::FramesSkipped(1), None));
    }

    /// A decoded frame reached its sink after its due time (decoding is behind).
    pub fn note_late_frame(&self) {
        self.late_frames.fetch_add(1, Ordering::Relaxed);
    }

    pub fn late_frames(&self) -> u64 {
        self.late_frames.load(Ordering::Relaxed)
    }

    /// Frames dropped from the queue because analysis fell behind.
    pub fn frames_dropped(&self) -> u64 {
        self.frames_dropped.load(Ordering::Relaxed)
    }

    // ---- engine side ----

    /// Accounts for a frame the engine could not analyse.
    pub fn discard_frame(&self) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Feeds one analysed frame to the detectors (frames of an ended run are discarded).
    pub fn on_frame_stats(&self, session: u64, frame: &VideoFrame, stats: &FrameStats) {
        let (wall, now) = (SystemTime::now(), Instant::now());
        self.with_monitor(|m, emit| m.on_frame(session, frame, stats, wall, now, emit));
        self.frames_out.fetch_add(1, Ordering::Relaxed);
    }

    // ---- supervisor side ----

    /// Starts a new pipeline run: media time restarts at zero.
    pub fn begin_session(&self) -> u64 {
        self.run_started_ns
            .store(self.nanos_since_born(), Ordering::Relaxed);
        self.last_frame_ns.store(0, Ordering::Relaxed);
        self.last_audio_ns.store(0, Ordering::Relaxed);
        // Captions still waiting belong to the old run's timeline.
        *lock(&self.captions) = CaptionTally::default();
        let now = Instant::now();
        self.with_monitor(|m, emit| m.begin_run(now, emit))
    }

    /// Ends the current run: old queued frames are dropped, active defects close at the last
    /// analysed media time, the stream is down (or stopped) with `reason`.
    pub fn end_session(&self, state: StreamState, reason: Option<String>) {
        let at = self.transport_now();
        self.with_monitor(|m, emit| {
            // Under the lock: the new session id is set before the engine can see the slot
            // reset, so no frame of the old run is decided against a released reference.
            m.end_run(state, reason, at, emit);
        });
        let dropped = self.queue.clear() as u64;
        self.frames_out.fetch_add(dropped, Ordering::Relaxed);
        self.slot_reset_pending.store(true, Ordering::Relaxed);
    }

    pub fn count_restart(&self) {
        self.with_monitor(|_, emit| emit(&Event::Restarted, None));
    }

    /// A pipeline that did not stop was left behind (see the supervisor's teardown).
    pub fn count_abandoned_pipeline(&self) {
        self.with_monitor(|_, emit| emit(&Event::PipelineAbandoned, None));
    }

    /// Time since the last decoded frame, or since the run started when none came yet.
    pub fn frame_silence(&self) -> Duration {
        let last = match self.last_frame_ns.load(Ordering::Relaxed) {
            0 => self.run_started_ns.load(Ordering::Relaxed),
            t => t,
        };
        Duration::from_nanos(self.nanos_since_born().saturating_sub(last))
    }

    /// Time since the run's media last arrived, and what that media is: video on a stream that
    /// carries video (audio loss beside it is `audio_loss`'s), audio on an audio-only stream,
    /// either before the run has shown what it carries.
    pub fn media_silence(&self) -> (Duration, &'static str) {
        let carried = lock(&self.monitor).carried();
        let video = self.last_frame_ns.load(Ordering::Relaxed);
        let audio = self.last_audio_ns.load(Ordering::Relaxed);
        let (last, what) = if carried.video {
            (video, "video frame")
        } else if carried.audio {
            (audio, "audio")
        } else {
            (video.max(audio), "media")
        };
        let last = match last {
            0 => self.run_started_ns.load(Ordering::Relaxed),
            t => t,
        };
        let silence = Duration::from_nanos(self.nanos_since_born().saturating_sub(last));
        (silence, what)
    }

    /// Why the run cannot deliver its MPEG-TS program, if it cannot.
    pub fn program_problem(&self) -> Option<String> {
        lock(&self.monitor).program_problem(Instant::now())
    }

    /// Why the run failed, as shown: what the transport checks saw, then the pipeline's
    /// reason, the URL redacted wherever it appears.
    pub fn explain_failure(&self, pipeline_reason: &str) -> String {
        let reason = lock(&self.monitor).explain_failure(pipeline_reason, Instant::now());
        self.redact(&reason)
    }

    /// `text` with the stream's URL, wherever it appears (GStreamer messages name it), in its
    /// redacted form.
    pub fn redact(&self, text: &str) -> String {
        let mut shown = text.replace(&self.url, &crate::config::redact_url(&self.url));
        // Messages also quote parts of the URL alone (a location without its query, a key).
        for secret in crate::config::url_secrets(&self.url) {
            shown = shown.replace(&secret, "***");
        }
        shown
    }

    // ---- transport side (supervisor watchdog, manifest checks) ----

    /// A watchdog tick of the running pipeline: stall and bitrate.
    pub fn transport_tick(&self) {
        let (at, now) = (self.transport_now(), Instant::now());
        let (silence, _) = self.media_silence();
        let bytes = self.input_bytes.load(Ordering::Relaxed);
        self.with_monitor(|m, emit| m.transport_tick(at, now, silence, bytes, emit));
    }

    /// One HLS request made by streamwatch itself.
    pub fn count_http_request(&self, kind: &'static str, code: &str) {
        let event = Event::HttpRequest {
            kind,
            code: code.to_owned(),
        };
        self.with_monitor(|_, emit| emit(&event, None));
    }

    /// A segment of the analysed rendition was downloaded.
    pub fn note_segment_downloaded(&self, bytes: u64, took: Duration, media: Duration) {
        let event = Event::SegmentDownloaded(SegmentDownload {
            bytes,
            seconds: took.as_secs_f64(),
            media_seconds: media.as_secs_f64(),
        });
        self.with_monitor(|_, emit| emit(&event, None));
    }

    /// One poll of one HLS variant's playlist.
    pub fn observe_playlist(&self, variant: &str, verdict: &PlaylistVerdict) {
        let at = self.transport_now();
        self.with_monitor(|m, emit| m.observe_playlist(variant, at, verdict, emit));
    }

    /// An HLS variant is no longer checked: its defects end, its series go.
    pub fn forget_variant(&self, variant: &str) {
        let at = self.transport_now();
        self.with_monitor(|m, emit| m.forget_variant(variant, at, emit));
    }

    pub fn note_transport_problem(&self, problem: &str) {
        lock(&self.monitor).note_transport_problem(problem, Instant::now());
    }

    pub fn set_hls_status(&self, variants: Vec<VariantStatus>) {
        self.with_monitor(|_, emit| emit(&Event::HlsVariants(variants), None));
    }

    /// Records a failure of a playlist not (yet) in the status, e.g. the first request.
    pub fn set_hls_error(&self, variant: &str, reason: String) {
        let event = Event::HlsError {
            variant: variant.to_owned(),
            reason,
        };
        self.with_monitor(|_, emit| emit(&event, None));
    }

    // ---- readers ----

    pub fn state(&self) -> StreamState {
        match self.state.load(Ordering::Relaxed) {
            s if s == StreamState::Up as u8 => StreamState::Up,
            s if s == StreamState::Down as u8 => StreamState::Down,
            s if s == StreamState::Stopped as u8 => StreamState::Stopped,
            _ => StreamState::Starting,
        }
    }

    /// Unblocks a decoder waiting on a full queue (shutdown).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        self.queue.clear();
    }

    /// True when every frame handed to the queue has been analysed or dropped.
    pub fn drained(&self) -> bool {
        self.frames_out.load(Ordering::Relaxed) >= self.frames_in.load(Ordering::Relaxed)
    }

    pub fn status(&self) -> StreamStatus {
        StreamStatus {
            analysis_configured: self.config.analysis,
            ..self.sinks.status.snapshot()
        }
    }

    pub fn sinks(&self) -> &StreamSinks {
        &self.sinks
    }

    pub fn frames_analysed(&self) -> u64 {
        self.frames_analysed.load(Ordering::Relaxed)
    }

    /// What the audio detectors measured in this run (`scan`).
    pub fn audio_summary(&self) -> Option<AudioSummary> {
        lock(&self.monitor).audio_summary()
    }

    pub fn last_video_media_time(&self) -> Option<f64> {
        lock(&self.monitor).last_video_media_time()
    }

    /// A looped file was rewound: media time continues across the loop.
    pub fn file_rewound(&self) {
        lock(&self.monitor).rewound();
    }

    /// The latest media time of video or audio (`scan` of an audio-only source).
    pub fn last_media_time(&self) -> Option<f64> {
        lock(&self.monitor).last_media_time()
    }
}

/// Which program of a multi-program transport stream a run monitors when the config names
/// none: tsdemux takes the first program whose PMT it reads, which need not have video, so
/// the PSI reader in front of it decides, and later runs start with what it decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramChoice {
    /// Not yet known: the demuxer waits for the PSI reader.
    Undecided,
    /// This program (the first with video).
    Number(u16),
    /// The PSI reader could not decide: the demuxer picks, as GStreamer does by default.
    Demuxer,
}

/// All monitored streams; the engine and the HTTP server read it, supervisors add to it.
#[derive(Default)]
pub struct StreamSet {
    streams: RwLock<Vec<Arc<Stream>>>,
    next_slot: AtomicU64,
    /// Slots of removed streams whose reference frames the engine has yet to release.
    retired: Mutex<Vec<u32>>,
}

impl StreamSet {
    /// Slots only ever count up, so a new stream never inherits a reference frame that the
    /// engine still holds for a removed one.
    pub fn next_slot(&self) -> u32 {
        self.next_slot.fetch_add(1, Ordering::Relaxed) as u32
    }

    /// Takes the stream out of the set (config reload) and queues its slot for release.
    pub fn remove(&self, id: &str) -> Option<Arc<Stream>> {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        let i = streams.iter().position(|s| s.id == id)?;
        let stream = streams.remove(i);
        lock(&self.retired).push(stream.slot);
        Some(stream)
    }

    /// Slots of streams removed since the last call. The engine calls this before it takes a
    /// snapshot, so a slot it releases can no longer appear in that snapshot.
    pub fn take_retired(&self) -> Vec<u32> {
        std::mem::take(&mut *lock(&self.retired))
    }

    pub fn add(&self, stream: Arc<Stream>) {
        self.streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(stream);
    }

    pub fn snapshot(&self) -> Vec<Arc<Stream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The event with this id, among each stream's active and recent events.
    pub fn event(&self, id: &str) -> Option<DefectEvent> {
        self.snapshot()
            .iter()
            .find_map(|s| s.sinks.status.event(id))
    }

    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.snapshot().into_iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DetectorsConfig;
    use crate::sinks::Outputs;
    use crate::sinks::collect::Recorder;
    use crate::sinks::metrics::Metrics;

    fn stream_with_recorder(queue_frames: usize) -> (Stream, Arc<Metrics>, Arc<Recorder>) {
        let metrics = Arc::new(Metrics::new());
        let recorder = Arc::new(Recorder::default());
        let shared = recorder.clone();
        let outputs = Outputs {
            extra: vec![Arc::new(move |_: &str| {
                shared.clone() as Arc<dyn crate::events::Sink>
            })],
            ..Outputs::metrics_only(metrics.clone())
        };
        let config = StreamConfig {
            id: "cam".into(),
            url: "rtmp://h/live/cam".into(),
            detectors: DetectorsConfig::default(),
            decoder: Default::default(),
            ..Default::default()
        };
        let options = StreamOptions {
            queue_frames,
            blocking: false,
            sole: false,
        };
        let sinks = outputs.for_stream(&config.id, &config.url);
        let stream = Stream::new(config, 0, options, Arc::new(Wake::default()), sinks);
        (stream, metrics, recorder)
    }

    fn frame(n: u64) -> VideoFrame {
        VideoFrame::from_plane(
            4,
            1,
            &[0; 4],
            4,
            Duration::from_millis(40 * n),
            Instant::now(),
        )
        .expect("valid frame")
    }

    #[test]
    fn every_sink_sees_the_same_events_in_order() {
        let (stream, metrics, recorder) = stream_with_recorder(3);
        let session = stream.begin_session();
        for n in 0..10 {
            stream.push_video(session, frame(n));
        }
        stream.count_restart();
        let status = stream.status();
        assert_eq!(status.frames_dropped, 7);
        assert_eq!(status.restarts, 1);
        let text = metrics.render();
        assert!(
            text.contains("streamwatch_frames_dropped_total{stream=\"cam\"} 7"),
            "{text}"
        );
        assert!(text.contains("streamwatch_stream_restarts_total{stream=\"cam\"} 1"));
        let events = recorder.events();
        assert_eq!(events.first(), Some(&Event::RunStarted));
        assert_eq!(events.last(), Some(&Event::Restarted));
        let dropped = events
            .iter()
            .filter(|e| matches!(e, Event::FramesDropped(1)))
            .count();
        assert_eq!(dropped, 7);
    }

    #[test]
    fn the_state_follows_the_runs_and_the_watchdog_sees_silence() {
        let (stream, metrics, _) = stream_with_recorder(3);
        assert_eq!(stream.state(), StreamState::Starting);
        stream.begin_session();
        stream.end_session(StreamState::Down, Some("refused".into()));
        assert_eq!(stream.state(), StreamState::Down);
        let status = stream.status();
        assert_eq!(status.reason.as_deref(), Some("refused"));
        assert!(stream.slot_reset_pending.load(Ordering::Relaxed));
        assert!(
            metrics
                .render()
                .contains("streamwatch_stream_up{stream=\"cam\"} 0")
        );
        stream.begin_session();
        assert_eq!(
            stream.state(),
            StreamState::Down,
            "down until a frame comes"
        );
        std::thread::sleep(Duration::from_millis(20));
        assert!(stream.frame_silence() >= Duration::from_millis(20));
    }
}
