//! What `/api/streams` shows of a stream, kept up to date from its events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::Serialize;

use crate::config::AnalysisTier;
use crate::detect::DetectorKind;
use crate::detect::captions::CaptionRates;
use crate::detect::transport::hls::VariantStatus;
use crate::detect::transport::psi::Program;
use crate::detect::transport::scte35::{BreakChange, Cue};
use crate::detect::transport::tr101290::IndicatorErrors;
use crate::events::{DefectEvent, Event, InfoEvent, Scope, Sink, StreamState};
use crate::frame::VideoFrame;
use crate::media::{Carried, MediaFormat};
use crate::sinks::evidence::Evidence;
use crate::sync::lock;

/// Ended events kept per stream.
const RECENT_EVENTS: usize = 50;

/// Informational events kept per stream.
const RECENT_INFO_EVENTS: usize = 20;

/// Frame times over which the frame rate is averaged.
const FPS_FRAMES: usize = 50;

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
    /// Coded frames the analysis tier did not decode.
    pub frames_skipped: u64,
    /// The tier of the frames analysed now (None before the first frame of a run).
    pub analysis: Option<AnalysisTier>,
    /// The tier configured for the stream: `analysis` is lighter while load is shed.
    pub analysis_configured: AnalysisTier,
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
    /// TR 101 290 errors by indicator, for MPEG-TS sources that had any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tr101290: BTreeMap<&'static str, IndicatorStatus>,
    /// SCTE-35 cues and the ad break, for MPEG-TS sources that carried any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scte35: Option<Scte35Status>,
    /// Closed captions of the video, once a second of it was analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub captions: Option<CaptionsStatus>,
    /// RTP packets lost (sequence gaps), for RTP sources.
    pub rtp_packets_lost: u64,
    /// The HLS playlists checked, for HLS streams.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hls: Vec<VariantStatus>,
    /// The media the current run carries (video detectors run only with video).
    pub media: Carried,
    /// Codecs, picture and audio layout, as last known.
    pub format: MediaFormat,
    /// Every program of an MPEG-TS source (empty for other sources).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<Program>,
    /// The program monitored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub program: Option<u16>,
    /// The last segment downloaded of the analysed rendition, for HLS streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_segment: Option<SegmentStatus>,
}

/// What `/api/streams` shows of a stream's closed captions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaptionsStatus {
    /// The latest second: `present`, `bytes_per_second` and the rate of each 608 field and
    /// 708 service that carried data (`cea608_field1`, `cea708_service1`...).
    #[serde(flatten)]
    pub latest: CaptionRates,
    /// Captions were seen at some point since the stream was added.
    pub seen: bool,
}

/// What `/api/streams` shows of a stream's SCTE-35 signalling.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Scte35Status {
    pub messages: u64,
    /// The latest cues, newest first.
    pub recent: VecDeque<Cue>,
    /// The break on now (its `Started` change), if any.
    pub ad_break: Option<BreakChange>,
}

/// Cues kept per stream.
const RECENT_CUES: usize = 20;

/// One TR 101 290 indicator's errors.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IndicatorStatus {
    pub priority: u8,
    pub count: u64,
    /// The analyser's clock (arrival, or the stream's PCR for files and HLS; it restarts
    /// with each run) at the first and the latest error, in seconds.
    pub first_at: f64,
    pub last_at: f64,
    /// What the latest was.
    pub detail: String,
}

/// What `/api/streams` shows of the last segment download.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SegmentStatus {
    pub bytes: u64,
    pub download_seconds: f64,
    pub media_seconds: f64,
    /// Download time over media time: above 1 the origin cannot deliver in real time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_ratio: Option<f64>,
}

struct State {
    state: StreamState,
    reason: Option<String>,
    width: u32,
    height: u32,
    frame_pts: VecDeque<f64>,
    fps: f64,
    frames: u64,
    frames_dropped: u64,
    frames_skipped: u64,
    analysis: Option<AnalysisTier>,
    restarts: u64,
    ts_cc_errors: u64,
    tr101290: BTreeMap<&'static str, IndicatorStatus>,
    scte35: Option<Scte35Status>,
    captions: Option<CaptionsStatus>,
    rtp_packets_lost: u64,
    time_to_first_frame: Option<f64>,
    input_bitrate: Option<f64>,
    /// Keyed by detector and, for per-channel audio or per-variant HLS defects, the scope.
    active: BTreeMap<(DetectorKind, Scope), DefectEvent>,
    recent: VecDeque<DefectEvent>,
    info: VecDeque<InfoEvent>,
    hls: Vec<VariantStatus>,
    last_segment: Option<SegmentStatus>,
    media: Carried,
    format: MediaFormat,
    programs: Vec<Program>,
    program: Option<u16>,
}

