//! `#[repr(C)]` twins of the structs the WGSL shaders read and write. Field order, types and
//! padding must match the WGSL declarations named on each struct; `tests/shaders_validate.rs`
//! checks the sizes against naga's layout of every shader that declares them.

use bytemuck::{Pod, Zeroable};

/// Where one frame and its reference lie in the luma buffer of a submission, and how to judge
/// its pixels. Twin of `FrameDesc` in `shaders/frame_stats.wgsl` and `shaders/frame_reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FrameDesc {
    /// First word of the frame in the luma buffer.
    pub cur_word: u32,
    /// First word of the reference frame; meaningless when `has_ref` is 0.
    pub ref_word: u32,
    /// 1 when the frame has a reference of the same size, else 0.
    pub has_ref: u32,
    /// Row pitch of the frame in words (`stride / 4`).
    pub words_per_row: u32,
    /// Row pitch of the reference in words; it may differ from the frame's.
    pub ref_words_per_row: u32,
    pub width: u32,
    /// Rows; 0 for the padding descriptors that round the batch up to a workgroup.
    pub height: u32,
    /// Index of the frame's first row in the row-partials buffer.
    pub row_base: u32,
    pub dark_threshold: u32,
    pub noise_threshold: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

/// Partial sums of one row. Twin of `RowPartial` in `shaders/frame_stats.wgsl` and
/// `shaders/frame_reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RowPartial {
    pub luma_sum: u32,
    pub dark_pixels: u32,
    pub diff_sum: u32,
    pub changed_pixels: u32,
}

/// Totals of one frame, 64-bit sums split into lo/hi words because WGSL has no portable u64.
/// Twin of `FrameTotals` in `shaders/frame_reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FrameTotals {
    pub luma_sum_lo: u32,
    pub luma_sum_hi: u32,
    pub dark_pixels: u32,
    pub diff_sum_lo: u32,
    pub diff_sum_hi: u32,
    pub changed_pixels: u32,
    pub _pad0: u32,
    pub _pad1: u32,
}

impl FrameTotals {
    pub fn luma_sum(&self) -> u64 {
        u64::from(self.luma_sum_hi) << 32 | u64::from(self.luma_sum_lo)
    }

    pub fn diff_sum(&self) -> u64 {
        u64::from(self.diff_sum_hi) << 32 | u64::from(self.diff_sum_lo)
    }

    /// The contract's [`FrameStats`](crate::stats::FrameStats) of `frame` from these totals.
    pub fn into_stats(
        self,
        frame: &crate::frame::VideoFrame,
        has_prev: bool,
    ) -> crate::stats::FrameStats {
        crate::stats::FrameStats {
            pixels: frame.pixel_count(),
            luma_sum: self.luma_sum(),
            dark_pixels: u64::from(self.dark_pixels),
            has_prev,
            diff_sum: self.diff_sum(),
            changed_pixels: u64::from(self.changed_pixels),
        }
    }
}

/// Each WGSL struct name with the size of its Rust twin, for the layout check in the tests.
pub const WGSL_TWINS: &[(&str, usize)] = &[
    ("FrameDesc", size_of::<FrameDesc>()),
    ("RowPartial", size_of::<RowPartial>()),
    ("FrameTotals", size_of::<FrameTotals>()),
];
