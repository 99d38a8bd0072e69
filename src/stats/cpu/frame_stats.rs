//! CPU port of `shaders/frame_stats.wgsl` (per-row partials) and `shaders/frame_reduce.wgsl`
//! (per-frame totals), written loop for loop like the shaders so the two read side by side.
//! The GPU-vs-CPU tests compare them exactly.

use crate::frame::VideoFrame;
#[cfg(test)]
use crate::stats::Bars;
use crate::stats::gpu::types::FrameShape;
use crate::stats::gpu::types::{FrameTotals, RowPartial};
use crate::stats::{FrameStats, StatParams, VerticalNeighbours};

/// WGSL `unpack4xU8` of one word given as its 4 little-endian bytes: pixel x of a row is
/// byte x % 4 of word x / 4.
fn unpack4x_u8(word: &[u8; 4]) -> [u32; 4] {
    word.map(u32::from)
}

/// The first `words` words of row `row`. Callers have checked the frame (`check_frame`), so
/// the range exists; no words instead of a panic if it does not.
fn row_words(frame: &VideoFrame, row: usize, words: usize) -> &[[u8; 4]] {
    let start = row * frame.stride;
    frame
        .luma
        .get(start..start + words * 4)
        .map_or(&[], |bytes| bytes.as_chunks::<4>().0)
}

/// Twin of `EDGE_THRESHOLD` in `shaders/common/pixels.wgsl`.
pub const EDGE_THRESHOLD: u32 = 12;
/// Twin of `BLOCK_MIN_STEP` in `shaders/common/pixels.wgsl`.
pub const BLOCK_MIN_STEP: u32 = 2;

type Lanes = [u32; 4];

fn add4(acc: &mut Lanes, x: Lanes) {
    for k in 0..4 {
        acc[k] += x[k];
    }
}

fn count4(acc: &mut Lanes, hit: [bool; 4]) {
    for k in 0..4 {
        acc[k] += u32::from(hit[k]);
    }
}

fn absdiff4(a: Lanes, b: Lanes) -> Lanes {
    std::array::from_fn(|k| a[k].abs_diff(b[k]))
}

/// WGSL `select(zero, v, valid)`.
fn masked(v: Lanes, valid: [bool; 4]) -> Lanes {
    std::array::from_fn(|k| if valid[k] { v[k] } else { 0 })
}

/// Twin of `block_edge2`/`block_edge4` in `shaders/common/pixels.wgsl`, one lane.
fn block_edge(step: u32, before: u32, after: u32) -> bool {
    step >= BLOCK_MIN_STEP && step > 2 * before.max(after)
}

/// Every word of row `row` (as the shader's row offsets: resolved once per row).
fn whole_row(frame: &VideoFrame, row: usize) -> &[[u8; 4]] {
    row_words(frame, row, frame.stride / 4)
}

/// Word `i` of a row, unpacked; zeros past the end (callers stay within the frame).
fn word(row: &[[u8; 4]], i: usize) -> Lanes {
    row.get(i).map_or([0; 4], unpack4x_u8)
}

/// The first lane and one past the last lane set in `bright`, if any is.
fn bright_span(bright: [bool; 4]) -> Option<(u32, u32)> {
    let first = bright.iter().position(|&b| b)?;
    let last = bright.iter().rposition(|&b| b).unwrap_or(first);
    Some((first as u32, last as u32 + 1))
}

/// The even-word step of `frame_stats.wgsl`: word `c` (from pixel `x0`, after `prev`) starts a
/// block column. Whether its left boundary (x0 - 1 | x0) and the control pair inside it
/// (x0 + 1 | x0 + 2) look like block edges, where both pixels' outer neighbours exist.
fn block_column_hits(prev: Lanes, c: Lanes, x0: u32, width: u32) -> (bool, bool) {
    let boundary = block_edge(
        c[0].abs_diff(prev[3]),
        prev[3].abs_diff(prev[2]),
        c[1].abs_diff(c[0]),
    );
    let control = block_edge(
        c[2].abs_diff(c[1]),
        c[1].abs_diff(c[0]),
        c[3].abs_diff(c[2]),
    );
    (
        boundary && x0 > 0 && x0 + 1 < width,
        control && x0 + 3 < width,
    )
}

