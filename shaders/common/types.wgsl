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
    _pad0: u32,
    _pad1: u32,
}

// Twin: streamwatch::gpu::types::RowPartial (16 bytes). u32 is enough for one row:
// 255 * width overflows only past 16M pixels per row.
struct RowPartial {
    luma_sum: u32,
    dark_pixels: u32,
    diff_sum: u32,
    changed_pixels: u32,
}

// Twin: streamwatch::gpu::types::FrameTotals (32 bytes).
struct FrameTotals {
    luma_sum_lo: u32,
    luma_sum_hi: u32,
    dark_pixels: u32,
    diff_sum_lo: u32,
    diff_sum_hi: u32,
    changed_pixels: u32,
    _pad0: u32,
    _pad1: u32,
}
