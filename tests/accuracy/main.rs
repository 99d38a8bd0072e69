//! Detector accuracy on clips with injected defects (ground truth in start/end times): video
//! and audio detectors through `streamwatch scan`, scored against the ground truth, with
//! ffmpeg's detectors as a reference where it has them. `make accuracy` prints the tables.

#[path = "../support/mod.rs"]
mod support;

mod audio;
mod corpus;
mod interlaced;
mod scan;
mod scoring;
mod tiers;
mod video;
