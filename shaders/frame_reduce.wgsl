// Pass 2 of the frame statistics: one invocation per frame adds up the row partials of
// frame_stats.wgsl into the frame's totals and finds the dark bars at its edges.
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
    var sq_sum = vec2<u32>(0u);
    var diff_sum = vec2<u32>(0u);
    var grad_h = vec2<u32>(0u);
    var grad_v = vec2<u32>(0u);
    var dark = 0u;
    var changed = 0u;
    var edges_h = 0u;
    var edges_v = 0u;
    var block_h_hits = 0u;
    var block_h_control = 0u;
    var block_v_hits = 0u;
    var block_v_control = 0u;
    var quiet_rows = 0u;
    // Rows and columns that hold a pixel brighter than the dark threshold.
    var first_row = d.height;
    var end_row = 0u;
    var first_col = d.width;
    var end_col = 0u;
    for (var r = 0u; r < d.height; r++) {
        let p = partials[d.row_base + r];
        luma_sum = add64(luma_sum, p.luma_sum);
        sq_sum = add64(sq_sum, p.luma_sq_sum);
        diff_sum = add64(diff_sum, p.diff_sum);
        grad_h = add64(grad_h, p.grad_h_sum);
        grad_v = add64(grad_v, p.grad_v_sum);
        dark += p.dark_pixels;
        changed += p.changed_pixels;
        edges_h += p.edges_h;
        edges_v += p.edges_v;
        block_h_hits += p.block_h_hits;
        block_h_control += p.block_h_control;
        block_v_hits += p.block_v_hits;
        block_v_control += p.block_v_control;
        // Rows with a row below them in their field (`field_rows` apart).
        quiet_rows += select(0u, 1u, p.edges_v == 0u && r + d.field_rows < d.height);
        if p.end_bright > 0u {
            first_row = min(first_row, r);
            end_row = r + 1u;
            first_col = min(first_col, p.first_bright);
            end_col = max(end_col, p.end_bright);
        }
    }
    // A frame with no bright pixel is all top bar.
    let bar_bottom = select(0u, d.height - end_row, end_row > 0u);
    let bar_right = select(0u, d.width - end_col, end_row > 0u);
    totals[f] = FrameTotals(
        luma_sum.x, luma_sum.y,
        sq_sum.x, sq_sum.y,
        diff_sum.x, diff_sum.y,
        grad_h.x, grad_h.y,
        grad_v.x, grad_v.y,
        dark,
        changed,
        edges_h,
        edges_v,
        block_h_hits,
        block_h_control,
        block_v_hits,
        block_v_control,
        first_row,
        bar_bottom,
        first_col,
        bar_right,
        quiet_rows,
        0u,
    );
}
