//! One monitored stream as the rest of the process sees it: its frame queue, its detectors, its
//! state, and the place where detector transitions become metrics, logs and API events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::audio::{AudioDetectors, AudioSummary, Tagged};
use crate::config::StreamConfig;
use crate::detect::{DetectorKind, Sample, Transition, VideoDetectors};
use crate::evidence::Evidence;
use crate::frame::{AudioBuffer, VideoFrame};
use crate::metrics::Metrics;
use crate::notify::{Notifier, Phase};
use crate::stats::StatParams;
use crate::transport::hls::VariantStatus;
use crate::transport::{PlaylistVerdict, ScopedTransition, TransportDetectors};

/// Audio waits this long for a first video frame to define media time zero before the stream is
/// taken to be audio-only.
const AUDIO_ONLY_AFTER: Duration = Duration::from_secs(2);

/// Audio buffers held while waiting for media time zero (about 4 s of AAC frames).
const EARLY_AUDIO_BUFFERS: usize = 200;

/// Ended events kept per stream for `/api/streams`.
const RECENT_EVENTS: usize = 50;

/// Locks a mutex even if a thread panicked while holding it: the data are counters and
/// detector states that stay usable, and one stream's bug must not take the process down.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamState {
    /// Pipeline built, no frame yet.
    Starting,
    /// Frames are arriving.
    Up,
    /// Failed (error, end of stream, stall); a restart is scheduled.
    Down,
    /// Shut down on request.
    Stopped,
}

/// A defect as reported in events, logs and the API.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DefectEvent {
    /// Unique per process and stream: `<stream>-<detector>-<start, unix ms>`.
    pub id: String,
    pub stream: String,
    pub detector: DetectorKind,
    /// Media seconds from the stream's first frame (of the current pipeline run).
    pub start: f64,
    pub end: Option<f64>,
    pub duration: Option<f64>,
    /// Wall-clock times, RFC 3339.
    pub start_time: String,
    pub end_time: Option<String>,
    /// The detector's statistic: at confirmation for an active defect, its mean once ended.
    pub value: f64,
    /// Path of the evidence thumbnail on this server (`/api/events/{id}/evidence`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// The audio channel (0-based) of a per-channel defect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<u32>,
    /// The HLS variant (`main`, `master`, `v0`...) of a manifest defect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// What part of a stream a defect concerns: all of it, one audio channel or one HLS variant.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
struct Scope {
    channel: Option<u32>,
    variant: Option<String>,
}

/// Something worth knowing that is not a defect: the picture size changed mid-stream.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InfoEvent {
    pub stream: String,
    /// What happened: `format_change`.
    pub kind: &'static str,
    /// Media seconds of the first frame in the new format.
    pub at: f64,
    pub time: String,
    /// E.g. `1280x720 -> 640x360`.
    pub detail: String,
}

/// Frames between the decoder and the appsink whose decode-time error count is kept.
const DECODE_MARKS: usize = 256;

/// Informational events kept per stream for the API.
const RECENT_INFO_EVENTS: usize = 20;

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// What `/api/streams` shows of a stream.
#[derive(Clone, Debug, Serialize)]
pub struct StreamStatus {
    pub id: String,
    pub url: String,
    pub state: StreamState,
    /// Why the stream is down (last error), if it is.
    pub reason: Option<String>,
    pub fps: f64,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub frames_dropped: u64,
    pub restarts: u64,
    pub active_defects: Vec<DefectEvent>,
    pub last_events: Vec<DefectEvent>,
    /// The latest informational events (format changes), newest first.
    pub info_events: Vec<InfoEvent>,
    /// Seconds from the start of the current run to its first analysed frame.
    pub time_to_first_frame: Option<f64>,
    /// Input bits per second, averaged over `detectors.bitrate.window`.
    pub input_bitrate: Option<f64>,
    pub ts_cc_errors: u64,
    /// The HLS playlists checked, for HLS streams.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hls: Vec<VariantStatus>,
}

/// Frames waiting for the engine. Live streams drop the oldest frame when full (ingest never
/// waits for analysis); `scan` blocks the decoder instead so that every frame is analysed.
pub struct FrameQueue {
    frames: Mutex<VecDeque<(u64, VideoFrame)>>,
    space: Condvar,
    capacity: usize,
    blocking: bool,
}

impl FrameQueue {
    fn new(capacity: usize, blocking: bool) -> Self {
        Self {
            frames: Mutex::new(VecDeque::with_capacity(capacity)),
            space: Condvar::new(),
            capacity,
            blocking,
        }
    }

