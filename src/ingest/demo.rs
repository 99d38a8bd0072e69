//! The built-in demo source (`demo://`): a synthetic live channel generated in process, with
//! scheduled black, freeze and silence periods so that `make run` shows every detector firing.
//! Video goes through H.264 encode and decode (see `pipelines/demo-video.gst`) so the detectors
//! see real coding noise, not ideal pixels.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::stream::Stream;

const VIDEO_TEMPLATE: &str = include_str!("../../pipelines/demo-video.gst");
const AUDIO_TEMPLATE: &str = include_str!("../../pipelines/demo-audio.gst");

pub const WIDTH: usize = 640;
pub const HEIGHT: usize = 360;
pub const FPS: u64 = 25;
const RATE: u64 = 48_000;
const AUDIO_CHUNK: u64 = 1024;

/// One cycle of the demo programme, in seconds.
pub const CYCLE: f64 = 60.0;
/// Scheduled defects within each cycle: [start, end) in seconds.
pub const BLACK: (f64, f64) = (10.0, 15.0);
pub const FREEZE: (f64, f64) = (25.0, 31.0);
pub const SILENCE: (f64, f64) = (40.0, 45.0);

fn within(t: f64, (a, b): (f64, f64)) -> bool {
    let t = t % CYCLE;
    t >= a && t < b
}

pub struct DemoSource {
    video: gst_app::AppSrc,
    audio: gst_app::AppSrc,
    stop: Arc<AtomicBool>,
}

/// Returns the video and audio source bins (each with a `src` ghost pad) and their generator.
pub fn build(stream: &Stream) -> Result<(gst::Element, gst::Element, DemoSource), String> {
    let video_bin = gst::parse::bin_from_description(VIDEO_TEMPLATE.trim(), true)
        .map_err(|e| format!("demo video template: {e}"))?;
    let audio_bin = gst::parse::bin_from_description(AUDIO_TEMPLATE.trim(), true)
        .map_err(|e| format!("demo audio template: {e}"))?;
    let appsrc = |bin: &gst::Bin| {
        bin.by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| {
                format!(
                    "stream `{}`: demo template lacks `appsrc name=src`",
                    stream.id
                )
            })
    };
    let source = DemoSource {
        video: appsrc(&video_bin)?,
        audio: appsrc(&audio_bin)?,
        stop: Arc::new(AtomicBool::new(false)),
    };
    Ok((video_bin.upcast(), audio_bin.upcast(), source))
}

impl DemoSource {
    /// Starts the generator threads; `appsrc block=true` paces them to the live pipeline.
    pub fn start(&self) {
        let (video, stop) = (self.video.clone(), self.stop.clone());
        let spawned = std::thread::Builder::new()
            .name("demo-video".into())
            .spawn(move || generate_video(&video, &stop));
        let (audio, stop) = (self.audio.clone(), self.stop.clone());
        let spawned = spawned.and_then(|_| {
            std::thread::Builder::new()
                .name("demo-audio".into())
                .spawn(move || generate_audio(&audio, &stop))
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start demo generator threads");
        }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn generate_video(src: &gst_app::AppSrc, stop: &AtomicBool) {
    let (y_len, c_len) = (WIDTH * HEIGHT, WIDTH * HEIGHT / 4);
    let mut picture = vec![0u8; y_len + 2 * c_len];
    let mut shown_t = 0.0;
    for n in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let t = n as f64 / FPS as f64;
        if within(t, BLACK) {
            picture[..y_len].fill(16);
            picture[y_len..].fill(128);
        } else {
            // During a freeze the picture of the freeze's first instant is repeated.
            if !within(t, FREEZE) {
                shown_t = t;
            }
            draw(&mut picture, shown_t);
        }
        let mut buffer = gst::Buffer::from_slice(picture.clone());
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(n * 1_000_000_000 / FPS));
            b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / FPS));
        }
        if src.push_buffer(buffer).is_err() {
            break;
        }
    }
}

/// A moving diagonal pattern with a bouncing bright box: every frame differs from the last.
fn draw(picture: &mut [u8], t: f64) {
    let shift = (t * 60.0) as usize;
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            picture[y * WIDTH + x] = 40 + (((x + y + shift) / 4) % 64) as u8 * 2;
        }
    }
    let bx = ((t * 150.0) as usize) % (WIDTH - 80);
    let by = ((t * 90.0) as usize) % (HEIGHT - 80);
    for y in by..by + 80 {
        picture[y * WIDTH + bx..y * WIDTH + bx + 80].fill(230);
    }
    let chroma = &mut picture[WIDTH * HEIGHT..];
    for (i, c) in chroma.iter_mut().enumerate() {
        *c = 128u8.wrapping_add(((i / 64 + shift) % 32) as u8);
    }
}

fn generate_audio(src: &gst_app::AppSrc, stop: &AtomicBool) {
    let mut samples = Vec::with_capacity((AUDIO_CHUNK * 2) as usize);
    for chunk in 0u64.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let first = chunk * AUDIO_CHUNK;
        let silent = within(first as f64 / RATE as f64, SILENCE);
        samples.clear();
        for i in first..first + AUDIO_CHUNK {
            let phase = 2.0 * std::f64::consts::PI * 1000.0 * i as f64 / RATE as f64;
            let s = if silent {
                0.0
            } else {
                (0.1 * phase.sin()) as f32
            };
            // Channels differ: identical ones are a `channel` (fake stereo) defect.
            samples.extend([s, 0.8 * s]);
        }
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(first * 1_000_000_000 / RATE));
            b.set_duration(gst::ClockTime::from_nseconds(
                AUDIO_CHUNK * 1_000_000_000 / RATE,
            ));
        }
        if src.push_buffer(buffer).is_err() {
            break;
        }
    }
}
