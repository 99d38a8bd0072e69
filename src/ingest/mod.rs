//! Media converter: one GStreamer pipeline per stream, decoding to raw frames and audio that
//! are handed to the analysis engine in memory.

pub mod adaptive;
pub mod appsink;
pub mod captions;
pub mod decode_errors;
pub mod decoder;
pub mod demo;
pub mod format;
pub mod input;
#[cfg(feature = "libav-decoder")]
pub mod libav_decoder;
pub mod media_sink;
pub mod nonref;
pub mod pipeline;
pub mod programs;
pub mod source;
pub mod ssm;
pub mod supervisor;
pub mod tier;

pub use pipeline::{Pacing, RunningPipeline};

use std::sync::Once;

/// Initialises GStreamer once per process.
pub fn init() -> Result<(), crate::error::IngestError> {
    static INIT: Once = Once::new();
    let mut result = Ok(());
    INIT.call_once(|| {
        if let Err(e) = gstreamer::init() {
            result = Err(crate::error::IngestError::Pipeline {
                stream: "-".into(),
                reason: format!("GStreamer failed to initialise: {e}"),
            });
            return;
        }
        decode_errors::install();
        #[cfg(feature = "libav-decoder")]
        if let Err(e) = libav_decoder::register() {
            tracing::warn!(error = %e, "the copy-free libav decoder is unavailable; avdec decodes");
        }
        decoder::prefer_hardware();
    });
    result
}
