//! [`GpuBackend`]: one upload, one two-pass dispatch, one readback per batch.
//!
//! Per submission the luma buffer holds every frame of the submission, then the reference
//! frames copied in from the history buffer (each slot's last frame, kept on the GPU between
//! batches). Pass 1 (`frame_stats.wgsl`) writes one [`RowPartial`] per row, pass 2
//! (`frame_reduce.wgsl`) one [`FrameTotals`] per frame; the totals are copied to a mappable
//! buffer and read back once.

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::mpsc;
use std::time::Instant;

use bytemuck::Zeroable;
use wgpu::WriteOnly;
use wgpu::util::StagingBelt;

use super::context::{GpuContext, capture_errors};
use super::shaders::{ShaderFile, ShaderSources};
use super::types::{FrameDesc, FrameShape, FrameTotals, RowPartial};
use crate::frame::VideoFrame;
use crate::perf::{PERF, Stage};
use crate::stats::cpu::check_frame;
use crate::stats::{BatchItem, EngineError, FrameStats, StatsBackend};

/// Workgroup size of every shader (`@workgroup_size(64, 1, 1)`).
const WORKGROUP: u32 = 64;
const DESC_BYTES: u64 = size_of::<FrameDesc>() as u64;
const PARTIAL_BYTES: u64 = size_of::<RowPartial>() as u64;
const TOTALS_BYTES: u64 = size_of::<FrameTotals>() as u64;
/// Staging chunk size: a few 1080p frames. Larger uploads get a dedicated chunk, kept for reuse.
const STAGING_CHUNK: u64 = 16 << 20;
const MIN_HISTORY: u64 = 4 << 20;
/// Luma bytes (frames plus references) of one submission unless [`GpuOptions`] says otherwise:
/// about 64 1080p frames. A larger batch is split into several submissions, so the buffers of
/// each binding set and each staging chunk stay this size however many streams there are, and
/// GPU memory per stream falls as streams are added. 128 MiB is also lavapipe's binding limit,
/// so software and hardware adapters split batches alike.
const DEFAULT_SUBMISSION_BYTES: u64 = 128 << 20;

/// Environment variable overriding [`SubgroupMode::Auto`]: `never` (the per-row pass even
/// where the adapter has subgroup operations), `always` (the subgroup pass wherever the
/// adapter has them, software adapters included) or `auto`.
pub const SUBGROUPS_ENV: &str = "STREAMWATCH_SUBGROUPS";

/// Whether pass 1 uses subgroup operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubgroupMode {
    /// Where the adapter has `Features::SUBGROUP` and is a real GPU ([`SUBGROUPS_ENV`] may
    /// override). Software adapters (lavapipe) get the per-row pass: their workgroup barriers
    /// are slow, and the subgroup pass measured 2-3.5x slower there.
    #[default]
    Auto,
    /// Wherever the adapter has `Features::SUBGROUP`.
    Always,
    /// Never: the per-row pass.
    Never,
}

impl SubgroupMode {
    /// Whether to request subgroups from this adapter.
    fn wanted(self, info: &wgpu::AdapterInfo) -> bool {
        let mode = match self {
            SubgroupMode::Auto => match std::env::var(SUBGROUPS_ENV).as_deref() {
                Ok("never") => SubgroupMode::Never,
                Ok("always") => SubgroupMode::Always,
                _ => SubgroupMode::Auto,
            },
            explicit => explicit,
        };
        match mode {
            SubgroupMode::Auto => info.device_type != wgpu::DeviceType::Cpu,
            SubgroupMode::Always => true,
            SubgroupMode::Never => false,
        }
    }
}

/// Construction options; [`Default`] is what production uses.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    pub shaders: ShaderSources,
    /// Caps the luma bytes (frames plus references) of one submission below the adapter's
    /// storage binding limit; `None` is [`DEFAULT_SUBMISSION_BYTES`]. Tests use a small cap to
    /// force a batch to be split.
    pub max_submission_bytes: Option<u64>,
    /// Which pass 1 to use where the adapter has subgroup operations.
    pub subgroups: SubgroupMode,
}

/// Which pass 1 computes the row partials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsVariant {
    /// `frame_stats.wgsl`: one invocation per row.
    PerRow,
    /// `frame_stats_subgroup.wgsl`: one workgroup per row, reduced with subgroup operations.
    Subgroup,
}

impl StatsVariant {
    fn describe(self) -> &'static str {
        match self {
            StatsVariant::PerRow => "per-row statistics pass",
            StatsVariant::Subgroup => "subgroup statistics pass",
        }
    }
}

/// A buffer that is replaced by a larger one when a submission needs more room.
struct GrowBuffer {
    label: &'static str,
    usage: wgpu::BufferUsages,
    buffer: Option<wgpu::Buffer>,
    size: u64,
}

impl GrowBuffer {
    fn new(label: &'static str, usage: wgpu::BufferUsages) -> Self {
        Self {
            label,
            usage,
            buffer: None,
            size: 0,
        }
    }

    /// Makes room for `needed` bytes; true when the buffer was replaced (bind groups go stale).
    fn ensure(&mut self, device: &wgpu::Device, needed: u64, cap: u64) -> bool {
        if self.buffer.is_some() && self.size >= needed {
            return false;
        }
        let size = needed.max(256).next_power_of_two().min(cap).max(needed);
        self.buffer = Some(device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(self.label),
            size,
            usage: self.usage,
            mapped_at_creation: false,
        }));
        self.size = size;
        true
    }

    fn get(&self) -> Result<&wgpu::Buffer, EngineError> {
        self.buffer
            .as_ref()
            .ok_or_else(|| EngineError::Batch(format!("internal: {} not allocated", self.label)))
    }
}

