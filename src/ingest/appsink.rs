//! appsink callbacks: hand what the detectors need out of GStreamer buffers (video frames
//! without a copy, audio converted to `f32`). They run on
//! GStreamer streaming threads and never panic: failures become a `FlowError` and an element
//! error on the bus, which the supervisor turns into a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer_app as gst_app;
use gstreamer_app::gst_base;
use gstreamer_app::gst_base::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use crate::frame::{AudioBuffer, VideoFrame};
use crate::ingest::decode_errors::DecodeMarks;
use crate::ingest::media_sink::MediaSink;

/// What a pipeline run's appsinks feed: the stream, and the decoder's error marks of the run.
pub struct Feed {
    pub stream: Arc<dyn MediaSink>,
    pub marks: Arc<DecodeMarks>,
}

type SampleHandler = fn(&gst_app::AppSink, &Feed) -> Result<gst::FlowSuccess, gst::FlowError>;

pub fn attach_video(sink: &gst_app::AppSink, feed: Feed) {
    crate::ingest::format::watch_raw_caps(sink, true, feed.stream.clone());
    attach(
        sink,
        feed,
        on_video_sample,
        "cannot read decoded video frame",
    );
}

pub fn attach_audio(sink: &gst_app::AppSink, feed: Feed) {
    crate::ingest::format::watch_raw_caps(sink, false, feed.stream.clone());
    attach(
        sink,
        feed,
        on_audio_sample,
        "cannot read decoded audio buffer",
    );
}

fn attach(sink: &gst_app::AppSink, feed: Feed, handler: SampleHandler, failure: &'static str) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                handler(sink, &feed).inspect_err(|e| {
                    if *e == gst::FlowError::Error {
                        gst::element_error!(sink, gst::StreamError::Decode, ("{}", failure));
                    }
                })
            })
            .build(),
    );
}

/// The buffer's running time: audio and video share it even where their PTS do not (an encoder
/// in the pipeline shifts video PTS by its own offset).
fn running_time(sample: &gst::Sample, pts: gst::ClockTime) -> Duration {
    let running = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>())
        .and_then(|s| s.to_running_time(pts))
        .unwrap_or(pts);
    Duration::from_nanos(running.nseconds())
}

fn on_video_sample(
    sink: &gst_app::AppSink,
    feed: &Feed,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let stream = feed.stream.as_ref();
    let decoded_at = Instant::now();
    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
    let Some(pts) = buffer.pts() else {
        // Without a timestamp a frame cannot be placed in media time; skip it.
        tracing::debug!(stream = stream.id(), "video buffer without PTS skipped");
        return Ok(gst::FlowSuccess::Ok);
    };
    // Decoders that know a frame was concealed say so on the buffer (and some only there).
    if buffer.flags().contains(gst::BufferFlags::CORRUPTED) {
        stream.count_decode_error();
    }
    let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|_| gst::FlowError::NotNegotiated)?;
    let running = running_time(&sample, pts);
    if is_late(sink, running) {
        stream.note_late_frame();
    }
    let Some((session, media)) = stream.media_time(running, true) else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let copying = Instant::now();
    let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
    let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info)
        .map_err(|_| gst::FlowError::Error)?;
    let (width, height) = (frame.width(), frame.height());
    let interlaced = holds_two_fields(&frame);
    let stride = usize::try_from(frame.plane_stride()[0]).map_err(|_| gst::FlowError::Error)?;
    let decoded = Arc::new(DecodedLuma::new(frame));
    let mut video = match VideoFrame::from_shared_plane(
        width,
        height,
        decoded.clone(),
        0,
        stride,
        media,
        decoded_at,
    ) {
        Some(video) => video,
        // Rows that are not whole words: copied into a frame of its own.
        None => VideoFrame::from_plane(
            width,
            height,
            decoded.as_ref().as_ref(),
            stride,
            media,
            decoded_at,
        )
        .ok_or(gst::FlowError::Error)?,
    };
    crate::perf::PERF.add(crate::perf::Stage::Copy, copying.elapsed(), 1);
    video.decode_errors = feed.marks.errors_at(pts.nseconds(), stream.decode_errors());
    video.keyframe = feed.marks.is_keyframe(pts.nseconds());
    video.interlaced = interlaced;
    video.tier = feed.marks.applied_tier.get();
    stream.captions_decoded(pts.nseconds());
    stream.push_video(session, video);
    Ok(gst::FlowSuccess::Ok)
}

