// Pass 1 of the frame statistics, subgroup variant: one workgroup per (row, frame). Its
// invocations stride over the row's u32 words (neighbouring invocations read neighbouring
// words, so loads coalesce), each adding up its words' contributions; subgroupAdd/Min/Max and
// workgroup memory across subgroups then give the same `RowPartial` as frame_stats.wgsl, so pass
// 2 (frame_reduce.wgsl) and the CPU port are unchanged. Used where the adapter has
// wgpu::Features::SUBGROUP and is a real GPU (src/gpu/engine.rs `SubgroupMode`): the barrier
// makes it 2-3.5x slower than frame_stats.wgsl on lavapipe. Every sum is an integer sum of the
// same terms as the one-thread-per-row shader, so the result is bit-identical.
//
// Rust twins (src/gpu/types.rs): `FrameDesc` <-> `streamwatch::gpu::types::FrameDesc`,
// `RowPartial` <-> `streamwatch::gpu::types::RowPartial`. CPU port, loop for loop per word:
// src/detect/cpu/frame_stats.rs `row_partial` (the word loop body is the same; only who runs
// which word differs).
//
// Requires the SUBGROUP feature (naga 30 rejects `enable subgroups;`: the feature alone
// enables the builtins). Dispatch: (max_height, n_frames, 1), workgroup size 64.

// Shared structs (FrameDesc, RowPartial, FrameTotals) come from shaders/common/types.wgsl;
// the thresholds and pixel tests (absdiff, block_edge2/4) from shaders/common/pixels.wgsl.

const WG: u32 = 64u;

@group(0) @binding(0) var<storage, read> descs: array<FrameDesc>;
// Luma of every frame of the submission (and the reference frames copied in from the history),
// 4 pixels per word, little-endian: pixel x of a row is byte x % 4 of word x / 4.
@group(0) @binding(1) var<storage, read> luma: array<u32>;
@group(0) @binding(2) var<storage, read_write> partials: array<RowPartial>;

// One entry per subgroup (a subgroup has at least one invocation, so at most WG of them).
var<workgroup> sub_sums: array<array<u32, 15>, WG>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) sg_count: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
) {
    let d = descs[wid.y];
    let row = wid.x;
    // Uniform across the workgroup, so returning here keeps the barrier below uniform.
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

    for (var i = lid; i < words; i += WG) {
        let x0 = 4u * i;
        let xs = vec4<u32>(x0) + lanes;
        let valid = xs < width4;
        let c = select(zero, unpack4xU8(luma[cur_row + i]), valid);
        // The left neighbours: the previous word, which lies wholly inside the width.
        var prev = zero;
        if i > 0u {
            prev = unpack4xU8(luma[cur_row + i - 1u]);
        }
        luma_acc += c;
        sq_acc += c * c;
        dark_acc += select(zero, one, (c <= dark_t) & valid);
        let bright = (c > dark_t) & valid;
        if any(bright) {
            let first_lane = select(select(select(3u, 2u, bright.z), 1u, bright.y), 0u, bright.x);
            let last_lane = select(select(select(0u, 1u, bright.y), 2u, bright.z), 3u, bright.w);
            first_bright = min(first_bright, x0 + first_lane);
            // Words come in increasing order per invocation; the row's end is the largest.
            end_bright = max(end_bright, x0 + last_lane + 1u);
        }

        let left = vec4<u32>(prev.w, c.x, c.y, c.z);
        let dh = select(zero, absdiff4(c, left), valid & (xs >= one));
        grad_h_acc += dh;
        edges_h_acc += select(zero, one, dh > edge_t);

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
    }

    // Within each subgroup, then across subgroups through workgroup memory.
    var sums = array<u32, 15>(
        subgroupAdd(dot(luma_acc, one)),
        subgroupAdd(dot(dark_acc, one)),
        subgroupAdd(dot(diff_acc, one)),
        subgroupAdd(dot(changed_acc, one)),
        subgroupAdd(dot(sq_acc, one)),
        subgroupAdd(dot(grad_h_acc, one)),
        subgroupAdd(dot(grad_v_acc, one)),
        subgroupAdd(dot(edges_h_acc, one)),
        subgroupAdd(dot(edges_v_acc, one)),
        subgroupAdd(block_h_hits),
        subgroupAdd(block_h_control),
        subgroupAdd(dot(block_v_acc, one)),
        subgroupMin(first_bright),
        subgroupMax(end_bright),
        0u,
    );
    if sg_lane == 0u {
        sub_sums[sg_id] = sums;
    }
    workgroupBarrier();
    if lid != 0u {
        return;
    }
    // Invocation 0 need not be in subgroup 0: start from the table, not from its own sums.
    sums = sub_sums[0];
    for (var s = 1u; s < sg_count; s++) {
        let other = sub_sums[s];
        for (var k = 0u; k < 12u; k++) {
            sums[k] += other[k];
        }
        sums[12] = min(sums[12], other[12]);
        sums[13] = max(sums[13], other[13]);
    }
    partials[d.row_base + row] = RowPartial(
        sums[0],
        sums[1],
        sums[2],
        sums[3],
        sums[4],
        sums[5],
        sums[6],
        sums[7],
        sums[8],
        sums[9],
        sums[10],
        select(0u, sums[11], v_boundary),
        select(0u, sums[11], v_control),
        sums[12],
        sums[13],
        0u,
    );
}
