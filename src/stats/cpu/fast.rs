//! The row statistics of `frame_stats.wgsl` for the CPU backend, written for speed: with AVX2,
//! all statistics of 32 pixels at once in byte-wide vector instructions; without it, one plain
//! loop over byte slices per statistic, which the compiler vectorises for SSE2. Integer sums
//! in any order are the same sums, so both equal [`super::row_partial`] exactly (tested below
//! and, through the backend, against the GPU in `tests/e2e/gpu_vs_cpu.rs`). The port stays the
//! readable twin of the shader.

use super::frame_stats::{BLOCK_MIN_STEP, EDGE_THRESHOLD};
use crate::frame::VideoFrame;
use crate::stats::gpu::types::RowPartial;
use crate::stats::{StatParams, VerticalNeighbours};

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
        let rows = RowView::new(cur, reference, row, params);
        if rows.complete() && rows.width >= avx2::MIN_WIDTH {
            // SAFETY: the processor supports AVX2, checked just above (the check is cached),
            // and the rows are complete and wide enough.
            return unsafe { avx2::row_partial(&rows) };
        }
    }
    row_partial_body(cur, reference, row, params)
}

/// The rows one row's statistics read, each exactly `width` bytes long (padding excluded).
#[cfg(target_arch = "x86_64")]
struct RowView<'a> {
    width: usize,
    cur: &'a [u8],
    below: Option<&'a [u8]>,
    /// The rows above and two below, on the rows where vertical block edges are tested.
    block_v: Option<(&'a [u8], &'a [u8])>,
    v_boundary: bool,
    reference: Option<&'a [u8]>,
    dark_threshold: u8,
    noise_threshold: u8,
}

#[cfg(target_arch = "x86_64")]
impl<'a> RowView<'a> {
    fn new(
        cur: &'a VideoFrame,
        reference: Option<&'a VideoFrame>,
        row: usize,
        params: StatParams,
    ) -> Self {
        let vertical = VerticalNeighbours::of(row, cur.height as usize, cur.field_rows());
        Self {
            width: cur.width as usize,
            cur: line(cur, row),
            below: vertical.below.map(|r| line(cur, r)),
            block_v: vertical.block.map(|(a, b)| (line(cur, a), line(cur, b))),
            v_boundary: vertical.on_grid,
            reference: reference.map(|r| line(r, row)),
            dark_threshold: params.dark_threshold,
            noise_threshold: params.noise_threshold,
        }
    }

    /// True when every row holds `width` bytes, which the vector loop relies on.
    fn complete(&self) -> bool {
        let full = |r: &[u8]| r.len() == self.width;
        full(self.cur)
            && self.below.is_none_or(full)
            && self.block_v.is_none_or(|(a, b)| full(a) && full(b))
            && self.reference.is_none_or(full)
    }
}