/// Below this many bytes a submission's frames are copied to the staging buffer by the engine
/// thread alone: starting threads would cost more than it saves.
const PARALLEL_COPY_BYTES: usize = 16 << 20;
/// Most threads copying one submission: past this, memory bandwidth, not cores, bounds it.
const MAX_COPY_THREADS: usize = 8;

/// Threads that copy a large submission's frames: half the cores, so that decoding keeps the
/// other half, and 1 on a machine of 2 or fewer cores.
pub(super) fn copy_thread_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cores / 2).clamp(1, MAX_COPY_THREADS)
}

/// A disjoint region of a staging buffer, handed to one copy thread.
struct StagingPart<'a>(WriteOnly<'a, [u8]>);

// SAFETY: `WriteOnly` is `Send` for sized `T: Send` only (its impl has no `?Sized`); a
// `WriteOnly<[u8]>` is a pointer and a length to bytes, which are `Send`, and `copy_planes`
// gives each thread a region no other thread or reference touches until the scope ends.
unsafe impl Send for StagingPart<'_> {}

impl<'a> StagingPart<'a> {
    /// Taken by value, so a closure captures the whole (`Send`) part, not its field.
    fn into_region(self) -> WriteOnly<'a, [u8]> {
        self.0
    }
}

/// Copies `planes`, back to back, into `dst` (their total length). One core copies about
/// 10 GB/s, a fifth of what a PCIe 5 GPU takes in, so large submissions are split by bytes
/// across `threads`.
pub(super) fn copy_planes(mut dst: WriteOnly<'_, [u8]>, planes: &[&[u8]], threads: usize) {
    let total: usize = planes.iter().map(|p| p.len()).sum();
    if threads <= 1 || total < PARALLEL_COPY_BYTES || planes.len() < 2 {
        for plane in planes {
            let (head, rest) = dst.split_at(plane.len());
            head.into_slice(..).copy_from_slice(plane);
            dst = rest;
        }
        return;
    }
    let share = total.div_ceil(threads);
    std::thread::scope(|scope| {
        let mut rest = planes;
        while !rest.is_empty() {
            // Whole planes per thread, about `share` bytes each.
            let mut take = 0;
            let mut bytes = 0;
            while take < rest.len() && (take == 0 || bytes + rest[take].len() <= share) {
                bytes += rest[take].len();
                take += 1;
            }
            let (group, later) = rest.split_at(take);
            let (part, remaining) = dst.split_at(bytes);
            dst = remaining;
            rest = later;
            let part = StagingPart(part);
            scope.spawn(move || copy_planes(part.into_region(), group, 1));
        }
    });
}

/// Where a slot's reference frame lives in the history buffer.
struct SlotRegion {
    offset: u64,
    capacity: u64,
    width: u32,
    height: u32,
    stride: usize,
    /// Bytes of the stored frame (`stride * height`), at most `capacity`.
    bytes: u64,
}

/// The last frame of every slot, on the GPU: one buffer with a region per slot, bump-allocated;
/// regions freed by `release` or outgrown by a resolution change are reclaimed when it grows.
/// It is never bound to a shader (only copied from and to), so it is limited by the maximum
/// buffer size, not by the storage binding size.
struct History {
    buffer: Option<wgpu::Buffer>,
    size: u64,
    used: u64,
    garbage: u64,
    max_size: u64,
    slots: HashMap<u32, SlotRegion>,
}

impl History {
    fn new(max_size: u64) -> Self {
        Self {
            buffer: None,
            size: 0,
            used: 0,
            garbage: 0,
            max_size,
            slots: HashMap::new(),
        }
    }

    fn release(&mut self, slot: u32) {
        if let Some(r) = self.slots.remove(&slot) {
            self.garbage += r.capacity;
        }
        if self.slots.is_empty() {
            self.used = 0;
            self.garbage = 0;
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.used = 0;
        self.garbage = 0;
    }

    /// Returns the offset at which `frame` becomes the reference of `slot`, moving the slot to
    /// a new region (and growing the buffer, with copies recorded in `encoder`) when needed.
    fn reserve(
        &mut self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        slot: u32,
        frame: &VideoFrame,
    ) -> Result<u64, EngineError> {
        let bytes = (frame.stride * frame.height as usize) as u64;
        if let Some(r) = self.slots.get_mut(&slot)
            && r.capacity >= bytes
        {
            r.width = frame.width;
            r.height = frame.height;
            r.stride = frame.stride;
            r.bytes = bytes;
            return Ok(r.offset);
        }
        if let Some(old) = self.slots.remove(&slot) {
            self.garbage += old.capacity;
        }
        if self.used + bytes > self.size {
            self.grow(device, encoder, bytes)?;
        }
        let offset = self.used;
        self.used += bytes;
        self.slots.insert(
            slot,
            SlotRegion {
                offset,
                capacity: bytes,
                width: frame.width,
                height: frame.height,
                stride: frame.stride,
                bytes,
            },
        );
        Ok(offset)
    }

    /// Moves the live regions, packed, into a new buffer with room for `extra` more bytes.
    fn grow(
        &mut self,
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        extra: u64,
    ) -> Result<(), EngineError> {
        let live: u64 = self.slots.values().map(|r| r.capacity).sum();
        let needed = live + extra;
        if needed > self.max_size {
            return Err(EngineError::Batch(format!(
                "reference frames of {} streams need {needed} bytes of GPU memory, more than the \
                 adapter's maximum buffer size {}",
                self.slots.len() + 1,
                self.max_size
            )));
        }
        let size = needed
            .max(MIN_HISTORY)
            .next_power_of_two()
            .min(self.max_size);
        let new = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("reference frames"),
            size,
            usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut cursor = 0;
        for r in self.slots.values_mut() {
            if let Some(old) = &self.buffer
                && r.bytes > 0
            {
                encoder.copy_buffer_to_buffer(old, r.offset, &new, cursor, r.bytes);
            }
            r.offset = cursor;
            cursor += r.capacity;
        }
        self.buffer = Some(new);
        self.size = size;
        self.used = cursor;
        self.garbage = 0;
        Ok(())
    }
}

/// Where a frame's reference comes from in one submission.
#[derive(Clone, Copy)]
enum Reference {
    None,
    /// An earlier frame of the same slot in this submission (index into `ChunkPlan::items`).
    Item(usize),
    /// The slot's history region, copied in (index into `ChunkPlan::copy_ins`).
    History(usize),
}

struct Planned {
    batch_index: usize,
    cur_byte: u64,
    bytes: u64,
    reference: Reference,
}

struct CopyIn {
    slot: u32,
    /// Offset within the reference area, which follows the frames in the luma buffer.
    ref_byte: u64,
    bytes: u64,
    stride: usize,
}

/// The items of one submission and where each goes; reused across calls.
#[derive(Default)]
struct ChunkPlan {
    items: Vec<Planned>,
    copy_ins: Vec<CopyIn>,
    /// Last item of each slot in this submission.
    last_of_slot: HashMap<u32, usize>,
    frame_bytes: u64,
    ref_bytes: u64,
    rows: u64,
    max_height: u32,
}

/// What one submission may hold.
struct ChunkLimits {
    luma_bytes: u64,
    frames: usize,
    rows: u64,
}

impl ChunkPlan {
    fn clear(&mut self) {
        self.items.clear();
        self.copy_ins.clear();
        self.last_of_slot.clear();
        self.frame_bytes = 0;
        self.ref_bytes = 0;
        self.rows = 0;
        self.max_height = 0;
    }

