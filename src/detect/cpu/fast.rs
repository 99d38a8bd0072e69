//! The row statistics of `frame_stats.wgsl` for the CPU backend, written for speed: each
//! statistic is a plain loop over byte slices, which the compiler vectorises, instead of the
//! shader port's word-at-a-time lanes. Integer sums in any order are the same sums, so the
//! results equal [`super::row_partial`] exactly (tested below and, through the backend,
//! against the GPU in `tests/gpu_vs_cpu.rs`). The port stays the readable twin of the shader.

use super::frame_stats::{BLOCK_MIN_STEP, EDGE_THRESHOLD};
use crate::frame::VideoFrame;
use crate::gpu::types::RowPartial;
use crate::stats::StatParams;

/// The visible pixels of row `row` (callers checked the frame, so the range exists).
fn line(frame: &VideoFrame, row: usize) -> &[u8] {
    let start = row * frame.stride;
    frame
        .luma
        .get(start..start + frame.width as usize)
        .unwrap_or(&[])
}

/// Branch-free (`&`, not `&&`): on noisy pictures the outcome is a coin toss that a branch
/// would mispredict.
#[inline(always)]
fn block_edge(step: u32, before: u32, after: u32) -> u32 {
    u32::from((step >= BLOCK_MIN_STEP) & (step > 2 * before.max(after)))
}

#[inline(always)]
fn step(a: u8, b: u8) -> u32 {
    u32::from(a.abs_diff(b))
}

/// Sum of |a - b| and the count of those over `threshold`, over two equal-length rows.
#[inline(always)]
fn diff_stats(a: &[u8], b: &[u8], threshold: u32) -> (u32, u32) {
    let (mut sum, mut over) = (0u32, 0u32);
    for (&x, &y) in a.iter().zip(b) {
        let d = step(x, y);
        sum += d;
        over += u32::from(d > threshold);
    }
    (sum, over)
}

/// Same result as [`super::row_partial`], with AVX2 where the processor has it.
pub fn row_partial_fast(
    cur: &VideoFrame,
    reference: Option<&VideoFrame>,
    row: usize,
    params: StatParams,
) -> RowPartial {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the processor supports AVX2, checked just above (the check is cached).
        return unsafe { row_partial_avx2(cur, reference, row, params) };
    }
    row_partial_body(cur, reference, row, params)
}

/// The same code compiled for AVX2 (twice the lanes of the SSE2 baseline).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn row_partial_avx2(
    cur: &VideoFrame,
    reference: Option<&VideoFrame>,
    row: usize,
    params: StatParams,
) -> RowPartial {
    row_partial_body(cur, reference, row, params)
}

#[inline(always)]
fn row_partial_body(
    cur: &VideoFrame,
    reference: Option<&VideoFrame>,
    row: usize,
    params: StatParams,
) -> RowPartial {
    let width = cur.width as usize;
    let height = cur.height as usize;
    let dark_t = params.dark_threshold;
    let c = line(cur, row);
    let mut p = RowPartial {
        first_bright: cur.width,
        ..RowPartial::default()
    };

    let (mut luma, mut sq, mut dark) = (0u32, 0u32, 0u32);
    // A square fits 16 bits: 16-bit multiplies vectorise on every x86-64 (SSE2).
    for &v in c {
        let v16 = u16::from(v);
        luma += u32::from(v);
        sq += u32::from(v16 * v16);
        dark += u32::from(v <= dark_t);
    }
    p.luma_sum = luma;
    p.luma_sq_sum = sq;
    p.dark_pixels = dark;
    if let Some(first) = c.iter().position(|&v| v > dark_t) {
        p.first_bright = first as u32;
        p.end_bright = c
            .iter()
            .rposition(|&v| v > dark_t)
            .map_or(0, |x| x as u32 + 1);
    }

    if width > 1 {
        (p.grad_h_sum, p.edges_h) = diff_stats(&c[1..], &c[..width - 1], EDGE_THRESHOLD);
    }
    // Block boundaries of the 8x8 grid (x % 8 == 0, x > 0: pixels x-2..=x+1, the start of
    // each 8-pixel group from 6) and the in-block controls (x % 8 == 2: pixels x-2..=x+1, the
    // start of each group from 0).
    let quad = |g: &[u8]| block_edge(step(g[2], g[1]), step(g[1], g[0]), step(g[3], g[2]));
    if width > 6 {
        p.block_h_hits = c[6..].chunks(8).filter(|g| g.len() >= 4).map(quad).sum();
    }
    p.block_h_control = c.chunks(8).filter(|g| g.len() >= 4).map(quad).sum();

    if row + 1 < height {
        let b = line(cur, row + 1);
        (p.grad_v_sum, p.edges_v) = diff_stats(b, c, EDGE_THRESHOLD);
        let v_boundary = row % 8 == 7 && row + 2 < height;
        let v_control = row % 8 == 1 && row + 2 < height;
        if v_boundary || v_control {
            let (above, below2) = (line(cur, row - 1), line(cur, row + 2));
            let hits: u32 = c
                .iter()
                .zip(b)
                .zip(above.iter().zip(below2))
                .map(|((&c, &b), (&a, &b2))| block_edge(step(b, c), step(c, a), step(b2, b)))
                .sum();
            if v_boundary {
                p.block_v_hits = hits;
            } else {
                p.block_v_control = hits;
            }
        }
    }

    if let Some(reference) = reference {
        (p.diff_sum, p.changed_pixels) =
            diff_stats(c, line(reference, row), u32::from(params.noise_threshold));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::cpu::row_partial;

    /// Random pixels, or (smooth) 8x8 blocks with small noise so that block edges and
    /// controls fire; the stride has padding beyond the width, filled with other values.
    fn frame(width: u32, height: u32, seed: u64, smooth: bool) -> VideoFrame {
        let stride = VideoFrame::padded_stride(width) + 4;
        let mut state = seed;
        let plane: Vec<u8> = (0..stride * height as usize)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let noise = (state >> 33) as u8;
                let (x, y) = (i % stride, i / stride);
                if smooth && x < width as usize {
                    ((x / 8 * 37 + y / 8 * 11) % 200) as u8 + noise % 3
                } else {
                    noise
                }
            })
            .collect();
        let mut f = VideoFrame::from_plane(
            width,
            height,
            &plane,
            stride,
            std::time::Duration::ZERO,
            std::time::Instant::now(),
        )
        .unwrap();
        // Padding that is not zero: neither implementation may read it.
        let (w, s) = (width as usize, f.stride);
        for row in f.luma.chunks_exact_mut(s) {
            row[w..].fill(0xAB);
        }
        f
    }

    #[test]
    fn every_row_equals_the_shader_port() {
        let params = StatParams {
            dark_threshold: 40,
            noise_threshold: 10,
        };
        for (w, h) in [
            (1, 1),
            (2, 3),
            (7, 9),
            (17, 18),
            (64, 33),
            (426, 24),
            (643, 17),
        ] {
            for smooth in [false, true] {
                let cur = frame(w, h, u64::from(w * h), smooth);
                let prev = frame(w, h, u64::from(w + h), smooth);
                for reference in [None, Some(&prev)] {
                    for row in 0..h as usize {
                        assert_eq!(
                            row_partial_fast(&cur, reference, row, params),
                            row_partial(&cur, reference, row, params),
                            "{w}x{h} row {row}, smooth {smooth}, reference {}",
                            reference.is_some()
                        );
                    }
                }
            }
        }
    }
}
