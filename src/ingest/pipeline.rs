//! Builds and runs the decoding pipeline of one stream from the templates in `pipelines/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::error::IngestError;
use crate::ingest::adaptive::{self, segments::Fetcher};
use crate::ingest::decode_errors::DecodeMarks;
use crate::ingest::decoder::{self, DecoderChoice};
use crate::ingest::media_sink::MediaSink;
use crate::ingest::{appsink, decode_errors, demo, source};
use crate::stream::Stream;
use crate::sync::AbortOnDrop;

const VIDEO_BRANCH: &str = include_str!("../../pipelines/video-branch.gst");
const AUDIO_BRANCH: &str = include_str!("../../pipelines/audio-branch.gst");

/// How the sinks are clocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as decoding allows (`scan`).
    Unpaced,
    /// In real time by the timestamps (`run`): a file behaves like a live stream, and the
    /// bursts in which HLS delivers segments reach the detectors at the pace a viewer sees.
    RealTime,
}

/// A playing pipeline; dropping it sets it to `Null` first, as GStreamer requires.
pub struct RunningPipeline {
    pub pipeline: gst::Pipeline,
    demo: Option<demo::DemoSource>,
    /// The segment fetchers of an HLS stream, stopped before the pipeline.
    fetchers: Vec<AbortOnDrop>,
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        if let Some(d) = &self.demo {
            d.stop();
        }
        self.fetchers.clear();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl RunningPipeline {
    pub fn bus(&self) -> Option<gst::Bus> {
        self.pipeline.bus()
    }

    /// Plays a file again from its start, in the same run: a flushing seek to zero, with the
    /// stream told first so that its media time carries on from the end of this pass.
    pub fn rewind(&self, stream: &Stream) -> Result<(), String> {
        stream.file_rewound();
        self.pipeline
            .seek_simple(gst::SeekFlags::FLUSH, gst::ClockTime::ZERO)
            .map_err(|e| format!("end of file, and it cannot be rewound to loop ({e})"))
    }
}

/// Whether `run` plays this source in a loop: local media files (an SDP file describes a live
/// RTP session instead).
pub fn loops(url: &str) -> bool {
    url.starts_with("file://") && crate::config::sdp_path(url).is_none()
}

pub(super) fn missing(stream: &Stream, element: &str) -> IngestError {
    IngestError::MissingElement {
        stream: stream.id.clone(),
        element: element.to_owned(),
    }
}

pub(super) fn pipeline_error(stream: &Stream, reason: impl std::fmt::Display) -> IngestError {
    IngestError::Pipeline {
        stream: stream.id.clone(),
        reason: reason.to_string(),
    }
}

/// Checks what can be checked before building: local files must exist, NVDEC must exist
/// for `decoder = "nvdec"`.
pub fn preflight(stream: &Stream) -> Result<(), IngestError> {
    if stream.config.decoder == DecoderChoice::Nvdec
        && !stream.url.starts_with("demo://")
        && decoder::available_nvdec().is_empty()
    {
        return Err(IngestError::NoHardwareDecoder {
            stream: stream.id.clone(),
            wanted: decoder::NVDEC_DECODERS.join(", "),
        });
    }
    if let Some(path) = stream.url.strip_prefix("file://") {
        let path = std::path::Path::new(path);
        if !path.is_file() {
            return Err(IngestError::MissingFile {
                stream: stream.id.clone(),
                path: path.to_owned(),
            });
        }
    }
    Ok(())
}

/// Serialises pipeline construction and the change to PLAYING across streams.
static START_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds the pipeline of a stream GStreamer reads by itself and sets it playing.
pub fn start(stream: &Arc<Stream>, pacing: Pacing) -> Result<RunningPipeline, IngestError> {
    start_with(stream, pacing, None)
}

/// Builds the pipeline and sets it playing; an HLS stream's segments come from `adaptive`
/// (which needs a tokio runtime: the fetchers run on the current one).
pub fn start_with(
    stream: &Arc<Stream>,
    pacing: Pacing,
    adaptive: Option<adaptive::Source>,
) -> Result<RunningPipeline, IngestError> {
    preflight(stream)?;
    let marks = Arc::new(DecodeMarks::default());
    let _serialised = crate::sync::lock(&START_LOCK);
    let pipeline = gst::Pipeline::with_name(&format!("stream-{}", stream.id));
    let sync = pacing == Pacing::RealTime;
    let mut sources = Vec::new();
    let demo = if stream.url.starts_with("demo://") {
        Some(add_demo(&pipeline, stream, &marks, sync)?)
    } else if let Some(source) = &adaptive {
        watch_elements(&pipeline, stream, &marks);
        sources = add_adaptive_sources(&pipeline, stream, &marks, sync, source)?;
        None
    } else {
        add_source(&pipeline, stream, &marks, sync)?;
        None
    };

    let mut running = RunningPipeline {
        pipeline,
        demo,
        fetchers: Vec::new(),
    };
    if running.pipeline.set_state(gst::State::Playing).is_err() {
        let reason = running
            .bus()
            .and_then(|bus| bus.pop_filtered(&[gst::MessageType::Error]))
            .map(|m| describe_message(&m))
            .unwrap_or_else(|| "pipeline refused to start".into());
        return Err(IngestError::Failed {
            stream: stream.id.clone(),
            reason,
        });
    }
    if let Some(d) = &running.demo {
        d.start();
    }
    if let Some(source) = adaptive {
        running.fetchers = spawn_fetchers(stream, &source, sources)?;
    }
    Ok(running)
}

/// The built-in demo channel: its generated picture and sound into the two branches.
fn add_demo(
    pipeline: &gst::Pipeline,
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    sync: bool,
) -> Result<demo::DemoSource, IngestError> {
    let (video_src, audio_src, source) =
        demo::build(stream).map_err(|e| pipeline_error(stream, e))?;
    pipeline
        .add_many([&video_src, &audio_src])
        .map_err(|e| pipeline_error(stream, e))?;
    let video = branch(stream, marks, VIDEO_BRANCH, true, sync)?;
    let audio = branch(stream, marks, AUDIO_BRANCH, false, sync)?;
    pipeline
        .add_many([&video, &audio])
        .map_err(|e| pipeline_error(stream, e))?;
    video_src
        .link(&video)
        .map_err(|e| pipeline_error(stream, e))?;
    audio_src
        .link(&audio)
        .map_err(|e| pipeline_error(stream, e))?;
    Ok(source)
}

/// A source GStreamer reads by itself (URI decoder, UDP/RTP receiver, SDP session).
fn add_source(
    pipeline: &gst::Pipeline,
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    sync: bool,
) -> Result<(), IngestError> {
    // Connected first: a source built in a bin brings its elements along when added.
    watch_elements(pipeline, stream, marks);
    let decode = source::build(stream)?;
    pipeline
        .add(&decode)
        .map_err(|e| pipeline_error(stream, e))?;
    let linked = Arc::new(Linked::default());
    link_pads_on_demand(&decode, pipeline, stream, marks, sync, Accept::ALL, &linked);
    Ok(())
}

/// Hooks the decoders and demuxers the decoding bins create, wherever they are created.
fn watch_elements(pipeline: &gst::Pipeline, stream: &Arc<Stream>, marks: &Arc<DecodeMarks>) {
    let for_decoders: Arc<dyn MediaSink> = stream.clone();
    let (sole, marks) = (stream.sole, marks.clone());
    pipeline.connect_deep_element_added(move |_, _, element| {
        decode_errors::watch_decoder(element, &for_decoders, sole, &marks);
        crate::ingest::input::watch_input(element, &for_decoders);
        crate::ingest::format::watch_decoder_input(element, &for_decoders);
        crate::ingest::programs::watch_demuxer(element, &for_decoders);
    });
}

/// An `appsrc` per fetched rendition, each into a `decodebin`: the analysed variant (its
/// audio too unless that is a rendition of its own) and the separate audio rendition.
fn add_adaptive_sources(
    pipeline: &gst::Pipeline,
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    sync: bool,
    source: &adaptive::Source,
) -> Result<Vec<gst_app::AppSrc>, IngestError> {
    let linked = Arc::new(Linked::default());
    let main_accepts = if source.audio.is_some() {
        Accept::VIDEO
    } else {
        Accept::ALL
    };
    let mut sources = vec![add_fetched_rendition(
        pipeline,
        stream,
        marks,
        sync,
        main_accepts,
        &linked,
    )?];
    if source.audio.is_some() {
        sources.push(add_fetched_rendition(
            pipeline,
            stream,
            marks,
            sync,
            Accept::AUDIO,
            &linked,
        )?);
    }
    Ok(sources)
}

fn add_fetched_rendition(
    pipeline: &gst::Pipeline,
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    sync: bool,
    accept: Accept,
    linked: &Arc<Linked>,
) -> Result<gst_app::AppSrc, IngestError> {
    // Not live: the pipeline prerolls on the first segment, and the real-time sinks then
    // play from there at the pace of the timestamps, as a player does.
    let appsrc = gst_app::AppSrc::builder()
        .format(gst::Format::Bytes)
        .is_live(false)
        .stream_type(gst_app::AppStreamType::Stream)
        .max_bytes(u64::MAX)
        .build();
    let decode = gst::ElementFactory::make("decodebin")
        .build()
        .map_err(|_| missing(stream, "decodebin"))?;
    if !decoder::restrict(&decode, stream.config.decoder) {
        tracing::warn!(stream = %stream.id, "cannot restrict the decoder choice (no autoplug-select); ranks decide");
    }
    pipeline
        .add_many([appsrc.upcast_ref(), &decode])
        .map_err(|e| pipeline_error(stream, e))?;
    appsrc
        .link(&decode)
        .map_err(|e| pipeline_error(stream, e))?;
    link_pads_on_demand(&decode, pipeline, stream, marks, sync, accept, linked);
    Ok(appsrc)
}

/// Starts one fetcher per `appsrc` on the current tokio runtime.
fn spawn_fetchers(
    stream: &Arc<Stream>,
    source: &adaptive::Source,
    sources: Vec<gst_app::AppSrc>,
) -> Result<Vec<AbortOnDrop>, IngestError> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| pipeline_error(stream, "HLS needs a tokio runtime to fetch segments"))?;
    let feeds = std::iter::once(&source.video).chain(source.audio.as_ref());
    Ok(feeds
        .zip(sources)
        .map(|(feed, appsrc)| {
            let fetcher = Fetcher::new(
                stream.clone(),
                source.http.clone(),
                appsrc,
                source.http_timeout,
                feed.segment_failed.clone(),
            );
            AbortOnDrop(runtime.spawn(fetcher.run(feed.snapshots.clone())))
        })
        .collect())
}

