//! Decoded media handed from the ingest pipelines to the analysis engine.

use std::time::{Duration, Instant};

/// Rows of luma are padded to this many bytes so the GPU can read them as whole `u32` words
/// (WGSL has no 8-bit storage) and uploads stay multiples of 4 bytes.
pub const ROW_ALIGN: usize = 4;

/// One decoded video frame: its luma plane, tightly packed into rows of `stride` bytes.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    /// Bytes per row in `luma`: `width` rounded up to [`ROW_ALIGN`]; the padding bytes are zero.
    pub stride: usize,
    pub luma: Vec<u8>,
    /// Media time: the frame's PTS minus the PTS of the first frame of this pipeline run.
    pub pts: Duration,
    /// When the decoder handed the frame over; the start of the detect-latency measurement.
    pub decoded_at: Instant,
    /// The stream's decoder error count when the frame was decoded: the errors since the
    /// previous frame belong to this one (or to the references it was predicted from).
    pub decode_errors: u64,
}

impl VideoFrame {
    pub fn padded_stride(width: u32) -> usize {
        (width as usize).div_ceil(ROW_ALIGN) * ROW_ALIGN
    }

    /// Builds a frame from a plane that may have any stride (as GStreamer hands it over).
    pub fn from_plane(
        width: u32,
        height: u32,
        src: &[u8],
        src_stride: usize,
        pts: Duration,
        decoded_at: Instant,
    ) -> Option<Self> {
        let w = width as usize;
        let h = height as usize;
        if w == 0 || h == 0 || src_stride < w || src.len() < src_stride * (h - 1) + w {
            return None;
        }
        let stride = Self::padded_stride(width);
        let mut luma = vec![0u8; stride * h];
        for (dst_row, src_row) in luma.chunks_exact_mut(stride).zip(src.chunks(src_stride)) {
            dst_row[..w].copy_from_slice(&src_row[..w]);
        }
        Some(Self {
            width,
            height,
            stride,
            luma,
            pts,
            decoded_at,
            decode_errors: 0,
        })
    }

    pub fn pixel_count(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// The `y`th row without its padding.
    pub fn row(&self, y: usize) -> &[u8] {
        &self.luma[y * self.stride..y * self.stride + self.width as usize]
    }
}

/// Interleaved 32-bit float audio, as the audio appsink delivers it.
#[derive(Clone, Debug)]
pub struct AudioBuffer {
    pub channels: u32,
    pub rate: u32,
    pub samples: Vec<f32>,
    pub pts: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_plane_drops_source_padding_and_pads_to_words() {
        // 5 pixels wide, source stride 8: two rows.
        let src = [1, 2, 3, 4, 5, 99, 99, 99, 6, 7, 8, 9, 10];
        let f = VideoFrame::from_plane(5, 2, &src, 8, Duration::ZERO, Instant::now()).unwrap();
        assert_eq!(f.stride, 8);
        assert_eq!(f.row(0), &[1, 2, 3, 4, 5]);
        assert_eq!(f.row(1), &[6, 7, 8, 9, 10]);
        assert_eq!(&f.luma[5..8], &[0, 0, 0]);
    }

    #[test]
    fn from_plane_rejects_short_buffers() {
        assert!(VideoFrame::from_plane(4, 2, &[0; 7], 4, Duration::ZERO, Instant::now()).is_none());
        assert!(VideoFrame::from_plane(4, 2, &[0; 8], 3, Duration::ZERO, Instant::now()).is_none());
    }
}
