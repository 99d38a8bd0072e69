//! `swavdec`: H.264 and H.265 decoded by libavcodec, its frames handed downstream as they are.
//!
//! GStreamer 1.22's `avdec_h264` copies every decoded frame once: without a video meta
//! downstream it copies libav's padded frame into a plainly laid-out buffer; with one, libav
//! decodes into GStreamer buffers but keeps its reference frames mapped for writing, so
//! `gst_video_decoder_finish_frame` cannot share them and copies them instead. At a dozen
//! 720p streams that copy was 5% of the process. This element wraps each plane of libav's own
//! frame in GStreamer memory that holds a reference on the frame (libav reuses a buffer only
//! when no reference is left), with a video meta for libav's strides; a downstream without
//! video meta support gets a copy, as from avdec.
//!
//! It ranks above the libav decoders, so decodebin picks it wherever they would have been
//! picked for H.264 or H.265 (NVDEC ranks above both under `decoder = "auto"`); other codecs
//! stay with avdec. Errors libav logs reach the `libav` debug category through gst-libav's
//! log callback, as avdec's do, so `decode_errors` counts them the same way.

mod codec;
mod imp;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

/// The element's factory name.
pub const ELEMENT: &str = "swavdec";

glib::wrapper! {
    pub struct LibavDecoder(ObjectSubclass<imp::LibavDecoder>)
        @extends gstreamer_video::VideoDecoder, gst::Element, gst::Object;
}

/// Registers the element with this process's GStreamer (after `gst::init`). gst-libav is
/// loaded first: its plugin installs the libav log callback that decoder errors arrive by.
pub fn register() -> Result<(), glib::BoolError> {
    if gst::Plugin::load_by_name("libav").is_err() {
        tracing::warn!("gst-libav is not installed: decoder errors logged by libav go uncounted");
    }
    gst::Element::register(
        None,
        ELEMENT,
        gst::Rank::PRIMARY + 1,
        LibavDecoder::static_type(),
    )
}

/// Whether `element` is this decoder.
pub fn is_this(element: &gst::Element) -> bool {
    element.factory().is_some_and(|f| f.name() == ELEMENT)
}

