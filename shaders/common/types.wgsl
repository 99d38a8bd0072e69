// Structs shared by the frame statistics shaders and their Rust twins in src/gpu/types.rs.
// streamwatch prepends this file to every entry shader (src/gpu/shaders.rs, and the naga test),
// since WGSL has no #include.

// Twin: streamwatch::gpu::types::FrameDesc (48 bytes). Offsets are in u32 words of `luma`.
struct FrameDesc {
    cur_word: u32,
    ref_word: u32,
    has_ref: u32,
    words_per_row: u32,
    ref_words_per_row: u32,
    width: u32,
    height: u32,
    row_base: u32,
    dark_threshold: u32,
    noise_threshold: u32,
    // Rows between a row and the next row of the same field: 2 for interlaced frames (each
    // field is measured on its own, so combing is no detail), else 1.
    field_rows: u32,
    _pad1: u32,
}

// Twin: streamwatch::gpu::types::RowPartial (64 bytes). u32 is enough for one row: the largest
// sum, of squares, overflows only past 66,000 pixels per row.
struct RowPartial {
    luma_sum: u32,
    dark_pixels: u32,
    diff_sum: u32,
    changed_pixels: u32,
    luma_sq_sum: u32,
    grad_h_sum: u32,
    grad_v_sum: u32,
    edges_h: u32,
    edges_v: u32,
    block_h_hits: u32,
    block_h_control: u32,
    block_v_hits: u32,
    block_v_control: u32,
    // First pixel brighter than dark_threshold, `width` when none; one past the last, 0 if none.
    first_bright: u32,
    end_bright: u32,
    _pad0: u32,
}

// Twin: streamwatch::gpu::types::FrameTotals (96 bytes). Sums that can pass 2^32 are lo/hi pairs.
struct FrameTotals {
    luma_sum_lo: u32,
    luma_sum_hi: u32,
    luma_sq_sum_lo: u32,
    luma_sq_sum_hi: u32,
    diff_sum_lo: u32,
    diff_sum_hi: u32,
    grad_h_sum_lo: u32,
    grad_h_sum_hi: u32,
    grad_v_sum_lo: u32,
    grad_v_sum_hi: u32,
    dark_pixels: u32,
    changed_pixels: u32,
    edges_h: u32,
    edges_v: u32,
    block_h_hits: u32,
    block_h_control: u32,
    block_v_hits: u32,
    block_v_control: u32,
    bar_top: u32,
    bar_bottom: u32,
    bar_left: u32,
    bar_right: u32,
    // Rows (all but the last) with no strong step to the row below.
    quiet_rows: u32,
    _pad0: u32,
}