    /// Adds item `batch_index` unless the submission would exceed `limits`.
    fn try_add(
        &mut self,
        batch: &[BatchItem<'_>],
        batch_index: usize,
        history: &History,
        limits: &ChunkLimits,
    ) -> bool {
        let item = &batch[batch_index];
        let frame = item.frame;
        let bytes = (frame.stride * frame.height as usize) as u64;
        let same_size = |w: u32, h: u32| w == frame.width && h == frame.height;
        let (reference, ref_bytes) = match self.last_of_slot.get(&item.slot) {
            Some(&j) => {
                let prev = batch[self.items[j].batch_index].frame;
                if same_size(prev.width, prev.height) {
                    (Reference::Item(j), 0)
                } else {
                    (Reference::None, 0)
                }
            }
            None => match history.slots.get(&item.slot) {
                Some(r) if same_size(r.width, r.height) => {
                    (Reference::History(self.copy_ins.len()), r.bytes)
                }
                _ => (Reference::None, 0),
            },
        };
        if self.frame_bytes + self.ref_bytes + bytes + ref_bytes > limits.luma_bytes
            || self.items.len() >= limits.frames
            || self.rows + u64::from(frame.height) > limits.rows
        {
            return false;
        }
        if let (Reference::History(_), Some(r)) = (reference, history.slots.get(&item.slot)) {
            self.copy_ins.push(CopyIn {
                slot: item.slot,
                ref_byte: self.ref_bytes,
                bytes: ref_bytes,
                stride: r.stride,
            });
            self.ref_bytes += ref_bytes;
        }
        self.last_of_slot.insert(item.slot, self.items.len());
        self.items.push(Planned {
            batch_index,
            cur_byte: self.frame_bytes,
            bytes,
            reference,
        });
        self.frame_bytes += bytes;
        self.rows += u64::from(frame.height);
        self.max_height = self.max_height.max(frame.height);
        true
    }

    /// Fills `descs` with a descriptor per planned frame, padded to `n_padded`, and `frames`
    /// with what turning each frame's totals into statistics needs.
    fn describe_frames(
        &self,
        batch: &[BatchItem<'_>],
        n_padded: u64,
        descs: &mut Vec<FrameDesc>,
        frames: &mut Vec<FrameShape>,
    ) {
        descs.clear();
        frames.clear();
        let mut row_base = 0u64;
        for p in &self.items {
            let item = &batch[p.batch_index];
            let f = item.frame;
            let (has_ref, ref_byte, ref_stride) = match p.reference {
                Reference::None => (0, 0, f.stride),
                Reference::Item(j) => (
                    1,
                    self.items[j].cur_byte,
                    batch[self.items[j].batch_index].frame.stride,
                ),
                Reference::History(k) => {
                    let ci = &self.copy_ins[k];
                    (1, self.frame_bytes + ci.ref_byte, ci.stride)
                }
            };
            descs.push(FrameDesc {
                cur_word: (p.cur_byte / 4) as u32,
                ref_word: (ref_byte / 4) as u32,
                has_ref,
                words_per_row: (f.stride / 4) as u32,
                ref_words_per_row: (ref_stride / 4) as u32,
                width: f.width,
                height: f.height,
                row_base: row_base as u32,
                dark_threshold: u32::from(item.params.dark_threshold),
                noise_threshold: u32::from(item.params.noise_threshold),
                field_rows: f.field_rows(),
                _pad1: 0,
            });
            frames.push(FrameShape {
                width: f.width,
                height: f.height,
                has_prev: has_ref == 1,
                field_rows: f.field_rows(),
            });
            row_base += u64::from(f.height);
        }
        // The padding descriptors have height 0, so pass 2's extra invocations sum nothing.
        descs.resize(n_padded as usize, FrameDesc::zeroed());
    }
}

/// The buffers one submission binds. A submission in flight owns its set until its results are
/// read back, so the next batch is written to other buffers while the device still reads these.
struct BindingSet {
    luma: GrowBuffer,
    descs: GrowBuffer,
    partials: GrowBuffer,
    totals: GrowBuffer,
    readback: GrowBuffer,
    /// (pass 1, pass 2); rebuilt when a bound buffer is replaced.
    bind_groups: Option<(wgpu::BindGroup, wgpu::BindGroup)>,
    /// What turning the totals into [`FrameStats`] needs, per frame of the submission.
    frames: Vec<FrameShape>,
    submission: Option<wgpu::SubmissionIndex>,
    /// Tells this submission's map callback from a stale one of an abandoned submission.
    generation: u64,
    mapped: Option<Result<(), wgpu::BufferAsyncError>>,
    totals_bytes: u64,
    submitted_at: Instant,
}

impl BindingSet {
    fn new() -> Self {
        let storage = wgpu::BufferUsages::STORAGE;
        let copy_dst = wgpu::BufferUsages::COPY_DST;
        let copy_src = wgpu::BufferUsages::COPY_SRC;
        Self {
            luma: GrowBuffer::new("luma", storage | copy_dst | copy_src),
            descs: GrowBuffer::new("frame descriptors", storage | copy_dst),
            partials: GrowBuffer::new("row partials", storage),
            totals: GrowBuffer::new("frame totals", storage | copy_src),
            readback: GrowBuffer::new("totals readback", wgpu::BufferUsages::MAP_READ | copy_dst),
            bind_groups: None,
            frames: Vec::new(),
            submission: None,
            generation: 0,
            mapped: None,
            totals_bytes: 0,
            submitted_at: Instant::now(),
        }
    }

    fn bytes(&self) -> u64 {
        [
            &self.luma,
            &self.descs,
            &self.partials,
            &self.totals,
            &self.readback,
        ]
        .iter()
        .map(|b| b.size)
        .sum()
    }
}

/// A batch submitted and not yet collected.
#[derive(Default)]
struct PendingBatch {
    /// Its submissions not yet read back (the oldest entries of `GpuBackend::chunks`).
    chunks: usize,
    /// Results of its submissions read back so far, in item order.
    stats: Vec<FrameStats>,
    /// Set when the batch can no longer give results (an earlier or its own submission failed).
    failed: Option<String>,
}

/// Statistics on the GPU through wgpu; see the module documentation for the data flow.
pub struct GpuBackend {
    ctx: GpuContext,
    stats_pipeline: wgpu::ComputePipeline,
    reduce_pipeline: wgpu::ComputePipeline,
    variant: StatsVariant,
    stats_layout: wgpu::BindGroupLayout,
    reduce_layout: wgpu::BindGroupLayout,
    sets: Vec<BindingSet>,
    free_sets: Vec<usize>,
    /// Most binding sets kept: one per batch the engine keeps in flight.
    max_sets: usize,
    /// Submissions in flight, oldest first (indices into `sets`).
    chunks: VecDeque<usize>,
    /// Batches in flight, oldest first, and emptied ones to reuse.
    batches: VecDeque<PendingBatch>,
    spare_batches: Vec<PendingBatch>,
    history: History,
    belt: StagingBelt,
    limits: ChunkLimits,
    binding_cap: u64,
    submissions: u64,
    generation: u64,
    map_tx: mpsc::Sender<(usize, u64, Result<(), wgpu::BufferAsyncError>)>,
    map_rx: mpsc::Receiver<(usize, u64, Result<(), wgpu::BufferAsyncError>)>,
    /// Largest single upload so far: the staging belt keeps a chunk at least this large.
    largest_upload: u64,
    /// Test hook: the next readback fails as a lost device would make it.
    fail_next_readback: bool,
    /// Threads that copy a large submission's frames to the staging buffer.
    copy_threads: usize,
    // Scratch kept across calls.
    chunk: ChunkPlan,
    desc_scratch: Vec<FrameDesc>,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn compile(
    ctx: &GpuContext,
    shader: &ShaderFile,
    layout: &wgpu::BindGroupLayout,
) -> Result<wgpu::ComputePipeline, EngineError> {
    let device = &ctx.device;
    let (pipeline, error) = capture_errors(device, || {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader.file),
            source: wgpu::ShaderSource::Wgsl(shader.source.clone()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(shader.file),
            bind_group_layouts: &[Some(layout)],
            immediate_size: 0,
        });
        device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader.file),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        })
    });
    match error.or_else(|| ctx.take_uncaptured()) {
        None => Ok(pipeline),
        Some(message) => Err(EngineError::Shader {
            file: shader.file,
            message,
        }),
    }
}