/// A frame later than this past its due time (running time plus the pipeline's latency) shows
/// decoding falling behind; jitter within a pipeline stays well below it.
const LATE_AFTER: Duration = Duration::from_millis(200);

/// Whether a real-time sink got the frame after its due time (never for unpaced sinks).
fn is_late(sink: &gst_app::AppSink, running: Duration) -> bool {
    let Some(sink) = sink
        .upcast_ref::<gst::Element>()
        .downcast_ref::<gst_base::BaseSink>()
    else {
        return false;
    };
    if !sink.is_sync() {
        return false;
    }
    let Some(now) = sink.current_running_time() else {
        return false;
    };
    let due = running + Duration::from_nanos(sink.latency().nseconds());
    Duration::from_nanos(now.nseconds()) > due + LATE_AFTER
}

/// Whether a decoded frame interleaves two fields: GStreamer flags a frame interlaced when
/// the caps say so for every frame (`interleaved`) or its buffer says so (`mixed`, as the
/// H.264 decoders do for PAFF/MBAFF streams). In `alternate` mode a buffer is one field, which
/// is measured like a progressive picture.
fn holds_two_fields(frame: &gst_video::VideoFrame<gst_video::video_frame::Readable>) -> bool {
    frame
        .flags()
        .contains(gst_video::VideoFrameFlags::INTERLACED)
        && frame.info().interlace_mode() != gst_video::VideoInterlaceMode::Alternate
}

/// A decoded buffer, mapped for reading for as long as frames use its luma plane: the
/// statistics read the decoder's own memory. The decoder's buffer pool allocates another
/// buffer while this one is held; the frame queues bound how many are.
///
/// The plane's address is looked up once: the statistics read the plane row by row, and
/// `VideoFrame::plane_data` checks the format and the plane index on every call.
struct DecodedLuma {
    /// Held only to keep the buffer mapped.
    _mapping: gst_video::VideoFrame<gst_video::video_frame::Readable>,
    plane: usize,
    len: usize,
}

impl DecodedLuma {
    fn new(frame: gst_video::VideoFrame<gst_video::video_frame::Readable>) -> Self {
        let (plane, len) = frame
            .plane_data(0)
            .map_or((0, 0), |p| (p.as_ptr() as usize, p.len()));
        Self {
            _mapping: frame,
            plane,
            len,
        }
    }
}

impl AsRef<[u8]> for DecodedLuma {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `plane` and `len` describe plane 0 of `self._mapping`, which stays
        // mapped, unmoved and unwritten until `self._mapping` is dropped with `self`.
        unsafe { std::slice::from_raw_parts(self.plane as *const u8, self.len) }
    }
}

fn on_audio_sample(
    sink: &gst_app::AppSink,
    feed: &Feed,
) -> Result<gst::FlowSuccess, gst::FlowError> {
    let stream = feed.stream.as_ref();
    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
    let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
    let Some(pts) = buffer.pts() else {
        return Ok(gst::FlowSuccess::Ok);
    };
    let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
    let s = caps.structure(0).ok_or(gst::FlowError::NotNegotiated)?;
    let channels = s.get::<i32>("channels").unwrap_or(1).max(1) as u32;
    let rate = s.get::<i32>("rate").unwrap_or(48_000).max(1) as u32;
    let channel_mask = s.get::<gst::Bitmask>("channel-mask").ok().map(|m| m.0);
    let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
    let samples: Vec<f32> = map
        .as_slice()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let running = running_time(&sample, pts);
    let mut audio = AudioBuffer {
        channels,
        channel_mask,
        rate,
        samples,
        pts: running,
    };
    let Some((session, media)) = stream.media_time(running, false) else {
        stream.hold_audio(audio);
        return Ok(gst::FlowSuccess::Ok);
    };
    audio.pts = media;
    stream.push_audio(session, &audio);
    Ok(gst::FlowSuccess::Ok)
}