/// The API's view of one stream.
pub struct StatusSink {
    id: String,
    url: String,
    state: std::sync::Mutex<State>,
    /// Where event evidence lives: a link is shown only for evidence that exists (it is
    /// written after the event, and a full or broken disk may never write it).
    evidence: Option<Arc<Evidence>>,
}

impl StatusSink {
    pub fn new(id: &str, url: &str) -> Self {
        Self {
            id: id.to_owned(),
            url: url.to_owned(),
            state: std::sync::Mutex::new(State {
                state: StreamState::Starting,
                reason: None,
                width: 0,
                height: 0,
                frame_pts: VecDeque::with_capacity(FPS_FRAMES + 1),
                fps: 0.0,
                frames: 0,
                frames_dropped: 0,
                frames_skipped: 0,
                analysis: None,
                restarts: 0,
                ts_cc_errors: 0,
                tr101290: BTreeMap::new(),
                scte35: None,
                captions: None,
                rtp_packets_lost: 0,
                time_to_first_frame: None,
                input_bitrate: None,
                active: BTreeMap::new(),
                recent: VecDeque::new(),
                info: VecDeque::new(),
                hls: Vec::new(),
                last_segment: None,
                media: Carried::default(),
                format: MediaFormat::default(),
                programs: Vec::new(),
                program: None,
            }),
            evidence: None,
        }
    }

    pub fn with_evidence(mut self, evidence: Option<Arc<Evidence>>) -> Self {
        self.evidence = evidence;
        self
    }

    /// Drops the evidence link of an event whose evidence is not (or no longer) on disk.
    fn check_link(&self, event: &mut DefectEvent) {
        if event.evidence.is_some()
            && !self
                .evidence
                .as_ref()
                .is_some_and(|e| e.has_event(&event.id))
        {
            event.evidence = None;
        }
    }

    pub fn snapshot(&self) -> StreamStatus {
        let mut status = self.snapshot_unchecked();
        // Outside the lock: checking evidence touches the disk.
        for list in [&mut status.active_defects, &mut status.last_events] {
            for e in list.iter_mut() {
                self.check_link(e);
            }
        }
        status
    }

    fn snapshot_unchecked(&self) -> StreamStatus {
        let st = lock(&self.state);
        StreamStatus {
            id: self.id.clone(),
            url: self.url.clone(),
            state: st.state,
            reason: st.reason.clone(),
            fps: (st.fps * 100.0).round() / 100.0,
            width: st.width,
            height: st.height,
            frames: st.frames,
            frames_dropped: st.frames_dropped,
            frames_skipped: st.frames_skipped,
            analysis: st.analysis,
            // The stream fills in its configured tier.
            analysis_configured: st.analysis.unwrap_or_default(),
            restarts: st.restarts,
            active_defects: st.active.values().cloned().collect(),
            last_events: st.recent.iter().rev().cloned().collect(),
            info_events: st.info.iter().rev().cloned().collect(),
            time_to_first_frame: st.time_to_first_frame,
            input_bitrate: st.input_bitrate.map(f64::round),
            ts_cc_errors: st.ts_cc_errors,
            tr101290: st.tr101290.clone(),
            scte35: st.scte35.clone(),
            captions: st.captions.clone(),
            rtp_packets_lost: st.rtp_packets_lost,
            hls: st.hls.clone(),
            last_segment: st.last_segment.clone(),
            media: st.media,
            format: st.format.clone(),
            programs: st.programs.clone(),
            program: st.program,
        }
    }

    /// The event with this id, active or recent.
    pub fn event(&self, id: &str) -> Option<DefectEvent> {
        let found = {
            let st = lock(&self.state);
            st.active
                .values()
                .chain(st.recent.iter())
                .find(|e| e.id == id)
                .cloned()
        };
        found.map(|mut e| {
            self.check_link(&mut e);
            e
        })
    }
}

impl State {
    fn frame(&mut self, media: f64, frame: Option<&VideoFrame>) {
        self.frames += 1;
        if let Some(frame) = frame {
            (self.width, self.height) = (frame.width, frame.height);
        }
        self.frame_pts.push_back(media);
        if self.frame_pts.len() > FPS_FRAMES {
            self.frame_pts.pop_front();
        }
        if let (Some(first), Some(last)) = (self.frame_pts.front(), self.frame_pts.back())
            && last > first
        {
            self.fps = (self.frame_pts.len() - 1) as f64 / (last - first);
        }
    }

