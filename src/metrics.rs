//! Every metric streamwatch exports, in one place, on a registry of its own.
//!
//! Names follow `streamwatch_<what>_<unit>[_total]` with base units; labels are bounded
//! (`stream`, `detector`, `window`, `channel`); the URL appears only in `streamwatch_stream_info`.
//! Per-channel audio defects (silence, true peak, missing channel) share their detector's
//! `streamwatch_defect_*{stream,detector}` series (active while any channel is); the channel is
//! in the event and in `streamwatch_audio_channel_level_dbfs{stream,channel}`.

use prometheus::{
    CounterVec, Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::detect::DetectorKind;

pub struct Metrics {
    pub registry: Registry,
    pub build_info: IntGaugeVec,
    pub stream_info: IntGaugeVec,
    /// The `decoder` label each stream's info series has now, to replace it when it changes.
    stream_decoders: std::sync::Mutex<std::collections::HashMap<String, String>>,
    pub stream_up: IntGaugeVec,
    pub frames: IntCounterVec,
    pub frames_dropped: IntCounterVec,
    pub restarts: IntCounterVec,
    pub last_frame_timestamp: GaugeVec,
    pub defect_active: IntGaugeVec,
    pub defect_events: IntCounterVec,
    pub defect_seconds: CounterVec,
    pub gpu_batches: IntCounter,
    pub gpu_batch_frames: Histogram,
    pub detect_latency: Histogram,
    pub audio_level: GaugeVec,
    pub engine_errors: IntCounter,
    pub engine_batch_seconds: Histogram,
    pub webhook_deliveries: IntCounterVec,
    pub evidence_uploads: IntCounterVec,
    pub luma_mean: GaugeVec,
    pub dark_pixels: GaugeVec,
    pub changed_pixels: GaugeVec,
    pub luma_stddev: GaugeVec,
    pub detail: GaugeVec,
    pub blockiness: GaugeVec,
    pub quiet_rows: GaugeVec,
    pub active_area: GaugeVec,
    pub fps: GaugeVec,
    pub decode_errors: IntCounterVec,
    pub format_changes: IntCounterVec,
    pub audio_channel_level: GaugeVec,
    pub loudness: GaugeVec,
    pub true_peak: GaugeVec,
    pub av_offset: GaugeVec,
    pub av_measured_offset: GaugeVec,
    pub http_requests: IntCounterVec,
    pub hls_playlist_age: GaugeVec,
    pub input_bitrate: GaugeVec,
    pub ts_cc_errors: IntCounterVec,
    pub time_to_first_frame: GaugeVec,
    pub pipelines_abandoned: IntCounterVec,
    /// The (kind, code) pairs of `http_requests` used per stream, to remove them with it.
    http_labels: std::sync::Mutex<
        std::collections::HashMap<String, std::collections::BTreeSet<(&'static str, String)>>,
    >,
}

/// Every value the `variant` label can take: `main` (a media playlist without master), and
/// `v0`... in master playlist order, bounded by `ingest.hls_max_variants` (at most 64).
pub fn hls_variant_labels() -> impl Iterator<Item = String> {
    std::iter::once("main".to_owned()).chain((0..64).map(|i| format!("v{i}")))
}

/// Values of the `window` label of `streamwatch_audio_loudness_lufs`.
pub const LOUDNESS_WINDOWS: [&str; 3] = ["momentary", "short_term", "integrated"];

/// Registers a collector and hands back a handle to it. Definitions are constants, so a
/// failure here is a programming error caught by the unit tests, not a runtime condition.
fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn float_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register(
        r,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    register(r, IntCounter::new(name, help).expect("valid metric"))
}

fn histogram(r: &Registry, name: &str, help: &str, buckets: Vec<f64>) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    register(r, Histogram::with_opts(opts).expect("valid metric"))
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let build_info = gauge_vec(
            &r,
            "streamwatch_build_info",
            "Build information; always 1.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let engine_batch_seconds = histogram(
            &r,
            "streamwatch_engine_batch_seconds",
            "Wall time of one batch in the statistics backend (upload, compute, readback).",
            prometheus::exponential_buckets(0.0005, 2.0, 14).expect("valid buckets"),
        );
        Self {
            build_info,
            stream_info: gauge_vec(
                &r,
                "streamwatch_stream_info",
                "Monitored stream, its source URL and the video decoder element its pipeline uses (empty until one is created); always 1.",
                &["stream", "url", "decoder"],
            ),
            stream_decoders: Default::default(),
            stream_up: gauge_vec(
                &r,
                "streamwatch_stream_up",
                "1 while the stream delivers decoded frames, 0 while it is down or restarting.",
                &["stream"],
            ),
            frames: counter_vec(
                &r,
                "streamwatch_frames_total",
                "Video frames analysed.",
                &["stream"],
            ),
            frames_dropped: counter_vec(
                &r,
                "streamwatch_frames_dropped_total",
                "Video frames dropped because analysis fell behind the stream.",
                &["stream"],
            ),
            restarts: counter_vec(
                &r,
                "streamwatch_stream_restarts_total",
                "Pipeline restarts after an error, end of stream or stall.",
                &["stream"],
            ),
            last_frame_timestamp: float_gauge_vec(
                &r,
                "streamwatch_last_frame_timestamp_seconds",
                "Unix time at which the last video frame of the stream was decoded.",
                &["stream"],
            ),
            defect_active: gauge_vec(
                &r,
                "streamwatch_defect_active",
                "1 while the detector reports a defect on the stream.",
                &["stream", "detector"],
            ),
            defect_events: counter_vec(
                &r,
                "streamwatch_defect_events_total",
                "Defects reported (counted when they start).",
                &["stream", "detector"],
            ),
            defect_seconds: register(
                &r,
                CounterVec::new(
                    Opts::new(
                        "streamwatch_defect_seconds_total",
                        "Media seconds spent in a reported defect.",
                    ),
                    &["stream", "detector"],
                )
                .expect("valid metric"),
            ),
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
            audio_level: float_gauge_vec(
                &r,
                "streamwatch_audio_level_dbfs",
                "RMS level of the latest audio buffer, all channels, in dBFS.",
                &["stream"],
            ),
            engine_errors: counter(
                &r,
                "streamwatch_engine_errors_total",
                "Batches the statistics backend failed to analyse (their frames are lost).",
            ),
            engine_batch_seconds,
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
            luma_mean: float_gauge_vec(
                &r,
                "streamwatch_video_luma_mean_ratio",
                "Mean luma of the latest frame, 0 (black) to 1 (white).",
                &["stream"],
            ),
            dark_pixels: float_gauge_vec(
                &r,
                "streamwatch_video_dark_pixels_ratio",
                "Share of dark pixels in the latest frame (the black detector's statistic).",
                &["stream"],
            ),
            changed_pixels: float_gauge_vec(
                &r,
                "streamwatch_video_changed_pixels_ratio",
                "Share of pixels changed since the previous frame (the freeze detector's statistic).",
                &["stream"],
            ),
            luma_stddev: float_gauge_vec(
                &r,
                "streamwatch_video_luma_stddev_ratio",
                "Standard deviation of luma in the latest frame over 255 (the flat detector's \
                 statistic: near 0 for a uniform picture).",
                &["stream"],
            ),
            detail: float_gauge_vec(
                &r,
                "streamwatch_video_detail_ratio",
                "Detail of the latest frame relative to the stream's normal detail, 1 = normal \
                 (the blur detector's statistic).",
                &["stream"],
            ),
            blockiness: float_gauge_vec(
                &r,
                "streamwatch_video_blockiness_ratio",
                "Share of block-edge shaped luma steps that lie on the 8x8 coding grid, smoothed \
                 (the blockiness detector's statistic): about 0.5 without block structure, \
                 towards 1 for macroblocking.",
                &["stream"],
            ),
            quiet_rows: float_gauge_vec(
                &r,
                "streamwatch_video_quiet_rows_ratio",
                "Share of rows equal to the row below up to coding noise (near 1 for colour \
                 bars; the colorbars detector's statistic).",
                &["stream"],
            ),
            active_area: float_gauge_vec(
                &r,
                "streamwatch_video_active_area_ratio",
                "Share of the latest frame inside dark bars at its edges (letterbox, pillarbox).",
                &["stream"],
            ),
            fps: float_gauge_vec(
                &r,
                "streamwatch_video_fps",
                "Frames per second of media time over the last second.",
                &["stream"],
            ),
            decode_errors: counter_vec(
                &r,
                "streamwatch_decode_errors_total",
                "Decoder errors and concealment warnings reported by GStreamer.",
                &["stream"],
            ),
            format_changes: counter_vec(
                &r,
                "streamwatch_video_format_changes_total",
                "Changes of picture size mid-stream.",
                &["stream"],
            ),
            audio_channel_level: float_gauge_vec(
                &r,
                "streamwatch_audio_channel_level_dbfs",
                "RMS level of the latest audio buffer per channel (0-based), in dBFS.",
                &["stream", "channel"],
            ),
            loudness: float_gauge_vec(
                &r,
                "streamwatch_audio_loudness_lufs",
                "EBU R128 loudness: momentary (400 ms), short-term (3 s) and integrated (since the pipeline started), in LUFS.",
                &["stream", "window"],
            ),
            true_peak: float_gauge_vec(
                &r,
                "streamwatch_audio_true_peak_dbtp",
                "Highest true peak over all channels of the latest audio buffer, in dBTP.",
                &["stream"],
            ),
            av_offset: float_gauge_vec(
                &r,
                "streamwatch_av_offset_seconds",
                "Audio minus video delay between timestamp and arrival at the sink, smoothed; positive when audio is late.",
                &["stream"],
            ),
            av_measured_offset: float_gauge_vec(
                &r,
                "streamwatch_av_measured_offset_seconds",
                "A/V offset measured from the latest flash/beep pair of a sync test signal; positive when audio is late.",
                &["stream"],
            ),
            http_requests: counter_vec(
                &r,
                "streamwatch_http_requests_total",
                "Requests streamwatch made itself to check HLS playlists (kind master or playlist) and segments (kind segment, HEAD); code is the HTTP status, or connect, timeout, redirect, invalid (not a playlist) or error.",
                &["stream", "kind", "code"],
            ),
            hls_playlist_age: float_gauge_vec(
                &r,
                "streamwatch_hls_playlist_age_seconds",
                "Seconds since the HLS media playlist of a variant last changed (variant v0, v1... in master playlist order, main without a master playlist).",
                &["stream", "variant"],
            ),
            input_bitrate: float_gauge_vec(
                &r,
                "streamwatch_input_bitrate_bits_per_second",
                "Bits per second entering the demuxer (RTP payload for RTSP), averaged over detectors.bitrate.window.",
                &["stream"],
            ),
            ts_cc_errors: counter_vec(
                &r,
                "streamwatch_ts_cc_errors_total",
                "MPEG-TS continuity counter errors (packets lost or out of order) on any PID.",
                &["stream"],
            ),
            time_to_first_frame: float_gauge_vec(
                &r,
                "streamwatch_time_to_first_frame_seconds",
                "Seconds from the start of the latest pipeline run to its first analysed frame.",
                &["stream"],
            ),
            pipelines_abandoned: counter_vec(
                &r,
                "streamwatch_pipelines_abandoned_total",
                "Pipelines that did not stop within 10 s when torn down (a GStreamer deadlock), left behind so that the stream could restart.",
                &["stream"],
            ),
            http_labels: Default::default(),
            registry: r,
        }
    }

    /// Counts one request of `kind` (master, playlist, segment) answered with `code`.
    pub fn count_http_request(&self, stream: &str, kind: &'static str, code: &str) {
        self.http_requests
            .with_label_values(&[stream, kind, code])
            .inc();
        crate::stream::lock(&self.http_labels)
            .entry(stream.to_owned())
            .or_default()
            .insert((kind, code.to_owned()));
    }

    /// Creates the per-stream series at zero, so dashboards and alerts see them before any event.
    pub fn register_stream(&self, stream: &str, url: &str) {
        self.set_stream_decoder(stream, url, "");
        self.stream_up.with_label_values(&[stream]).set(0);
        self.frames.with_label_values(&[stream]);
        self.frames_dropped.with_label_values(&[stream]);
        self.restarts.with_label_values(&[stream]);
        self.decode_errors.with_label_values(&[stream]);
        self.format_changes.with_label_values(&[stream]);
        self.ts_cc_errors.with_label_values(&[stream]);
        self.pipelines_abandoned.with_label_values(&[stream]);
        for d in DetectorKind::ALL {
            self.defect_active
                .with_label_values(&[stream, d.as_str()])
                .set(0);
            self.defect_events.with_label_values(&[stream, d.as_str()]);
            self.defect_seconds.with_label_values(&[stream, d.as_str()]);
        }
    }

    /// Sets the `decoder` label of the stream's info series (the series moves to the new value).
    pub fn set_stream_decoder(&self, stream: &str, url: &str, decoder: &str) {
        let mut decoders = crate::stream::lock(&self.stream_decoders);
        if let Some(old) = decoders.insert(stream.to_owned(), decoder.to_owned())
            && old != decoder
        {
            let _ = self.stream_info.remove_label_values(&[stream, url, &old]);
        }
        self.stream_info
            .with_label_values(&[stream, url, decoder])
            .set(1);
    }

    /// Removes a stream's series when it is no longer monitored.
    pub fn unregister_stream(&self, stream: &str, url: &str) {
        let decoder = crate::stream::lock(&self.stream_decoders)
            .remove(stream)
            .unwrap_or_default();
        let _ = self
            .stream_info
            .remove_label_values(&[stream, url, &decoder]);
        let _ = self.stream_up.remove_label_values(&[stream]);
        for vec in [
            &self.frames,
            &self.frames_dropped,
            &self.restarts,
            &self.decode_errors,
            &self.format_changes,
            &self.ts_cc_errors,
            &self.pipelines_abandoned,
        ] {
            let _ = vec.remove_label_values(&[stream]);
        }
        let _ = self.last_frame_timestamp.remove_label_values(&[stream]);
        for vec in [
            &self.audio_level,
            &self.luma_mean,
            &self.dark_pixels,
            &self.changed_pixels,
            &self.luma_stddev,
            &self.detail,
            &self.blockiness,
            &self.quiet_rows,
            &self.active_area,
            &self.fps,
            &self.true_peak,
            &self.av_offset,
            &self.av_measured_offset,
            &self.input_bitrate,
            &self.time_to_first_frame,
        ] {
            let _ = vec.remove_label_values(&[stream]);
        }
        let seen = std::mem::take(
            crate::stream::lock(&self.http_labels)
                .entry(stream.to_owned())
                .or_default(),
        );
        for (kind, code) in seen {
            let _ = self
                .http_requests
                .remove_label_values(&[stream, kind, code.as_str()]);
        }
        crate::stream::lock(&self.http_labels).remove(stream);
        for variant in hls_variant_labels() {
            let _ = self
                .hls_playlist_age
                .remove_label_values(&[stream, variant.as_str()]);
        }
        for window in LOUDNESS_WINDOWS {
            let _ = self.loudness.remove_label_values(&[stream, window]);
        }
        // Channel label values are 0-based channel numbers; 64 is the most GStreamer carries.
        for ch in 0..64 {
            let ch = ch.to_string();
            let _ = self
                .audio_channel_level
                .remove_label_values(&[stream, ch.as_str()]);
        }
        for d in DetectorKind::ALL {
            let _ = self
                .defect_active
                .remove_label_values(&[stream, d.as_str()]);
            let _ = self
                .defect_events
                .remove_label_values(&[stream, d.as_str()]);
            let _ = self
                .defect_seconds
                .remove_label_values(&[stream, d.as_str()]);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_series_exist_from_registration_and_go_with_removal() {
        let m = Metrics::new();
        m.register_stream("news", "rtmp://h/live/news");
        let text = m.render();
        assert!(text.contains("streamwatch_defect_active{detector=\"black\",stream=\"news\"} 0"));
        assert!(text.contains("streamwatch_build_info{version="));
        m.unregister_stream("news", "rtmp://h/live/news");
        assert!(!m.render().contains("stream=\"news\""));
    }

    #[test]
    fn stream_info_follows_the_decoder_in_use() {
        let m = Metrics::new();
        m.register_stream("news", "rtmp://h/live/news");
        assert!(
            m.render()
                .contains("streamwatch_stream_info{decoder=\"\",stream=\"news\"")
        );
        m.set_stream_decoder("news", "rtmp://h/live/news", "avdec_h264");
        let text = m.render();
        assert!(text.contains("streamwatch_stream_info{decoder=\"avdec_h264\",stream=\"news\""));
        assert!(!text.contains("decoder=\"\""), "{text}");
        m.unregister_stream("news", "rtmp://h/live/news");
        assert!(!m.render().contains("stream=\"news\""));
    }
}
