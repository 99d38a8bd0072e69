//! Builds and runs the decoding pipeline of one stream from the templates in `pipelines/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::error::IngestError;
use crate::ingest::decode_errors::DecodeMarks;
use crate::ingest::decoder::{self, DecoderChoice};
use crate::ingest::media_sink::MediaSink;
use crate::ingest::{appsink, decode_errors, demo};
use crate::stream::Stream;

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
}

impl Drop for RunningPipeline {
    fn drop(&mut self) {
        if let Some(d) = &self.demo {
            d.stop();
        }
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl RunningPipeline {
    pub fn bus(&self) -> Option<gst::Bus> {
        self.pipeline.bus()
    }
}

fn missing(stream: &Stream, element: &str) -> IngestError {
    IngestError::MissingElement {
        stream: stream.id.clone(),
        element: element.to_owned(),
    }
}

fn pipeline_error(stream: &Stream, reason: impl std::fmt::Display) -> IngestError {
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

/// The URI decoder. GStreamer 1.22's `uridecodebin3` picks `hlsdemux2`, which aborted the
/// whole process (g_mutex_clear on a locked mutex in adaptivedemux2) when a live HLS pipeline
/// was set to NULL for a restart; `uridecodebin` with the classic demuxers has no such crash.
const DECODER: &str = "uridecodebin";

/// Serialises pipeline construction and the change to PLAYING across streams.
static START_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds the pipeline and sets it playing.
pub fn start(stream: &Arc<Stream>, pacing: Pacing) -> Result<RunningPipeline, IngestError> {
    preflight(stream)?;
    let marks = Arc::new(DecodeMarks::default());
    let _serialised = crate::sync::lock(&START_LOCK);
    let pipeline = gst::Pipeline::with_name(&format!("stream-{}", stream.id));
    let sync = pacing == Pacing::RealTime;
    let demo = if stream.url.starts_with("demo://") {
        let (video_src, audio_src, source) =
            demo::build(stream).map_err(|e| pipeline_error(stream, e))?;
        pipeline
            .add_many([&video_src, &audio_src])
            .map_err(|e| pipeline_error(stream, e))?;
        let video = branch(stream, &marks, VIDEO_BRANCH, true, sync)?;
        let audio = branch(stream, &marks, AUDIO_BRANCH, false, sync)?;
        pipeline
            .add_many([&video, &audio])
            .map_err(|e| pipeline_error(stream, e))?;
        video_src
            .link(&video)
            .map_err(|e| pipeline_error(stream, e))?;
        audio_src
            .link(&audio)
            .map_err(|e| pipeline_error(stream, e))?;
        Some(source)
    } else {
        let decode = gst::ElementFactory::make(DECODER)
            .property("uri", &stream.url)
            .build()
            .map_err(|_| missing(stream, DECODER))?;
        if !decoder::restrict(&decode, stream.config.decoder) {
            tracing::warn!(stream = %stream.id, decoder = stream.config.decoder.as_str(),
                "cannot restrict the decoder choice (no autoplug-select); ranks decide");
        }
        pipeline
            .add(&decode)
            .map_err(|e| pipeline_error(stream, e))?;
        let for_decoders: Arc<dyn MediaSink> = stream.clone();
        let (sole, marks_for_decoders) = (stream.sole, marks.clone());
        pipeline.connect_deep_element_added(move |_, _, element| {
            decode_errors::watch_decoder(element, &for_decoders, sole, &marks_for_decoders);
            crate::ingest::input::watch_input(element, &for_decoders);
            crate::ingest::format::watch_decoder_input(element, &for_decoders);
            crate::ingest::programs::watch_demuxer(element, &for_decoders);
        });
        link_pads_on_demand(&decode, &pipeline, stream, &marks, sync);
        None
    };

    let running = RunningPipeline { pipeline, demo };
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
    Ok(running)
}

/// Links each decoded pad the URI decoder exposes: the first video and the first audio pad to
/// their branches, any other pad to a fakesink.
fn link_pads_on_demand(
    decode: &gst::Element,
    pipeline: &gst::Pipeline,
    stream: &Arc<Stream>,
    marks: &Arc<DecodeMarks>,
    sync: bool,
) {
    let pipeline = pipeline.downgrade();
    let (stream, marks) = (stream.clone(), marks.clone());
    let have_video = Arc::new(AtomicBool::new(false));
    let have_audio = Arc::new(AtomicBool::new(false));
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline.upgrade() else {
            return;
        };
        let name = pad.name();
        let kind = pad_media_kind(pad);
        let target = if kind == "video" && !have_video.swap(true, Ordering::SeqCst) {
            branch(&stream, &marks, VIDEO_BRANCH, true, sync)
        } else if kind == "audio" && !have_audio.swap(true, Ordering::SeqCst) {
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
    tracing::warn!(stream = %stream.id, decoder = from_decoder, warning = %describe_message(msg), "pipeline warning");
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
