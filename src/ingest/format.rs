//! The stream's format from GStreamer caps: the coded caps entering each decoder (codec,
//! profile) and the raw caps reaching the appsinks (picture size, frame rate, interlacing,
//! channels, channel positions, sample rate). Read from caps events, so a stream pays for it
//! once per format, not per buffer.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::ingest::media_sink::MediaSink;
use crate::media::{self, AudioFormat, MediaFormat, VideoFormat};

/// Hooks an audio or video decoder that the URI decoder created for `stream`: records the
/// element, and its input caps name the codec. A decoder also tells that the run carries that
/// medium before any buffer has been decoded.
pub fn watch_decoder_input(element: &gst::Element, stream: &Arc<dyn MediaSink>) {
    let Some(factory) = element.factory() else {
        return;
    };
    let klass = factory.klass();
    if !klass.contains("Decoder") {
        return;
    }
    let video = klass.contains("Video");
    if !(video || klass.contains("Audio")) {
        return;
    }
    stream.set_decoder(&factory.name(), video);
    let Some(pad) = element.static_pad("sink") else {
        return;
    };
    on_caps(&pad, stream.clone(), move |caps| coded_format(caps, video));
}

/// Hooks an appsink: its caps are the decoded format the detectors see.
pub fn watch_raw_caps(sink: &gst_app::AppSink, video: bool, stream: Arc<dyn MediaSink>) {
    if let Some(pad) = sink.static_pad("sink") {
        on_caps(&pad, stream, move |caps| raw_format(caps, video));
    }
}

fn on_caps(
    pad: &gst::Pad,
    stream: Arc<dyn MediaSink>,
    read: impl Fn(&gst::CapsRef) -> Option<MediaFormat> + Send + Sync + 'static,
) {
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &info.data
            && let gst::EventView::Caps(caps) = event.view()
            && let Some(update) = read(caps.caps())
        {
            stream.update_format(&update);
        }
        gst::PadProbeReturn::Ok
    });
}

fn int(s: &gst::StructureRef, field: &str) -> Option<i32> {
    s.get::<i32>(field).ok()
}

fn text(s: &gst::StructureRef, field: &str) -> Option<String> {
    s.get::<&str>(field).ok().map(str::to_owned)
}

fn positive(v: Option<i32>) -> Option<u32> {
    v.and_then(|v| u32::try_from(v).ok()).filter(|&v| v > 0)
}

/// Codec and profile from a decoder's input caps.
pub fn coded_format(caps: &gst::CapsRef, video: bool) -> Option<MediaFormat> {
    let s = caps.structure(0)?;
    let (name, mpegversion) = (s.name().as_str(), int(s, "mpegversion"));
    let profile = text(s, "profile");
    Some(if video {
        MediaFormat {
            video: Some(VideoFormat {
                codec: Some(media::video_codec(name, mpegversion)),
                profile,
                ..VideoFormat::default()
            }),
            audio: None,
        }
    } else {
        let codec = media::audio_codec(name, mpegversion, int(s, "layer"));
        MediaFormat {
            video: None,
            audio: Some(AudioFormat {
                codec: Some(codec),
                profile,
                ..AudioFormat::default()
            }),
        }
    })
}

/// Picture or audio layout from an appsink's raw caps.
pub fn raw_format(caps: &gst::CapsRef, video: bool) -> Option<MediaFormat> {
    let s = caps.structure(0)?;
    if video {
        let frame_rate = s
            .get::<gst::Fraction>("framerate")
            .ok()
            .filter(|f| f.numer() > 0 && f.denom() > 0)
            .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
        let scan = media::scan_of(s.get::<&str>("interlace-mode").ok());
        return Some(MediaFormat {
            video: Some(VideoFormat {
                width: positive(int(s, "width")),
                height: positive(int(s, "height")),
                frame_rate,
                scan: Some(scan),
                ..VideoFormat::default()
            }),
            audio: None,
        });
    }
    let channels = positive(int(s, "channels"));
    let mask = s.get::<gst::Bitmask>("channel-mask").ok().map(|m| m.0);
    Some(MediaFormat {
        video: None,
        audio: Some(AudioFormat {
            channels,
            channel_layout: channels.and_then(|c| media::channel_layout(mask, c)),
            sample_rate: positive(int(s, "rate")),
            ..AudioFormat::default()
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(text: &str) -> gst::Caps {
        gst::init().expect("GStreamer initialises");
        text.parse().expect("valid caps")
    }

    #[test]
    fn coded_caps_give_codec_and_profile() {
        let h264 = caps("video/x-h264, stream-format=byte-stream, profile=high");
        let video = coded_format(&h264, true).and_then(|f| f.video);
        let video = video.expect("video");
        assert_eq!(
            (video.codec, video.profile.as_deref()),
            (Some("h264"), Some("high"))
        );
        let aac = caps("audio/mpeg, mpegversion=(int)4, profile=lc, channels=2, rate=48000");
        let audio = coded_format(&aac, false)
            .and_then(|f| f.audio)
            .expect("audio");
        assert_eq!(
            (audio.codec, audio.profile.as_deref()),
            (Some("aac"), Some("lc"))
        );
        let mp2 = caps("audio/mpeg, mpegversion=(int)1, layer=(int)2");
        let audio = coded_format(&mp2, false)
            .and_then(|f| f.audio)
            .expect("audio");
        assert_eq!(audio.codec, Some("mp2"));
    }

    #[test]
    fn raw_caps_give_picture_and_layout() {
        let raw = caps(
            "video/x-raw, format=I420, width=1920, height=1080, framerate=25/1, interlace-mode=interleaved",
        );
        let video = raw_format(&raw, true).and_then(|f| f.video).expect("video");
        assert_eq!((video.width, video.height), (Some(1920), Some(1080)));
        assert_eq!(
            (video.frame_rate, video.scan),
            (Some(25.0), Some("interlaced"))
        );
        let audio = caps(
            "audio/x-raw, format=F32LE, layout=interleaved, rate=48000, channels=6, channel-mask=(bitmask)0x0000000000000c0f",
        );
        let audio = raw_format(&audio, false)
            .and_then(|f| f.audio)
            .expect("audio");
        assert_eq!(audio.channel_layout.as_deref(), Some("FL FR C LFE SL SR"));
        assert_eq!((audio.channels, audio.sample_rate), (Some(6), Some(48_000)));
    }
}
