// Pixel tests shared by the statistics passes (frame_stats.wgsl, frame_stats_subgroup.wgsl),
// which must judge every pixel alike to give the same row partials.

// Twin: streamwatch::detect::cpu::EDGE_THRESHOLD.
const EDGE_THRESHOLD: u32 = 12u;
// Twin: streamwatch::detect::cpu::BLOCK_MIN_STEP.
const BLOCK_MIN_STEP: u32 = 2u;

fn absdiff(a: u32, b: u32) -> u32 {
    return max(a, b) - min(a, b);
}

fn absdiff4(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    return max(a, b) - min(a, b);
}

// A step looks like a block edge when it is clear of noise and more than twice the steps just
// before and after it (the inside of each block is flat next to it).
fn block_edge2(step: vec2<u32>, before: vec2<u32>, after: vec2<u32>) -> vec2<bool> {
    return (step >= vec2<u32>(BLOCK_MIN_STEP)) & (step > 2u * max(before, after));
}

fn block_edge4(step: vec4<u32>, before: vec4<u32>, after: vec4<u32>) -> vec4<bool> {
    return (step >= vec4<u32>(BLOCK_MIN_STEP)) & (step > 2u * max(before, after));
}

// The rows a row's vertical statistics compare it with: those of the same field, `field_rows`
// rows apart (2 when the frame is interlaced). Rows y and y + step are compared with rows
// y - step and y + 2 step as the insides of the blocks; the block grid runs through each field.
// Twin: streamwatch::stats::VerticalNeighbours.
struct VerticalRows {
    // Words from a row to the next row of its field.
    step_words: u32,
    has_below: bool,
    // The pair (y, y + step) straddles the 8-row block grid of its field, or is a control pair.
    boundary: bool,
    control: bool,
}

fn vertical_rows(d: FrameDesc, row: u32) -> VerticalRows {
    let step = d.field_rows;
    let line = row / step;
    let tested = row + 2u * step < d.height;
    return VerticalRows(
        step * d.words_per_row,
        row + step < d.height,
        line % 8u == 7u && tested,
        line % 8u == 1u && tested,
    );
}