/// The row statistics 32 pixels at a time with AVX2 intrinsics. Every statistic is a byte
/// operation: sums of absolute differences (`vpsadbw`) for the sums, unsigned byte compares
/// for the thresholds, counted in per-byte counters (a compare gives -1 per hit, subtracted
/// from the counter) that are summed every 255 chunks, before a byte could overflow, and one
/// 16-bit multiply-add for the squares. Counting through `movemask` bits instead looked
/// equivalent but LLVM turned the bit masks back into per-byte extractions, five times slower.
///
/// The chunks at the ends of a row, where a neighbour pixel is missing, take the missing
/// neighbours from the chunk itself shifted by a byte and are masked to the pixels they may
/// count, so no pixel goes through slower scalar code.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK_MIN_STEP, EDGE_THRESHOLD, RowPartial, RowView};

    const LANES: usize = 32;
    /// Narrower rows go to the portable loops: a row needs a first chunk, then a last chunk
    /// that does not overlap it.
    pub(super) const MIN_WIDTH: usize = 2 * LANES + 1;
    /// Loaded at offset `o`, lane k is set where (o + k) % 8 == 0 (grid columns) or == 2
    /// (in-block controls): offset `x % 8` gives the lanes of a chunk starting at `x`.
    static GRID_COLUMNS: [u8; LANES + 8] = lane_table(0);
    static CONTROL_COLUMNS: [u8; LANES + 8] = lane_table(2);
    /// Loaded at offset `32 - n`, lanes n.. are set; at offset `n`, lanes ..32 - n are set.
    static FROM_LANE: [u8; 2 * LANES] = {
        let mut t = [0u8; 2 * LANES];
        let mut i = LANES;
        while i < 2 * LANES {
            t[i] = 0xFF;
            i += 1;
        }
        t
    };
    static BEFORE_LANE: [u8; 2 * LANES] = {
        let mut t = [0u8; 2 * LANES];
        let mut i = 0;
        while i < LANES {
            t[i] = 0xFF;
            i += 1;
        }
        t
    };

    const fn lane_table(column: usize) -> [u8; LANES + 8] {
        let mut t = [0u8; LANES + 8];
        let mut i = 0;
        while i < LANES + 8 {
            if i % 8 == column {
                t[i] = 0xFF;
            }
            i += 1;
        }
        t
    }

    /// Bytes moved one lane up (towards higher x) across the whole vector, a zero shifted in.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn shift_up_one(v: __m256i) -> __m256i {
        // [0, low half], then per 128-bit lane take the top byte of the lane below.
        let carried = _mm256_permute2x128_si256::<0x08>(v, v);
        _mm256_alignr_epi8::<15>(v, carried)
    }

    /// Bytes moved two lanes up, zeros shifted in.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn shift_up_two(v: __m256i) -> __m256i {
        let carried = _mm256_permute2x128_si256::<0x08>(v, v);
        _mm256_alignr_epi8::<14>(v, carried)
    }

    /// Bytes moved one lane down (towards lower x), a zero shifted in at the top.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn shift_down_one(v: __m256i) -> __m256i {
        let carried = _mm256_permute2x128_si256::<0x81>(v, v);
        _mm256_alignr_epi8::<1>(carried, v)
    }

    /// Chunks counted in byte counters before they are summed: one more could overflow them.
    const MAX_COUNTED: usize = 255;

    /// 32 bytes of `row` from `x`; the caller keeps `x + 32 <= row.len()`.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn load(row: &[u8], x: usize) -> __m256i {
        debug_assert!(x + LANES <= row.len());
        // SAFETY: in bounds per the caller; loadu has no alignment requirement.
        unsafe { _mm256_loadu_si256(row.as_ptr().add(x).cast()) }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn absdiff(a: __m256i, b: __m256i) -> __m256i {
        _mm256_or_si256(_mm256_subs_epu8(a, b), _mm256_subs_epu8(b, a))
    }

    /// All-ones bytes where `v <= t` (unsigned).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn at_most(v: __m256i, t: __m256i) -> __m256i {
        _mm256_cmpeq_epi8(_mm256_min_epu8(v, t), v)
    }

    /// Bytes summed into the four 64-bit lanes of `acc`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn add_bytes(acc: __m256i, v: __m256i) -> __m256i {
        _mm256_add_epi64(acc, _mm256_sad_epu8(v, _mm256_setzero_si256()))
    }

    /// Adds one to each byte counter where `mask` is all ones.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn count(counter: __m256i, mask: __m256i) -> __m256i {
        _mm256_sub_epi8(counter, mask)
    }

    /// All-ones bytes where `step` is NOT a block-edge shaped step (at least `BLOCK_MIN_STEP`
    /// and more than twice the larger neighbouring step). Doubling saturates at 255, which no
    /// step exceeds, so the comparison stays exact.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn not_block_edge(step: __m256i, before: __m256i, after: __m256i) -> __m256i {
        let below_min = _mm256_set1_epi8((BLOCK_MIN_STEP - 1) as i8);
        let larger = _mm256_max_epu8(before, after);
        let doubled = _mm256_adds_epu8(larger, larger);
        _mm256_or_si256(at_most(step, doubled), at_most(step, below_min))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn lanes_u64(v: __m256i) -> u64 {
        let mut lanes = [0u64; 4];
        // SAFETY: `lanes` is 32 writable bytes; storeu has no alignment requirement.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().sum()
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn lanes_u32(v: __m256i) -> u32 {
        let mut lanes = [0u32; 8];
        // SAFETY: as in `lanes_u64`.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().fold(0u32, |s, &l| s.wrapping_add(l))
    }

    /// The pixels of one chunk and of its neighbours.
    struct Chunk {
        left2: __m256i,
        left: __m256i,
        here: __m256i,
        right: __m256i,
        below: __m256i,
        above: __m256i,
        below2: __m256i,
        reference: __m256i,
        /// All-ones bytes for the pixels this chunk counts; of those, the ones with a left
        /// neighbour (steps to the left) and with two left and one right neighbour (where
        /// horizontal block edges may be tested).
        valid: __m256i,
        valid_left: __m256i,
        valid_block: __m256i,
        /// Lanes on the 8x8 grid's columns and on the control columns.
        grid_lanes: __m256i,
        control_lanes: __m256i,
    }

    /// Sums and counts of one row: 64-bit lanes, and byte counters for the thresholds.
    struct Acc {
        luma: __m256i,
        sq: __m256i,
        grad_h: __m256i,
        grad_v: __m256i,
        diff: __m256i,
        /// dark, edges_h, edges_v, changed, block_h_hits, block_h_control, block_v: byte
        /// counters, and their 64-bit sums.
        counters: [__m256i; 7],
        counted: [__m256i; 7],
        first_bright: Option<u32>,
        end_bright: u32,
    }

    impl Acc {
        #[target_feature(enable = "avx2")]
        #[inline]
        fn flush(&mut self) {
            for (total, counter) in self.counted.iter_mut().zip(&mut self.counters) {
                *total = add_bytes(*total, *counter);
                *counter = _mm256_setzero_si256();
            }
        }
    }

    /// Adds the chunk of pixels `x..x + 32` to `acc`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn add_chunk(v: &RowView<'_>, acc: &mut Acc, k: &Chunk, x: usize) {
        let zero = _mm256_setzero_si256();
        let edge_t = _mm256_set1_epi8(EDGE_THRESHOLD as i8);
        let [
            dark_n,
            edges_h_n,
            edges_v_n,
            changed_n,
            hits_n,
            controls_n,
            block_v_n,
        ] = &mut acc.counters;

        let here = _mm256_and_si256(k.here, k.valid);
        acc.luma = add_bytes(acc.luma, here);
        let lo = _mm256_unpacklo_epi8(here, zero);
        let hi = _mm256_unpackhi_epi8(here, zero);
        acc.sq = _mm256_add_epi32(
            acc.sq,
            _mm256_add_epi32(_mm256_madd_epi16(lo, lo), _mm256_madd_epi16(hi, hi)),
        );
        let dark = at_most(k.here, _mm256_set1_epi8(v.dark_threshold as i8));
        *dark_n = count(*dark_n, _mm256_and_si256(dark, k.valid));
        let bright = _mm256_movemask_epi8(_mm256_andnot_si256(dark, k.valid)) as u32;
        if bright != 0 {
            acc.first_bright
                .get_or_insert(x as u32 + bright.trailing_zeros());
            acc.end_bright = (x + LANES) as u32 - bright.leading_zeros();
        }

        let step = _mm256_and_si256(absdiff(k.here, k.left), k.valid_left);
        acc.grad_h = add_bytes(acc.grad_h, step);
        *edges_h_n = count(
            *edges_h_n,
            _mm256_andnot_si256(at_most(step, edge_t), k.valid_left),
        );
        let not_edge = not_block_edge(step, absdiff(k.left, k.left2), absdiff(k.right, k.here));
        let tested = _mm256_andnot_si256(not_edge, k.valid_block);
        *hits_n = count(*hits_n, _mm256_and_si256(tested, k.grid_lanes));
        *controls_n = count(*controls_n, _mm256_and_si256(tested, k.control_lanes));

        if v.below.is_some() {
            let down = _mm256_and_si256(absdiff(k.below, k.here), k.valid);
            acc.grad_v = add_bytes(acc.grad_v, down);
            *edges_v_n = count(
                *edges_v_n,
                _mm256_andnot_si256(at_most(down, edge_t), k.valid),
            );
            if v.block_v.is_some() {
                let not_edge =
                    not_block_edge(down, absdiff(k.here, k.above), absdiff(k.below2, k.below));
                *block_v_n = count(*block_v_n, _mm256_andnot_si256(not_edge, k.valid));
            }
        }
        if v.reference.is_some() {
            let d = _mm256_and_si256(absdiff(k.here, k.reference), k.valid);
            acc.diff = add_bytes(acc.diff, d);
            let noise_t = _mm256_set1_epi8(v.noise_threshold as i8);
            *changed_n = count(
                *changed_n,
                _mm256_andnot_si256(at_most(d, noise_t), k.valid),
            );
        }
    }

    /// # Safety
    /// The processor must support AVX2, and `v.complete()` must hold.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn row_partial(v: &RowView<'_>) -> RowPartial {
        let w = v.width;
        let zero = _mm256_setzero_si256();
        let ones = _mm256_set1_epi8(-1);
        let mut acc = Acc {
            luma: zero,
            sq: zero,
            grad_h: zero,
            grad_v: zero,
            diff: zero,
            counters: [zero; 7],
            counted: [zero; 7],
            first_bright: None,
            end_bright: 0,
        };
        // Rows a statistic does not use stand in as the current row, so every load is valid.
        let below_row = v.below.unwrap_or(v.cur);
        let (above_row, below2_row) = v.block_v.unwrap_or((v.cur, v.cur));
        let reference_row = v.reference.unwrap_or(v.cur);
        // SAFETY (every load below): x + 32 <= w with x - 2 >= 0 for the left neighbours and
        // x + 33 <= w for the right one, and every row holds w bytes (`complete`).
        let load_at = |x: usize| unsafe {
            (
                load(v.cur, x),
                load(below_row, x),
                load(above_row, x),
                load(below2_row, x),
                load(reference_row, x),
            )
        };
        let grid_lanes = unsafe { load(&GRID_COLUMNS, 0) };
        let control_lanes = unsafe { load(&CONTROL_COLUMNS, 0) };

        // The first chunk: no pixel left of x = 0.
        let (here, below, above, below2, reference) = load_at(0);
        let not_first = unsafe { load(&FROM_LANE, LANES - 1) };
        let first = Chunk {
            left2: shift_up_two(here),
            left: shift_up_one(here),
            here,
            right: unsafe { load(v.cur, 1) },
            below,
            above,
            below2,
            reference,
            valid: ones,
            valid_left: not_first,
            // Block edges need x >= 2: of the tested lanes only the grid column x = 0 is below.
            valid_block: not_first,
            grid_lanes,
            control_lanes,
        };
        add_chunk(v, &mut acc, &first, 0);

        // Chunks from 32 up to here have every neighbour in the row.
        let interior_end = (w - 1) / LANES * LANES;
        let mut counted = 1;
        for x in (LANES..interior_end).step_by(LANES) {
            let (here, below, above, below2, reference) = load_at(x);
            let chunk = Chunk {
                left2: unsafe { load(v.cur, x - 2) },
                left: unsafe { load(v.cur, x - 1) },
                here,
                right: unsafe { load(v.cur, x + 1) },
                below,
                above,
                below2,
                reference,
                valid: ones,
                valid_left: ones,
                valid_block: ones,
                grid_lanes,
                control_lanes,
            };
            add_chunk(v, &mut acc, &chunk, x);
            counted += 1;
            if counted == MAX_COUNTED {
                acc.flush();
                counted = 0;
            }
        }

        // The last chunk ends at the row's end and overlaps the one before: it counts only
        // the pixels from `interior_end`, and its last pixel has no right neighbour.
        let x = w - LANES;
        let (here, below, above, below2, reference) = load_at(x);
        let fresh = unsafe { load(&FROM_LANE, LANES - (interior_end - x)) };
        let not_last = unsafe { load(&BEFORE_LANE, 1) };
        let last = Chunk {
            left2: unsafe { load(v.cur, x - 2) },
            left: unsafe { load(v.cur, x - 1) },
            here,
            right: shift_down_one(here),
            below,
            above,
            below2,
            reference,
            valid: fresh,
            valid_left: fresh,
            valid_block: _mm256_and_si256(fresh, not_last),
            grid_lanes: unsafe { load(&GRID_COLUMNS, x % 8) },
            control_lanes: unsafe { load(&CONTROL_COLUMNS, x % 8) },
        };
        add_chunk(v, &mut acc, &last, x);
        acc.flush();
        let [dark, edges_h, edges_v, changed, hits, controls, block_v] =
            acc.counted.map(|t| lanes_u64(t) as u32);
        RowPartial {
            luma_sum: lanes_u64(acc.luma) as u32,
            dark_pixels: dark,
            diff_sum: lanes_u64(acc.diff) as u32,
            changed_pixels: changed,
            luma_sq_sum: lanes_u32(acc.sq),
            grad_h_sum: lanes_u64(acc.grad_h) as u32,
            grad_v_sum: lanes_u64(acc.grad_v) as u32,
            edges_h,
            edges_v,
            block_h_hits: hits,
            block_h_control: controls,
            block_v_hits: if v.v_boundary { block_v } else { 0 },
            block_v_control: if v.v_boundary { 0 } else { block_v },
            first_bright: acc.first_bright.unwrap_or(w as u32),
            end_bright: acc.end_bright,
            _pad0: 0,
        }
    }
}