    fn count_ts_errors(&mut self, errors: &[IndicatorErrors]) {
        for e in errors {
            let entry = self.tr101290.entry(e.indicator).or_insert(IndicatorStatus {
                priority: e.priority,
                count: 0,
                first_at: e.at,
                last_at: e.at,
                detail: String::new(),
            });
            entry.count += e.count;
            entry.last_at = e.at;
            entry.detail.clone_from(&e.detail);
        }
    }

    fn scte35_cue(&mut self, cue: &Cue) {
        let s = self.scte35.get_or_insert_default();
        s.messages += 1;
        s.recent.push_front(cue.clone());
        s.recent.truncate(RECENT_CUES);
    }

    fn caption_rates(&mut self, rates: &CaptionRates) {
        let seen = self.captions.as_ref().is_some_and(|c| c.seen) || rates.present;
        self.captions = Some(CaptionsStatus {
            latest: rates.clone(),
            seen,
        });
    }

    fn defect_ended(&mut self, defect: &DefectEvent) {
        self.active.remove(&(defect.detector, defect.scope()));
        self.recent.push_back(defect.clone());
        if self.recent.len() > RECENT_EVENTS {
            self.recent.pop_front();
        }
    }

    fn set_hls_error(&mut self, variant: &str, uri: &str, reason: &str) {
        match self.hls.iter_mut().find(|v| v.variant == variant) {
            Some(v) => v.last_error = Some(reason.to_owned()),
            None => self.hls.push(VariantStatus {
                variant: variant.to_owned(),
                uri: uri.to_owned(),
                last_error: Some(reason.to_owned()),
                ..Default::default()
            }),
        }
    }
}

impl Sink for StatusSink {
    fn consume(&self, event: &Event, frame: Option<&VideoFrame>) {
        let mut st = lock(&self.state);
        match event {
            Event::RunStarted => {
                if st.state != StreamState::Down {
                    st.state = StreamState::Starting;
                }
                st.frame_pts.clear();
            }
            Event::StreamUp {
                time_to_first_frame,
                ..
            } => {
                st.state = StreamState::Up;
                st.reason = None;
                st.time_to_first_frame = Some(*time_to_first_frame);
            }
            Event::RunEnded { state, reason } => {
                st.state = *state;
                st.reason.clone_from(reason);
                st.input_bitrate = None;
                st.fps = 0.0;
            }
            Event::DefectStarted { defect, .. } => {
                st.active
                    .insert((defect.detector, defect.scope()), defect.clone());
            }
            Event::DefectEnded { defect, .. } => st.defect_ended(defect),
            Event::Info(info) => {
                st.info.push_back(info.clone());
                if st.info.len() > RECENT_INFO_EVENTS {
                    st.info.pop_front();
                }
            }
            Event::FrameAnalysed { media, .. } => st.frame(*media, frame),
            Event::FramesDropped(n) => st.frames_dropped += n,
            Event::FramesSkipped(n) => st.frames_skipped += n,
            Event::AnalysisTier(tier) => st.analysis = Some(*tier),
            Event::Restarted => st.restarts += 1,
            Event::TsContinuityErrors(n) => st.ts_cc_errors += n,
            Event::TsErrors(errors) => st.count_ts_errors(errors),
            Event::Scte35Cue(cue) => st.scte35_cue(cue),
            Event::AdBreak(change) => {
                let s = st.scte35.get_or_insert_default();
                s.ad_break = matches!(change, BreakChange::Started { .. }).then(|| change.clone());
            }
            Event::RtpPacketsLost(n) => st.rtp_packets_lost += n,
            Event::InputBitrate(bps) => st.input_bitrate = Some(*bps),
            Event::Captions(rates) => st.caption_rates(rates),
            Event::HlsVariants(variants) => st.hls.clone_from(variants),
            Event::SegmentDownloaded(d) => {
                st.last_segment = Some(SegmentStatus {
                    bytes: d.bytes,
                    download_seconds: d.seconds,
                    media_seconds: d.media_seconds,
                    download_ratio: d.ratio(),
                });
            }
            Event::HlsError { variant, reason } => st.set_hls_error(variant, &self.url, reason),
            Event::VariantForgotten(variant) => st.hls.retain(|v| v.variant != *variant),
            Event::MediaCarried(carried) => st.media = *carried,
            Event::FormatKnown(format) => st.format.clone_from(format),
            Event::Programs { programs, selected } => {
                st.programs.clone_from(programs);
                st.program = *selected;
            }
            Event::DefectProgress { .. }
            | Event::AudioMeasured { .. }
            | Event::DecodeError
            | Event::DecoderChosen(_)
            | Event::HttpRequest { .. }
            | Event::PlaylistPolled { .. }
            | Event::PipelineAbandoned
            | Event::TsMeasured => {}
        }
    }
}