/// The bindings both passes have: two storage buffers read, the third written.
fn pass_layout(device: &wgpu::Device, label: &str) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(label),
        entries: &[
            storage_entry(0, true),
            storage_entry(1, true),
            storage_entry(2, false),
        ],
    })
}

/// Pass 1: the subgroup one where the device has subgroups and the driver takes the shader,
/// else the per-row one.
fn compile_stats_pass(
    ctx: &GpuContext,
    shaders: &ShaderSources,
    layout: &wgpu::BindGroupLayout,
) -> Result<(wgpu::ComputePipeline, StatsVariant), EngineError> {
    // The per-row pass is compiled everywhere, so it is checked everywhere and is there to
    // fall back on if a driver rejects the subgroup one.
    let per_row = compile(ctx, &shaders.frame_stats, layout)?;
    if !ctx.subgroups {
        return Ok((per_row, StatsVariant::PerRow));
    }
    match compile(ctx, &shaders.frame_stats_subgroup, layout) {
        Ok(pipeline) => Ok((pipeline, StatsVariant::Subgroup)),
        Err(e) => {
            tracing::warn!(error = %e, "subgroup statistics pass unavailable; using the per-row one");
            Ok((per_row, StatsVariant::PerRow))
        }
    }
}

/// The size every bound buffer stays within, and what one submission may hold under it.
fn submission_limits(l: &wgpu::Limits, max_submission_bytes: Option<u64>) -> (u64, ChunkLimits) {
    // Every bound buffer stays within one storage binding; u32 word offsets reach 16 GiB.
    let binding_cap = l
        .max_storage_buffer_binding_size
        .min(l.max_buffer_size)
        .min(u64::from(u32::MAX))
        & !3;
    let luma_bytes = max_submission_bytes
        .unwrap_or(DEFAULT_SUBMISSION_BYTES)
        .min(binding_cap)
        & !3;
    let max_dim = u64::from(l.max_compute_workgroups_per_dimension);
    let limits = ChunkLimits {
        luma_bytes,
        // Pass 1 dispatches one workgroup row per frame; padded descriptors must fit too.
        frames: max_dim.min((binding_cap / DESC_BYTES).saturating_sub(u64::from(WORKGROUP)))
            as usize,
        rows: binding_cap / PARTIAL_BYTES,
    };
    (binding_cap, limits)
}

