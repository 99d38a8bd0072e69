//! Which video decoder a stream's pipeline uses (config `decoder`, per stream or in
//! `[ingest]`).
//!
//! `uridecodebin` picks a decoder by factory rank. With `auto`, NVIDIA's NVDEC decoders (the
//! nvcodec plugin of gst-plugins-bad, registered only where a CUDA driver and GPU exist) are
//! ranked above the libav ones (`swavdec` for H.264 and H.265, `avdec_*` for the rest) once,
//! when GStreamer is initialised, so every decodebin built afterwards prefers them and falls
//! back to libav where they are absent or refuse the stream's caps. `software` and `nvdec` are enforced per stream through `autoplug-select`,
//! which skips the decoders the choice excludes: a rank is process-wide, a choice is not.
//!
//! In GStreamer 1.22 the NVDEC decoders hand frames over in system memory when downstream
//! takes no CUDA memory, as NV12, which the video branch accepts as it is (only the luma plane
//! is read): the luma plane then takes the same single copy into the engine's frame as a
//! software-decoded one. Converting NV12 to I420 cost 2 ms of CPU per 1080p frame, 46% of
//! the process's CPU with 32 NVDEC streams on an H200 machine.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

pub use crate::config::DecoderChoice;

/// The NVDEC decoders `nvdec` requires at least one of (H.264 and H.265 are what live
/// streams carry).
pub const NVDEC_DECODERS: &[&str] = &["nvh264dec", "nvh265dec"];

/// nvcodec's decoders: `nvh264dec`, `nvh265dec`, `nvvp9dec`, `nvav1dec`, `nvmpeg2videodec`...
fn is_nvidia_decoder(name: &str) -> bool {
    name.starts_with("nv") && name.ends_with("dec")
}

fn is_video_decoder(factory: &gst::ElementFactory) -> bool {
    let klass = factory.klass();
    klass.contains("Decoder") && klass.contains("Video")
}

/// The NVDEC decoders of [`NVDEC_DECODERS`] this GStreamer registry has.
pub fn available_nvdec() -> Vec<&'static str> {
    // The registry is only there once GStreamer is initialised (idempotent, and cheap after).
    if gst::init().is_err() {
        return Vec::new();
    }
    NVDEC_DECODERS
        .iter()
        .copied()
        .filter(|name| gst::ElementFactory::find(name).is_some())
        .collect()
}

/// Ranks every NVIDIA video decoder above the libav ones (which are PRIMARY), so that `auto`
/// prefers hardware. Called once after `gst::init`, before any decodebin caches its list.
pub fn prefer_hardware() {
    let registry = gst::Registry::get();
    for feature in registry.features(gst::ElementFactory::static_type()) {
        let Ok(factory) = feature.downcast::<gst::ElementFactory>() else {
            continue;
        };
        if is_nvidia_decoder(&factory.name())
            && is_video_decoder(&factory)
            && factory.rank() <= gst::Rank::PRIMARY
        {
            // Above streamwatch's own libav decoder too (PRIMARY + 1).
            factory.set_rank(gst::Rank::PRIMARY + 2);
        }
    }
}

/// Whether `choice` lets the URI decoder use `factory`.
fn allows(choice: DecoderChoice, factory: &gst::ElementFactory) -> bool {
    if !is_video_decoder(factory) {
        return true;
    }
    let nvidia = is_nvidia_decoder(&factory.name());
    match choice {
        DecoderChoice::Auto => true,
        DecoderChoice::Software => !nvidia,
        DecoderChoice::Nvdec => nvidia,
    }
}

/// Makes `decode` (a `uridecodebin`) skip the decoders `choice` excludes. Returns false when
/// the signal's result type is unknown (no decodebin registered), leaving ranks to decide.
pub fn restrict(decode: &gst::Element, choice: DecoderChoice) -> bool {
    if choice == DecoderChoice::Auto {
        return true;
    }
    // GstAutoplugSelectResult: TRY = 0, EXPOSE = 1, SKIP = 2. A Value cannot cross threads,
    // so the callback makes its own from the type, checked here first: what succeeds here
    // succeeds there (registered types stay registered), so the handler always returns one.
    let Some(result_type) = glib::Type::from_name("GstAutoplugSelectResult") else {
        return false;
    };
    let select = move |n: i32| glib::EnumClass::with_type(result_type).and_then(|c| c.to_value(n));
    if select(0).is_none() || select(2).is_none() {
        return false;
    }
    decode.connect("autoplug-select", false, move |args| {
        let allowed = args
            .get(3)
            .and_then(|v| v.get::<gst::ElementFactory>().ok())
            .is_none_or(|f| allows(choice, &f));
        select(if allowed { 0 } else { 2 })
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_from_config_words() {
        #[derive(serde::Deserialize)]
        struct T {
            decoder: DecoderChoice,
        }
        for (text, want) in [
            ("auto", DecoderChoice::Auto),
            ("software", DecoderChoice::Software),
            ("nvdec", DecoderChoice::Nvdec),
        ] {
            let t: T = toml::from_str(&format!("decoder = \"{text}\"")).unwrap();
            assert_eq!(t.decoder, want);
            assert_eq!(want.as_str(), text);
        }
        assert!(toml::from_str::<T>("decoder = \"cuda\"").is_err());
    }

    #[test]
    fn software_skips_nvdec_and_nvdec_skips_libav() {
        gst::init().unwrap();
        let avdec = gst::ElementFactory::find("avdec_h264").expect("gstreamer1.0-libav");
        let parser = gst::ElementFactory::find("h264parse").expect("h264parse");
        assert!(allows(DecoderChoice::Software, &avdec));
        assert!(allows(DecoderChoice::Auto, &avdec));
        assert!(!allows(DecoderChoice::Nvdec, &avdec));
        // Parsers and demuxers are never skipped.
        assert!(allows(DecoderChoice::Nvdec, &parser));
        assert!(is_nvidia_decoder("nvh264dec") && is_nvidia_decoder("nvmpeg2videodec"));
        assert!(!is_nvidia_decoder("avdec_h264"));
    }
}
