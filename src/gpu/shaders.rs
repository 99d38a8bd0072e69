//! The WGSL sources, compiled into the binary so the engine has no files to find at run time.

use std::borrow::Cow;

/// File name (for error messages) and source of one shader.
#[derive(Clone, Debug)]
pub struct ShaderFile {
    pub file: &'static str,
    pub source: Cow<'static, str>,
}

/// Pass 1: per-row partial sums.
pub const FRAME_STATS: &str = "frame_stats.wgsl";
/// Pass 2: per-frame totals.
pub const FRAME_REDUCE: &str = "frame_reduce.wgsl";

/// The shaders a [`GpuBackend`](super::GpuBackend) compiles. Tests swap in broken sources to
/// check that compile errors come back as [`EngineError::Shader`](crate::stats::EngineError).
#[derive(Clone, Debug)]
pub struct ShaderSources {
    pub frame_stats: ShaderFile,
    pub frame_reduce: ShaderFile,
}

impl Default for ShaderSources {
    fn default() -> Self {
        Self {
            frame_stats: ShaderFile {
                file: FRAME_STATS,
                source: Cow::Borrowed(concat!(
                    include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/shaders/common/types.wgsl"
                    )),
                    include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/shaders/frame_stats.wgsl"
                    ))
                )),
            },
            frame_reduce: ShaderFile {
                file: FRAME_REDUCE,
                source: Cow::Borrowed(concat!(
                    include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/shaders/common/types.wgsl"
                    )),
                    include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/shaders/frame_reduce.wgsl"
                    ))
                )),
            },
        }
    }
}
