//! Every metric streamwatch exports, in one place, on a registry of its own.
//!
//! Names follow `streamwatch_<what>_<unit>[_total]` with base units; labels are bounded
//! (`stream`, `detector`, `window`, `channel`); the URL appears only in `streamwatch_stream_info`.
//! Per-channel audio defects (silence, true peak, missing channel) share their detector's
//! `streamwatch_defect_*{stream,detector}` series (active while any channel is); the channel is
//! in the event and in `streamwatch_audio_channel_level_dbfs{stream,channel}`.
//!
//! A stream's series are resolved once, when it is registered ([`StreamMetrics`]): nothing on
//! the per-frame path hashes label values. Series that only mean something once measured (the
//! picture and audio gauges) appear with their first value, as before any refactoring did.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use prometheus::{
    Counter, CounterVec, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::detect::DetectorKind;
use crate::detect::transport::scte35::BreakChange;
use crate::detect::transport::tr101290::{self, IndicatorErrors};
use crate::events::{Event, SegmentDownload, Sink};
use crate::frame::VideoFrame;
use crate::sync::lock;

/// Values of the `window` label of `streamwatch_audio_loudness_lufs`.
pub const LOUDNESS_WINDOWS: [&str; 3] = ["momentary", "short_term", "integrated"];

/// The most audio channels GStreamer carries: the bound of the `channel` label.
const MAX_CHANNELS: usize = 64;

/// Registers a collector and hands back a handle to it. Definitions are constants, so a
/// failure here is a programming error caught by the unit tests, not a runtime condition.
fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

/// A labelled family of series, registered. `new` is the family type's constructor.
fn family<V: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    new: fn(Opts, &[&str]) -> prometheus::Result<V>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> V {
    register(r, new(Opts::new(name, help), labels).expect("valid metric"))
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    family(r, IntGaugeVec::new, name, help, labels)
}

fn float_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    family(r, GaugeVec::new, name, help, labels)
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    family(r, IntCounterVec::new, name, help, labels)
}

fn float_counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> CounterVec {
    family(r, CounterVec::new, name, help, labels)
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect("valid metric"))
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    register(r, Histogram::with_opts(opts).expect("valid metric"))
}

/// The process's metrics: its own series, and the families of every stream's series.
pub struct Metrics {
    pub registry: Registry,
    pub gpu_batches: IntCounter,
    pub gpu_batch_frames: Histogram,
    pub detect_latency: Histogram,
    pub engine_errors: IntCounter,
    pub engine_batch_seconds: Histogram,
    pub webhook_deliveries: IntCounterVec,
    pub evidence_uploads: IntCounterVec,
    /// The HTTP server's own health: its connections and the requests it refused.
    pub http: HttpMetrics,
    pub evidence_errors: IntCounter,
    streams: StreamFamilies,
}

/// Series of the HTTP server (labels: `listener` is `main` or `metrics`).
pub struct HttpMetrics {
    pub connections: IntGaugeVec,
    pub connections_closed: IntCounterVec,
    pub refused: IntCounterVec,
}

