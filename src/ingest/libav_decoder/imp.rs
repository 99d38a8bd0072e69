//! The element: a GstVideoDecoder subclass around [`super::codec`].

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{LazyLock, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer::subclass::prelude::*;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use gstreamer_video::subclass::prelude::*;

use super::codec::{self, Codec, DecodedFrame, Shape};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        super::ELEMENT,
        gst::DebugColorFlags::empty(),
        Some("libavcodec video decoder without an output copy"),
    )
});

/// Frames still waiting this many input frames after a later one came out were dropped by
/// libav (damaged or unreferenced input): H.264 and H.265 reorder over at most 16 frames.
const GHOST_AFTER: u32 = 34;

struct State {
    codec: Codec,
    input: gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>,
    output: Option<Shape>,
    reorder_depth: Option<u32>,
}

#[derive(Default)]
pub struct LibavDecoder {
    state: Mutex<Option<State>>,
    max_threads: AtomicI32,
    /// Downstream reads strides from a video meta, so frames go out as libav made them.
    video_meta: AtomicBool,
}

#[glib::object_subclass]
impl ObjectSubclass for LibavDecoder {
    const NAME: &'static str = "StreamwatchLibavDecoder";
    type Type = super::LibavDecoder;
    type ParentType = gst_video::VideoDecoder;
}

impl ObjectImpl for LibavDecoder {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecInt::builder("max-threads")
                    .nick("Maximum decode threads")
                    .blurb("Slice threads of the decoder (0: one per core)")
                    .minimum(0)
                    .default_value(0)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "max-threads" {
            self.max_threads
                .store(value.get().unwrap_or(0), Ordering::Relaxed);
        }
    }

    fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
        self.max_threads.load(Ordering::Relaxed).to_value()
    }
}

impl GstObjectImpl for LibavDecoder {}

impl ElementImpl for LibavDecoder {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "libav H.264/H.265 decoder (no output copy)",
                "Codec/Decoder/Video",
                "Decodes H.264 and H.265 with libavcodec and hands its frames on as they are",
                "streamwatch",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let sink = ["video/x-h264", "video/x-h265"]
                .into_iter()
                .map(|name| {
                    gst::Structure::builder(name)
                        .field("stream-format", "byte-stream")
                        .field("alignment", "au")
                        .build()
                })
                .collect::<gst::Caps>();
            let src = gst_video::VideoCapsBuilder::new().build();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &sink,
                )
                .expect("valid sink template"),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &src,
                )
                .expect("valid src template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl VideoDecoderImpl for LibavDecoder {
    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *crate::sync::lock(&self.state) = None;
        Ok(())
    }

    fn set_format(
        &self,
        input: &gst_video::VideoCodecState<'static, gst_video::video_codec_state::Readable>,
    ) -> Result<(), gst::LoggableError> {
        let name = input
            .caps()
            .and_then(|c| c.structure(0))
            .map(|s| s.name().to_string());
        let id = name
            .as_deref()
            .and_then(codec::codec_for_caps)
            .ok_or_else(|| gst::loggable_error!(*CAT, "caps {name:?} not handled"))?;
        let mut state = crate::sync::lock(&self.state);
        // A caps change within a codec (a new resolution) is libav's to follow in-band.
        if let Some(s) = state.as_mut().filter(|s| s.codec.id == id) {
            s.input = input.clone();
            return Ok(());
        }
        let codec = Codec::open(id, self.max_threads.load(Ordering::Relaxed))
            .map_err(|e| gst::loggable_error!(*CAT, "{e}"))?;
        *state = Some(State {
            codec,
            input: input.clone(),
            output: None,
            reorder_depth: None,
        });
        Ok(())
    }

    fn handle_frame(
        &self,
        frame: gst_video::VideoCodecFrame,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let number = frame.system_frame_number();
        let input = frame.input_buffer_owned().ok_or(gst::FlowError::Error)?;
        // The base class holds its own reference to the frame until it is finished.
        drop(frame);
        let map = input.map_readable().map_err(|_| gst::FlowError::Error)?;
        let mut guard = crate::sync::lock(&self.state);
        let state = guard.as_mut().ok_or(gst::FlowError::NotNegotiated)?;
        if let Err(e) = state.codec.send(&map, number) {
            gst::debug!(
                CAT,
                imp = self,
                "frame {number} not decoded: {}",
                codec::error_text(e)
            );
            if let Some(lost) = self.obj().frame(number as i32) {
                self.obj().release_frame(lost);
            }
        }
        self.push_decoded(state)
    }

    fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut guard = crate::sync::lock(&self.state);
        let Some(state) = guard.as_mut() else {
            return Ok(gst::FlowSuccess::Ok);
        };
        state.codec.send_end();
        let pushed = self.push_decoded(state);
        // After the end signal libav takes input again only once reset.
        state.codec.reset();
        pushed
    }

    fn finish(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.drain()
    }

    fn flush(&self) -> bool {
        if let Some(state) = crate::sync::lock(&self.state).as_mut() {
            state.codec.reset();
        }
        true
    }

    fn decide_allocation(
        &self,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        let meta = query
            .find_allocation_meta::<gst_video::VideoMeta>()
            .is_some();
        self.video_meta.store(meta, Ordering::Relaxed);
        self.parent_decide_allocation(query)
    }
}

