//! The GPU statistics engine (wgpu + WGSL from `shaders/`), and the choice of backend.

mod backend;
pub mod bandwidth;
mod context;
pub mod shaders;
pub mod types;

pub use backend::{GpuBackend, GpuOptions, SUBGROUPS_ENV, StatsVariant, SubgroupMode};
pub use context::pick_adapter;
pub use shaders::{ShaderFile, ShaderSources};

use crate::stats::cpu::CpuBackend;
use crate::stats::{BackendChoice, EngineError, StatsBackend};

/// Creates the backend `choice` asks for. `Auto` takes a GPU adapter when there is one; it
/// falls back to the CPU backend, with a warning, when no adapter or device can be had, and
/// when the only adapter is a software rasteriser (Mesa's lavapipe) that would run the
/// shaders on the same cores several times slower than the CPU backend. `Gpu` takes any
/// adapter, and reports the lack of one as an error.
pub fn create_backend(choice: BackendChoice) -> Result<Box<dyn StatsBackend>, EngineError> {
    match choice {
        BackendChoice::Gpu => Ok(Box::new(GpuBackend::new()?)),
        BackendChoice::Cpu => Ok(Box::new(CpuBackend::new())),
        BackendChoice::Auto => {
            if let Ok(adapter) = pick_adapter()
                && adapter.get_info().device_type == wgpu::DeviceType::Cpu
            {
                tracing::info!(
                    adapter = %adapter.get_info().name,
                    "the only GPU adapter is a software rasteriser; computing statistics with \
                     the CPU backend, which is faster on the same cores (--backend gpu uses it)"
                );
                return Ok(Box::new(CpuBackend::new()));
            }
            match GpuBackend::new() {
                Ok(gpu) => Ok(Box::new(gpu)),
                Err(e) => {
                    tracing::warn!(error = %e, "no usable GPU; computing statistics on the CPU");
                    Ok(Box::new(CpuBackend::new()))
                }
            }
        }
    }
}