impl GpuBackend {
    /// Picks the adapter, creates the device, compiles the shaders and creates the pipelines.
    pub fn new() -> Result<Self, EngineError> {
        Self::with_options(GpuOptions::default())
    }

    /// As [`GpuBackend::new`] with other shader sources (tests inject broken ones).
    pub fn with_shader_sources(shaders: ShaderSources) -> Result<Self, EngineError> {
        Self::with_options(GpuOptions {
            shaders,
            ..GpuOptions::default()
        })
    }

    pub fn with_options(options: GpuOptions) -> Result<Self, EngineError> {
        let ctx = GpuContext::new(|info| options.subgroups.wanted(info))?;
        let device = &ctx.device;
        let stats_layout = pass_layout(device, "frame_stats bindings");
        let reduce_layout = pass_layout(device, "frame_reduce bindings");
        let (stats_pipeline, variant) = compile_stats_pass(&ctx, &options.shaders, &stats_layout)?;
        let reduce_pipeline = compile(&ctx, &options.shaders.frame_reduce, &reduce_layout)?;
        let (binding_cap, limits) = submission_limits(&ctx.limits, options.max_submission_bytes);
        let (map_tx, map_rx) = mpsc::channel();
        Ok(Self {
            stats_pipeline,
            reduce_pipeline,
            variant,
            stats_layout,
            reduce_layout,
            sets: Vec::new(),
            free_sets: Vec::new(),
            max_sets: crate::config::DEFAULT_BATCHES_IN_FLIGHT,
            chunks: VecDeque::new(),
            batches: VecDeque::new(),
            spare_batches: Vec::new(),
            history: History::new(ctx.limits.max_buffer_size & !3),
            belt: StagingBelt::new(device.clone(), STAGING_CHUNK),
            limits,
            binding_cap,
            submissions: 0,
            generation: 0,
            largest_upload: 0,
            fail_next_readback: false,
            copy_threads: copy_thread_count(),
            map_tx,
            map_rx,
            chunk: ChunkPlan::default(),
            desc_scratch: Vec::new(),
            ctx,
        })
    }

    /// Queue submissions so far: one per batch, more when a batch exceeded the upload cap.
    pub fn submissions(&self) -> u64 {
        self.submissions
    }

    /// Device memory the backend owns: its buffers exactly, the staging belt estimated as one
    /// chunk of at least the largest upload per binding set (the belt does not say how many
    /// chunks it keeps; it reuses about one per submission in flight).
    pub fn gpu_memory_bytes(&self) -> u64 {
        let bound: u64 = self.sets.iter().map(BindingSet::bytes).sum();
        let staging = if self.largest_upload > 0 {
            self.largest_upload.max(STAGING_CHUNK) * self.sets.len().max(1) as u64
        } else {
            0
        };
        bound + self.history.size + staging
    }

