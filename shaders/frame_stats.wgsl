// Pass 1 of the frame statistics: one invocation per (row, frame) writes that row's partial sums.
//
// Rust twins (src/gpu/types.rs): `FrameDesc` <-> `streamwatch::gpu::types::FrameDesc`,
// `RowPartial` <-> `streamwatch::gpu::types::RowPartial`. CPU port, loop for loop:
// src/detect/cpu/frame_stats.rs `row_partial`.
//
// No workgroup memory or barriers: on lavapipe a barrier-based reduction ran 5-8x slower than
// one thread per row writing its own partial sums, and pass 2 (frame_reduce.wgsl) adds them up.
// Dispatch: (ceil(max_height / 64), n_frames, 1).

// Shared structs (FrameDesc, RowPartial, FrameTotals) come from shaders/common/types.wgsl.

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
    let full_words = d.width / 4u;
    let tail_pixels = d.width % 4u;
    let cur_row = d.cur_word + row * d.words_per_row;
    let ref_row = d.ref_word + row * d.ref_words_per_row;
    let dark_t = vec4<u32>(d.dark_threshold);
    let noise_t = vec4<u32>(d.noise_threshold);
    let zero = vec4<u32>(0u);
    let one = vec4<u32>(1u);
    // Lanes of the last word that hold pixels; the others are row padding and must not count.
    let tail_mask = vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(tail_pixels);

    var luma_acc = zero;
    var dark_acc = zero;
    var diff_acc = zero;
    var changed_acc = zero;

    // The branch is uniform per frame, so the loop without a reference skips the loads.
    if d.has_ref != 0u {
        for (var i = 0u; i < full_words; i++) {
            let c = unpack4xU8(luma[cur_row + i]);
            let p = unpack4xU8(luma[ref_row + i]);
            let diff = max(c, p) - min(c, p);
            luma_acc += c;
            dark_acc += select(zero, one, c <= dark_t);
            diff_acc += diff;
            changed_acc += select(zero, one, diff > noise_t);
        }
        if tail_pixels != 0u {
            let c = select(zero, unpack4xU8(luma[cur_row + full_words]), tail_mask);
            let p = select(zero, unpack4xU8(luma[ref_row + full_words]), tail_mask);
            let diff = max(c, p) - min(c, p);
            luma_acc += c;
            dark_acc += select(zero, one, (c <= dark_t) & tail_mask);
            diff_acc += diff;
            changed_acc += select(zero, one, diff > noise_t);
        }
    } else {
        for (var i = 0u; i < full_words; i++) {
            let c = unpack4xU8(luma[cur_row + i]);
            luma_acc += c;
            dark_acc += select(zero, one, c <= dark_t);
        }
        if tail_pixels != 0u {
            let c = select(zero, unpack4xU8(luma[cur_row + full_words]), tail_mask);
            luma_acc += c;
            dark_acc += select(zero, one, (c <= dark_t) & tail_mask);
        }
    }

    partials[d.row_base + row] = RowPartial(
        dot(luma_acc, one),
        dot(dark_acc, one),
        dot(diff_acc, one),
        dot(changed_acc, one),
    );
}
