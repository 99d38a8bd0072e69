//! The WGSL sources, compiled into the binary so the engine has no files to find at run time.

use std::borrow::Cow;

/// File name (for error messages) and source of one shader.
#[derive(Clone, Debug)]
pub struct ShaderFile {
    pub file: &'static str,
    pub source: Cow<'static, str>,
}

/// The shaders a [`GpuBackend`](super::GpuBackend) compiles. Tests swap in broken sources to
/// check that compile errors come back as [`EngineError::Shader`](crate::stats::EngineError).
#[derive(Clone, Debug)]
pub struct ShaderSources {
    pub frame_stats: ShaderFile,
    /// Pass 1 with subgroup operations, used instead of `frame_stats` where the adapter has
    /// `Features::SUBGROUP`.
    pub frame_stats_subgroup: ShaderFile,
    pub frame_reduce: ShaderFile,
}

/// An entry shader from `shaders/` with the shared declarations of `shaders/common/` in front
/// (WGSL has no #include).
macro_rules! builtin_shader {
    ($file:literal) => {
        ShaderFile {
            file: $file,
            source: Cow::Borrowed(concat!(
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/shaders/common/types.wgsl"
                )),
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/shaders/common/pixels.wgsl"
                )),
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file))
            )),
        }
    };
}

impl Default for ShaderSources {
    fn default() -> Self {
        Self {
            frame_stats: builtin_shader!("frame_stats.wgsl"),
            frame_stats_subgroup: builtin_shader!("frame_stats_subgroup.wgsl"),
            frame_reduce: builtin_shader!("frame_reduce.wgsl"),
        }
    }
}