/// Per-lane sums and counts of one row, in the shader's `*_acc` vectors.
#[derive(Default)]
struct LaneSums {
    luma: Lanes,
    sq: Lanes,
    dark: Lanes,
    diff: Lanes,
    changed: Lanes,
    grad_h: Lanes,
    grad_v: Lanes,
    edges_h: Lanes,
    edges_v: Lanes,
    block_v: Lanes,
}

impl LaneSums {
    /// The row's partial: the lanes added up, with the counts kept outside the lanes (block
    /// columns as (hits, controls), the bright span as (first, end)). `on_grid`: the row's
    /// block-row count is of grid pairs, else of controls.
    fn into_partial(self, block_h: (u32, u32), on_grid: bool, bright: (u32, u32)) -> RowPartial {
        let dot = |v: Lanes| v.iter().sum::<u32>();
        let block_v = dot(self.block_v);
        RowPartial {
            luma_sum: dot(self.luma),
            dark_pixels: dot(self.dark),
            diff_sum: dot(self.diff),
            changed_pixels: dot(self.changed),
            luma_sq_sum: dot(self.sq),
            grad_h_sum: dot(self.grad_h),
            grad_v_sum: dot(self.grad_v),
            edges_h: dot(self.edges_h),
            edges_v: dot(self.edges_v),
            block_h_hits: block_h.0,
            block_h_control: block_h.1,
            block_v_hits: if on_grid { block_v } else { 0 },
            block_v_control: if on_grid { 0 } else { block_v },
            first_bright: bright.0,
            end_bright: bright.1,
            _pad0: 0,
        }
    }
}

/// Lanes where the step between the middle two of four rows of a field (above, y, below,
/// below2) looks like a block edge against the steps on either side of it.
fn block_row_hits([above, c, b, below2]: [Lanes; 4], valid: [bool; 4]) -> [bool; 4] {
    let (step, before, after) = (absdiff4(b, c), absdiff4(c, above), absdiff4(below2, b));
    std::array::from_fn(|k| block_edge(step[k], before[k], after[k]) && valid[k])
}

