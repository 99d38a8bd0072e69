//! The wgpu instance, adapter, device and queue, created once per backend, and the error
//! plumbing that turns wgpu validation errors into [`EngineError`]s instead of panics.

use std::sync::{Arc, Mutex};

use crate::stats::EngineError;

pub struct GpuContext {
    pub adapter_info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    /// The device's limits (the adapter's own: we request all of them).
    pub limits: wgpu::Limits,
    /// Whether the device was created with `Features::SUBGROUP`.
    pub subgroups: bool,
    /// Errors raised outside any error scope (e.g. on another thread); reported by the next call.
    uncaptured: Arc<Mutex<Vec<String>>>,
}

/// Lower is better. Software adapters (lavapipe, llvmpipe, WARP) come last among real ones.
fn device_type_rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

/// Lower is better. On Linux the same device often shows up through Vulkan and GL; the GL
/// llvmpipe adapter measured ~6x slower than lavapipe's Vulkan one.
fn backend_rank(b: wgpu::Backend) -> u8 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::Gl => 2,
        _ => 1,
    }
}

/// Picks the adapter: the best device type, then Vulkan (or Metal/DX12) over GL. `WGPU_BACKEND`
/// (e.g. `vulkan`, `gl`) restricts the backends considered, as in every wgpu program.
/// This is the only place that chooses an adapter.
pub fn pick_adapter() -> Result<wgpu::Adapter, EngineError> {
    // Unless WGPU_BACKEND says otherwise, GL is only tried when no Vulkan/Metal/DX12 adapter
    // exists: probing it costs an EGL initialisation that fails noisily on headless servers.
    let explicit = std::env::var_os("WGPU_BACKEND").is_some();
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if !explicit {
        desc.backends = wgpu::Backends::PRIMARY;
    }
    let mut backends = desc.backends;
    let mut instance = wgpu::Instance::new(desc);
    let mut adapters = pollster::block_on(instance.enumerate_adapters(backends));
    if adapters.is_empty() && !explicit {
        let mut all = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        all.backends = wgpu::Backends::all();
        backends = all.backends;
        instance = wgpu::Instance::new(all);
        adapters = pollster::block_on(instance.enumerate_adapters(backends));
    }
    for a in &adapters {
        let info = a.get_info();
        tracing::debug!(name = %info.name, backend = ?info.backend, device_type = ?info.device_type, "wgpu adapter found");
    }
    let best = adapters.into_iter().min_by_key(|a| {
        let info = a.get_info();
        (
            device_type_rank(info.device_type),
            backend_rank(info.backend),
        )
    });
    match best {
        Some(adapter) => Ok(adapter),
        // enumerate_adapters is not available on every platform; let wgpu choose there.
        None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        }))
        .map_err(|e| EngineError::NoAdapter(format!("{e} (backends {backends:?})"))),
    }
}

impl GpuContext {
    /// Creates the device, with `Features::SUBGROUP` where the adapter offers it and
    /// `want_subgroups` says yes for this adapter.
    pub fn new(
        want_subgroups: impl FnOnce(&wgpu::AdapterInfo) -> bool,
    ) -> Result<Self, EngineError> {
        let adapter = pick_adapter()?;
        let adapter_info = adapter.get_info();
        let has = adapter.features().contains(wgpu::Features::SUBGROUP);
        tracing::debug!(adapter = %adapter_info.name, subgroup = has, "adapter features");
        let subgroups = has && want_subgroups(&adapter_info);
        let required_features = if subgroups {
            wgpu::Features::SUBGROUP
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("streamwatch statistics"),
            required_features,
            // The adapter's own limits: lavapipe's 128 MiB storage binding instead of the
            // portable default, so batches can be larger.
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|e| {
            EngineError::Device(format!(
                "{} ({:?}): {e}",
                adapter_info.name, adapter_info.backend
            ))
        })?;
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&uncaptured);
        // Without a handler wgpu panics on an error raised outside an error scope.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            tracing::error!(error = %e, "uncaptured wgpu error");
            if let Ok(mut errors) = sink.lock() {
                errors.push(e.to_string());
            }
        }));
        let limits = device.limits();
        Ok(Self {
            adapter_info,
            device,
            queue,
            limits,
            subgroups,
            uncaptured,
        })
    }

    pub fn describe(&self) -> String {
        let i = &self.adapter_info;
        format!(
            "{} ({:?}, {:?}, driver {} {})",
            i.name, i.backend, i.device_type, i.driver, i.driver_info
        )
    }

    /// Errors raised outside any error scope since the last call, joined.
    pub fn take_uncaptured(&self) -> Option<String> {
        let mut errors = self.uncaptured.lock().ok()?;
        if errors.is_empty() {
            None
        } else {
            let joined = errors.join("; ");
            errors.clear();
            Some(joined)
        }
    }
}

/// Runs `f` inside validation, out-of-memory and internal error scopes on `device` and returns
/// `f`'s result with the first error any of them caught. Scopes are thread-local, so this works
/// from whichever thread drives the engine.
pub fn capture_errors<T>(device: &wgpu::Device, f: impl FnOnce() -> T) -> (T, Option<String>) {
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let value = f();
    // Scopes pop innermost first.
    let errors = [
        pollster::block_on(validation.pop()),
        pollster::block_on(oom.pop()),
        pollster::block_on(internal.pop()),
    ];
    let first = errors.into_iter().flatten().next().map(|e| e.to_string());
    (value, first)
}