/// Without AVX2: plain loops that the compiler vectorises for the SSE2 baseline.
#[inline(always)]
fn row_partial_body(
    cur: &VideoFrame,
    reference: Option<&VideoFrame>,
    row: usize,
    params: StatParams,
) -> RowPartial {
    let width = cur.width as usize;
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

    let vertical = VerticalNeighbours::of(row, cur.height as usize, cur.field_rows());
    if let Some(below) = vertical.below {
        let b = line(cur, below);
        (p.grad_v_sum, p.edges_v) = diff_stats(b, c, EDGE_THRESHOLD);
        if let Some((above, below2)) = vertical.block {
            let (above, below2) = (line(cur, above), line(cur, below2));
            let hits: u32 = c
                .iter()
                .zip(b)
                .zip(above.iter().zip(below2))
                .map(|((&c, &b), (&a, &b2))| block_edge(step(b, c), step(c, a), step(b2, b)))
                .sum();
            if vertical.on_grid {
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
    use crate::stats::cpu::frame_stats::RowStats;
    use crate::stats::cpu::row_partial;

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

    /// Both the dispatching entry point (AVX2 here when present) and the portable loops, on
    /// widths below, at and around the 32-pixel chunks, and on thresholds at their extremes.
    #[test]
    fn every_row_equals_the_shader_port() {
        let sizes = [
            (1, 1),
            (2, 3),
            (7, 9),
            (17, 18),
            (64, 33),
            (65, 10),
            (96, 17),
            (97, 9),
            (129, 12),
            (426, 24),
            (643, 17),
            (1280, 10),
        ];
        let thresholds = [(40, 10), (0, 0), (255, 255), (16, 3)];
        let paths: [(&str, RowStats); 2] = [
            ("dispatch", row_partial_fast),
            ("portable", row_partial_body),
        ];
        for (w, h) in sizes {
            for (smooth, interlaced) in [(false, false), (true, false), (true, true)] {
                let cur = VideoFrame {
                    interlaced,
                    ..frame(w, h, u64::from(w * h), smooth)
                };
                let prev = frame(w, h, u64::from(w + h), smooth);
                for (dark_threshold, noise_threshold) in thresholds {
                    let params = StatParams {
                        dark_threshold,
                        noise_threshold,
                    };
                    for reference in [None, Some(&prev)] {
                        for row in 0..h as usize {
                            let expected = row_partial(&cur, reference, row, params);
                            for (path, stats) in paths {
                                assert_eq!(
                                    stats(&cur, reference, row, params),
                                    expected,
                                    "{path}: {w}x{h} row {row}, smooth {smooth}, \
                                     interlaced {interlaced}, {params:?}, reference {}",
                                    reference.is_some()
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Dark frames with bright pixels only near the ends of the rows, where the vector loop
    /// hands over to the pixel-at-a-time ends: the bright span must still be found.
    #[test]
    fn bright_span_is_found_across_chunk_boundaries() {
        let params = StatParams {
            dark_threshold: 16,
            noise_threshold: 0,
        };
        for (first, last) in [
            (0, 0),
            (31, 32),
            (32, 63),
            (40, 1000),
            (100, 1279),
            (700, 700),
        ] {
            let mut plane = vec![0u8; 1280 * 3];
            plane[1280 + first] = 200;
            plane[1280 + last] = 200;
            let cur = VideoFrame::from_plane(
                1280,
                3,
                &plane,
                1280,
                std::time::Duration::ZERO,
                std::time::Instant::now(),
            )
            .unwrap();
            let fast = row_partial_fast(&cur, None, 1, params);
            assert_eq!(fast, row_partial(&cur, None, 1, params));
            assert_eq!(
                (fast.first_bright, fast.end_bright),
                (first as u32, last as u32 + 1)
            );
        }
    }
}