    /// Returns true when a frame was dropped to make room.
    fn push(&self, session: u64, frame: VideoFrame, closed: &AtomicBool) -> bool {
        let mut q = lock(&self.frames);
        if self.blocking {
            while q.len() >= self.capacity && !closed.load(Ordering::Relaxed) {
                q = self
                    .space
                    .wait_timeout(q, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let dropped = q.len() >= self.capacity && q.pop_front().is_some();
        q.push_back((session, frame));
        dropped
    }

    pub fn len(&self) -> usize {
        lock(&self.frames).len()
    }

    pub fn half_full(&self) -> bool {
        self.len() * 2 >= self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves up to `max` frames (oldest first) into `out`.
    pub fn take(&self, max: usize, out: &mut Vec<(u64, VideoFrame)>) {
        let mut q = lock(&self.frames);
        let n = max.min(q.len());
        out.extend(q.drain(..n));
        drop(q);
        if n > 0 {
            self.space.notify_all();
        }
    }

    fn clear(&self) -> usize {
        let mut q = lock(&self.frames);
        let n = q.len();
        q.clear();
        self.space.notify_all();
        n
    }
}

/// Wakes the engine when any stream queues a frame.
#[derive(Default)]
pub struct Wake {
    pending: Mutex<u64>,
    cv: Condvar,
}

impl Wake {
    pub fn notify(&self) {
        *lock(&self.pending) += 1;
        self.cv.notify_all();
    }

    /// Waits until notified or `timeout`.
    pub fn wait(&self, timeout: Duration) {
        let mut p = lock(&self.pending);
        if *p == 0 {
            p = self
                .cv
                .wait_timeout(p, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *p = 0;
    }
}

struct Session {
    id: u64,
    /// PTS of the first buffer (audio or video) of this pipeline run: media time zero.
    base: Option<Duration>,
    first_audio: Option<Duration>,
    last_video: Option<Sample>,
    last_audio: Option<Sample>,
    started: Instant,
}

struct Status {
    state: StreamState,
    reason: Option<String>,
    width: u32,
    height: u32,
    fps: f64,
    frame_pts: VecDeque<f64>,
    time_to_first_frame: Option<f64>,
    input_bitrate: Option<f64>,
    /// Keyed by detector and, for per-channel audio or per-variant HLS defects, the scope.
    active: BTreeMap<(DetectorKind, Scope), DefectEvent>,
    recent: VecDeque<DefectEvent>,
}

/// Process-wide services every stream reports to.
#[derive(Clone)]
pub struct StreamContext {
    pub metrics: Arc<Metrics>,
    pub notifier: Arc<Notifier>,
    pub evidence: Option<Arc<Evidence>>,
    pub wake: Arc<Wake>,
    /// Seconds between refreshes of the stream's latest thumbnail.
    pub thumbnail_interval: Duration,
    /// Where per-frame statistics go, when asked for (`scan --frame-stats`).
    pub stats_sink: Option<Arc<crate::stats::StatsCsv>>,
}

pub struct Stream {
    pub id: String,
    pub url: String,
    /// The stream's reference-frame slot in the statistics backend.
    pub slot: u32,
    pub config: StreamConfig,
    pub params: StatParams,
    pub queue: FrameQueue,
    metrics: Arc<Metrics>,
    notifier: Arc<Notifier>,
    evidence: Option<Arc<Evidence>>,
    thumbnail_interval: Duration,
    stats_sink: Option<Arc<crate::stats::StatsCsv>>,
    last_thumbnail: Mutex<Option<Instant>>,
    wake: Arc<Wake>,
    closed: AtomicBool,
    session: Mutex<Session>,
    /// Set when a pipeline run ends; the engine then forgets the slot's reference frame.
    pub slot_reset_pending: AtomicBool,
    video: Mutex<VideoDetectors>,
    audio: Mutex<AudioDetectors>,
    /// Audio that came before media time zero was known (PTS = running time), analysed once it
    /// is: loudness integrates the whole programme, as other meters do.
    early_audio: Mutex<Vec<AudioBuffer>>,
    status: Mutex<Status>,
    /// Every ended event, kept only by `scan`.
    all_events: Option<Mutex<Vec<DefectEvent>>>,
    /// Informational events (format changes), the last ones; all of them in `scan`.
    info_events: Mutex<VecDeque<InfoEvent>>,
    keep_all_info: bool,
    /// See [`StreamOptions::sole`].
    pub sole: bool,
    frames: AtomicU64,
    dropped: AtomicU64,
    decode_errors: AtomicU64,
    /// Decoder errors already credited to an analysed frame.
    errors_seen: AtomicU64,
    /// (PTS in ns, decoder error count) of each frame as it left the decoder, oldest first:
    /// the count when the frame reaches the appsink may already include errors of later
    /// frames that the decoder has run ahead to.
    decode_marks: Mutex<VecDeque<(u64, u64)>>,
    restarts: AtomicU64,
    /// Frames handed to the queue and frames the engine finished (or dropped): `scan` waits for
    /// the two to meet before it reports.
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    last_frame_at: Mutex<Option<Instant>>,
    /// When the stream was added: the clock of the transport detectors.
    born: Instant,
    transport: Mutex<TransportDetectors>,
    /// Bytes that entered the demuxer (or RTP depayloader), all runs together.
    input_bytes: AtomicU64,
    ts_cc_errors: AtomicU64,
    hls: Mutex<Vec<VariantStatus>>,
    /// The latest failure the manifest checks saw, and when: it names the cause (a name that
    /// does not resolve, a refused connection, a 404) that GStreamer reports as a bare
    /// "internal data stream error".
    transport_problem: Mutex<Option<(Instant, String)>>,
}

/// How a stream's frames are queued and its events kept.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    pub queue_frames: usize,
    /// `scan`: block the decoder instead of dropping, and keep every event.
    pub offline: bool,
    /// The only stream of the process (`scan`): its decoder may use frame threads, since
    /// every decoder error in the process is its own.
    pub sole: bool,
}

impl Stream {
    pub fn new(
        config: StreamConfig,
        slot: u32,
        options: StreamOptions,
        context: StreamContext,
    ) -> Self {
        let StreamContext {
            metrics,
            notifier,
            evidence,
            wake,
            thumbnail_interval,
            stats_sink,
        } = context;
        metrics.register_stream(&config.id, &config.url);
        Self {
            id: config.id.clone(),
            url: config.url.clone(),
            slot,
            params: VideoDetectors::stat_params(&config.detectors),
            queue: FrameQueue::new(options.queue_frames, options.offline),
            metrics,
            notifier,
            evidence,
            thumbnail_interval,
            stats_sink,
            last_thumbnail: Mutex::new(None),
            wake,
            closed: AtomicBool::new(false),
            session: Mutex::new(Session {
                id: 0,
                base: None,
                first_audio: None,
                last_video: None,
                last_audio: None,
                started: Instant::now(),
            }),
            slot_reset_pending: AtomicBool::new(false),
            video: Mutex::new(VideoDetectors::new(&config.detectors)),
            audio: Mutex::new(AudioDetectors::new(&config.detectors)),
            early_audio: Mutex::new(Vec::new()),
            status: Mutex::new(Status {
                state: StreamState::Starting,
                reason: None,
                width: 0,
                height: 0,
                fps: 0.0,
                frame_pts: VecDeque::new(),
                time_to_first_frame: None,
                input_bitrate: None,
                active: BTreeMap::new(),
                recent: VecDeque::new(),
            }),
            all_events: options.offline.then(|| Mutex::new(Vec::new())),
            info_events: Mutex::new(VecDeque::new()),
            keep_all_info: options.offline,
            sole: options.sole,
            frames: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            decode_errors: AtomicU64::new(0),
            errors_seen: AtomicU64::new(0),
            decode_marks: Mutex::new(VecDeque::new()),
            restarts: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            last_frame_at: Mutex::new(None),
            born: Instant::now(),
            transport: Mutex::new(TransportDetectors::new(&config.detectors)),
            input_bytes: AtomicU64::new(0),
            ts_cc_errors: AtomicU64::new(0),
            hls: Mutex::new(Vec::new()),
            transport_problem: Mutex::new(None),
            config,
        }
    }

    // ---- ingest side (GStreamer streaming threads) ----

    /// Media time of a buffer PTS in the current run. The first video frame defines zero;
    /// audio that comes before it waits (is not analysed), unless the stream turns out to
    /// carry no video at all.
    pub fn media_time(&self, pts: Duration, video: bool) -> Option<(u64, Duration)> {
        let mut s = lock(&self.session);
        if s.base.is_none() {
            if video {
                s.base = Some(pts);
            } else {
                let first = *s.first_audio.get_or_insert(pts);
                if pts.saturating_sub(first) < AUDIO_ONLY_AFTER {
                    return None;
                }
                s.base = Some(first);
            }
        }
        let base = s.base.unwrap_or(pts);
        Some((s.id, pts.saturating_sub(base)))
    }

    pub fn push_video(&self, session: u64, frame: VideoFrame) {
        let mut tagged = Vec::new();
        let at = Sample {
            media: frame.pts.as_secs_f64(),
            wall: SystemTime::now(),
        };
        lock(&self.audio).on_video_arrival(at, &mut tagged);
        self.apply_tagged(&tagged);
        *lock(&self.last_frame_at) = Some(Instant::now());
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        if self.queue.push(session, frame, &self.closed) {
            self.count_dropped(1);
        }
        self.wake.notify();
    }

    /// Keeps an audio buffer that came before media time zero (its PTS is the running time).
    pub fn hold_audio(&self, buffer: AudioBuffer) {
        let mut early = lock(&self.early_audio);
        if early.len() < EARLY_AUDIO_BUFFERS {
            early.push(buffer);
        }
    }

    pub fn push_audio(&self, session: u64, buffer: &AudioBuffer) {
        let early = std::mem::take(&mut *lock(&self.early_audio));
        if !early.is_empty() {
            let base = lock(&self.session).base.unwrap_or_default();
            for mut held in early {
                held.pts = held.pts.saturating_sub(base);
                self.analyse_audio(session, &held);
            }
        }
        self.analyse_audio(session, buffer);
    }

    fn analyse_audio(&self, session: u64, buffer: &AudioBuffer) {
        let at = Sample {
            media: buffer.pts.as_secs_f64(),
            wall: SystemTime::now(),
        };
        {
            let mut s = lock(&self.session);
            if s.id != session {
                return;
            }
            s.last_audio = Some(at);
        }
        let mut tagged = Vec::new();
        let levels = {
            let mut audio = lock(&self.audio);
            audio.observe(at, buffer, &mut tagged);
            audio.levels()
        };
        if !buffer.samples.is_empty() {
            self.metrics
                .audio_level
                .with_label_values(&[&self.id])
                .set(crate::audio::silence::rms_dbfs(&buffer.samples));
        }
        self.set_audio_gauges(&levels);
        self.apply_tagged(&tagged);
    }

    fn set_audio_gauges(&self, levels: &crate::audio::AudioLevels) {
        let m = &self.metrics;
        let id = self.id.as_str();
        for (ch, l) in levels.channel_dbfs.iter().enumerate() {
            let ch = ch.to_string();
            m.audio_channel_level
                .with_label_values(&[id, ch.as_str()])
                .set(*l);
        }
        let r = &levels.loudness;
        let windows = [r.momentary, r.short_term, r.integrated];
        for (window, value) in crate::metrics::LOUDNESS_WINDOWS.iter().zip(windows) {
            if let Some(v) = value {
                m.loudness.with_label_values(&[id, window]).set(v);
            }
        }
        let singles = [
            (&m.true_peak, r.true_peak),
            (&m.av_offset, levels.received_offset),
            (&m.av_measured_offset, levels.measured_offset),
        ];
        for (gauge, value) in singles {
            if let Some(v) = value {
                gauge.with_label_values(&[id]).set(v);
            }
        }
    }

    /// Applies audio transitions, each with its channel.
    fn apply_tagged(&self, tagged: &[Tagged]) {
        for (t, channel) in tagged {
            let scope = Scope {
                channel: *channel,
                variant: None,
            };
            self.apply_scoped(std::slice::from_ref(t), None, &scope);
        }
    }

    /// What the audio detectors measured in this run (`scan`).
    pub fn audio_summary(&self) -> Option<AudioSummary> {
        lock(&self.audio).summary()
    }

    fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
        self.frames_out.fetch_add(n, Ordering::Relaxed);
        self.metrics
            .frames_dropped
            .with_label_values(&[&self.id])
            .inc_by(n);
    }

    // ---- engine side ----

    /// Accounts for a frame the engine could not analyse.
    pub fn discard_frame(&self) {
        self.frames_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Feeds one analysed frame to the video detectors (frames of an ended run are discarded).
    pub fn on_frame_stats(
        &self,
        session: u64,
        frame: &VideoFrame,
        stats: &crate::stats::FrameStats,
    ) {
        let at = Sample {
            media: frame.pts.as_secs_f64(),
            wall: SystemTime::now(),
        };
        let run_started = {
            let mut s = lock(&self.session);
            if s.id != session {
                drop(s);
                self.frames_out.fetch_add(1, Ordering::Relaxed);
                return;
            }
            s.last_video = Some(at);
            s.started
        };
        let mut transitions = Vec::new();
        let new_errors = frame.decode_errors.saturating_sub(
            self.errors_seen
                .swap(frame.decode_errors, Ordering::Relaxed),
        );
        let readings = lock(&self.video).observe(at, stats, new_errors, &mut transitions);
        self.apply(&transitions, Some(frame));
        let mut tagged = Vec::new();
        lock(&self.audio).on_video_luma(at, stats.luma_mean(), &mut tagged);
        self.apply_tagged(&tagged);
        self.refresh_thumbnail(frame);

        self.frames.fetch_add(1, Ordering::Relaxed);
        self.metrics.frames.with_label_values(&[&self.id]).inc();
        self.metrics
            .last_frame_timestamp
            .with_label_values(&[&self.id])
            .set(unix_seconds(SystemTime::now()));
        let labels = [self.id.as_str()];
        let m = &self.metrics;
        m.luma_mean
            .with_label_values(&labels)
            .set(stats.luma_mean() / 255.0);
        m.dark_pixels
            .with_label_values(&labels)
            .set(stats.dark_ratio());
        if stats.has_prev {
            m.changed_pixels
                .with_label_values(&labels)
                .set(stats.changed_ratio());
        }
        m.luma_stddev
            .with_label_values(&labels)
            .set(stats.luma_stddev() / 255.0);
        if let Some(detail) = readings.relative_detail {
            m.detail.with_label_values(&labels).set(detail);
        }
        if let Some(blockiness) = readings.blockiness {
            m.blockiness.with_label_values(&labels).set(blockiness);
        }
        m.quiet_rows
            .with_label_values(&labels)
            .set(stats.quiet_row_ratio());
        m.active_area
            .with_label_values(&labels)
            .set(stats.active_area_ratio());
        if let Some(fps) = readings.fps {
            m.fps.with_label_values(&labels).set(fps);
        }
        if let Some(sink) = &self.stats_sink {
            sink.write(&self.id, at.media, stats);
        }
        {
            let mut st = lock(&self.status);
            if st.state == StreamState::Starting || st.state == StreamState::Down {
                st.state = StreamState::Up;
                st.reason = None;
                self.metrics.stream_up.with_label_values(&[&self.id]).set(1);
                let ttff = round_ms(run_started.elapsed().as_secs_f64());
                st.time_to_first_frame = Some(ttff);
                self.metrics
                    .time_to_first_frame
                    .with_label_values(&[&self.id])
                    .set(ttff);
                tracing::info!(stream = %self.id, width = frame.width, height = frame.height, "stream up");
            }
            if st.width != 0 && (st.width, st.height) != (frame.width, frame.height) {
                let detail = format!(
                    "{}x{} -> {}x{}",
                    st.width, st.height, frame.width, frame.height
                );
                tracing::info!(stream = %self.id, at = at.media, change = %detail, "picture size changed");
                self.metrics
                    .format_changes
                    .with_label_values(&[&self.id])
                    .inc();
                let mut info = lock(&self.info_events);
                info.push_back(InfoEvent {
                    stream: self.id.clone(),
                    kind: "format_change",
                    at: at.media,
                    time: rfc3339(at.wall),
                    detail,
                });
                if !self.keep_all_info && info.len() > RECENT_INFO_EVENTS {
                    info.pop_front();
                }
            }
            st.width = frame.width;
            st.height = frame.height;
            st.frame_pts.push_back(at.media);
            if st.frame_pts.len() > 50 {
                st.frame_pts.pop_front();
            }
            if let (Some(first), Some(last)) = (st.frame_pts.front(), st.frame_pts.back())
                && last > first
            {
                st.fps = (st.frame_pts.len() - 1) as f64 / (last - first);
            }
        }
        self.frames_out.fetch_add(1, Ordering::Relaxed);
    }

    fn refresh_thumbnail(&self, frame: &VideoFrame) {
        let Some(evidence) = &self.evidence else {
            return;
        };
        let mut last = lock(&self.last_thumbnail);
        if last.is_none_or(|t| t.elapsed() >= self.thumbnail_interval) {
            *last = Some(Instant::now());
            evidence.update_latest(&self.id, frame);
        }
    }

    /// Turns detector transitions into metrics, log lines, notifications, evidence and API
    /// state. `frame` is the frame that caused them (None for audio).
    fn apply(&self, transitions: &[Transition], frame: Option<&VideoFrame>) {
        self.apply_scoped(transitions, frame, &Scope::default());
    }

    /// As [`Self::apply`], for transitions of one audio channel or HLS variant.
    fn apply_scoped(&self, transitions: &[Transition], frame: Option<&VideoFrame>, scope: &Scope) {
        let channel = scope.channel;
        for t in transitions {
            match t {
                Transition::Started {
                    detector,
                    start,
                    value,
                    elapsed,
                } => {
                    let labels = [self.id.as_str(), detector.as_str()];
                    self.metrics.defect_active.with_label_values(&labels).set(1);
                    self.metrics.defect_events.with_label_values(&labels).inc();
                    self.metrics
                        .defect_seconds
                        .with_label_values(&labels)
                        .inc_by(elapsed.max(0.0));
                    let id = scoped_id(event_id(&self.id, *detector, start.wall), scope);
                    let evidence = self.evidence.as_ref().map(|e| {
                        e.record_event(&id, &self.id, frame);
                        format!("/api/events/{id}/evidence")
                    });
                    let event = DefectEvent {
                        id,
                        stream: self.id.clone(),
                        detector: *detector,
                        start: round_ms(start.media),
                        end: None,
                        duration: None,
                        start_time: rfc3339(start.wall),
                        end_time: None,
                        value: *value,
                        evidence,
                        channel,
                        variant: scope.variant.clone(),
                    };
                    tracing::warn!(
                        target: "streamwatch::event",
                        event = "defect_start",
                        stream = %self.id,
                        detector = %detector,
                        channel,
                        variant = scope.variant.as_deref(),
                        start = event.start,
                        start_time = %event.start_time,
                        value = *value,
                        "{} defect on {} since {:.3} s",
                        detector,
                        self.id,
                        event.start
                    );
                    self.notifier.publish(Phase::DefectStart, &event);
                    lock(&self.status)
                        .active
                        .insert((*detector, scope.clone()), event);
                }
                Transition::Progress { detector, seconds } => {
                    self.metrics
                        .defect_seconds
                        .with_label_values(&[self.id.as_str(), detector.as_str()])
                        .inc_by(*seconds);
                }
                Transition::Ended {
                    detector,
                    start,
                    end,
                    value,
                } => {
                    let labels = [self.id.as_str(), detector.as_str()];
                    let id = scoped_id(event_id(&self.id, *detector, start.wall), scope);
                    // The same id as at the start: the evidence was kept then.
                    let evidence = self
                        .evidence
                        .as_ref()
                        .map(|_| format!("/api/events/{id}/evidence"));
                    let event = DefectEvent {
                        id,
                        stream: self.id.clone(),
                        detector: *detector,
                        start: round_ms(start.media),
                        end: Some(round_ms(end.media)),
                        duration: Some(round_ms(end.media - start.media)),
                        start_time: rfc3339(start.wall),
                        end_time: Some(rfc3339(end.wall)),
                        value: *value,
                        evidence,
                        channel,
                        variant: scope.variant.clone(),
                    };
                    tracing::info!(
                        target: "streamwatch::event",
                        event = "defect_end",
                        stream = %self.id,
                        detector = %detector,
                        channel,
                        variant = scope.variant.as_deref(),
                        start = event.start,
                        end = event.end,
                        duration = event.duration,
                        start_time = %event.start_time,
                        end_time = event.end_time.as_deref(),
                        value = *value,
                        "{} defect on {} ended: {:.3}-{:.3} s",
                        detector,
                        self.id,
                        event.start,
                        end.media
                    );
                    self.notifier.publish(Phase::DefectEnd, &event);
                    if let Some(all) = &self.all_events {
                        lock(all).push(event.clone());
                    }
                    let mut st = lock(&self.status);
                    st.active.remove(&(*detector, scope.clone()));
                    // Other channels or variants may still hold a defect of the same detector.
                    if !st.active.keys().any(|(d, _)| d == detector) {
                        self.metrics.defect_active.with_label_values(&labels).set(0);
                    }
                    st.recent.push_back(event);
                    if st.recent.len() > RECENT_EVENTS {
                        st.recent.pop_front();
                    }
                }
            }
        }
    }

    // ---- supervisor side ----

    /// Starts a new pipeline run: media time restarts at zero, old queued frames are dropped.
    pub fn begin_session(&self) -> u64 {
        let mut s = lock(&self.session);
        s.id += 1;
        s.base = None;
        s.first_audio = None;
        s.last_video = None;
        s.last_audio = None;
        s.started = Instant::now();
        lock(&self.early_audio).clear();
        *lock(&self.last_frame_at) = None;
        let mut st = lock(&self.status);
        if st.state != StreamState::Down {
            st.state = StreamState::Starting;
        }
        st.frame_pts.clear();
        s.id
    }

    /// Ends the current run: closes active defects at the last analysed media time, marks the
    /// stream down (or stopped) with `reason`.
    pub fn end_session(&self, state: StreamState, reason: Option<String>) {
        let (last_video, last_audio) = {
            let mut s = lock(&self.session);
            // Frames still queued or in the engine belong to the old run; bumping the id
            // makes the engine discard them.
            s.id += 1;
            (s.last_video, s.last_audio)
        };
        let dropped = self.queue.clear() as u64;
        self.frames_out.fetch_add(dropped, Ordering::Relaxed);
        self.slot_reset_pending.store(true, Ordering::Relaxed);
        let mut transitions = Vec::new();
        if let Some(at) = last_video {
            lock(&self.video).finish(at, &mut transitions);
        }
        *lock(&self.video) = VideoDetectors::new(&self.config.detectors);
        let mut tagged = Vec::new();
        if let Some(at) = last_audio {
            lock(&self.audio).finish(at, &mut tagged);
        }
        *lock(&self.audio) = AudioDetectors::new(&self.config.detectors);
        self.apply(&transitions, None);
        self.apply_tagged(&tagged);
        let mut ended = Vec::new();
        lock(&self.transport).end_run(self.transport_now(), &mut ended);
        self.apply_transport(&ended);
        let mut st = lock(&self.status);
        st.state = state;
        st.input_bitrate = None;
        st.reason = reason;
        st.fps = 0.0;
        self.metrics.stream_up.with_label_values(&[&self.id]).set(0);
    }

    // ---- transport side (supervisor watchdog, HLS monitor, demuxer probes) ----

    /// Now on the transport detectors' clock.
    fn transport_now(&self) -> Sample {
        Sample {
            media: self.born.elapsed().as_secs_f64(),
            wall: SystemTime::now(),
        }
    }

    fn apply_transport(&self, transitions: &[ScopedTransition]) {
        for (t, variant) in transitions {
            let scope = Scope {
                channel: None,
                variant: variant.clone(),
            };
            self.apply_scoped(std::slice::from_ref(t), None, &scope);
        }
    }

    /// A watchdog tick of the running pipeline: stall and bitrate.
    pub fn transport_tick(&self) {
        let silence = (self.state() == StreamState::Up).then(|| self.frame_silence());
        let bytes = self.input_bytes.load(Ordering::Relaxed);
        let mut out = Vec::new();
        let bitrate = lock(&self.transport).tick(
            self.transport_now(),
            Instant::now(),
            silence,
            bytes,
            &mut out,
        );
        self.apply_transport(&out);
        if let Some(bps) = bitrate {
            self.metrics
                .input_bitrate
                .with_label_values(&[&self.id])
                .set(bps);
            lock(&self.status).input_bitrate = Some(bps);
        }
    }

    /// Bytes that entered the demuxer (a GStreamer streaming thread).
    pub fn count_input_bytes(&self, n: u64) {
        self.input_bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// MPEG-TS continuity errors found on the demuxer's input.
    pub fn count_ts_cc_errors(&self, n: u64) {
        if n > 0 {
            self.ts_cc_errors.fetch_add(n, Ordering::Relaxed);
            self.metrics
                .ts_cc_errors
                .with_label_values(&[&self.id])
                .inc_by(n);
        }
    }

    /// One HLS request made by streamwatch itself.
    pub fn count_http_request(&self, kind: &'static str, code: &str) {
        self.metrics.count_http_request(&self.id, kind, code);
    }

    /// One poll of one HLS variant's playlist.
    pub fn observe_playlist(&self, variant: &str, verdict: &PlaylistVerdict) {
        let mut out = Vec::new();
        lock(&self.transport).observe_playlist(variant, self.transport_now(), verdict, &mut out);
        self.apply_transport(&out);
        if let Some(age) = verdict.age {
            self.metrics
                .hls_playlist_age
                .with_label_values(&[&self.id, variant])
                .set(age);
        }
    }

    /// An HLS variant is no longer checked: its defects end, its series go.
    pub fn forget_variant(&self, variant: &str) {
        let mut out = Vec::new();
        lock(&self.transport).forget_variant(variant, self.transport_now(), &mut out);
        self.apply_transport(&out);
        let _ = self
            .metrics
            .hls_playlist_age
            .remove_label_values(&[&self.id, variant]);
        lock(&self.hls).retain(|v| v.variant != variant);
    }

    pub fn note_transport_problem(&self, problem: &str) {
        *lock(&self.transport_problem) = Some((Instant::now(), problem.to_owned()));
    }

    /// The reason a run failed, with the transport problem seen shortly before, if any.
    pub fn explain_failure(&self, pipeline_reason: &str) -> String {
        match &*lock(&self.transport_problem) {
            Some((at, problem)) if at.elapsed() < Duration::from_secs(15) => {
                format!("{problem} (pipeline: {pipeline_reason})")
            }
            _ => pipeline_reason.to_owned(),
        }
    }

    pub fn set_hls_status(&self, variants: Vec<VariantStatus>) {
        *lock(&self.hls) = variants;
    }

    /// Records a failure of a playlist not (yet) in the status, e.g. the first request.
    pub fn set_hls_error(&self, variant: &str, reason: String) {
        let mut hls = lock(&self.hls);
        match hls.iter_mut().find(|v| v.variant == variant) {
            Some(v) => v.last_error = Some(reason),
            None => hls.push(VariantStatus {
                variant: variant.to_owned(),
                uri: self.url.clone(),
                last_error: Some(reason),
                ..Default::default()
            }),
        }
    }

    /// A pipeline that did not stop was left behind (see the supervisor's teardown).
    pub fn count_abandoned_pipeline(&self) {
        self.metrics
            .pipelines_abandoned
            .with_label_values(&[&self.id])
            .inc();
    }

    pub fn count_restart(&self) {
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.metrics.restarts.with_label_values(&[&self.id]).inc();
    }

    /// Time since the last decoded frame, or since the run started when none came yet.
    pub fn frame_silence(&self) -> Duration {
        match *lock(&self.last_frame_at) {
            Some(t) => t.elapsed(),
            None => lock(&self.session).started.elapsed(),
        }
    }

    pub fn state(&self) -> StreamState {
        lock(&self.status).state
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
        let st = lock(&self.status);
        StreamStatus {
            id: self.id.clone(),
            url: self.url.clone(),
            state: st.state,
            reason: st.reason.clone(),
            fps: (st.fps * 100.0).round() / 100.0,
            width: st.width,
            height: st.height,
            frames: self.frames.load(Ordering::Relaxed),
            frames_dropped: self.dropped.load(Ordering::Relaxed),
            restarts: self.restarts.load(Ordering::Relaxed),
            active_defects: st.active.values().cloned().collect(),
            last_events: st.recent.iter().rev().cloned().collect(),
            info_events: lock(&self.info_events).iter().rev().cloned().collect(),
            time_to_first_frame: st.time_to_first_frame,
            input_bitrate: st.input_bitrate.map(f64::round),
            ts_cc_errors: self.ts_cc_errors.load(Ordering::Relaxed),
            hls: lock(&self.hls).clone(),
        }
    }

    /// Every ended event (only kept in offline mode).
    /// Informational events (all of them in `scan`, the last few otherwise).
    pub fn info_events(&self) -> Vec<InfoEvent> {
        lock(&self.info_events).iter().cloned().collect()
    }

    /// Counts a decoder's error or concealment warning (a pipeline warning from an element
    /// whose class is a decoder); other warnings are only logged.
    pub fn note_pipeline_warning(&self, msg: &gstreamer::Message) {
        use gstreamer::prelude::*;
        let from_decoder = msg
            .src()
            .and_then(|src| src.downcast_ref::<gstreamer::Element>().cloned())
            .and_then(|element| element.factory())
            .is_some_and(|factory| factory.klass().contains("Decoder"));
        if from_decoder {
            self.count_decode_error();
        }
        tracing::warn!(stream = %self.id, decoder = from_decoder, warning = %crate::ingest::pipeline::describe_message(msg), "pipeline warning");
    }

    /// Records the video decoder element the pipeline created (`streamwatch_stream_info`).
    pub fn set_decoder(&self, factory: &str) {
        self.metrics
            .set_stream_decoder(&self.id, &self.url, factory);
    }

    /// Counts one decoder error or concealed frame.
    pub fn count_decode_error(&self) {
        self.metrics
            .decode_errors
            .with_label_values(&[&self.id])
            .inc();
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes the error count as a frame leaves the decoder (called from its streaming thread).
    pub fn mark_decoded(&self, pts_ns: u64) {
        let mut marks = lock(&self.decode_marks);
        if marks.len() >= DECODE_MARKS {
            marks.pop_front();
        }
        marks.push_back((pts_ns, self.decode_errors()));
    }

    /// The error count when the frame with this PTS left the decoder (the current count when
    /// it was not marked).
    pub fn decode_errors_at(&self, pts_ns: u64) -> u64 {
        let mut marks = lock(&self.decode_marks);
        while let Some(&(pts, count)) = marks.front() {
            marks.pop_front();
            if pts == pts_ns {
                return count;
            }
        }
        self.decode_errors()
    }

    /// Decoder errors and concealment warnings so far.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    pub fn events(&self) -> Vec<DefectEvent> {
        self.all_events
            .as_ref()
            .map(|m| lock(m).clone())
            .unwrap_or_default()
    }

    pub fn frames_analysed(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    pub fn last_video_media_time(&self) -> Option<f64> {
        lock(&self.session).last_video.map(|s| s.media)
    }
}

fn event_id(stream: &str, detector: DetectorKind, start: SystemTime) -> String {
    let ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{stream}-{detector}-{ms}")
}

/// Per-channel or per-variant events of one detector may start at the same millisecond.
fn scoped_id(id: String, scope: &Scope) -> String {
    match (&scope.channel, &scope.variant) {
        (Some(ch), _) => format!("{id}-ch{ch}"),
        (None, Some(v)) => format!("{id}-{v}"),
        (None, None) => id,
    }
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
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
        self.snapshot().iter().find_map(|s| {
            let st = lock(&s.status);
            st.active
                .values()
                .chain(st.recent.iter())
                .find(|e| e.id == id)
                .cloned()
        })
    }

    pub fn get(&self, id: &str) -> Option<Arc<Stream>> {
        self.snapshot().into_iter().find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: u64) -> VideoFrame {
        VideoFrame::from_plane(4, 1, &[0; 4], 4, Duration::from_millis(n), Instant::now())
            .expect("valid frame")
    }

    #[test]
    fn a_full_live_queue_drops_the_oldest_frame() {
        let q = FrameQueue::new(3, false);
        let closed = AtomicBool::new(false);
        let dropped: Vec<bool> = (0..5).map(|n| q.push(1, frame(n), &closed)).collect();
        assert_eq!(dropped, [false, false, false, true, true]);
        let mut out = Vec::new();
        q.take(10, &mut out);
        let kept: Vec<u128> = out.iter().map(|(_, f)| f.pts.as_millis()).collect();
        assert_eq!(kept, [2, 3, 4]);
    }

    #[test]
    fn a_full_offline_queue_waits_for_the_engine_instead_of_dropping() {
        let q = Arc::new(FrameQueue::new(2, true));
        let closed = Arc::new(AtomicBool::new(false));
        let producer = {
            let (q, closed) = (q.clone(), closed.clone());
            std::thread::spawn(move || (0..6).filter(|&n| q.push(1, frame(n), &closed)).count())
        };
        let mut out = Vec::new();
        while out.len() < 6 {
            q.take(1, &mut out);
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(producer.join().expect("producer"), 0, "a frame was dropped");
        let order: Vec<u128> = out.iter().map(|(_, f)| f.pts.as_millis()).collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    }
}
