//! What a stream's monitor tells the rest of the process: one [`Event`] type, consumed in order
//! by every sink (metrics, log, API status, webhooks, evidence, `scan`'s collector, a test's
//! recorder). Every defect, state change, per-stream metric and API field comes from an event;
//! only operational log lines (a pipeline warning, a manifest fetch problem, a supervisor's
//! retry) are written where they happen.

use std::time::SystemTime;

use serde::Serialize;

use crate::config::AnalysisTier;
use crate::detect::DetectorKind;
pub use crate::detect::Scope;
use crate::detect::audio::AudioLevels;
use crate::detect::captions::CaptionRates;
use crate::detect::transport::hls::VariantStatus;
use crate::detect::transport::psi::Program;
use crate::detect::transport::scte35::{BreakChange, Cue};
use crate::detect::transport::tr101290::IndicatorErrors;
use crate::detect::video::VideoReadings;
use crate::frame::VideoFrame;
use crate::media::{Carried, MediaFormat};
use crate::stats::FrameStats;

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
    /// That channel's position (`FL`, `FR`, `C`, `LFE`...), where the layout names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_position: Option<&'static str>,
    /// The HLS variant (`main`, `master`, `v0`...) of a manifest defect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The TR 101 290 priority of a `tr101290` defect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// The rule broken, for detectors with several (`scte35`: `break_overrun`,
    /// `in_without_out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    /// Its indicators (`Continuity_count_error,PAT_error_2`): the first when it starts, all
    /// seen when it ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indicators: Option<String>,
}

impl DefectEvent {
    pub fn scope(&self) -> Scope {
        Scope {
            channel: self.channel,
            position: self.channel_position,
            variant: self.variant.clone(),
            priority: self.priority,
            rule: self.rule,
            indicators: None,
        }
    }
}

/// Something worth knowing that is not a defect: the picture size changed mid-stream, or the
/// stream's analysis tier changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InfoEvent {
    pub stream: String,
    /// What happened: `format_change`, or `analysis_tier` (load shedding moved the stream).
    pub kind: &'static str,
    /// Media seconds of the first frame in the new format.
    pub at: f64,
    pub time: String,
    /// E.g. `1280x720 -> 640x360`.
    pub detail: String,
}

/// One thing that happened to one stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A pipeline run begins: media time restarts at zero.
    RunStarted,
    /// The first analysed frame of a run.
    StreamUp {
        /// Seconds from the start of the run.
        time_to_first_frame: f64,
        width: u32,
        height: u32,
    },
    /// A run ended: the stream is down (with the reason) or stopped.
    RunEnded {
        state: StreamState,
        reason: Option<String>,
    },
    /// A defect confirmed. `elapsed`: media seconds between its back-dated start and the
    /// confirming frame.
    DefectStarted { defect: DefectEvent, elapsed: f64 },
    /// Seconds of a defect under way newly observed.
    DefectProgress {
        detector: DetectorKind,
        seconds: f64,
    },
    /// A defect ended. `detector_still_active`: another channel or variant still holds a defect
    /// of the same detector.
    DefectEnded {
        defect: DefectEvent,
        detector_still_active: bool,
    },
    /// Not a defect: a format change.
    Info(InfoEvent),
    /// The media the current run carries changed (a decoder or the first buffer of a kind
    /// appeared, or a new run starts with none known yet).
    MediaCarried(Carried),
    /// The stream's format as now known (codecs, picture, audio layout).
    FormatKnown(MediaFormat),
    /// The programs of an MPEG-TS source, and the one monitored.
    Programs {
        programs: Vec<Program>,
        selected: Option<u16>,
    },
    /// One analysed frame.
    FrameAnalysed {
        media: f64,
        wall: SystemTime,
        stats: FrameStats,
        readings: VideoReadings,
    },
    /// One analysed audio buffer. `rms_dbfs`: the level of the whole buffer, when not empty.
    AudioMeasured {
        rms_dbfs: Option<f64>,
        levels: AudioLevels,
    },
    /// Frames dropped from the stream's queue (the engine fell behind).
    FramesDropped(u64),
    /// Coded pictures the analysis tier kept from the decoder.
    FramesSkipped(u64),
    /// The analysed frames come from this tier from now on (the first frame of a run, or a
    /// change while load is shed).
    AnalysisTier(AnalysisTier),
    /// A decoder error or concealed frame.
    DecodeError,
    /// The video decoder element the pipeline created.
    DecoderChosen(String),
    /// Input bits per second over the bitrate window.
    InputBitrate(f64),
    /// MPEG-TS continuity errors on the demuxer's input (TR 101 290 indicator 1.4).
    TsContinuityErrors(u64),
    /// TR 101 290 errors found in one buffer entering the demuxer, one entry per indicator.
    TsErrors(Vec<IndicatorErrors>),
    /// A run's MPEG-TS input is measured (its priority 1 and 2 counters can start at zero).
    TsMeasured,
    /// Caption bytes per second over the latest second of media (every second of video).
    Captions(CaptionRates),
    /// An SCTE-35 message on the transport stream.
    Scte35Cue(Cue),
    /// The ad break the cues describe changed.
    AdBreak(BreakChange),
    /// RTP packets lost, from gaps in the sequence numbers received.
    RtpPacketsLost(u64),
    /// One HTTP request streamwatch made itself: `kind` master, playlist, segment, init or key.
    HttpRequest { kind: &'static str, code: String },
    /// A segment of the analysed rendition was downloaded: its size, how long that took, and
    /// how much media it holds.
    SegmentDownloaded(SegmentDownload),
    /// One poll of one HLS variant; `age`: seconds since the playlist changed, when fetched.
    PlaylistPolled { variant: String, age: Option<f64> },
    /// An HLS variant is no longer checked.
    VariantForgotten(String),
    /// The playlists checked, as `/api/streams` shows them.
    HlsVariants(Vec<VariantStatus>),
    /// A playlist request failed before the playlist was known.
    HlsError { variant: String, reason: String },
    /// A restart was scheduled after a failed run.
    Restarted,
    /// A pipeline that did not stop was left behind.
    PipelineAbandoned,
}

/// One segment download of the analysed rendition (what OTT operators watch as QoS).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SegmentDownload {
    pub bytes: u64,
    pub seconds: f64,
    /// Seconds of media the segment holds (its `EXTINF`).
    pub media_seconds: f64,
}

impl SegmentDownload {
    /// Download time over media time: above 1 the origin cannot deliver in real time.
    pub fn ratio(&self) -> Option<f64> {
        (self.media_seconds > 0.0).then(|| self.seconds / self.media_seconds)
    }
}

/// Something that consumes a stream's events: built per stream (it knows which one), called in
/// event order, under the stream's monitor lock. It must not block (queue slow work) and must
/// not call back into the stream. `frame` is the video frame that caused the event, if any
/// (evidence keeps a thumbnail of it).
pub trait Sink: Send + Sync {
    fn consume(&self, event: &Event, frame: Option<&VideoFrame>);
}

pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}
