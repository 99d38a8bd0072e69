//! Decoded media handed from the ingest pipelines to the analysis engine.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::AnalysisTier;

/// Rows of luma are padded to this many bytes so the GPU can read them as whole `u32` words
/// (WGSL has no 8-bit storage) and uploads stay multiples of 4 bytes.
pub const ROW_ALIGN: usize = 4;

/// Bytes that a [`Luma`] plane may share: a decoder's buffer kept mapped, or a `Vec`.
pub type SharedBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// The bytes of a luma plane: owned by the frame, or shared with whoever produced them (the
/// decoder's own buffer, held mapped until the frame is dropped), so a decoded frame reaches
/// the statistics without a copy or an allocation. Cloning a shared plane shares it; writing
/// to one (tests do) first copies it, as `Cow` does.
pub enum Luma {
    Owned(Vec<u8>),
    Shared {
        bytes: SharedBytes,
        /// Where the plane lies in `bytes`.
        start: usize,
        len: usize,
    },
}

impl Luma {
    /// `len` bytes of `bytes` from `start`; None when they do not lie within it.
    pub fn shared(bytes: SharedBytes, start: usize, len: usize) -> Option<Self> {
        let end = start.checked_add(len)?;
        ((*bytes).as_ref().len() >= end).then_some(Self::Shared { bytes, start, len })
    }

    /// The bytes, owned from now on: a shared plane is copied first.
    pub fn to_mut(&mut self) -> &mut Vec<u8> {
        if let Self::Shared { .. } = self {
            *self = Self::Owned(self.deref().to_vec());
        }
        match self {
            Self::Owned(bytes) => bytes,
            Self::Shared { .. } => unreachable!("converted to owned just above"),
        }
    }
}

impl Deref for Luma {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Owned(bytes) => bytes,
            Self::Shared { bytes, start, len } => {
                // `shared` checked the range; an empty plane rather than a panic otherwise.
                (**bytes).as_ref().get(*start..start + len).unwrap_or(&[])
            }
        }
    }
}

impl DerefMut for Luma {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.to_mut()
    }
}

impl From<Vec<u8>> for Luma {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Owned(bytes)
    }
}

impl Clone for Luma {
    fn clone(&self) -> Self {
        match self {
            Self::Owned(bytes) => Self::Owned(bytes.clone()),
            Self::Shared { bytes, start, len } => Self::Shared {
                bytes: bytes.clone(),
                start: *start,
                len: *len,
            },
        }
    }

    /// An owned plane copied over an owned plane reuses its allocation.
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            (Self::Owned(mine), Self::Owned(theirs)) => mine.clone_from(theirs),
            (me, source) => *me = source.clone(),
        }
    }
}

impl std::fmt::Debug for Luma {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Self::Owned(_) => "owned",
            Self::Shared { .. } => "shared",
        };
        write!(f, "Luma({kind}, {} bytes)", self.len())
    }
}

/// One decoded video frame: its luma plane, in rows of `stride` bytes.
#[derive(Clone, Debug)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    /// Bytes per row in `luma`: at least `width`, a multiple of [`ROW_ALIGN`]. The bytes past
    /// the width are padding with any value (copied frames have zeros there); nothing reads
    /// them.
    pub stride: usize,
    pub luma: Luma,
    /// Media time: the frame's PTS minus the PTS of the first frame of this pipeline run.
    pub pts: Duration,
    /// When the decoder handed the frame over; the start of the detect-latency measurement.
    pub decoded_at: Instant,
    /// The stream's decoder error count when the frame was decoded: the errors since the
    /// previous frame belong to this one (or to the references it was predicted from).
    pub decode_errors: u64,
    /// The frame entered the decoder as a keyframe (a picture decoded without references),
    /// so damage from earlier frames ends here.
    pub keyframe: bool,
    /// The frame holds two fields captured a field period apart (interlaced video): the
    /// statistics compare each row with the rows of its own field (see [`Self::field_rows`]).
    pub interlaced: bool,
    /// The analysis tier the frame was decoded in (which frames around it were skipped).
    pub tier: AnalysisTier,
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
            luma: luma.into(),
            pts,
            decoded_at,
            decode_errors: 0,
            keyframe: false,
            interlaced: false,
            tier: AnalysisTier::Full,
        })
    }

    /// Wraps a decoded plane without copying it, when its layout is one the statistics read
    /// directly (rows of a multiple of [`ROW_ALIGN`] bytes); None otherwise, and the caller
    /// copies with [`VideoFrame::from_plane`].
    pub fn from_shared_plane(
        width: u32,
        height: u32,
        plane: SharedBytes,
        start: usize,
        stride: usize,
        pts: Duration,
        decoded_at: Instant,
    ) -> Option<Self> {
        if width == 0 || height == 0 || stride < width as usize || !stride.is_multiple_of(ROW_ALIGN)
        {
            return None;
        }
        let luma = Luma::shared(plane, start, stride.checked_mul(height as usize)?)?;
        Some(Self {
            width,
            height,
            stride,
            luma,
            pts,
            decoded_at,
            decode_errors: 0,
            keyframe: false,
            interlaced: false,
            tier: AnalysisTier::Full,
        })
    }

    /// Rows between a row and the next row of the same picture: 2 for an interlaced frame,
    /// whose odd and even rows are different fields (anything that moves between the fields
    /// combs, so neighbouring rows differ even in a smooth picture), 1 otherwise.
    pub fn field_rows(&self) -> u32 {
        if self.interlaced { 2 } else { 1 }
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
    /// The caps' `channel-mask`: which position each channel has (None: mono or stereo, or
    /// unpositioned).
    pub channel_mask: Option<u64>,
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
    fn shared_planes_are_used_in_place_when_their_rows_are_word_aligned() {
        // Two rows of 8 bytes (6 pixels wide) after a 3-byte header.
        let bytes: Vec<u8> = (0..3 + 16).collect();
        let plane: SharedBytes = Arc::new(bytes);
        let at = |stride| {
            VideoFrame::from_shared_plane(
                6,
                2,
                plane.clone(),
                3,
                stride,
                Duration::ZERO,
                Instant::now(),
            )
        };
        let f = at(8).unwrap();
        assert!(matches!(f.luma, Luma::Shared { .. }));
        assert_eq!(f.row(1), &[11, 12, 13, 14, 15, 16]);
        // A clone shares the bytes; writing to it copies them first.
        let mut g = f.clone();
        g.luma[3] = 99;
        assert_eq!((f.luma[3], g.luma[3]), (6, 99));
        assert!(matches!(g.luma, Luma::Owned(_)));
        // Rows that are not whole words, or a plane that runs past the bytes, are refused.
        assert!(at(7).is_none());
        assert!(
            VideoFrame::from_shared_plane(6, 3, plane, 3, 8, Duration::ZERO, Instant::now())
                .is_none()
        );
    }

    #[test]
    fn from_plane_rejects_short_buffers() {
        assert!(VideoFrame::from_plane(4, 2, &[0; 7], 4, Duration::ZERO, Instant::now()).is_none());
        assert!(VideoFrame::from_plane(4, 2, &[0; 8], 3, Duration::ZERO, Instant::now()).is_none());
    }
}