    /// The adapter the backend runs on.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.ctx.adapter_info
    }

    /// The pass 1 in use.
    pub fn variant(&self) -> StatsVariant {
        self.variant
    }

    /// Makes the next readback fail, so tests can check recovery with batches in flight.
    #[doc(hidden)]
    pub fn inject_readback_failure(&mut self) {
        self.fail_next_readback = true;
    }

    /// Plans, uploads and submits `batch`, the last entry of `self.batches`.
    fn submit_batch(&mut self, batch: &[BatchItem<'_>]) -> Result<(), EngineError> {
        // The subgroup pass has one workgroup per row, the other one per 64 rows.
        let max_height = match self.variant {
            StatsVariant::PerRow => u32::from(u16::MAX) * WORKGROUP,
            StatsVariant::Subgroup => self.ctx.limits.max_compute_workgroups_per_dimension,
        };
        for item in batch {
            check_frame(item.frame)?;
            if item.frame.height > max_height {
                return Err(EngineError::Batch(format!(
                    "frame height {} exceeds what one dispatch covers",
                    item.frame.height
                )));
            }
        }
        self.chunk.clear();
        for i in 0..batch.len() {
            if self.chunk.try_add(batch, i, &self.history, &self.limits) {
                continue;
            }
            if self.chunk.items.is_empty() {
                let f = batch[i].frame;
                return Err(EngineError::Batch(format!(
                    "a {}x{} frame and its reference do not fit in one GPU submission ({} bytes)",
                    f.width, f.height, self.limits.luma_bytes
                )));
            }
            self.submit_chunk(batch)?;
            self.chunk.clear();
            // An empty submission takes any frame that fits the limits at all.
            if !self.chunk.try_add(batch, i, &self.history, &self.limits) {
                let f = batch[i].frame;
                return Err(EngineError::Batch(format!(
                    "a {}x{} frame and its reference do not fit in one GPU submission ({} bytes)",
                    f.width, f.height, self.limits.luma_bytes
                )));
            }
        }
        if !self.chunk.items.is_empty() {
            self.submit_chunk(batch)?;
        }
        Ok(())
    }

    /// A binding set no submission in flight uses. When all `max_sets` are busy (more batches
    /// submitted than announced, or a batch split into several submissions), the oldest
    /// submission is read back early and its results kept for `collect`.
    fn acquire_set(&mut self) -> Result<usize, EngineError> {
        if let Some(i) = self.free_sets.pop() {
            return Ok(i);
        }
        if self.sets.len() < self.max_sets || self.chunks.is_empty() {
            self.sets.push(BindingSet::new());
            return Ok(self.sets.len() - 1);
        }
        self.finish_oldest_chunk()?;
        self.free_sets
            .pop()
            .ok_or_else(|| EngineError::Batch("internal: no binding set came free".into()))
    }

    /// Makes room in every buffer of set `s` for the planned submission; rebuilds its bind
    /// groups when a bound buffer was replaced.
    fn ensure_buffers(&mut self, s: usize, n_padded: u64) -> Result<(), EngineError> {
        let device = &self.ctx.device;
        let cap = self.binding_cap;
        let c = &self.chunk;
        let set = &mut self.sets[s];
        let mut stale = set.bind_groups.is_none();
        stale |= set
            .luma
            .ensure(device, (c.frame_bytes + c.ref_bytes).max(4), cap);
        stale |= set.descs.ensure(device, n_padded * DESC_BYTES, cap);
        stale |= set
            .partials
            .ensure(device, c.rows.max(1) * PARTIAL_BYTES, cap);
        stale |= set.totals.ensure(device, n_padded * TOTALS_BYTES, cap);
        set.readback
            .ensure(device, c.items.len() as u64 * TOTALS_BYTES, u64::MAX);
        if stale {
            let bind =
                |layout: &wgpu::BindGroupLayout, label: &str, buffers: [&wgpu::Buffer; 3]| {
                    device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(label),
                        layout,
                        entries: &[
                            wgpu::BindGroupEntry {
                                binding: 0,
                                resource: buffers[0].as_entire_binding(),
                            },
                            wgpu::BindGroupEntry {
                                binding: 1,
                                resource: buffers[1].as_entire_binding(),
                            },
                            wgpu::BindGroupEntry {
                                binding: 2,
                                resource: buffers[2].as_entire_binding(),
                            },
                        ],
                    })
                };
            let (descs, luma) = (set.descs.get()?, set.luma.get()?);
            let (partials, totals) = (set.partials.get()?, set.totals.get()?);
            set.bind_groups = Some((
                bind(&self.stats_layout, "frame_stats", [descs, luma, partials]),
                bind(
                    &self.reduce_layout,
                    "frame_reduce",
                    [descs, partials, totals],
                ),
            ));
        }
        Ok(())
    }

    /// Uploads and dispatches the planned submission in a free binding set and asks for its
    /// totals to be mapped; `finish_oldest_chunk` reads them.
    fn submit_chunk(&mut self, batch: &[BatchItem<'_>]) -> Result<(), EngineError> {
        let started = Instant::now();
        let s = self.acquire_set()?;
        // Until it is submitted the set is neither free nor in flight: an error below leads to
        // `recover`, which rebuilds the free list.
        let n = self.chunk.items.len() as u64;
        let n_padded = n.next_multiple_of(u64::from(WORKGROUP));
        self.ensure_buffers(s, n_padded)?;
        self.largest_upload = self
            .largest_upload
            .max(self.chunk.frame_bytes + n_padded * DESC_BYTES);
        self.chunk.describe_frames(
            batch,
            n_padded,
            &mut self.desc_scratch,
            &mut self.sets[s].frames,
        );
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame statistics"),
            });
        self.record_uploads(&mut encoder, s, batch, n_padded)?;
        self.record_dispatch(&mut encoder, s, n, n_padded)?;
        self.record_reference_copies(&mut encoder, s, batch)?;
        self.submit_and_map(encoder, s, n, started)
    }

    /// Records the copies that fill set `s`'s luma and descriptor buffers.
    fn record_uploads(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        s: usize,
        batch: &[BatchItem<'_>],
        n_padded: u64,
    ) -> Result<(), EngineError> {
        let c = &self.chunk;
        let set = &self.sets[s];
        let (luma, descs) = (set.luma.get()?, set.descs.get()?);
        // References kept on the GPU since an earlier submission. Queue order makes this right
        // with submissions in flight: the copy-out of a slot's last frame by the submission
        // before executes before this copy-in.
        if let Some(history) = &self.history.buffer {
            for ci in &c.copy_ins {
                if let Some(r) = self.history.slots.get(&ci.slot)
                    && ci.bytes > 0
                {
                    encoder.copy_buffer_to_buffer(
                        history,
                        r.offset,
                        luma,
                        c.frame_bytes + ci.ref_byte,
                        ci.bytes,
                    );
                }
            }
        }
        // One staging copy for all frames: the belt's chunks are reused, so no per-batch buffer.
        if let Some(size) = NonZeroU64::new(c.frame_bytes) {
            let mut view = self.belt.write_buffer(encoder, luma, 0, size);
            // The frames lie back to back in item order from byte 0.
            let planes: Vec<&[u8]> = c
                .items
                .iter()
                .map(|p| &batch[p.batch_index].frame.luma[..p.bytes as usize])
                .collect();
            copy_planes(view.slice(..), &planes, self.copy_threads);
        }
        if let Some(size) = NonZeroU64::new(n_padded * DESC_BYTES) {
            let mut view = self.belt.write_buffer(encoder, descs, 0, size);
            view.copy_from_slice(bytemuck::cast_slice(&self.desc_scratch));
        }
        Ok(())
    }

    /// Records both passes over set `s`: pass 1 over the rows of `n` frames, pass 2 over the
    /// `n_padded` descriptors.
    fn record_dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        s: usize,
        n: u64,
        n_padded: u64,
    ) -> Result<(), EngineError> {
        let (stats_bg, reduce_bg) = self.sets[s]
            .bind_groups
            .as_ref()
            .ok_or_else(|| EngineError::Batch("internal: bind groups missing".into()))?;
        // Each dispatch is its own usage scope, so pass 2 sees pass 1's writes.
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("frame statistics"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.stats_pipeline);
        pass.set_bind_group(0, stats_bg, &[]);
        let row_groups = match self.variant {
            StatsVariant::PerRow => self.chunk.max_height.div_ceil(WORKGROUP),
            StatsVariant::Subgroup => self.chunk.max_height,
        };
        pass.dispatch_workgroups(row_groups.max(1), n as u32, 1);
        pass.set_pipeline(&self.reduce_pipeline);
        pass.set_bind_group(0, reduce_bg, &[]);
        pass.dispatch_workgroups((n_padded / u64::from(WORKGROUP)) as u32, 1, 1);
        Ok(())
    }

    /// Records the copy of each slot's last frame in set `s` to the history, where it becomes
    /// the slot's reference. Copied after the dispatch rather than written by the shader:
    /// frames of one slot in this submission would race.
    fn record_reference_copies(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        s: usize,
        batch: &[BatchItem<'_>],
    ) -> Result<(), EngineError> {
        let luma = self.sets[s].luma.get()?;
        for (i, p) in self.chunk.items.iter().enumerate() {
            let item = &batch[p.batch_index];
            if self.chunk.last_of_slot.get(&item.slot) != Some(&i) {
                continue;
            }
            let offset = self
                .history
                .reserve(&self.ctx.device, encoder, item.slot, item.frame)?;
            if let Some(history) = &self.history.buffer
                && p.bytes > 0
            {
                encoder.copy_buffer_to_buffer(luma, p.cur_byte, history, offset, p.bytes);
            }
        }
        Ok(())
    }

    /// Copies the `n` frames' totals to set `s`'s readback buffer, submits, and asks for the
    /// readback buffer to be mapped: from here the set is in flight.
    fn submit_and_map(
        &mut self,
        mut encoder: wgpu::CommandEncoder,
        s: usize,
        n: u64,
        started: Instant,
    ) -> Result<(), EngineError> {
        let set = &mut self.sets[s];
        let readback = set.readback.get()?;
        let totals_bytes = n * TOTALS_BYTES;
        encoder.copy_buffer_to_buffer(set.totals.get()?, 0, readback, 0, totals_bytes);

        self.belt.finish();
        let submitted = Instant::now();
        PERF.add(Stage::Upload, submitted - started, n);
        let index = self.ctx.queue.submit([encoder.finish()]);
        // The engine thread's share of the device's work: the submission itself (which may
        // block, e.g. on a software adapter) and, in `finish_oldest_chunk`, the wait.
        PERF.add(Stage::Gpu, submitted.elapsed(), 0);
        self.belt.recall();
        self.submissions += 1;
        self.generation += 1;

        let (tx, generation) = (self.map_tx.clone(), self.generation);
        readback.map_async(wgpu::MapMode::Read, 0..totals_bytes, move |r| {
            let _ = tx.send((s, generation, r));
        });
        set.submission = Some(index);
        set.generation = generation;
        set.mapped = None;
        set.totals_bytes = totals_bytes;
        set.submitted_at = submitted;
        self.chunks.push_back(s);
        let pending = self
            .batches
            .back_mut()
            .ok_or_else(|| EngineError::Batch("internal: submission without a batch".into()))?;
        pending.chunks += 1;
        Ok(())
    }

    /// Records the map callbacks that have fired.
    fn drain_map_results(&mut self) {
        while let Ok((s, generation, result)) = self.map_rx.try_recv() {
            if let Some(set) = self.sets.get_mut(s)
                && set.generation == generation
            {
                set.mapped = Some(result);
            }
        }
    }

    /// Waits for the oldest submission in flight, appends its statistics to its batch and frees
    /// its binding set.
    fn finish_oldest_chunk(&mut self) -> Result<(), EngineError> {
        let s = *self
            .chunks
            .front()
            .ok_or_else(|| EngineError::Batch("internal: no submission in flight".into()))?;
        let waiting = Instant::now();
        self.drain_map_results();
        while self.sets[s].mapped.is_none() {
            let index = self.sets[s].submission.clone();
            self.ctx
                .device
                .poll(wgpu::PollType::Wait {
                    submission_index: index,
                    timeout: None,
                })
                .map_err(|e| EngineError::Batch(format!("waiting for the GPU: {e}")))?;
            self.drain_map_results();
            // The callback runs inside the poll that sees the submission done; if it has not,
            // nothing later will deliver it.
            if self.sets[s].mapped.is_none() {
                return Err(EngineError::Batch(
                    "results not mapped after the GPU finished".into(),
                ));
            }
        }
        let computed = Instant::now();
        let set = &mut self.sets[s];
        let n = set.frames.len() as u64;
        // What the engine thread waited for the device; the part of the device's work that
        // overlapped the upload of the next batch is not in it.
        PERF.add(Stage::Gpu, computed - waiting, n);
        if let Some(Err(e)) = set.mapped.take() {
            return Err(EngineError::Batch(format!("reading results back: {e}")));
        }
        if std::mem::take(&mut self.fail_next_readback) {
            return Err(EngineError::Batch(
                "reading results back: injected failure".into(),
            ));
        }
        let pending = self
            .batches
            .iter_mut()
            .find(|b| b.chunks > 0)
            .ok_or_else(|| EngineError::Batch("internal: submission without a batch".into()))?;
        let readback = set.readback.get()?;
        let read = readback
            .get_mapped_range(0..set.totals_bytes)
            .map_err(|e| EngineError::Batch(format!("reading results back: {e}")))
            .map(|view| {
                for (m, bytes) in set
                    .frames
                    .iter()
                    .zip(view.chunks_exact(TOTALS_BYTES as usize))
                {
                    let t: FrameTotals = bytemuck::pod_read_unaligned(bytes);
                    pending.stats.push(t.into_stats(*m));
                }
            });
        readback.unmap();
        read?;
        pending.chunks -= 1;
        set.submission = None;
        self.chunks.pop_front();
        self.free_sets.push(s);
        PERF.add(Stage::Readback, computed.elapsed(), n);
        Ok(())
    }

    /// After a failed submission or readback nothing on the GPU side can be trusted: every
    /// batch in flight fails (later ones may reference frames of the failed one), every
    /// reference is forgotten (the next frame of each stream gets `has_prev = false`) and the
    /// buffers are recreated. Work still on the queue keeps the old buffers alive until it ends.
    fn recover(&mut self, cause: &EngineError) {
        for b in &mut self.batches {
            b.chunks = 0;
            b.stats.clear();
            b.failed
                .get_or_insert_with(|| format!("an earlier GPU batch failed: {cause}"));
        }
        self.chunks.clear();
        self.history.clear();
        self.history.buffer = None;
        self.history.size = 0;
        self.sets.clear();
        self.free_sets.clear();
        self.belt = StagingBelt::new(self.ctx.device.clone(), STAGING_CHUNK);
        while self.map_rx.try_recv().is_ok() {}
    }

    /// Runs `f` in error scopes; on any error (returned or raised by wgpu) recovers.
    fn guarded(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let device = self.ctx.device.clone();
        let (result, scope_error) = capture_errors(&device, || f(self));
        let gpu_error = scope_error.or_else(|| self.ctx.take_uncaptured());
        let result = match (result, gpu_error) {
            (Ok(()), None) => Ok(()),
            (Err(e), _) => Err(e),
            (Ok(()), Some(message)) => Err(EngineError::Batch(message)),
        };
        if let Err(e) = &result {
            self.recover(e);
        }
        result
    }
}

