//! Host-to-device bandwidth of the adapter the engine uses, measured the way the engine
//! uploads: frames copied into a staging belt's mapped chunks, then copied to a device buffer
//! in one submission, waited for. `bench --bandwidth` reports it beside the engine's own upload
//! rate, so a GPU figure says how much of the bus the engine takes.

use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use wgpu::util::StagingBelt;

use crate::stats::EngineError;
use crate::stats::gpu::context::GpuContext;

/// Bytes per submission: about 32 1080p luma planes, like a large batch.
const UPLOAD_BYTES: u64 = 64 << 20;

/// What the measurement found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Bandwidth {
    pub adapter: String,
    pub bytes_per_second: f64,
    pub submissions: u32,
}

/// Uploads repeatedly for about `span` and returns the rate.
pub fn host_to_device(span: Duration) -> Result<Bandwidth, EngineError> {
    let ctx = GpuContext::new(|_| false)?;
    let size = UPLOAD_BYTES.min(ctx.limits.max_buffer_size);
    let target = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bandwidth target"),
        size,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut belt = StagingBelt::new(ctx.device.clone(), size);
    let source = vec![0x5au8; size as usize];
    let upload = |belt: &mut StagingBelt| -> Result<(), EngineError> {
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let len = NonZeroU64::new(size).ok_or(EngineError::Device("empty buffer".into()))?;
        belt.write_buffer(&mut encoder, &target, 0, len)
            .copy_from_slice(&source);
        belt.finish();
        ctx.queue.submit([encoder.finish()]);
        belt.recall();
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| EngineError::Device(format!("waiting for an upload: {e}")))?;
        Ok(())
    };
    // The first upload allocates the belt's chunk and warms the driver.
    upload(&mut belt)?;
    let started = Instant::now();
    let mut submissions = 0u32;
    while submissions == 0 || started.elapsed() < span {
        upload(&mut belt)?;
        submissions += 1;
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    Ok(Bandwidth {
        adapter: ctx.describe(),
        bytes_per_second: size as f64 * f64::from(submissions) / seconds,
        submissions,
    })
}