impl HttpMetrics {
    fn new(r: &Registry) -> Self {
        Self {
            connections: gauge_vec(
                r,
                "streamwatch_http_connections",
                "Open HTTP connections, by listener (main, metrics).",
                &["listener"],
            ),
            connections_closed: counter_vec(
                r,
                "streamwatch_http_connections_shed_total",
                "HTTP connections closed by the connection cap, by listener and reason (evicted: \
                 the oldest idle one, to admit a new one; refused: no idle one to close).",
                &["listener", "reason"],
            ),
            refused: counter_vec(
                r,
                "streamwatch_http_requests_refused_total",
                "HTTP requests refused by the access checks, by reason (host, origin, token, \
                 no_token, content_type).",
                &["reason"],
            ),
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        gauge_vec(
            &r,
            "streamwatch_build_info",
            "Build information; always 1.",
            &["version"],
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        Self {
            gpu_batches: counter(
                &r,
                "streamwatch_gpu_batches_total",
                "Batches analysed: one upload, dispatch and readback each.",
            ),
            gpu_batch_frames: histogram(
                &r,
                "streamwatch_gpu_batch_frames",
                "Frames per analysed batch.",
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
            ),
            detect_latency: histogram(
                &r,
                "streamwatch_detect_latency_seconds",
                "Time from a frame leaving the decoder to its statistics being ready.",
                prometheus::exponential_buckets(0.001, 2.0, 14).expect("valid buckets"),
            ),
            engine_errors: counter(
                &r,
                "streamwatch_engine_errors_total",
                "Batches the statistics backend failed to analyse (their frames are lost).",
            ),
            engine_batch_seconds: histogram(
                &r,
                "streamwatch_engine_batch_seconds",
                "Wall time of one batch in the statistics backend (upload, compute, readback).",
                prometheus::exponential_buckets(0.0005, 2.0, 14).expect("valid buckets"),
            ),
            webhook_deliveries: counter_vec(
                &r,
                "streamwatch_webhook_deliveries_total",
                "Webhook notifications by outcome: ok, failed (after retries) or dropped (queue full).",
                &["webhook", "result"],
            ),
            evidence_uploads: counter_vec(
                &r,
                "streamwatch_evidence_uploads_total",
                "Evidence thumbnails copied to object storage, by result (ok, failed).",
                &["result"],
            ),
            http: HttpMetrics::new(&r),
            evidence_errors: counter(
                &r,
                "streamwatch_evidence_errors_total",
                "Evidence directory failures: opening it at start (evidence then disabled) and each thumbnail that could not be written.",
            ),
            streams: StreamFamilies {
                lifecycle: LifecycleFamilies::new(&r),
                defects: DefectFamilies::new(&r),
                video: VideoFamilies::new(&r),
                audio: AudioFamilies::new(&r),
                transport: TransportFamilies::new(&r),
            },
            registry: r,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The families of per-stream series, grouped as the events that set them.
struct StreamFamilies {
    lifecycle: LifecycleFamilies,
    defects: DefectFamilies,
    video: VideoFamilies,
    audio: AudioFamilies,
    transport: TransportFamilies,
}

struct DefectFamilies {
    defect_active: IntGaugeVec,
    defect_events: IntCounterVec,
    defect_seconds: CounterVec,
}

impl DefectFamilies {
    fn new(r: &Registry) -> Self {
        Self {
            defect_active: gauge_vec(
                r,
                "streamwatch_defect_active",
                "1 while the detector reports a defect on the stream.",
                &["stream", "detector"],
            ),
            defect_events: counter_vec(
                r,
                "streamwatch_defect_events_total",
                "Defects reported (counted when they start).",
                &["stream", "detector"],
            ),
            defect_seconds: float_counter_vec(
                r,
                "streamwatch_defect_seconds_total",
                "Media seconds spent in a reported defect.",
                &["stream", "detector"],
            ),
        }
    }
}

struct LifecycleFamilies {
    stream_info: IntGaugeVec,
    stream_up: IntGaugeVec,
    frames: IntCounterVec,
    frames_dropped: IntCounterVec,
    frames_skipped: IntCounterVec,
    analysis_tier: GaugeVec,
    captions_bytes: GaugeVec,
    restarts: IntCounterVec,
    last_frame_timestamp: GaugeVec,
    time_to_first_frame: GaugeVec,
    decode_errors: IntCounterVec,
    format_changes: IntCounterVec,
    pipelines_abandoned: IntCounterVec,
}

impl LifecycleFamilies {
    fn new(r: &Registry) -> Self {
        Self {
            stream_info: gauge_vec(
                r,
                "streamwatch_stream_info",
                "Monitored stream, its source URL, the video decoder element its pipeline uses, its video and audio codecs and audio channels (each empty until known); always 1.",
                &[
                    "stream",
                    "url",
                    "decoder",
                    "video_codec",
                    "audio_codec",
                    "audio_channels",
                ],
            ),
            stream_up: gauge_vec(
                r,
                "streamwatch_stream_up",
                "1 while the stream delivers decoded frames, 0 while it is down or restarting.",
                &["stream"],
            ),
            frames: counter_vec(
                r,
                "streamwatch_frames_total",
                "Video frames analysed.",
                &["stream"],
            ),
            frames_dropped: counter_vec(
                r,
                "streamwatch_frames_dropped_total",
                "Video frames dropped because analysis fell behind the stream.",
                &["stream"],
            ),
            frames_skipped: counter_vec(
                r,
                "streamwatch_frames_skipped_total",
                "Coded video frames not decoded because of the stream's analysis tier (non-key frames in keyframes, non-reference frames in reference).",
                &["stream"],
            ),
            analysis_tier: float_gauge_vec(
                r,
                "streamwatch_stream_analysis_tier",
                "Analysis tier of the frames analysed now: 2 full (every frame), 1 reference (frames other frames predict from), 0 keyframes. Below the configured tier while load is shed.",
                &["stream"],
            ),
            captions_bytes: float_gauge_vec(
                r,
                "streamwatch_captions_bytes_per_second",
                "Closed caption data (CEA-608 pairs without padding, CEA-708 service block bytes) carried in the video's user data, bytes per second over the last second of media, all fields and services together.",
                &["stream"],
            ),
            restarts: counter_vec(
                r,
                "streamwatch_stream_restarts_total",
                "Pipeline restarts after an error, end of stream or stall.",
                &["stream"],
            ),
            last_frame_timestamp: float_gauge_vec(
                r,
                "streamwatch_last_frame_timestamp_seconds",
                "Unix time at which the last video frame of the stream was decoded.",
                &["stream"],
            ),
            time_to_first_frame: float_gauge_vec(
                r,
                "streamwatch_time_to_first_frame_seconds",
                "Seconds from the start of the latest pipeline run to its first analysed frame.",
                &["stream"],
            ),
            decode_errors: counter_vec(
                r,
                "streamwatch_decode_errors_total",
                "Decoder errors and concealment warnings reported by GStreamer.",
                &["stream"],
            ),
            format_changes: counter_vec(
                r,
                "streamwatch_video_format_changes_total",
                "Changes of picture size mid-stream.",
                &["stream"],
            ),
            pipelines_abandoned: counter_vec(
                r,
                "streamwatch_pipelines_abandoned_total",
                "Pipelines that did not stop within 10 s when torn down (a GStreamer deadlock), left behind so that the stream could restart.",
                &["stream"],
            ),
        }
    }
}

struct VideoFamilies {
    luma_mean: GaugeVec,
    dark_pixels: GaugeVec,
    changed_pixels: GaugeVec,
    luma_stddev: GaugeVec,
    detail: GaugeVec,
    blockiness: GaugeVec,
    quiet_rows: GaugeVec,
    active_area: GaugeVec,
    fps: GaugeVec,
}

impl VideoFamilies {
    fn new(r: &Registry) -> Self {
        Self {
            luma_mean: float_gauge_vec(
                r,
                "streamwatch_video_luma_mean_ratio",
                "Mean luma of the latest frame, 0 (black) to 1 (white).",
                &["stream"],
            ),
            dark_pixels: float_gauge_vec(
                r,
                "streamwatch_video_dark_pixels_ratio",
                "Share of dark pixels in the latest frame (the black detector's statistic).",
                &["stream"],
            ),
            changed_pixels: float_gauge_vec(
                r,
                "streamwatch_video_changed_pixels_ratio",
                "Share of pixels changed since the previous frame (the freeze detector's statistic).",
                &["stream"],
            ),
            luma_stddev: float_gauge_vec(
                r,
                "streamwatch_video_luma_stddev_ratio",
                "Standard deviation of luma in the latest frame over 255 (the flat detector's \
                 statistic: near 0 for a uniform picture).",
                &["stream"],
            ),
            detail: float_gauge_vec(
                r,
                "streamwatch_video_detail_ratio",
                "Detail of the latest frame relative to the stream's normal detail, 1 = normal \
                 (the blur detector's statistic).",
                &["stream"],
            ),
            blockiness: float_gauge_vec(
                r,
                "streamwatch_video_blockiness_ratio",
                "Share of block-edge shaped luma steps that lie on the 8x8 coding grid, smoothed \
                 (the blockiness detector's statistic): about 0.5 without block structure, \
                 towards 1 for macroblocking.",
                &["stream"],
            ),
            quiet_rows: float_gauge_vec(
                r,
                "streamwatch_video_quiet_rows_ratio",
                "Share of rows equal to the row below up to coding noise (near 1 for colour \
                 bars; the colorbars detector's statistic).",
                &["stream"],
            ),
            active_area: float_gauge_vec(
                r,
                "streamwatch_video_active_area_ratio",
                "Share of the latest frame inside dark bars at its edges (letterbox, pillarbox).",
                &["stream"],
            ),
            fps: float_gauge_vec(
                r,
                "streamwatch_video_fps",
                "Frames per second of media time over the last second.",
                &["stream"],
            ),
        }
    }
}

struct AudioFamilies {
    audio_level: GaugeVec,
    audio_channel_level: GaugeVec,
    audio_channel_info: IntGaugeVec,
    loudness: GaugeVec,
    true_peak: GaugeVec,
    av_offset: GaugeVec,
    av_measured_offset: GaugeVec,
}

impl AudioFamilies {
    fn new(r: &Registry) -> Self {
        Self {
            audio_level: float_gauge_vec(
                r,
                "streamwatch_audio_level_dbfs",
                "RMS level of the latest audio buffer, all channels, in dBFS.",
                &["stream"],
            ),
            audio_channel_level: float_gauge_vec(
                r,
                "streamwatch_audio_channel_level_dbfs",
                "RMS level of the latest audio buffer per channel (0-based), in dBFS.",
                &["stream", "channel"],
            ),
            audio_channel_info: gauge_vec(
                r,
                "streamwatch_audio_channel_info",
                "Position of each audio channel (0-based) as the caps' channel mask names it (FL, FR, C, LFE, ...; MONO); always 1.",
                &["stream", "channel", "position"],
            ),
            loudness: float_gauge_vec(
                r,
                "streamwatch_audio_loudness_lufs",
                "EBU R128 loudness: momentary (400 ms), short-term (3 s) and integrated (since the pipeline started), in LUFS.",
                &["stream", "window"],
            ),
            true_peak: float_gauge_vec(
                r,
                "streamwatch_audio_true_peak_dbtp",
                "Highest true peak over all channels of the latest audio buffer, in dBTP.",
                &["stream"],
            ),
            av_offset: float_gauge_vec(
                r,
                "streamwatch_av_offset_seconds",
                "Audio minus video delay between timestamp and arrival at the sink, smoothed; positive when audio is late.",
                &["stream"],
            ),
            av_measured_offset: float_gauge_vec(
                r,
                "streamwatch_av_measured_offset_seconds",
                "A/V offset measured from the latest flash/beep pair of a sync test signal; positive when audio is late.",
                &["stream"],
            ),
        }
    }
}

struct TransportFamilies {
    http_requests: IntCounterVec,
    segments: SegmentFamilies,
    hls_playlist_age: GaugeVec,
    input_bitrate: GaugeVec,
    ts_cc_errors: IntCounterVec,
    tr101290_errors: IntCounterVec,
    scte35_messages: IntCounterVec,
    ad_break_active: IntGaugeVec,
    rtp_packets_lost: IntCounterVec,
}

impl TransportFamilies {
    fn new(r: &Registry) -> Self {
        Self {
            http_requests: counter_vec(
                r,
                "streamwatch_http_requests_total",
                "Requests streamwatch made itself for HLS streams: playlists (kind master or playlist), segments (kind segment: downloads of the analysed rendition, HEAD checks of the others), init segments (init) and keys (key); code is the HTTP status, or connect, timeout, redirect, invalid (too large, not a playlist, undecryptable) or error.",
                &["stream", "kind", "code"],
            ),
            segments: SegmentFamilies::new(r),
            hls_playlist_age: float_gauge_vec(
                r,
                "streamwatch_hls_playlist_age_seconds",
                "Seconds since the HLS media playlist of a variant last changed (variant v0, v1... in master playlist order, main without a master playlist).",
                &["stream", "variant"],
            ),
            input_bitrate: float_gauge_vec(
                r,
                "streamwatch_input_bitrate_bits_per_second",
                "Bits per second entering the demuxer (RTP payload for RTSP), averaged over detectors.bitrate.window.",
                &["stream"],
            ),
            ts_cc_errors: counter_vec(
                r,
                "streamwatch_ts_cc_errors_total",
                "MPEG-TS continuity counter errors (packets lost or out of order) on any PID.",
                &["stream"],
            ),
            tr101290_errors: counter_vec(
                r,
                "streamwatch_tr101290_errors_total",
                "ETSI TR 101 290 errors on MPEG-TS input, by priority (1, 2, 3) and indicator as the standard names it (TS_sync_loss, Continuity_count_error, PAT_error_2, PCR_accuracy_error...).",
                &["stream", "priority", "indicator"],
            ),
            scte35_messages: counter_vec(
                r,
                "streamwatch_scte35_messages_total",
                "SCTE-35 messages (splice_info_sections with a valid CRC) on MPEG-TS input, by command (splice_insert, time_signal, splice_null...).",
                &["stream", "command"],
            ),
            ad_break_active: gauge_vec(
                r,
                "streamwatch_ad_break_active",
                "1 while the SCTE-35 cues of an MPEG-TS stream say an ad break is on (from a cue out to its return), 0 otherwise.",
                &["stream"],
            ),
            rtp_packets_lost: counter_vec(
                r,
                "streamwatch_rtp_packets_lost_total",
                "RTP packets lost: gaps in the sequence numbers received (reordered packets are not counted), per RTP stream of an rtp:// URL, SDP file or RTSP source.",
                &["stream"],
            ),
        }
    }
}

/// Segment downloads of the analysed HLS rendition: the QoS figures OTT operators watch.
#[derive(Clone)]
struct SegmentFamilies {
    seconds: HistogramVec,
    bytes: IntCounterVec,
    ratio: GaugeVec,
}

impl SegmentFamilies {
    fn new(r: &Registry) -> Self {
        let opts = HistogramOpts::new(
            "streamwatch_segment_download_seconds",
            "Time to download each segment of the analysed HLS rendition.",
        )
        .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0]);
        Self {
            seconds: register(
                r,
                HistogramVec::new(opts, &["stream"]).expect("valid metric"),
            ),
            bytes: counter_vec(
                r,
                "streamwatch_segment_download_bytes_total",
                "Bytes of segments downloaded for the analysed HLS rendition.",
                &["stream"],
            ),
            ratio: float_gauge_vec(
                r,
                "streamwatch_segment_download_ratio",
                "Download time of the last segment over the media time it holds: above 1 the origin cannot deliver the analysed rendition in real time.",
                &["stream"],
            ),
        }
    }
}

/// One stream's segment series, created with its first download (only HLS streams have them).
struct SegmentSeries {
    family: SegmentFamilies,
    stream: String,
    series: OnceLock<(Histogram, IntCounter, Gauge)>,
}

impl SegmentSeries {
    fn observe(&self, d: &SegmentDownload, removed: &AtomicBool) {
        if removed.load(Ordering::Relaxed) && self.series.get().is_none() {
            return;
        }
        let (seconds, bytes, ratio) = self.series.get_or_init(|| {
            let labels = [self.stream.as_str()];
            (
                self.family.seconds.with_label_values(&labels),
                self.family.bytes.with_label_values(&labels),
                self.family.ratio.with_label_values(&labels),
            )
        });
        seconds.observe(d.seconds);
        bytes.inc_by(d.bytes);
        if let Some(r) = d.ratio() {
            ratio.set(r);
        }
    }

    fn remove(&self) {
        if self.series.get().is_some() {
            let labels = [self.stream.as_str()];
            let _ = self.family.seconds.remove_label_values(&labels);
            let _ = self.family.bytes.remove_label_values(&labels);
            let _ = self.family.ratio.remove_label_values(&labels);
        }
    }
}

/// A gauge series that exists from its first value on. Resolved once; after the stream is
/// unregistered it is never created again (a late frame must not bring a removed series back).
struct LazyGauge {
    family: GaugeVec,
    labels: Vec<String>,
    series: OnceLock<Gauge>,
}

impl LazyGauge {
    fn new(family: &GaugeVec, labels: &[&str]) -> Self {
        Self {
            family: family.clone(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            series: OnceLock::new(),
        }
    }

    fn set(&self, value: f64, removed: &AtomicBool) {
        if let Some(series) = self.series.get() {
            series.set(value);
        } else if !removed.load(Ordering::Relaxed) {
            let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            self.series
                .get_or_init(|| self.family.with_label_values(&labels))
                .set(value);
        }
    }

    fn remove(&self) {
        if self.series.get().is_some() {
            let labels: Vec<&str> = self.labels.iter().map(String::as_str).collect();
            let _ = self.family.remove_label_values(&labels);
        }
    }
}

/// One detector's three series of a stream.
struct DefectSeries {
    active: IntGauge,
    events: IntCounter,
    seconds: Counter,
}

struct VideoSeries {
    last_frame_timestamp: LazyGauge,
    luma_mean: LazyGauge,
    dark_pixels: LazyGauge,
    changed_pixels: LazyGauge,
    luma_stddev: LazyGauge,
    detail: LazyGauge,
    blockiness: LazyGauge,
    quiet_rows: LazyGauge,
    active_area: LazyGauge,
    fps: LazyGauge,
}

impl VideoSeries {
    fn new(f: &VideoFamilies, l: &LifecycleFamilies, stream: &str) -> Self {
        let lazy = |family: &GaugeVec| LazyGauge::new(family, &[stream]);
        Self {
            last_frame_timestamp: lazy(&l.last_frame_timestamp),
            luma_mean: lazy(&f.luma_mean),
            dark_pixels: lazy(&f.dark_pixels),
            changed_pixels: lazy(&f.changed_pixels),
            luma_stddev: lazy(&f.luma_stddev),
            detail: lazy(&f.detail),
            blockiness: lazy(&f.blockiness),
            quiet_rows: lazy(&f.quiet_rows),
            active_area: lazy(&f.active_area),
            fps: lazy(&f.fps),
        }
    }

    fn all(&self) -> [&LazyGauge; 10] {
        [
            &self.last_frame_timestamp,
            &self.luma_mean,
            &self.dark_pixels,
            &self.changed_pixels,
            &self.luma_stddev,
            &self.detail,
            &self.blockiness,
            &self.quiet_rows,
            &self.active_area,
            &self.fps,
        ]
    }
}

struct AudioSeries {
    channel_info: IntGaugeVec,
    /// The positions the channel info series show now, by channel.
    positions: Mutex<Vec<String>>,
    level: LazyGauge,
    channels: Vec<LazyGauge>,
    loudness: [LazyGauge; 3],
    true_peak: LazyGauge,
    av_offset: LazyGauge,
    av_measured_offset: LazyGauge,
}

impl AudioSeries {
    fn new(f: &AudioFamilies, stream: &str) -> Self {
        let lazy = |family: &GaugeVec| LazyGauge::new(family, &[stream]);
        Self {
            channel_info: f.audio_channel_info.clone(),
            positions: Mutex::default(),
            level: lazy(&f.audio_level),
            channels: (0..MAX_CHANNELS)
                .map(|ch| LazyGauge::new(&f.audio_channel_level, &[stream, &ch.to_string()]))
                .collect(),
            loudness: LOUDNESS_WINDOWS.map(|w| LazyGauge::new(&f.loudness, &[stream, w])),
            true_peak: lazy(&f.true_peak),
            av_offset: lazy(&f.av_offset),
            av_measured_offset: lazy(&f.av_measured_offset),
        }
    }

    /// Replaces the channel info series by those of `layout` (`FL FR C LFE SL SR`, `mono`);
    /// with `removed` set, only removes them.
    fn set_positions(&self, stream: &str, layout: Option<&str>, removed: &AtomicBool) {
        let next: Vec<String> = match layout {
            Some(l) if !removed.load(Ordering::Relaxed) => {
                l.split(' ').map(|p| p.to_ascii_uppercase()).collect()
            }
            _ => Vec::new(),
        };
        let mut current = lock(&self.positions);
        if *current == next {
            return;
        }
        for (ch, position) in current.iter().enumerate() {
            let _ = self
                .channel_info
                .remove_label_values(&[stream, &ch.to_string(), position]);
        }
        for (ch, position) in next.iter().enumerate() {
            self.channel_info
                .with_label_values(&[stream, &ch.to_string(), position])
                .set(1);
        }
        *current = next;
    }

    fn all(&self) -> impl Iterator<Item = &LazyGauge> {
        [
            &self.level,
            &self.true_peak,
            &self.av_offset,
            &self.av_measured_offset,
        ]
        .into_iter()
        .chain(&self.channels)
        .chain(&self.loudness)
    }
}

/// One stream's series, resolved when the stream is registered: the metrics sink of that
/// stream. [`StreamMetrics::unregister`] removes exactly the series it created.
pub struct StreamMetrics {
    stream: String,
    url: String,
    removed: AtomicBool,
    info: IntGaugeVec,
    /// The labels after `stream` and `url` that the stream's info series has now: decoder,
    /// video codec, audio codec, audio channels.
    info_labels: Mutex<[String; 4]>,
    up_family: IntGaugeVec,
    up: IntGauge,
    /// Counters created at zero, so dashboards and alerts see them before any event.
    counter_families: [IntCounterVec; 9],
    frames: IntCounter,
    dropped: IntCounter,
    skipped: IntCounter,
    restarts: IntCounter,
    decode_errors: IntCounter,
    format_changes: IntCounter,
    ts_cc_errors: IntCounter,
    rtp_packets_lost: IntCounter,
    abandoned: IntCounter,
    time_to_first_frame: LazyGauge,
    input_bitrate: LazyGauge,
    analysis_tier: LazyGauge,
    captions_bytes: LazyGauge,
    defect_families: (IntGaugeVec, IntCounterVec, CounterVec),
    /// Indexed by `DetectorKind as usize`.
    defects: Vec<DefectSeries>,
    video: VideoSeries,
    audio: AudioSeries,
    http_family: IntCounterVec,
    http_requests: Mutex<HashMap<(&'static str, String), IntCounter>>,
    tr101290_family: IntCounterVec,
    tr101290_errors: Mutex<HashMap<&'static str, (u8, IntCounter)>>,
    scte35_family: IntCounterVec,
    scte35_messages: Mutex<HashMap<&'static str, IntCounter>>,
    ad_break_family: IntGaugeVec,
    /// Created when the stream's TS is first measured.
    ad_break: Mutex<Option<IntGauge>>,
    playlist_age_family: GaugeVec,
    playlist_age: Mutex<BTreeMap<String, Gauge>>,
    segments: SegmentSeries,
}

impl StreamMetrics {
    /// Creates the stream's series: the info series, `up` at 0, counters and every detector's
    /// defect series at zero.
    pub fn register(metrics: &Metrics, stream: &str, url: &str) -> Self {
        let f = &metrics.streams;
        let l = &f.lifecycle;
        let d = &f.defects;
        let counter_families = [
            l.frames.clone(),
            l.frames_dropped.clone(),
            l.frames_skipped.clone(),
            l.restarts.clone(),
            l.decode_errors.clone(),
            l.format_changes.clone(),
            f.transport.ts_cc_errors.clone(),
            f.transport.rtp_packets_lost.clone(),
            l.pipelines_abandoned.clone(),
        ];
        let [
            frames,
            dropped,
            skipped,
            restarts,
            decode_errors,
            format_changes,
            ts_cc_errors,
            rtp_packets_lost,
            abandoned,
        ] = counter_families
            .clone()
            .map(|family| family.with_label_values(&[stream]));
        let defects = DetectorKind::ALL
            .iter()
            .map(|kind| {
                let labels = [stream, kind.as_str()];
                let active = d.defect_active.with_label_values(&labels);
                active.set(0);
                DefectSeries {
                    active,
                    events: d.defect_events.with_label_values(&labels),
                    seconds: d.defect_seconds.with_label_values(&labels),
                }
            })
            .collect();
        l.stream_info
            .with_label_values(&[stream, url, "", "", "", ""])
            .set(1);
        let up = l.stream_up.with_label_values(&[stream]);
        up.set(0);
        Self {
            stream: stream.to_owned(),
            url: url.to_owned(),
            removed: AtomicBool::new(false),
            info: l.stream_info.clone(),
            info_labels: Mutex::default(),
            up_family: l.stream_up.clone(),
            up,
            counter_families,
            frames,
            dropped,
            skipped,
            restarts,
            decode_errors,
            format_changes,
            ts_cc_errors,
            rtp_packets_lost,
            abandoned,
            time_to_first_frame: LazyGauge::new(&l.time_to_first_frame, &[stream]),
            analysis_tier: LazyGauge::new(&l.analysis_tier, &[stream]),
            captions_bytes: LazyGauge::new(&l.captions_bytes, &[stream]),
            input_bitrate: LazyGauge::new(&f.transport.input_bitrate, &[stream]),
            defect_families: (
                d.defect_active.clone(),
                d.defect_events.clone(),
                d.defect_seconds.clone(),
            ),
            defects,
            video: VideoSeries::new(&f.video, l, stream),
            audio: AudioSeries::new(&f.audio, stream),
            http_family: f.transport.http_requests.clone(),
            tr101290_family: f.transport.tr101290_errors.clone(),
            tr101290_errors: Mutex::default(),
            scte35_family: f.transport.scte35_messages.clone(),
            scte35_messages: Mutex::default(),
            ad_break_family: f.transport.ad_break_active.clone(),
            ad_break: Mutex::default(),
            http_requests: Mutex::default(),
            playlist_age_family: f.transport.hls_playlist_age.clone(),
            playlist_age: Mutex::default(),
            segments: SegmentSeries {
                family: f.transport.segments.clone(),
                stream: stream.to_owned(),
                series: OnceLock::new(),
            },
        }
    }

    /// Removes every series of the stream (it is no longer monitored). Values set afterwards
    /// (a frame still in the engine) go nowhere.
    pub fn unregister(&self) {
        if self.removed.swap(true, Ordering::Relaxed) {
            return;
        }
        let stream = self.stream.as_str();
        let labels = lock(&self.info_labels).clone();
        let _ = self.info.remove_label_values(&self.info_series(&labels));
        let _ = self.up_family.remove_label_values(&[stream]);
        for family in &self.counter_families {
            let _ = family.remove_label_values(&[stream]);
        }
        let (active, events, seconds) = &self.defect_families;
        for kind in DetectorKind::ALL {
            let labels = [stream, kind.as_str()];
            let _ = active.remove_label_values(&labels);
            let _ = events.remove_label_values(&labels);
            let _ = seconds.remove_label_values(&labels);
        }
        for gauge in [
            &self.time_to_first_frame,
            &self.input_bitrate,
            &self.analysis_tier,
            &self.captions_bytes,
        ]
        .into_iter()
        .chain(self.video.all())
        .chain(self.audio.all())
        {
            gauge.remove();
        }
        for (kind, code) in lock(&self.http_requests).keys() {
            let _ = self.http_family.remove_label_values(&[stream, kind, code]);
        }
        for (indicator, (priority, _)) in lock(&self.tr101290_errors).iter() {
            let labels = [stream, &priority.to_string(), indicator];
            let _ = self.tr101290_family.remove_label_values(&labels);
        }
        for command in lock(&self.scte35_messages).keys() {
            let _ = self.scte35_family.remove_label_values(&[stream, command]);
        }
        if lock(&self.ad_break).take().is_some() {
            let _ = self.ad_break_family.remove_label_values(&[stream]);
        }
        for variant in lock(&self.playlist_age).keys() {
            let _ = self
                .playlist_age_family
                .remove_label_values(&[stream, variant]);
        }
        self.segments.remove();
        self.audio
            .set_positions(stream, None, &AtomicBool::new(true));
    }

    fn info_series<'a>(&'a self, labels: &'a [String; 4]) -> [&'a str; 6] {
        let [decoder, video, audio, channels] = labels;
        [&self.stream, &self.url, decoder, video, audio, channels]
    }

    /// Replaces the info series when a label changes: one series per stream, never two.
    fn set_info(&self, change: impl FnOnce(&mut [String; 4])) {
        if self.removed.load(Ordering::Relaxed) {
            return;
        }
        let mut current = lock(&self.info_labels);
        let mut next = current.clone();
        change(&mut next);
        if *current != next {
            let _ = self.info.remove_label_values(&self.info_series(&current));
            *current = next;
        }
        self.info
            .with_label_values(&self.info_series(&current))
            .set(1);
    }

    fn set_decoder(&self, decoder: &str) {
        self.set_info(|labels| decoder.clone_into(&mut labels[0]));
    }

    fn set_format(&self, format: &crate::media::MediaFormat) {
        let layout = format
            .audio
            .as_ref()
            .and_then(|a| a.channel_layout.as_deref());
        self.audio
            .set_positions(&self.stream, layout, &self.removed);
        let [video, audio, channels] = format.labels();
        self.set_info(|labels| {
            labels[1] = video;
            labels[2] = audio;
            labels[3] = channels;
        });
    }

    fn count_http_request(&self, kind: &'static str, code: &str) {
        let mut series = lock(&self.http_requests);
        if let Some(counter) = series.get(&(kind, code.to_owned())) {
            counter.inc();
        } else if !self.removed.load(Ordering::Relaxed) {
            let counter = self
                .http_family
                .with_label_values(&[&self.stream, kind, code]);
            counter.inc();
            series.insert((kind, code.to_owned()), counter);
        }
    }

    /// The series of an indicator is created with its first error: there are 28 indicators,
    /// and a clean stream should not carry a series for each.
    fn count_ts_errors(&self, errors: &[IndicatorErrors]) {
        let mut series = lock(&self.tr101290_errors);
        for e in errors {
            if let Some((_, counter)) = series.get(e.indicator) {
                counter.inc_by(e.count);
            } else if !self.removed.load(Ordering::Relaxed) {
                let priority = e.priority.to_string();
                let counter =
                    self.tr101290_family
                        .with_label_values(&[&self.stream, &priority, e.indicator]);
                counter.inc_by(e.count);
                series.insert(e.indicator, (e.priority, counter));
            }
        }
    }

    fn count_scte35(&self, command: &'static str) {
        let mut series = lock(&self.scte35_messages);
        if let Some(counter) = series.get(command) {
            counter.inc();
        } else if !self.removed.load(Ordering::Relaxed) {
            let counter = self
                .scte35_family
                .with_label_values(&[&self.stream, command]);
            counter.inc();
            series.insert(command, counter);
        }
    }

    fn set_ad_break(&self, active: bool) {
        let mut gauge = lock(&self.ad_break);
        if gauge.is_none() && !self.removed.load(Ordering::Relaxed) {
            *gauge = Some(self.ad_break_family.with_label_values(&[&self.stream]));
        }
        if let Some(g) = gauge.as_ref() {
            g.set(i64::from(active));
        }
    }

    fn set_playlist_age(&self, variant: &str, age: f64) {
        let mut series = lock(&self.playlist_age);
        if let Some(gauge) = series.get(variant) {
            gauge.set(age);
        } else if !self.removed.load(Ordering::Relaxed) {
            let gauge = self
                .playlist_age_family
                .with_label_values(&[&self.stream, variant]);
            gauge.set(age);
            series.insert(variant.to_owned(), gauge);
        }
    }

    fn forget_variant(&self, variant: &str) {
        if lock(&self.playlist_age).remove(variant).is_some() {
            let _ = self
                .playlist_age_family
                .remove_label_values(&[&self.stream, variant]);
        }
    }

    fn defect(&self, detector: DetectorKind) -> &DefectSeries {
        &self.defects[detector as usize]
    }

    fn frame_analysed(
        &self,
        wall: SystemTime,
        stats: &crate::stats::FrameStats,
        readings: &crate::detect::video::VideoReadings,
    ) {
        let removed = &self.removed;
        let v = &self.video;
        self.frames.inc();
        v.last_frame_timestamp.set(unix_seconds(wall), removed);
        v.luma_mean.set(stats.luma_mean() / 255.0, removed);
        v.dark_pixels.set(stats.dark_ratio(), removed);
        if stats.has_prev {
            v.changed_pixels.set(stats.changed_ratio(), removed);
        }
        v.luma_stddev.set(stats.luma_stddev() / 255.0, removed);
        if let Some(detail) = readings.relative_detail {
            v.detail.set(detail, removed);
        }
        if let Some(blockiness) = readings.blockiness {
            v.blockiness.set(blockiness, removed);
        }
        v.quiet_rows.set(stats.quiet_row_ratio(), removed);
        v.active_area.set(stats.active_area_ratio(), removed);
        if let Some(fps) = readings.fps {
            v.fps.set(fps, removed);
        }
    }

    fn audio_measured(&self, rms_dbfs: Option<f64>, levels: &crate::detect::audio::AudioLevels) {
        let removed = &self.removed;
        let a = &self.audio;
        if let Some(rms) = rms_dbfs {
            a.level.set(rms, removed);
        }
        for (gauge, level) in a.channels.iter().zip(&levels.channel_dbfs) {
            gauge.set(*level, removed);
        }
        let r = &levels.loudness;
        for (gauge, value) in a
            .loudness
            .iter()
            .zip([r.momentary, r.short_term, r.integrated])
        {
            if let Some(v) = value {
                gauge.set(v, removed);
            }
        }
        let singles = [
            (&a.true_peak, r.true_peak),
            (&a.av_offset, levels.received_offset),
            (&a.av_measured_offset, levels.measured_offset),
        ];
        for (gauge, value) in singles {
            if let Some(v) = value {
                gauge.set(v, removed);
            }
        }
    }
}

impl Sink for StreamMetrics {
    fn consume(&self, event: &Event, _frame: Option<&VideoFrame>) {
        match event {
            Event::StreamUp {
                time_to_first_frame,
                ..
            } => {
                self.up.set(1);
                self.time_to_first_frame
                    .set(*time_to_first_frame, &self.removed);
            }
            Event::RunEnded { .. } => self.up.set(0),
            Event::DefectStarted { defect, elapsed } => {
                let series = self.defect(defect.detector);
                series.active.set(1);
                series.events.inc();
                series.seconds.inc_by(elapsed.max(0.0));
            }
            Event::DefectProgress { detector, seconds } => {
                self.defect(*detector).seconds.inc_by(*seconds);
            }
            Event::DefectEnded {
                defect,
                detector_still_active,
            } => {
                if !detector_still_active {
                    self.defect(defect.detector).active.set(0);
                }
            }
            Event::Info(info) if info.kind == "format_change" => self.format_changes.inc(),
            Event::AnalysisTier(tier) => self
                .analysis_tier
                .set(f64::from(tier.level()), &self.removed),
            Event::FrameAnalysed {
                wall,
                stats,
                readings,
                ..
            } => self.frame_analysed(*wall, stats, readings),
            Event::AudioMeasured { rms_dbfs, levels } => self.audio_measured(*rms_dbfs, levels),
            Event::FramesDropped(n) => self.dropped.inc_by(*n),
            Event::FramesSkipped(n) => self.skipped.inc_by(*n),
            Event::DecodeError => self.decode_errors.inc(),
            Event::DecoderChosen(decoder) => self.set_decoder(decoder),
            Event::InputBitrate(bps) => self.input_bitrate.set(*bps, &self.removed),
            Event::Captions(rates) => self
                .captions_bytes
                .set(rates.bytes_per_second, &self.removed),
            Event::TsContinuityErrors(n) => self.ts_cc_errors.inc_by(*n),
            Event::TsErrors(errors) => self.count_ts_errors(errors),
            Event::TsMeasured => {
                self.count_ts_errors(&tr101290::zero_counts());
                self.set_ad_break(false);
            }
            Event::Scte35Cue(cue) => self.count_scte35(cue.command),
            Event::AdBreak(change) => {
                self.set_ad_break(matches!(change, BreakChange::Started { .. }));
            }
            Event::RtpPacketsLost(n) => self.rtp_packets_lost.inc_by(*n),
            Event::HttpRequest { kind, code } => self.count_http_request(kind, code),
            Event::SegmentDownloaded(d) => self.segments.observe(d, &self.removed),
            Event::PlaylistPolled { variant, age } => {
                if let Some(age) = age {
                    self.set_playlist_age(variant, *age);
                }
            }
            Event::VariantForgotten(variant) => self.forget_variant(variant),
            Event::Restarted => self.restarts.inc(),
            Event::PipelineAbandoned => self.abandoned.inc(),
            Event::FormatKnown(format) => self.set_format(format),
            Event::RunStarted
            | Event::Info(_)
            | Event::HlsVariants(_)
            | Event::HlsError { .. }
            | Event::MediaCarried(_)
            | Event::Programs { .. } => {}
        }
    }
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{DefectEvent, StreamState};

    #[test]
    fn stream_series_exist_from_registration_and_go_with_removal() {
        let m = Metrics::new();
        let s = StreamMetrics::register(&m, "news", "rtmp://h/live/news");
        let text = m.render();
        assert!(text.contains("streamwatch_defect_active{detector=\"black\",stream=\"news\"} 0"));
        assert!(text.contains("streamwatch_build_info{version="));
        assert!(
            !text.contains("streamwatch_video_luma_mean_ratio{"),
            "{text}"
        );
        s.consume(
            &Event::AudioMeasured {
                rms_dbfs: Some(-20.0),
                levels: crate::detect::audio::AudioLevels {
                    channel_dbfs: vec![-20.0, -21.0],
                    ..Default::default()
                },
            },
            None,
        );
        s.consume(
            &Event::HttpRequest {
                kind: "playlist",
                code: "200".into(),
            },
            None,
        );
        s.consume(
            &Event::PlaylistPolled {
                variant: "v0".into(),
                age: Some(1.0),
            },
            None,
        );
        let text = m.render();
        assert!(
            text.contains(
                "streamwatch_audio_channel_level_dbfs{channel=\"1\",stream=\"news\"} -21"
            )
        );
        assert!(text.contains(
            "streamwatch_http_requests_total{code=\"200\",kind=\"playlist\",stream=\"news\"} 1"
        ));
        s.unregister();
        assert!(!m.render().contains("stream=\"news\""), "{}", m.render());
        // A late value after removal creates nothing.
        s.consume(&Event::InputBitrate(1000.0), None);
        assert!(!m.render().contains("stream=\"news\""));
    }

    #[test]
    fn stream_info_follows_the_decoder_and_format_in_use() {
        let m = Metrics::new();
        let s = StreamMetrics::register(&m, "news", "rtmp://h/live/news");
        let info = |text: &str| {
            text.lines()
                .filter(|l| l.starts_with("streamwatch_stream_info{"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            info(&m.render()),
            [
                "streamwatch_stream_info{audio_channels=\"\",audio_codec=\"\",decoder=\"\",stream=\"news\",url=\"rtmp://h/live/news\",video_codec=\"\"} 1"
            ]
        );
        s.consume(&Event::DecoderChosen("avdec_h264".into()), None);
        let mut format = crate::media::MediaFormat {
            video: Some(crate::media::VideoFormat {
                codec: Some("h264"),
                ..Default::default()
            }),
            audio: Some(crate::media::AudioFormat {
                codec: Some("aac"),
                channels: Some(2),
                ..Default::default()
            }),
        };
        s.consume(&Event::FormatKnown(format.clone()), None);
        assert_eq!(
            info(&m.render()),
            [
                "streamwatch_stream_info{audio_channels=\"2\",audio_codec=\"aac\",decoder=\"avdec_h264\",stream=\"news\",url=\"rtmp://h/live/news\",video_codec=\"h264\"} 1"
            ]
        );
        if let Some(audio) = format.audio.as_mut() {
            audio.channels = Some(6);
            audio.codec = Some("ac3");
            audio.channel_layout = Some("FL FR C LFE SL SR".into());
        }
        s.consume(&Event::FormatKnown(format), None);
        let now = info(&m.render());
        assert_eq!(now.len(), 1, "replaced, not duplicated: {now:?}");
        assert!(
            now[0].contains("audio_channels=\"6\",audio_codec=\"ac3\""),
            "{now:?}"
        );
        let text = m.render();
        let positions: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("streamwatch_audio_channel_info{"))
            .collect();
        assert_eq!(positions.len(), 6, "{positions:?}");
        assert!(
            text.contains(
                "streamwatch_audio_channel_info{channel=\"3\",position=\"LFE\",stream=\"news\"} 1"
            ),
            "{positions:?}"
        );
        s.unregister();
        assert!(!m.render().contains("stream=\"news\""));
    }

    #[test]
    fn a_defect_series_stays_active_while_another_scope_holds_it() {
        let m = Metrics::new();
        let s = StreamMetrics::register(&m, "radio", "srt://h:1");
        let defect = DefectEvent {
            id: "radio-silence-1-ch0".into(),
            stream: "radio".into(),
            detector: DetectorKind::Silence,
            start: 0.0,
            end: None,
            duration: None,
            start_time: String::new(),
            end_time: None,
            value: -90.0,
            evidence: None,
            channel: Some(0),
            channel_position: None,
            variant: None,
            priority: None,
            rule: None,
            indicators: None,
        };
        let active = || {
            m.render()
                .contains("streamwatch_defect_active{detector=\"silence\",stream=\"radio\"} 1")
        };
        s.consume(
            &Event::DefectStarted {
                defect: defect.clone(),
                elapsed: 2.0,
            },
            None,
        );
        assert!(active());
        s.consume(
            &Event::DefectEnded {
                defect: defect.clone(),
                detector_still_active: true,
            },
            None,
        );
        assert!(active());
        s.consume(
            &Event::DefectEnded {
                defect,
                detector_still_active: false,
            },
            None,
        );
        assert!(!active());
        s.consume(
            &Event::RunEnded {
                state: StreamState::Down,
                reason: None,
            },
            None,
        );
        assert!(
            m.render()
                .contains("streamwatch_stream_up{stream=\"radio\"} 0")
        );
    }
}