/// Twin of `main` in `frame_stats.wgsl`: the partial sums of one row of `cur`, differences
/// against `reference` when given (the caller has checked it has the same size).
pub fn row_partial(
    cur: &VideoFrame,
    reference: Option<&VideoFrame>,
    row: usize,
    params: StatParams,
) -> RowPartial {
    let width = cur.width;
    let height = cur.height as usize;
    let words = width.div_ceil(4) as usize;
    let vertical = VerticalNeighbours::of(row, height, cur.field_rows());
    let dark_t = u32::from(params.dark_threshold);
    let noise_t = u32::from(params.noise_threshold);
    let cur_row = whole_row(cur, row);
    let below_row = vertical.below.map_or(&[][..], |r| whole_row(cur, r));
    let (above_row, below2_row) = vertical.block.map_or((&[][..], &[][..]), |(a, b)| {
        (whole_row(cur, a), whole_row(cur, b))
    });
    let ref_row = reference.map(|r| whole_row(r, row));

    let mut acc = LaneSums::default();
    let mut block_h_hits = 0u32;
    let mut block_h_control = 0u32;
    let mut first_bright = width;
    let mut end_bright = 0u32;
    let mut prev = [0u32; 4];

    for i in 0..words {
        let x0 = 4 * i as u32;
        let xs: Lanes = std::array::from_fn(|k| x0 + k as u32);
        let valid = xs.map(|x| x < width);
        let c = masked(word(cur_row, i), valid);
        add4(&mut acc.luma, c);
        add4(&mut acc.sq, c.map(|v| v * v));
        count4(
            &mut acc.dark,
            std::array::from_fn(|k| c[k] <= dark_t && valid[k]),
        );
        let bright: [bool; 4] = std::array::from_fn(|k| c[k] > dark_t && valid[k]);
        if let Some((first, end)) = bright_span(bright) {
            first_bright = first_bright.min(x0 + first);
            end_bright = x0 + end;
        }

        let left = [prev[3], c[0], c[1], c[2]];
        let dh = masked(
            absdiff4(c, left),
            std::array::from_fn(|k| valid[k] && xs[k] >= 1),
        );
        add4(&mut acc.grad_h, dh);
        count4(&mut acc.edges_h, dh.map(|d| d > EDGE_THRESHOLD));

        if i % 2 == 0 {
            let (boundary, control) = block_column_hits(prev, c, x0, width);
            block_h_hits += u32::from(boundary);
            block_h_control += u32::from(control);
        }

        if vertical.below.is_some() {
            let b = masked(word(below_row, i), valid);
            let dv = absdiff4(b, c);
            add4(&mut acc.grad_v, dv);
            count4(&mut acc.edges_v, dv.map(|d| d > EDGE_THRESHOLD));
            if vertical.block.is_some() {
                let above = masked(word(above_row, i), valid);
                let below2 = masked(word(below2_row, i), valid);
                count4(
                    &mut acc.block_v,
                    block_row_hits([above, c, b, below2], valid),
                );
            }
        }

        if let Some(ref_row) = ref_row {
            let p = masked(word(ref_row, i), valid);
            let diff = absdiff4(c, p);
            add4(&mut acc.diff, diff);
            count4(&mut acc.changed, diff.map(|d| d > noise_t));
        }
        prev = c;
    }

    acc.into_partial(
        (block_h_hits, block_h_control),
        vertical.on_grid,
        (first_bright, end_bright),
    )
}

/// Twin of `add64` in `frame_reduce.wgsl`: adds `x` to the 64-bit number (lo, hi).
fn add64(acc: [u32; 2], x: u32) -> [u32; 2] {
    let lo = acc[0].wrapping_add(x);
    [lo, acc[1] + u32::from(lo < x)]
}

/// Twin of `main` in `frame_reduce.wgsl`: the totals of one `width` x rows frame, measured
/// `field_rows` rows apart, from its row partials.
pub fn reduce_rows(partials: &[RowPartial], width: u32, field_rows: u32) -> FrameTotals {
    let height = partials.len() as u32;
    let mut luma_sum = [0u32; 2];
    let mut sq_sum = [0u32; 2];
    let mut diff_sum = [0u32; 2];
    let mut grad_h = [0u32; 2];
    let mut grad_v = [0u32; 2];
    let mut t = FrameTotals::default();
    let mut first_row = height;
    let mut end_row = 0u32;
    let mut first_col = width;
    let mut end_col = 0u32;
    for (r, p) in (0u32..).zip(partials) {
        luma_sum = add64(luma_sum, p.luma_sum);
        sq_sum = add64(sq_sum, p.luma_sq_sum);
        diff_sum = add64(diff_sum, p.diff_sum);
        grad_h = add64(grad_h, p.grad_h_sum);
        grad_v = add64(grad_v, p.grad_v_sum);
        t.dark_pixels += p.dark_pixels;
        t.changed_pixels += p.changed_pixels;
        t.edges_h += p.edges_h;
        t.edges_v += p.edges_v;
        t.block_h_hits += p.block_h_hits;
        t.block_h_control += p.block_h_control;
        t.block_v_hits += p.block_v_hits;
        t.block_v_control += p.block_v_control;
        t.quiet_rows += u32::from(p.edges_v == 0 && r + field_rows < height);
        if p.end_bright > 0 {
            first_row = first_row.min(r);
            end_row = r + 1;
            first_col = first_col.min(p.first_bright);
            end_col = end_col.max(p.end_bright);
        }
    }
    [t.luma_sum_lo, t.luma_sum_hi] = luma_sum;
    [t.luma_sq_sum_lo, t.luma_sq_sum_hi] = sq_sum;
    [t.diff_sum_lo, t.diff_sum_hi] = diff_sum;
    [t.grad_h_sum_lo, t.grad_h_sum_hi] = grad_h;
    [t.grad_v_sum_lo, t.grad_v_sum_hi] = grad_v;
    t.bar_top = first_row;
    t.bar_bottom = if end_row > 0 { height - end_row } else { 0 };
    t.bar_left = first_col;
    t.bar_right = if end_row > 0 { width - end_col } else { 0 };
    t
}

