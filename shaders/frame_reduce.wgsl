// Pass 2 of the frame statistics: one invocation per frame adds up the row partials of
// frame_stats.wgsl into the frame's totals.
//
// Rust twins (src/gpu/types.rs): `FrameDesc` <-> `streamwatch::gpu::types::FrameDesc`,
// `RowPartial` <-> `streamwatch::gpu::types::RowPartial`, `FrameTotals` <->
// `streamwatch::gpu::types::FrameTotals`. CPU port, loop for loop: src/detect/cpu/frame_stats.rs
// `reduce_rows`.
//
// Sums are 64-bit as lo/hi u32 pairs with carry: a 4K frame of white already sums to 2.1e9 and
// larger frames overflow u32 (SHADER_INT64 is not available everywhere). Pixel counts fit u32:
// a frame with 2^32 pixels could not be bound as one storage buffer.
// Dispatch: (n_frames_padded / 64, 1, 1); the padding descriptors have height 0.

// Shared structs (FrameDesc, RowPartial, FrameTotals) come from shaders/common/types.wgsl.

@group(0) @binding(0) var<storage, read> descs: array<FrameDesc>;
@group(0) @binding(1) var<storage, read> partials: array<RowPartial>;
@group(0) @binding(2) var<storage, read_write> totals: array<FrameTotals>;

// Adds `x` to the 64-bit number (lo, hi).
fn add64(acc: vec2<u32>, x: u32) -> vec2<u32> {
    let lo = acc.x + x;
    return vec2<u32>(lo, acc.y + select(0u, 1u, lo < x));
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let f = gid.x;
    let d = descs[f];
    var luma_sum = vec2<u32>(0u);
    var diff_sum = vec2<u32>(0u);
    var dark = 0u;
    var changed = 0u;
    for (var r = 0u; r < d.height; r++) {
        let p = partials[d.row_base + r];
        luma_sum = add64(luma_sum, p.luma_sum);
        diff_sum = add64(diff_sum, p.diff_sum);
        dark += p.dark_pixels;
        changed += p.changed_pixels;
    }
    totals[f] = FrameTotals(luma_sum.x, luma_sum.y, dark, diff_sum.x, diff_sum.y, changed, 0u, 0u);
}
