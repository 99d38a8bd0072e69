//! `#[repr(C)]` twins of the structs the WGSL shaders read and write. Field order, types and
//! padding must match the WGSL declarations named on each struct; `tests/e2e/shaders_validate.rs`
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
    /// Rows between a row and the next of the same field: 2 for interlaced frames, else 1
    /// ([`VideoFrame::field_rows`](crate::frame::VideoFrame::field_rows)).
    pub field_rows: u32,
    pub _pad1: u32,
}

/// Partial sums of one row. Twin of `RowPartial` in `shaders/common/types.wgsl`, written by
/// `frame_stats.wgsl` and read by `frame_reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct RowPartial {
    pub luma_sum: u32,
    pub dark_pixels: u32,
    pub diff_sum: u32,
    pub changed_pixels: u32,
    pub luma_sq_sum: u32,
    pub grad_h_sum: u32,
    pub grad_v_sum: u32,
    pub edges_h: u32,
    pub edges_v: u32,
    pub block_h_hits: u32,
    pub block_h_control: u32,
    pub block_v_hits: u32,
    pub block_v_control: u32,
    /// First pixel brighter than the dark threshold; the width when there is none.
    pub first_bright: u32,
    /// One past the last pixel brighter than the dark threshold; 0 when there is none.
    pub end_bright: u32,
    pub _pad0: u32,
}

/// Totals of one frame, 64-bit sums split into lo/hi words because WGSL has no portable u64.
/// Twin of `FrameTotals` in `shaders/common/types.wgsl`, written by `frame_reduce.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FrameTotals {
    pub luma_sum_lo: u32,
    pub luma_sum_hi: u32,
    pub luma_sq_sum_lo: u32,
    pub luma_sq_sum_hi: u32,
    pub diff_sum_lo: u32,
    pub diff_sum_hi: u32,
    pub grad_h_sum_lo: u32,
    pub grad_h_sum_hi: u32,
    pub grad_v_sum_lo: u32,
    pub grad_v_sum_hi: u32,
    pub dark_pixels: u32,
    pub changed_pixels: u32,
    pub edges_h: u32,
    pub edges_v: u32,
    pub block_h_hits: u32,
    pub block_h_control: u32,
    pub block_v_hits: u32,
    pub block_v_control: u32,
    /// Rows above the first row with a bright pixel (all rows when none has one).
    pub bar_top: u32,
    pub bar_bottom: u32,
    pub bar_left: u32,
    pub bar_right: u32,
    /// Rows (all but the last) with no strong step to the row below.
    pub quiet_rows: u32,
    pub _pad0: u32,
}

fn join64(lo: u32, hi: u32) -> u64 {
    u64::from(hi) << 32 | u64::from(lo)
}

impl FrameTotals {
    pub fn luma_sum(&self) -> u64 {
        join64(self.luma_sum_lo, self.luma_sum_hi)
    }

    pub fn diff_sum(&self) -> u64 {
        join64(self.diff_sum_lo, self.diff_sum_hi)
    }

    /// The contract's [`FrameStats`](crate::stats::FrameStats) of a frame of this shape
    /// from these totals. Takes the shape rather than the frame: with batches in flight the
    /// totals are read back after the engine has moved on from the frame.
    pub fn into_stats(self, shape: FrameShape) -> crate::stats::FrameStats {
        let FrameShape {
            width,
            height,
            has_prev,
            field_rows,
        } = shape;
        crate::stats::FrameStats {
            width,
            height,
            pixels: u64::from(width) * u64::from(height),
            luma_sum: self.luma_sum(),
            luma_sq_sum: join64(self.luma_sq_sum_lo, self.luma_sq_sum_hi),
            dark_pixels: u64::from(self.dark_pixels),
            has_prev,
            diff_sum: self.diff_sum(),
            changed_pixels: u64::from(self.changed_pixels),
            grad_h_sum: join64(self.grad_h_sum_lo, self.grad_h_sum_hi),
            grad_v_sum: join64(self.grad_v_sum_lo, self.grad_v_sum_hi),
            edges_h: u64::from(self.edges_h),
            edges_v: u64::from(self.edges_v),
            block_hits: u64::from(self.block_h_hits) + u64::from(self.block_v_hits),
            block_control: u64::from(self.block_h_control) + u64::from(self.block_v_control),
            quiet_rows: u64::from(self.quiet_rows),
            bars: crate::stats::Bars {
                top: self.bar_top,
                bottom: self.bar_bottom,
                left: self.bar_left,
                right: self.bar_right,
            },
            field_rows,
        }
    }
}

/// What the totals of a frame need to know of it to become its statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameShape {
    pub width: u32,
    pub height: u32,
    /// The frame was compared with a reference of its size.
    pub has_prev: bool,
    pub field_rows: u32,
}

/// Each WGSL struct name with the size of its Rust twin, for the layout check in the tests.
pub const WGSL_TWINS: &[(&str, usize)] = &[
    ("FrameDesc", size_of::<FrameDesc>()),
    ("RowPartial", size_of::<RowPartial>()),
    ("FrameTotals", size_of::<FrameTotals>()),
];