/// A reference counts only when it has the frame's size (the contract's `has_prev`).
pub(crate) fn same_size(a: &VideoFrame, b: &VideoFrame) -> bool {
    a.width == b.width && a.height == b.height
}

/// One row's partial sums: [`row_partial`] (the port) or its fast equal.
pub(crate) type RowStats = fn(&VideoFrame, Option<&VideoFrame>, usize, StatParams) -> RowPartial;

/// Statistics of `cur` against `prev` with a caller-owned scratch buffer for the row partials,
/// so a backend allocates nothing per frame once the buffer has grown.
pub(crate) fn frame_stats_with(
    cur: &VideoFrame,
    prev: Option<&VideoFrame>,
    params: StatParams,
    partials: &mut Vec<RowPartial>,
    row_stats: RowStats,
) -> FrameStats {
    if super::check_frame(cur).is_err() {
        return FrameStats {
            pixels: cur.pixel_count(),
            ..FrameStats::default()
        };
    }
    let reference = prev.filter(|p| same_size(cur, p) && super::check_frame(p).is_ok());
    partials.clear();
    partials.extend((0..cur.height as usize).map(|row| row_stats(cur, reference, row, params)));
    let shape = FrameShape {
        width: cur.width,
        height: cur.height,
        has_prev: reference.is_some(),
        field_rows: cur.field_rows(),
    };
    reduce_rows(partials, cur.width, shape.field_rows).into_stats(shape)
}

