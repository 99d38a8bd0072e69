//! An `ebur128` meter read on its own 100 ms grid.
//!
//! The crate sums the window's samples again at every momentary (0.4 s) or short-term (3 s)
//! reading; read ten times a second, those sums were more than half of the meter's cost and
//! the largest single cost of a stream in the keyframes tier. Fed in step with the crate's
//! grid of 100 ms sub-blocks, each sub-block's energy is summed once (a 100 ms window read at
//! the sub-block's end), and the momentary and short-term energies are the means of the last
//! 4 and 30 sub-blocks: the same sums in another order.

use std::collections::VecDeque;

use ebur128::{EbuR128, Mode};

use super::loudness::{MOMENTARY_SUB_BLOCKS, SHORT_TERM_SUB_BLOCKS};

/// Integrated loudness and range are kept in the crate's histograms (bounded memory on a
/// channel that runs for months).
const METER_MODE: Mode = Mode::I
    .union(Mode::LRA)
    .union(Mode::TRUE_PEAK)
    .union(Mode::HISTOGRAM);

/// Loudness in LUFS of a mean-square energy, as BS.1770 defines it.
pub(super) fn energy_to_lufs(energy: f64) -> Option<f64> {
    (energy > 0.0).then(|| -0.691 + 10.0 * energy.log10())
}

/// Mean-square energy of a loudness in LUFS; none for -inf (silence).
pub(super) fn lufs_to_energy(lufs: f64) -> f64 {
    if lufs.is_finite() {
        10f64.powf((lufs + 0.691) / 10.0)
    } else {
        0.0
    }
}

/// The loudness at the end of a 100 ms sub-block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SubBlockReading {
    /// Frames of the `add` call's samples up to the sub-block's end.
    pub frames_in: usize,
    pub momentary: Option<f64>,
    pub short_term: Option<f64>,
}

pub(super) struct GridMeter {
    meter: EbuR128,
    channels: usize,
    /// Frames in a sub-block: the crate's own rounding, so that the grids agree.
    sub_block_frames: usize,
    frames_to_boundary: usize,
    /// Energies of the latest sub-blocks, newest last; before there are enough, the missing
    /// ones count as silence, as the crate's zeroed buffer does.
    energies: VecDeque<f64>,
    /// Per-channel true peak of the latest `add` call, linear.
    true_peaks: Vec<f64>,
}

impl GridMeter {
    pub fn new(channels: u32, rate: u32) -> Result<Self, ebur128::Error> {
        let meter = EbuR128::new(channels, rate, METER_MODE)?;
        let sub_block_frames = ((rate as usize + 5) / 10).max(1);
        Ok(Self {
            meter,
            channels: channels as usize,
            sub_block_frames,
            frames_to_boundary: sub_block_frames,
            energies: VecDeque::with_capacity(SHORT_TERM_SUB_BLOCKS + 1),
            true_peaks: vec![0.0; channels as usize],
        })
    }

    /// Feeds interleaved samples (whole frames); `readings` gets one entry per sub-block
    /// completed by them.
    pub fn add(
        &mut self,
        samples: &[f32],
        readings: &mut Vec<SubBlockReading>,
    ) -> Result<(), ebur128::Error> {
        self.true_peaks.fill(0.0);
        let frames = samples.len() / self.channels;
        let mut fed = 0;
        while fed < frames {
            let part = (frames - fed).min(self.frames_to_boundary);
            let range = fed * self.channels..(fed + part) * self.channels;
            self.meter.add_frames_f32(&samples[range])?;
            self.keep_true_peaks();
            fed += part;
            self.frames_to_boundary -= part;
            if self.frames_to_boundary == 0 {
                self.frames_to_boundary = self.sub_block_frames;
                readings.push(self.close_sub_block(fed)?);
            }
        }
        Ok(())
    }

    fn keep_true_peaks(&mut self) {
        for (ch, kept) in self.true_peaks.iter_mut().enumerate() {
            if let Ok(peak) = self.meter.prev_true_peak(ch as u32) {
                *kept = kept.max(peak);
            }
        }
    }