/// Sets up this decoder in a stream's pipeline: one thread unless the stream is alone in the
/// process (see `decode_errors`), and the video meta declared on the video branch's behalf.
/// The branch reads frames through their video meta (videoconvert, and the appsink's
/// `VideoFrame` map), but GStreamer 1.22's appsink does not say so in the allocation query,
/// which would make the decoder copy every frame.
pub fn configure(element: &gst::Element, sole: bool) {
    if !sole {
        element.set_property("max-threads", 1i32);
    }
    let Some(src) = element.static_pad("src") else {
        return;
    };
    // On the way down (the appsink answers allocation queries with false, after which a
    // probe on the way back is not called); nothing downstream removes a meta.
    src.add_probe(
        gst::PadProbeType::QUERY_DOWNSTREAM | gst::PadProbeType::PUSH,
        |_, info| {
            if let Some(gst::QueryViewMut::Allocation(query)) =
                info.query_mut().map(|q| q.view_mut())
                && query
                    .find_allocation_meta::<gstreamer_video::VideoMeta>()
                    .is_none()
            {
                query.add_allocation_meta::<gstreamer_video::VideoMeta>(None);
            }
            gst::PadProbeReturn::Ok
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use gstreamer_app as gst_app;
    use gstreamer_video as gst_video;
    use gstreamer_video::prelude::*;

    /// What a decoder gave out: per frame, its PTS, visible luma, interlaced flag and memories.
    #[derive(Default)]
    struct Decoded {
        pts: Vec<u64>,
        luma: Vec<Vec<u8>>,
        interlaced: Vec<bool>,
        memories: Vec<usize>,
    }

    /// A clip removed when dropped.
    struct Clip(std::path::PathBuf);

    impl Drop for Clip {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// A 2 s clip of 25 pictures a second from `encoder` (a gst-launch fragment, which may
    /// interlace pairs of them first), in MPEG-TS.
    fn encode(name: &str, encoder: &str) -> Clip {
        let path = std::env::temp_dir().join(format!("swavdec-{}-{name}", std::process::id()));
        let launch = format!(
            "videotestsrc num-buffers=50 pattern=ball ! \
             video/x-raw,format=I420,width=320,height=240,framerate=25/1 ! {encoder} ! \
             mpegtsmux ! filesink location={}",
            path.display()
        );
        let clip = Clip(path);
        run_to_end(&gst::parse::launch(&launch).expect("encoding pipeline"));
        clip
    }

    fn run_to_end(pipeline: &gst::Element) {
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(60),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("pipeline ends");
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
    }

    /// Decodes `clip` with `decoder`; `declare_meta` sets it up as streamwatch's pipelines do.
    fn decode(clip: &std::path::Path, parser: &str, decoder: &str, declare_meta: bool) -> Decoded {
        let launch = format!(
            "filesrc location={} ! tsdemux ! {parser} ! {decoder} name=dec ! \
             appsink name=sink sync=false",
            clip.display()
        );
        let pipeline = gst::parse::launch(&launch)
            .unwrap()
            .downcast::<gst::Bin>()
            .unwrap();
        if declare_meta {
            configure(&pipeline.by_name("dec").unwrap(), true);
        }
        let sink = pipeline
            .by_name("sink")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut out = Decoded::default();
        while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
            let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
            let buffer = sample.buffer_owned().unwrap();
            out.pts.push(buffer.pts().unwrap().nseconds());
            out.memories.push(buffer.n_memory());
            let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info).unwrap();
            out.interlaced.push(
                frame
                    .flags()
                    .contains(gst_video::VideoFrameFlags::INTERLACED),
            );
            let stride = frame.plane_stride()[0] as usize;
            let plane = frame.plane_data(0).unwrap();
            let width = frame.width() as usize;
            let luma = (0..frame.height() as usize)
                .flat_map(|row| &plane[row * stride..row * stride + width])
                .copied()
                .collect();
            out.luma.push(luma);
        }
        pipeline.set_state(gst::State::Null).unwrap();
        out
    }

    /// Decodes `clip` with avdec and with this element (copy-free and copying), and checks
    /// every frame is the same picture at the same time.
    fn same_as_avdec(clip: &std::path::Path, parser: &str, avdec: &str) -> Decoded {
        let reference = decode(clip, parser, avdec, false);
        assert!(
            reference.pts.len() >= 20,
            "avdec gave {} frames",
            reference.pts.len()
        );
        let wrapped = decode(clip, parser, ELEMENT, true);
        let copied = decode(clip, parser, ELEMENT, false);
        for (name, ours) in [("wrapped", &wrapped), ("copied", &copied)] {
            assert_eq!(ours.pts, reference.pts, "{name}: timestamps");
            assert_eq!(ours.interlaced, reference.interlaced, "{name}: interlacing");
            let differing = (0..ours.luma.len())
                .filter(|&i| ours.luma[i] != reference.luma[i])
                .collect::<Vec<_>>();
            assert!(
                differing.is_empty(),
                "{name}: luma differs in frames {differing:?}"
            );
        }
        // One memory per plane is libav's own frame; one for all is a copy.
        assert!(
            wrapped.memories.iter().all(|&m| m == 3),
            "{:?}",
            wrapped.memories
        );
        assert!(
            copied.memories.iter().all(|&m| m == 1),
            "{:?}",
            copied.memories
        );
        wrapped
    }

    #[test]
    fn h264_frames_are_avdecs_without_a_copy() {
        crate::ingest::init().unwrap();
        let clip = encode("b.ts", "x264enc bframes=3 key-int-max=25");
        let ours = same_as_avdec(&clip.0, "h264parse", "avdec_h264");
        assert!(ours.interlaced.iter().all(|&i| !i));
    }

    #[test]
    fn interlaced_h264_is_flagged_as_avdec_flags_it() {
        crate::ingest::init().unwrap();
        let clip = encode(
            "i.ts",
            "interlace field-pattern=1:1 top-field-first=true ! x264enc interlaced=true bframes=2",
        );
        let ours = same_as_avdec(&clip.0, "h264parse", "avdec_h264");
        assert!(ours.interlaced.iter().all(|&i| i), "{:?}", ours.interlaced);
    }

    #[test]
    fn h265_frames_are_avdecs_without_a_copy() {
        crate::ingest::init().unwrap();
        let clip = encode("h.ts", "x265enc key-int-max=25 ! h265parse");
        same_as_avdec(&clip.0, "h265parse", "avdec_h265");
    }
}
