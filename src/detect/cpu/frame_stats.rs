//! CPU port of `shaders/frame_stats.wgsl` (per-row partials) and `shaders/frame_reduce.wgsl`
//! (per-frame totals), written loop for loop like the shaders so the two read side by side.
//! The GPU-vs-CPU tests compare them exactly.

use crate::frame::VideoFrame;
use crate::gpu::types::{FrameTotals, RowPartial};
use crate::stats::{FrameStats, StatParams};

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

fn add4(acc: &mut [u32; 4], x: [u32; 4]) {
    for k in 0..4 {
        acc[k] += x[k];
    }
}

fn count4(acc: &mut [u32; 4], hit: [bool; 4]) {
    for k in 0..4 {
        acc[k] += u32::from(hit[k]);
    }
}

/// Twin of `main` in `frame_stats.wgsl`: the partial sums of one row of `cur`, differences
/// against `reference` when given (the caller has checked it has the same size).
pub fn row_partial(
    cur: &VideoFrame,
    reference: Option<&VideoFrame>,
    row: usize,
    params: StatParams,
) -> RowPartial {
    let width = cur.width as usize;
    let full_words = width / 4;
    let tail_pixels = width % 4;
    let dark_t = u32::from(params.dark_threshold);
    let noise_t = u32::from(params.noise_threshold);
    let tail_mask: [bool; 4] = std::array::from_fn(|k| k < tail_pixels);
    let masked =
        |v: [u32; 4]| -> [u32; 4] { std::array::from_fn(|k| if tail_mask[k] { v[k] } else { 0 }) };

    let words = width.div_ceil(4);
    let cur_row = row_words(cur, row, words);
    let mut luma_acc = [0u32; 4];
    let mut dark_acc = [0u32; 4];
    let mut diff_acc = [0u32; 4];
    let mut changed_acc = [0u32; 4];

    if let Some(prev) = reference {
        let ref_row = row_words(prev, row, words);
        for (cw, pw) in cur_row.iter().zip(ref_row).take(full_words) {
            let c = unpack4x_u8(cw);
            let p = unpack4x_u8(pw);
            let diff: [u32; 4] = std::array::from_fn(|k| c[k].abs_diff(p[k]));
            add4(&mut luma_acc, c);
            count4(&mut dark_acc, c.map(|v| v <= dark_t));
            add4(&mut diff_acc, diff);
            count4(&mut changed_acc, diff.map(|d| d > noise_t));
        }
        if let (true, Some(cw), Some(pw)) = (
            tail_pixels != 0,
            cur_row.get(full_words),
            ref_row.get(full_words),
        ) {
            let c = masked(unpack4x_u8(cw));
            let p = masked(unpack4x_u8(pw));
            let diff: [u32; 4] = std::array::from_fn(|k| c[k].abs_diff(p[k]));
            add4(&mut luma_acc, c);
            count4(
                &mut dark_acc,
                std::array::from_fn(|k| c[k] <= dark_t && tail_mask[k]),
            );
            add4(&mut diff_acc, diff);
            count4(&mut changed_acc, diff.map(|d| d > noise_t));
        }
    } else {
        for cw in cur_row.iter().take(full_words) {
            let c = unpack4x_u8(cw);
            add4(&mut luma_acc, c);
            count4(&mut dark_acc, c.map(|v| v <= dark_t));
        }
        if let (true, Some(cw)) = (tail_pixels != 0, cur_row.get(full_words)) {
            let c = masked(unpack4x_u8(cw));
            add4(&mut luma_acc, c);
            count4(
                &mut dark_acc,
                std::array::from_fn(|k| c[k] <= dark_t && tail_mask[k]),
            );
        }
    }

    let dot = |v: [u32; 4]| v.iter().sum::<u32>();
    RowPartial {
        luma_sum: dot(luma_acc),
        dark_pixels: dot(dark_acc),
        diff_sum: dot(diff_acc),
        changed_pixels: dot(changed_acc),
    }
}

/// Twin of `add64` in `frame_reduce.wgsl`: adds `x` to the 64-bit number (lo, hi).
fn add64(acc: [u32; 2], x: u32) -> [u32; 2] {
    let lo = acc[0].wrapping_add(x);
    [lo, acc[1] + u32::from(lo < x)]
}

/// Twin of `main` in `frame_reduce.wgsl`: the totals of one frame from its row partials.
pub fn reduce_rows(partials: &[RowPartial]) -> FrameTotals {
    let mut luma_sum = [0u32; 2];
    let mut diff_sum = [0u32; 2];
    let mut dark = 0u32;
    let mut changed = 0u32;
    for p in partials {
        luma_sum = add64(luma_sum, p.luma_sum);
        diff_sum = add64(diff_sum, p.diff_sum);
        dark += p.dark_pixels;
        changed += p.changed_pixels;
    }
    FrameTotals {
        luma_sum_lo: luma_sum[0],
        luma_sum_hi: luma_sum[1],
        dark_pixels: dark,
        diff_sum_lo: diff_sum[0],
        diff_sum_hi: diff_sum[1],
        changed_pixels: changed,
        _pad0: 0,
        _pad1: 0,
    }
}

/// A reference counts only when it has the frame's size (the contract's `has_prev`).
pub(crate) fn same_size(a: &VideoFrame, b: &VideoFrame) -> bool {
    a.width == b.width && a.height == b.height
}

/// Statistics of `cur` against `prev` with a caller-owned scratch buffer for the row partials,
/// so a backend allocates nothing per frame once the buffer has grown.
pub(crate) fn frame_stats_with(
    cur: &VideoFrame,
    prev: Option<&VideoFrame>,
    params: StatParams,
    partials: &mut Vec<RowPartial>,
) -> FrameStats {
    if super::check_frame(cur).is_err() {
        return FrameStats {
            pixels: cur.pixel_count(),
            ..FrameStats::default()
        };
    }
    let reference = prev.filter(|p| same_size(cur, p) && super::check_frame(p).is_ok());
    partials.clear();
    partials.extend((0..cur.height as usize).map(|row| row_partial(cur, reference, row, params)));
    reduce_rows(partials).into_stats(cur, reference.is_some())
}

/// Statistics of one frame against the previous frame of its stream (none for the first frame;
/// a `prev` of another size counts as none). A frame that breaks the [`VideoFrame`] invariants
/// (the backends reject those with an error) gives zero sums rather than a panic.
pub fn frame_stats_cpu(
    cur: &VideoFrame,
    prev: Option<&VideoFrame>,
    params: StatParams,
) -> FrameStats {
    frame_stats_with(cur, prev, params, &mut Vec::new())
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
        assert_eq!(
            s,
            FrameStats {
                pixels: 6,
                luma_sum: 389,
                dark_pixels: 3,
                has_prev: false,
                diff_sum: 0,
                changed_pixels: 0,
            }
        );
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
            };
            3
        ];
        let t = reduce_rows(&partials);
        assert_eq!(t.luma_sum(), 3 * u64::from(u32::MAX));
        assert_eq!(t.diff_sum(), 3 * u64::from(u32::MAX - 1));
        assert_eq!((t.dark_pixels, t.changed_pixels), (3, 6));
    }
}