/// Statistics of one frame against the previous frame of its stream (none for the first frame;
/// a `prev` of another size counts as none). A frame that breaks the [`VideoFrame`] invariants
/// (the backends reject those with an error) gives zero sums rather than a panic.
pub fn frame_stats_cpu(
    cur: &VideoFrame,
    prev: Option<&VideoFrame>,
    params: StatParams,
) -> FrameStats {
    frame_stats_with(cur, prev, params, &mut Vec::new(), row_partial)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const PARAMS: StatParams = StatParams {
        dark_threshold: 16,
        noise_threshold: 2,
    };

    fn frame(width: u32, height: u32, pixels: &[u8]) -> VideoFrame {
        VideoFrame::from_plane(
            width,
            height,
            pixels,
            width as usize,
            Duration::ZERO,
            Instant::now(),
        )
        .unwrap()
    }

    #[test]
    fn odd_width_first_frame_counts_only_real_pixels() {
        // 3x2: one word per row with one padding byte, which must not count as dark.
        let f = frame(3, 2, &[0, 16, 17, 255, 100, 1]);
        let s = frame_stats_cpu(&f, None, PARAMS);
        assert_eq!((s.width, s.height, s.pixels), (3, 2, 6));
        assert_eq!(s.luma_sum, 389);
        assert_eq!(s.luma_sq_sum, 16 * 16 + 17 * 17 + 255 * 255 + 100 * 100 + 1);
        assert_eq!(s.dark_pixels, 3);
        assert!(!s.has_prev);
        assert_eq!((s.diff_sum, s.changed_pixels), (0, 0));
        // Right steps: 16, 1 | 155, 99; steps down: 255, 84, 16.
        assert_eq!(s.grad_h_sum, 16 + 1 + 155 + 99);
        assert_eq!(s.grad_v_sum, 255 + 84 + 16);
        assert_eq!((s.edges_h, s.edges_v), (3, 3));
    }

    #[test]
    fn differences_against_previous_frame() {
        // 5x1: one full word and a tail of one pixel.
        let prev = frame(5, 1, &[10, 10, 10, 10, 10]);
        let cur = frame(5, 1, &[10, 12, 13, 0, 200]);
        let s = frame_stats_cpu(&cur, Some(&prev), PARAMS);
        assert!(s.has_prev);
        assert_eq!(s.pixels, 5);
        assert_eq!(s.luma_sum, 235);
        assert_eq!(s.dark_pixels, 4);
        assert_eq!(s.diff_sum, 2 + 3 + 10 + 190);
        // |diff| > 2: 3, 10 and 190.
        assert_eq!(s.changed_pixels, 3);
    }

    #[test]
    fn padding_bytes_are_ignored_even_when_not_zero() {
        let mut cur = frame(6, 2, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let mut prev = cur.clone();
        // Bytes 6 and 7 of each 8-byte row are padding.
        for row in 0..2 {
            cur.luma[row * 8 + 6] = 0;
            cur.luma[row * 8 + 7] = 0;
            prev.luma[row * 8 + 6] = 255;
            prev.luma[row * 8 + 7] = 99;
        }
        let s = frame_stats_cpu(&cur, Some(&prev), PARAMS);
        assert_eq!(s.luma_sum, 78);
        assert_eq!(s.dark_pixels, 12);
        assert_eq!(s.diff_sum, 0);
        assert_eq!(s.changed_pixels, 0);
    }

    #[test]
    fn reference_of_another_size_is_no_reference() {
        let prev = frame(4, 1, &[0; 4]);
        let cur = frame(5, 1, &[50; 5]);
        let s = frame_stats_cpu(&cur, Some(&prev), PARAMS);
        assert!(!s.has_prev);
        assert_eq!((s.diff_sum, s.changed_pixels), (0, 0));
    }

    #[test]
    fn sums_carry_past_u32() {
        let partials = vec![
            RowPartial {
                luma_sum: u32::MAX,
                dark_pixels: 1,
                diff_sum: u32::MAX - 1,
                changed_pixels: 2,
                ..RowPartial::default()
            };
            3
        ];
        let t = reduce_rows(&partials, 4, 1);
        assert_eq!(t.luma_sum(), 3 * u64::from(u32::MAX));
        assert_eq!(t.diff_sum(), 3 * u64::from(u32::MAX - 1));
        assert_eq!((t.dark_pixels, t.changed_pixels), (3, 6));
    }

    /// A picture of `w` x `h` with a mid-grey area inside dark bars of the given sizes.
    fn boxed(w: u32, h: u32, top: u32, bottom: u32, left: u32, right: u32) -> VideoFrame {
        let pixels: Vec<u8> = (0..h)
            .flat_map(|y| {
                (0..w).map(move |x| {
                    let inside = y >= top && y < h - bottom && x >= left && x < w - right;
                    if inside { 120 } else { 16 }
                })
            })
            .collect();
        frame(w, h, &pixels)
    }

    #[test]
    fn bars_are_measured_on_every_side() {
        let s = frame_stats_cpu(&boxed(37, 20, 3, 2, 5, 6), None, PARAMS_BARS);
        assert_eq!(
            s.bars,
            Bars {
                top: 3,
                bottom: 2,
                left: 5,
                right: 6
            }
        );
        let full = frame_stats_cpu(&boxed(37, 20, 0, 0, 0, 0), None, PARAMS_BARS);
        assert_eq!(full.bars, Bars::default());
        assert_eq!(full.active_area_ratio(), 1.0);
        let dark = frame_stats_cpu(&frame(8, 2, &[16; 16]), None, PARAMS_BARS);
        assert_eq!(dark.active_area_ratio(), 0.0);
    }

    const PARAMS_BARS: StatParams = StatParams {
        dark_threshold: 32,
        noise_threshold: 2,
    };

    /// 8x8 blocks of alternating flat levels: every grid step is a block edge, no control is.
    #[test]
    fn flat_blocks_score_as_blocky_and_a_ramp_does_not() {
        let (w, h) = (64u32, 32u32);
        let blocks: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| 100 + 6 * (((x / 8) + (y / 8)) % 2) as u8))
            .collect();
        let s = frame_stats_cpu(&frame(w, h, &blocks), None, PARAMS);
        let (grid, control) = crate::stats::block_test_points(w, h, 1);
        assert_eq!(s.block_hits, grid);
        assert_eq!(s.block_control, 0);
        assert_eq!(control, 8 * 32 + 4 * 64);
        assert_eq!(s.blockiness(), Some(1.0));

        let ramp: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x * 3 + y) as u8))
            .collect();
        let r = frame_stats_cpu(&frame(w, h, &ramp), None, PARAMS);
        assert_eq!((r.block_hits, r.block_control), (0, 0));
        assert_eq!(r.blockiness(), None);
    }

    /// A smooth vertical ramp whose two fields were captured while an edge moved 6 pixels:
    /// measured as one picture, every row of the moving area steps against its neighbours
    /// (combing); measured per field, only the ramp's own gentle steps remain.
    #[test]
    fn combing_is_no_detail_in_an_interlaced_frame() {
        let (w, h) = (64u32, 32u32);
        let woven: Vec<u8> = (0..h)
            .flat_map(|y| {
                let edge = if y % 2 == 0 { 20 } else { 26 };
                (0..w).map(move |x| {
                    if x < edge {
                        60 + y as u8
                    } else {
                        180 + y as u8
                    }
                })
            })
            .collect();
        let as_frame = frame_stats_cpu(&frame(w, h, &woven), None, PARAMS);
        let interlaced = VideoFrame {
            interlaced: true,
            ..frame(w, h, &woven)
        };
        let per_field = frame_stats_cpu(&interlaced, None, PARAMS);
        assert_eq!((as_frame.field_rows, per_field.field_rows), (1, 2));
        // Per frame: 31 row pairs, 6 combed columns stepping 119 down from an even row (16
        // pairs) and 121 from an odd one (15), the other 58 columns stepping 1.
        assert_eq!(
            as_frame.grad_v_sum,
            16 * (6 * 119 + 58) + 15 * (6 * 121 + 58)
        );
        assert_eq!(as_frame.edges_v, 31 * 6);
        // Per field: 30 row pairs two rows apart, stepping 2 everywhere.
        assert_eq!(per_field.grad_v_sum, 30 * 64 * 2);
        assert_eq!(per_field.edges_v, 0);
        assert_eq!(per_field.quiet_rows, 30);
        assert_eq!(per_field.quiet_row_ratio(), 1.0);
    }

    /// A picture coded as fields has its 8x8 blocks in each field: 16 frame rows tall, on
    /// alternate rows. Measured per field, every grid step is a block edge; the count of
    /// tested positions follows the fields.
    #[test]
    fn field_blocks_score_as_blocky_in_an_interlaced_frame() {
        let (w, h) = (64u32, 67u32);
        let blocks: Vec<u8> = (0..h)
            .flat_map(|y| {
                let (field, line) = (y % 2, y / 2);
                (0..w).map(move |x| 100 + 6 * (((x / 8) + (line / 8) + field) % 2) as u8)
            })
            .collect();
        let interlaced = VideoFrame {
            interlaced: true,
            ..frame(w, h, &blocks)
        };
        let s = frame_stats_cpu(&interlaced, None, PARAMS);
        let (grid, _) = crate::stats::block_test_points(w, h, 2);
        // Grid columns 8..56 on every row; grid lines (y + 2 < lines) 7, 15, 23 and 31 of the
        // top field (34 lines) and 7, 15 and 23 of the bottom one (33 lines).
        assert_eq!(grid, 7 * 67 + (4 + 3) * 64);
        assert_eq!(s.block_hits, grid);
        assert_eq!(s.block_control, 0);
        assert_eq!(s.blockiness(), Some(1.0));
    }
}