/// Which decoded media a decoding bin's pads may feed.
#[derive(Clone, Copy)]
struct Accept {
    video: bool,
    audio: bool,
}

impl Accept {
    const ALL: Self = Self {
        video: true,
        audio: true,
    };
    const VIDEO: Self = Self {
        video: true,
        audio: false,
    };
    const AUDIO: Self = Self {
        video: false,
        audio: true,
    };
}

/// Which branches already have their pad, across the decoding bins of a pipeline.
#[derive(Default)]
struct Linked {
    video: AtomicBool,
    audio: AtomicBool,
}

/// Links each decoded pad a decoding bin exposes: the first video and the first audio pad it
/// may feed to their branches, any other pad to a fakesink.
fn link_pads_on_demand(
    decode: &gst::Element,
    pipeline: &gst::Pipeline,
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    sync: bool,
    accept: Accept,
    linked: &Arc<Linked>,
) {
    let pipeline = pipeline.downgrade();
    let (stream, marks, linked) = (stream.clone(), marks.clone(), linked.clone());
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let name = pad.name();
        let kind = pad_media_kind(pad);
        let target =
            if kind == "video" && accept.video && !linked.video.swap(true, Ordering::SeqCst) {
                branch(&stream, &marks, VIDEO_BRANCH, true, sync)
            } else if kind == "audio" && accept.audio && !linked.audio.swap(true, Ordering::SeqCst)
            {
                branch(&stream, &marks, AUDIO_BRANCH, false, sync)
            } else {
                gst::ElementFactory::make("fakesink")
                    .property("sync", false)
                    .property("async", false)
                    .build()
                    .map_err(|_| missing(&stream, "fakesink"))
            };
        let result = target.and_then(|element| {
            pipeline
                .add(&element)
                .map_err(|e| pipeline_error(&stream, e))?;
            let sink_pad = element
                .static_pad("sink")
                .ok_or_else(|| pipeline_error(&stream, "branch has no sink pad"))?;
            pad.link(&sink_pad)
                .map_err(|e| pipeline_error(&stream, format!("cannot link {name}: {e:?}")))?;
            element
                .sync_state_with_parent()
                .map_err(|e| pipeline_error(&stream, e))?;
            Ok(())
        });
        if let Err(e) = result {
            // Reported on the bus so the supervisor restarts the stream.
            gst::element_error!(pipeline, gst::CoreError::Negotiation, ("{}", e));
        }
    });
}

