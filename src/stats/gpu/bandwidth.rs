//! Host-to-device bandwidth of the adapter the engine uses, measured on the engine's own path
//! with nothing else to do: 1080p luma planes in host memory copied into the staging belt's
//! mapped memory by the engine's copy threads, then copied to a device buffer, two
//! submissions in flight. No statistics are computed, so this is what the engine's uploads
//! can reach; `bench --bandwidth` reports it beside the engine's own upload rate.
//!
//! Where the driver maps staging memory on the device itself (resizable BAR, as on NVIDIA
//! data-centre GPUs), the CPU's stores are what crosses the bus, and a DMA copy from staging
//! memory alone would measure the device's internal copy rate instead, hundreds of GB/s.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use wgpu::util::StagingBelt;

use super::backend::{copy_planes, copy_thread_count};
use crate::stats::EngineError;
use crate::stats::gpu::context::GpuContext;

/// One 1080p luma plane.
const PLANE_BYTES: usize = 1920 * 1080;
/// Planes per submission: about the engine's largest submission (128 MiB).
const PLANES_PER_ROUND: usize = 64;

/// What the measurement found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bandwidth {
    pub adapter: String,
    pub bytes_per_second: f64,
    pub submissions: u32,
    /// Threads copying into staging memory, as the engine uses.
    pub copy_threads: usize,
}

/// Uploads repeatedly for about `span` and returns the rate.
pub fn host_to_device(span: Duration) -> Result<Bandwidth, EngineError> {
    let ctx = GpuContext::new(|_| false)?;
    let planes_per_round = PLANES_PER_ROUND
        .min((ctx.limits.max_buffer_size / PLANE_BYTES as u64) as usize)
        .max(1);
    let size = (PLANE_BYTES * planes_per_round) as u64;
    let target = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bandwidth target"),
        size,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let plane = vec![0x5au8; PLANE_BYTES];
    let upload = Upload {
        ctx: &ctx,
        target: &target,
        planes: vec![plane.as_slice(); planes_per_round],
        copy_threads: copy_thread_count(),
    };
    let mut belt = StagingBelt::new(ctx.device.clone(), size);
    // The first upload allocates the belt's chunk and warms the driver.
    let first = upload.submit(&mut belt)?;
    upload.wait(first)?;
    let started = Instant::now();
    let mut submissions = 0u32;
    let mut in_flight = None;
    while submissions == 0 || started.elapsed() < span {
        let index = upload.submit(&mut belt)?;
        submissions += 1;
        // Two in flight: the next round is copied while the device takes this one.
        if let Some(previous) = in_flight.replace(index) {
            upload.wait(previous)?;
        }
    }
    if let Some(last) = in_flight {
        upload.wait(last)?;
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(Bandwidth {
        adapter: ctx.describe(),
        bytes_per_second: size as f64 * f64::from(submissions) / seconds,
        submissions,
        copy_threads: upload.copy_threads,
    })
}

/// One round's work: `planes` copied into the belt by `copy_threads`, then to `target`.
struct Upload<'a> {
    ctx: &'a GpuContext,
    target: &'a wgpu::Buffer,
    planes: Vec<&'a [u8]>,
    copy_threads: usize,
}

impl Upload<'_> {
    fn submit(&self, belt: &mut StagingBelt) -> Result<wgpu::SubmissionIndex, EngineError> {
        let bytes = self.planes.iter().map(|p| p.len() as u64).sum();
        let len = NonZeroU64::new(bytes).ok_or(EngineError::Device("empty upload".into()))?;
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        {
            let mut view = belt.write_buffer(&mut encoder, self.target, 0, len);
            copy_planes(view.slice(..), &self.planes, self.copy_threads);
        }
        belt.finish();
        let index = self.ctx.queue.submit([encoder.finish()]);
        belt.recall();
        Ok(index)
    }

    fn wait(&self, index: wgpu::SubmissionIndex) -> Result<(), EngineError> {
        self.ctx
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: None,
            })
            .map(drop)
            .map_err(|e| EngineError::Device(format!("waiting for an upload: {e}")))
    }
}