    fn close_sub_block(&mut self, frames_in: usize) -> Result<SubBlockReading, ebur128::Error> {
        let energy = lufs_to_energy(self.meter.loudness_window(100)?);
        self.energies.push_back(energy);
        if self.energies.len() > SHORT_TERM_SUB_BLOCKS {
            self.energies.pop_front();
        }
        let mean_of_last = |n: usize| self.energies.iter().rev().take(n).sum::<f64>() / n as f64;
        Ok(SubBlockReading {
            frames_in,
            momentary: energy_to_lufs(mean_of_last(MOMENTARY_SUB_BLOCKS)),
            short_term: energy_to_lufs(mean_of_last(SHORT_TERM_SUB_BLOCKS)),
        })
    }

    /// Per-channel true peak of the latest `add` call, linear.
    pub fn true_peaks(&self) -> &[f64] {
        &self.true_peaks
    }

    pub fn integrated(&self) -> Result<f64, ebur128::Error> {
        self.meter.loudness_global()
    }

    pub fn range(&self) -> Result<f64, ebur128::Error> {
        self.meter.loudness_range()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 5.1 programme whose level and spectrum change every few hundred milliseconds.
    fn programme(rate: u32, seconds: f64) -> Vec<f32> {
        let frames = (f64::from(rate) * seconds) as usize;
        (0..frames)
            .flat_map(|i| {
                let t = i as f64 / f64::from(rate);
                let level = 0.05 + 0.4 * ((t * 1.7).sin().abs());
                (0..6).map(move |ch| {
                    let f = 220.0 * (ch + 1) as f64 + 90.0 * (t * 0.3).sin();
                    (level * (2.0 * std::f64::consts::PI * f * t).sin()) as f32
                })
            })
            .collect()
    }

    /// Every sub-block reading equals what the crate's own momentary and short-term readings
    /// give at the same instant, whatever the buffer sizes.
    fn agrees_with_the_crate(rate: u32, buffer_frames: usize) {
        let samples = programme(rate, 5.0);
        let mut grid = GridMeter::new(6, rate).unwrap();
        let mut reference = EbuR128::new(6, rate, METER_MODE).unwrap();
        let mut readings = Vec::new();
        let mut checked = 0;
        for buffer in samples.chunks(buffer_frames * 6) {
            readings.clear();
            grid.add(buffer, &mut readings).unwrap();
            let mut fed = 0;
            for reading in &readings {
                let part = &buffer[fed * 6..reading.frames_in * 6];
                reference.add_frames_f32(part).unwrap();
                fed = reading.frames_in;
                let momentary = reference.loudness_momentary().unwrap();
                let short_term = reference.loudness_shortterm().unwrap();
                let close = |ours: Option<f64>, theirs: f64| {
                    ours.is_some_and(|o| (o - theirs).abs() < 1e-9)
                };
                assert!(
                    close(reading.momentary, momentary),
                    "{reading:?} {momentary}"
                );
                assert!(
                    close(reading.short_term, short_term),
                    "{reading:?} {short_term}"
                );
                checked += 1;
            }
            reference.add_frames_f32(&buffer[fed * 6..]).unwrap();
        }
        assert_eq!(checked, 50, "one reading per 100 ms");
        let integrated = (grid.integrated().unwrap() - reference.loudness_global().unwrap()).abs();
        assert!(integrated < 1e-9, "{integrated}");
    }

    #[test]
    fn sub_block_readings_equal_the_crates_windows_at_48_khz() {
        agrees_with_the_crate(48_000, 1024);
    }

    #[test]
    fn sub_block_readings_equal_the_crates_windows_at_44_1_khz_with_odd_buffers() {
        agrees_with_the_crate(44_100, 1023);
    }

    #[test]
    fn true_peak_covers_every_part_of_a_buffer() {
        let mut grid = GridMeter::new(6, 48_000).unwrap();
        let quiet = vec![0.01f32; 6 * 1024];
        let mut readings = Vec::new();
        for _ in 0..4 {
            grid.add(&quiet, &mut readings).unwrap();
        }
        assert!(grid.true_peaks()[2] < 0.1, "{:?}", grid.true_peaks());
        // The fifth buffer crosses the first boundary (4,800 frames) at frame 704; the peak
        // on channel 2 lies after it.
        let mut loud = quiet.clone();
        loud[6 * 804 + 2] = 1.0;
        grid.add(&loud, &mut readings).unwrap();
        assert_eq!(readings.len(), 1, "{readings:?}");
        assert_eq!(readings[0].frames_in, 704);
        assert!(grid.true_peaks()[2] >= 1.0, "{:?}", grid.true_peaks());
        assert!(grid.true_peaks()[0] < 0.1, "{:?}", grid.true_peaks());
    }
}