/// "video", "audio" or something else, from the pad's caps (or its name, before caps are set).
fn pad_media_kind(pad: &gst::Pad) -> String {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let from_caps = caps
        .structure(0)
        .map(|s| s.name().split('/').next().unwrap_or("").to_owned());
    match from_caps.as_deref() {
        Some("video") | Some("audio") => from_caps.unwrap_or_default(),
        _ => pad.name().split('_').next().unwrap_or("").to_owned(),
    }
}

/// Builds a branch bin from a template and hooks its appsink to the stream.
fn branch(
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    template: &str,
    video: bool,
    sync: bool,
) -> Result<gst::Element, IngestError> {
    let bin = gst::parse::bin_from_description(template.trim(), true)
        .map_err(|e| pipeline_error(stream, format!("pipeline template: {e}")))?;
    let sink = bin
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| pipeline_error(stream, "pipeline template lacks `appsink name=sink`"))?;
    sink.set_sync(sync);
    let feed = appsink::Feed {
        stream: stream.clone(),
        marks: marks.clone(),
    };
    if video {
        appsink::attach_video(&sink, feed);
    } else {
        appsink::attach_audio(&sink, feed);
    }
    Ok(bin.upcast())
}

/// Logs a pipeline warning; one from a decoder (an error or concealment it reports) counts as
/// a decode error of the stream.
pub fn note_warning(stream: &Stream, msg: &gst::Message) {
    let from_decoder = msg
        .src()
        .and_then(|src| src.downcast_ref::<gst::Element>().cloned())
        .and_then(|element| element.factory())
        .is_some_and(|factory| factory.klass().contains("Decoder"));
    if from_decoder {
        stream.count_decode_error();
    }
    let warning = stream.redact(&describe_message(msg));
    tracing::warn!(stream = %stream.id, decoder = from_decoder, warning = %warning, "pipeline warning");
}

/// One line describing an error or warning message: the element, the error and its details.
pub fn describe_message(msg: &gst::Message) -> String {
    let src = msg
        .src()
        .map(|s| s.path_string().to_string())
        .unwrap_or_default();
    let src = src.rsplit('/').next().unwrap_or("").to_owned();
    match msg.view() {
        gst::MessageView::Error(e) => with_debug(&src, &e.error().to_string(), e.debug()),
        gst::MessageView::Warning(w) => with_debug(&src, &w.error().to_string(), w.debug()),
        _ => format!("{:?} from {src}", msg.type_()),
    }
}

fn with_debug(src: &str, error: &str, debug: Option<glib_str::GString>) -> String {
    // The debug string's first line names the cause (HTTP status, errno); the rest is a
    // GStreamer call path.
    let detail = debug
        .as_deref()
        .and_then(|d| {
            d.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::trim)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    if detail.is_empty() {
        format!("{src}: {error}")
    } else {
        format!("{src}: {error} ({detail})")
    }
}

mod glib_str {
    pub use gstreamer::glib::GString;
}