impl LibavDecoder {
    /// Hands on every frame the decoder has ready.
    fn push_decoded(&self, state: &mut State) -> Result<gst::FlowSuccess, gst::FlowError> {
        loop {
            match state.codec.receive() {
                Ok(Some(decoded)) => {
                    self.push(state, decoded)?;
                }
                Ok(None) => return Ok(gst::FlowSuccess::Ok),
                Err(e) => {
                    // Damage is libav's to conceal and log (decode_errors counts the log).
                    gst::debug!(CAT, imp = self, "decoding error: {}", codec::error_text(e));
                    return Ok(gst::FlowSuccess::Ok);
                }
            }
        }
    }

    fn push(
        &self,
        state: &mut State,
        decoded: DecodedFrame,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let obj = self.obj();
        let Some(mut frame) = decoded.number().and_then(|n| obj.frame(n as i32)) else {
            // Its input was flushed or given up while libav held it.
            return Ok(gst::FlowSuccess::Ok);
        };
        let shape = decoded.shape().ok_or_else(|| {
            gst::element_imp_error!(
                self,
                gst::StreamError::Decode,
                ["pixel format not supported"]
            );
            gst::FlowError::NotSupported
        })?;
        if state.output != Some(shape) {
            self.negotiate_shape(state, shape)?;
        }
        self.update_latency(state);
        let (corrupt, tff, rff) = (
            decoded.corrupt(),
            decoded.top_field_first(),
            decoded.repeats_field(),
        );
        if self.video_meta.load(Ordering::Relaxed) {
            frame.set_output_buffer(codec::wrap(decoded, &shape).ok_or(gst::FlowError::Error)?);
        } else {
            self.copy_out(&mut frame, &decoded)?;
        }
        if let Some(buffer) = frame.output_buffer_mut() {
            let mut flags = buffer.flags();
            flags.set(gst::BufferFlags::CORRUPTED, corrupt);
            if shape.interlaced {
                let video =
                    |f: gst_video::VideoBufferFlags| gst::BufferFlags::from_bits_retain(f.bits());
                flags |= video(gst_video::VideoBufferFlags::INTERLACED);
                flags.set(video(gst_video::VideoBufferFlags::TFF), tff);
                flags.set(video(gst_video::VideoBufferFlags::RFF), rff);
            }
            buffer.set_flags(flags);
        }
        self.release_ghosts(frame.system_frame_number());
        obj.finish_frame(frame)
    }

    /// Tells downstream the format of the frames from now on.
    fn negotiate_shape(&self, state: &mut State, shape: Shape) -> Result<(), gst::FlowError> {
        let obj = self.obj();
        // Once a stream showed an interlaced picture, each buffer says which are.
        let mode = if shape.interlaced || state.output.is_some_and(|s| s.interlaced) {
            gst_video::VideoInterlaceMode::Mixed
        } else {
            gst_video::VideoInterlaceMode::Progressive
        };
        let output = obj.set_interlaced_output_state(
            shape.format,
            mode,
            shape.width,
            shape.height,
            Some(&state.input),
        )?;
        obj.negotiate(output)?;
        state.output = Some(Shape {
            interlaced: mode == gst_video::VideoInterlaceMode::Mixed,
            ..shape
        });
        Ok(())
    }

    /// The decoder's reordering delay as latency, as avdec does: live sinks then wait for it.
    fn update_latency(&self, state: &mut State) {
        let depth = state.codec.reorder_depth();
        if state.reorder_depth == Some(depth) {
            return;
        }
        state.reorder_depth = Some(depth);
        let fps = state.input.info().fps();
        if fps.numer() <= 0 || fps.denom() <= 0 {
            return;
        }
        let latency = gst::ClockTime::SECOND
            .mul_div_ceil(u64::from(depth) * fps.denom() as u64, fps.numer() as u64)
            .unwrap_or(gst::ClockTime::ZERO);
        self.obj().set_latency(latency, latency);
    }

    fn copy_out(
        &self,
        frame: &mut gst_video::VideoCodecFrame,
        decoded: &DecodedFrame,
    ) -> Result<(), gst::FlowError> {
        let obj = self.obj();
        obj.allocate_output_frame(frame, None)?;
        let info = obj
            .output_state()
            .map(|s| s.info().clone())
            .ok_or(gst::FlowError::NotNegotiated)?;
        let buffer = frame.output_buffer_mut().ok_or(gst::FlowError::Error)?;
        let mut target = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info)
            .map_err(|_| gst::FlowError::Error)?;
        codec::copy_into(decoded, &mut target).ok_or(gst::FlowError::Error)
    }

    /// Releases frames that went into libav long before `finished` and never came out.
    fn release_ghosts(&self, finished: u32) {
        let obj = self.obj();
        for frame in obj.frames() {
            if frame.system_frame_number().saturating_add(GHOST_AFTER) < finished {
                gst::log!(
                    CAT,
                    imp = self,
                    "frame {} never decoded",
                    frame.system_frame_number()
                );
                obj.release_frame(frame);
            }
        }
    }
}
