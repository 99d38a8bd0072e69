//! The GPU statistics engine (wgpu + WGSL from `shaders/`), and the choice of backend.

mod context;
mod engine;
pub mod shaders;
pub mod types;

pub use context::pick_adapter;
pub use engine::{GpuBackend, GpuOptions, SUBGROUPS_ENV, StatsVariant, SubgroupMode};
pub use shaders::{ShaderFile, ShaderSources};

use crate::detect::cpu::CpuBackend;
use crate::stats::{BackendChoice, EngineError, StatsBackend};

/// Creates the backend `choice` asks for. `Auto` falls back to the CPU port, with a warning,
/// when no GPU adapter or device can be had; `Gpu` reports that as an error instead.
pub fn create_backend(choice: BackendChoice) -> Result<Box<dyn StatsBackend>, EngineError> {
    match choice {
        BackendChoice::Gpu => Ok(Box::new(GpuBackend::new()?)),
        BackendChoice::Cpu => Ok(Box::new(CpuBackend::new())),
        BackendChoice::Auto => match GpuBackend::new() {
            Ok(gpu) => Ok(Box::new(gpu)),
            Err(e) => {
                tracing::warn!(error = %e, "no usable GPU; computing statistics on the CPU");
                Ok(Box::new(CpuBackend::new()))
            }
        },
    }
}
