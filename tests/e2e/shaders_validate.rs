//! Every WGSL file under `shaders/` must parse and validate with naga, so a broken shader fails
//! plain `cargo test` on machines without a GPU. Structs with a Rust twin must have its size.

use std::path::{Path, PathBuf};

use naga::valid::{Capabilities, ValidationFlags, Validator};
use streamwatch::stats::gpu::types::WGSL_TWINS;

fn wgsl_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            wgsl_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            found.push(path);
        }
    }
}

fn all_shaders() -> Vec<PathBuf> {
    let mut files = Vec::new();
    wgsl_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders"),
        &mut files,
    );
    files.sort();
    assert!(!files.is_empty(), "no .wgsl files found under shaders/");
    files
}

/// The shared declarations in `shaders/common/`, which the engine prepends to entry shaders.
fn common_prelude() -> String {
    let mut files = Vec::new();
    wgsl_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/common"),
        &mut files,
    );
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn parse(path: &Path) -> Result<naga::Module, String> {
    let own = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let in_common = path.parent().is_some_and(|d| d.ends_with("common"));
    // A common file may use another's declarations (pixels.wgsl reads FrameDesc): it is
    // checked as the prelude it is part of.
    let source = if in_common {
        common_prelude()
    } else {
        common_prelude() + &own
    };
    let module = naga::front::wgsl::parse_str(&source).map_err(|e| {
        format!(
            "{}: parse error:\n{}",
            path.display(),
            e.emit_to_string(&source)
        )
    })?;
    // Subgroup operations in every stage, as wgpu allows with Features::SUBGROUP
    // (frame_stats_subgroup.wgsl needs them).
    Validator::new(ValidationFlags::all(), Capabilities::all())
        .subgroup_stages(naga::valid::ShaderStages::all())
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| {
            format!(
                "{}: validation error:\n{}",
                path.display(),
                e.emit_to_string(&source)
            )
        })?;
    Ok(module)
}

#[test]
fn every_shader_parses_and_validates() {
    let failures: Vec<String> = all_shaders()
        .iter()
        .filter_map(|p| parse(p).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shared_structs_match_their_rust_twins() {
    let mut checked = 0;
    for path in all_shaders() {
        let Ok(module) = parse(&path) else {
            continue; // reported by the test above
        };
        let mut layouter = naga::proc::Layouter::default();
        layouter
            .update(module.to_ctx())
            .unwrap_or_else(|e| panic!("{}: layout: {e}", path.display()));
        for (handle, ty) in module.types.iter() {
            let Some(name) = ty.name.as_deref() else {
                continue;
            };
            if let Some(&(_, rust_size)) = WGSL_TWINS.iter().find(|(n, _)| *n == name) {
                let wgsl_size = layouter[handle].size as usize;
                assert_eq!(
                    wgsl_size,
                    rust_size,
                    "{}: struct {name} is {wgsl_size} bytes in WGSL, {rust_size} in Rust",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= WGSL_TWINS.len(),
        "only {checked} twin structs found in shaders/"
    );
}
