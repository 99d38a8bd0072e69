//! Audio analysis, on the CPU (it is cheap next to video).

pub mod silence;

use crate::config::DetectorsConfig;
use crate::detect::{Sample, Transition};
use crate::frame::AudioBuffer;

/// The audio detectors of one stream.
#[derive(Debug)]
pub struct AudioDetectors {
    silence: silence::SilenceDetector,
}

impl AudioDetectors {
    pub fn new(config: &DetectorsConfig) -> Self {
        Self {
            silence: silence::SilenceDetector::new(config.silence.clone()),
        }
    }

    pub fn observe(&mut self, at: Sample, buffer: &AudioBuffer, out: &mut Vec<Transition>) {
        self.silence.observe(at, buffer, out);
    }

    pub fn finish(&mut self, at: Sample, out: &mut Vec<Transition>) {
        out.extend(self.silence.tracker.finish(at));
    }
}