impl StatsBackend for GpuBackend {
    fn describe(&self) -> String {
        format!("GPU: {}, {}", self.ctx.describe(), self.variant.describe())
    }

    fn overlaps_batches(&self) -> bool {
        true
    }

    fn set_batches_in_flight(&mut self, batches: usize) {
        self.max_sets = batches.max(1);
    }

    fn submit(&mut self, batch: &[BatchItem<'_>]) -> Result<(), EngineError> {
        let mut pending = self.spare_batches.pop().unwrap_or_default();
        pending.chunks = 0;
        pending.stats.clear();
        pending.failed = None;
        self.batches.push_back(pending);
        if batch.is_empty() {
            return Ok(());
        }
        let result = self.guarded(|this| this.submit_batch(batch));
        if result.is_err()
            && let Some(failed) = self.batches.pop_back()
        {
            self.spare_batches.push(failed);
        }
        result
    }

    fn collect(&mut self, out: &mut Vec<FrameStats>) -> Option<Result<(), EngineError>> {
        out.clear();
        let front = self.batches.front()?;
        let result = match &front.failed {
            Some(message) => Err(EngineError::Batch(message.clone())),
            None => self.guarded(|this| {
                while this.batches.front().is_some_and(|b| b.chunks > 0) {
                    this.finish_oldest_chunk()?;
                }
                Ok(())
            }),
        };
        let mut done = self.batches.pop_front()?;
        if result.is_ok() {
            std::mem::swap(out, &mut done.stats);
        }
        done.stats.clear();
        self.spare_batches.push(done);
        PERF.set_gpu_bytes(self.gpu_memory_bytes());
        Some(result)
    }

    fn in_flight(&self) -> usize {
        self.batches.len()
    }

    fn release(&mut self, slot: u32) {
        self.history.release(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Planes of uneven sizes, past the parallel threshold, land back to back and intact
    /// whatever the thread count.
    #[test]
    fn copy_planes_packs_planes_in_order_on_any_thread_count() {
        let sizes = [3 << 20, 1, 5 << 20, 7, 2 << 20, 6 << 20, 4093, 1 << 20];
        let planes: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|b| (b * 7 + i * 31) as u8).collect())
            .collect();
        let expected: Vec<u8> = planes.concat();
        assert!(expected.len() >= PARALLEL_COPY_BYTES);
        let views: Vec<&[u8]> = planes.iter().map(Vec::as_slice).collect();
        for threads in [1, 2, 3, 8, 64] {
            let mut dst = vec![0u8; expected.len()];
            copy_planes(WriteOnly::from_mut(dst.as_mut_slice()), &views, threads);
            assert!(dst == expected, "{threads} threads");
        }
    }
}
