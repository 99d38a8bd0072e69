// Pass 1 of the frame statistics: one invocation per (row, frame) writes that row's partial sums
// for every video detector at once, so each frame is read from memory once per batch.
//
// Rust twins (src/gpu/types.rs): `FrameDesc` <-> `streamwatch::gpu::types::FrameDesc`,
// `RowPartial` <-> `streamwatch::gpu::types::RowPartial`. CPU port, loop for loop:
// src/detect/cpu/frame_stats.rs `row_partial`.
//
// No workgroup memory or barriers: on lavapipe a barrier-based reduction ran 5-8x slower than
// one thread per row writing its own partial sums, and pass 2 (frame_reduce.wgsl) adds them up.
// Dispatch: (ceil(max_height / 64), n_frames, 1).
//
// What each statistic is for:
// - luma, dark pixels, squares: black, flat (standard deviation) and the luma gauges;
// - difference against the previous frame: freeze and repeated frames (stutter);
// - gradients between neighbours (right and below): detail, for blur;
// - edges (neighbour steps above EDGE_THRESHOLD), horizontal and vertical: colour bars have
//   a few strong vertical edges per row and none across rows;
// - block-edge hits: a step between two pixels with flat pixels on both sides (the signature of
//   a block boundary), tested on the 8x8 block grid and, as a control, at a position inside
//   the blocks (x % 8 == 2, y % 8 == 1) that is no transform boundary in MPEG-2, H.264 or
//   HEVC. Clean content hits both alike; blocky content hits the grid far more often;
// - first and last pixel above the dark threshold: bars at the edges (letterbox, pillarbox).
//
// Interlaced frames (`field_rows` = 2) are measured per field: "below" is the next row of the
// same field and the block grid runs through each field. Rows of different fields were
// captured a field period apart, so anything that moves combs, and combing would read as
// detail (hiding blur), as vertical edges and as block edges.

// Shared structs (FrameDesc, RowPartial, FrameTotals) come from shaders/common/types.wgsl;
// the thresholds and pixel tests (absdiff, block_edge2/4) from shaders/common/pixels.wgsl.

@group(0) @binding(0) var<storage, read> descs: array<FrameDesc>;
// Luma of every frame of the submission (and the reference frames copied in from the history),
// 4 pixels per word, little-endian: pixel x of a row is byte x % 4 of word x / 4.
@group(0) @binding(1) var<storage, read> luma: array<u32>;
@group(0) @binding(2) var<storage, read_write> partials: array<RowPartial>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let d = descs[gid.y];
    let row = gid.x;
    // The grid covers the tallest frame of the batch; shorter frames leave these idle.
    if row >= d.height {
        return;
    }
    let words = (d.width + 3u) / 4u;
    let cur_row = d.cur_word + row * d.words_per_row;
    let ref_row = d.ref_word + row * d.ref_words_per_row;
    let v = vertical_rows(d, row);
    let step_words = v.step_words;
    let below_row = cur_row + step_words;
    let has_below = v.has_below;
    let v_boundary = v.boundary;
    let v_control = v.control;
    let lanes = vec4<u32>(0u, 1u, 2u, 3u);
    let width4 = vec4<u32>(d.width);
    let dark_t = vec4<u32>(d.dark_threshold);
    let noise_t = vec4<u32>(d.noise_threshold);
    let edge_t = vec4<u32>(EDGE_THRESHOLD);
    let zero = vec4<u32>(0u);
    let one = vec4<u32>(1u);

    var luma_acc = zero;
    var sq_acc = zero;
    var dark_acc = zero;
    var diff_acc = zero;
    var changed_acc = zero;
    var grad_h_acc = zero;
    var grad_v_acc = zero;
    var edges_h_acc = zero;
    var edges_v_acc = zero;
    var block_v_acc = zero;
    var block_h_hits = 0u;
    var block_h_control = 0u;
    var first_bright = d.width;
    var end_bright = 0u;
    // Pixels 4i-4 .. 4i-1, the left neighbours of word i.
    var prev = zero;

    for (var i = 0u; i < words; i++) {
        let x0 = 4u * i;
        let xs = vec4<u32>(x0) + lanes;
        // Lanes past the width are row padding: zeroed so that they add nothing.
        let valid = xs < width4;
        let c = select(zero, unpack4xU8(luma[cur_row + i]), valid);
        luma_acc += c;
        sq_acc += c * c;
        dark_acc += select(zero, one, (c <= dark_t) & valid);
        let bright = (c > dark_t) & valid;
        if any(bright) {
            let first_lane = select(select(select(3u, 2u, bright.z), 1u, bright.y), 0u, bright.x);
            let last_lane = select(select(select(0u, 1u, bright.y), 2u, bright.z), 3u, bright.w);
            first_bright = min(first_bright, x0 + first_lane);
            end_bright = x0 + last_lane + 1u;
        }

        let left = vec4<u32>(prev.w, c.x, c.y, c.z);
        let dh = select(zero, absdiff4(c, left), valid & (xs >= one));
        grad_h_acc += dh;
        edges_h_acc += select(zero, one, dh > edge_t);

        // Even words start a block column: its left boundary (x0 - 1 | x0) and the control
        // pair inside it (x0 + 1 | x0 + 2).
        if (i & 1u) == 0u {
            let step = vec2<u32>(absdiff(c.x, prev.w), absdiff(c.z, c.y));
            let before = vec2<u32>(absdiff(prev.w, prev.z), absdiff(c.y, c.x));
            let after = vec2<u32>(absdiff(c.y, c.x), absdiff(c.w, c.z));
            let tested = vec2<bool>(x0 > 0u && x0 + 1u < d.width, x0 + 3u < d.width);
            let hit = block_edge2(step, before, after) & tested;
            block_h_hits += select(0u, 1u, hit.x);
            block_h_control += select(0u, 1u, hit.y);
        }

        if has_below {
            let b = select(zero, unpack4xU8(luma[below_row + i]), valid);
            let dv = absdiff4(b, c);
            grad_v_acc += dv;
            edges_v_acc += select(zero, one, dv > edge_t);
            if v_boundary || v_control {
                let above = select(zero, unpack4xU8(luma[cur_row - step_words + i]), valid);
                let below2 = select(zero, unpack4xU8(luma[below_row + step_words + i]), valid);
                let hit = block_edge4(dv, absdiff4(c, above), absdiff4(below2, b)) & valid;
                block_v_acc += select(zero, one, hit);
            }
        }

        if d.has_ref != 0u {
            let p = select(zero, unpack4xU8(luma[ref_row + i]), valid);
            let diff = absdiff4(c, p);
            diff_acc += diff;
            changed_acc += select(zero, one, diff > noise_t);
        }
        prev = c;
    }

    let block_v = dot(block_v_acc, one);
    partials[d.row_base + row] = RowPartial(
        dot(luma_acc, one),
        dot(dark_acc, one),
        dot(diff_acc, one),
        dot(changed_acc, one),
        dot(sq_acc, one),
        dot(grad_h_acc, one),
        dot(grad_v_acc, one),
        dot(edges_h_acc, one),
        dot(edges_v_acc, one),
        block_h_hits,
        block_h_control,
        select(0u, block_v, v_boundary),
        select(0u, block_v, v_control),
        first_bright,
        end_bright,
        0u,
    );
}
