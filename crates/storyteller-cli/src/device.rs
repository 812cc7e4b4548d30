//! `--device cpu|wgpu|cuda[:N]`: the backends this binary was compiled with.

use burn::tensor::Device;

/// Parses a `--device` value into a Burn device.
///
/// `cpu` (alias `flex`) is Burn's Flex backend. `wgpu` is the adapter wgpu prefers (a
/// high-power GPU, else whatever Vulkan/Metal/DX12 offers — lavapipe on a machine without
/// a GPU); `wgpu:N` is the N-th discrete GPU. `cuda` and `cuda:N` are NVIDIA GPU 0 and N.
///
/// # Errors
/// An unknown name, a bad index, a backend this binary was built without (with the cargo
/// feature that adds it), no wgpu adapter, or a CUDA GPU that cannot be opened.
pub fn parse(name: &str) -> anyhow::Result<Device> {
    let (kind, index) = match name.split_once(':') {
        Some((kind, index)) => {
            let index: usize = index
                .parse()
                .map_err(|_| anyhow::anyhow!("--device {name}: {index:?} is not a device index"))?;
            (kind, Some(index))
        }
        None => (name, None),
    };
    match kind {
        "cpu" | "flex" => cpu(index),
        "wgpu" => wgpu(index),
        "cuda" => cuda(index.unwrap_or(0)),
        other => anyhow::bail!("--device {other}: expected cpu, wgpu or cuda[:N]"),
    }
}

fn cpu(index: Option<usize>) -> anyhow::Result<Device> {
    anyhow::ensure!(index.is_none(), "--device cpu takes no index");
    #[cfg(feature = "flex")]
    return Ok(Device::flex());
    #[allow(unreachable_code)]
    Err(anyhow::anyhow!(
        "--device cpu: this binary was built without the `flex` feature"
    ))
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> anyhow::Result<Device> {
    use burn::tensor::DeviceKind;
    use burn::tensor::wgpu::WgpuInitError;
    let kind = index.map_or(DeviceKind::DefaultDevice, DeviceKind::DiscreteGpu);
    // Acquire the adapter now, so that a machine without one gets an error rather than a
    // panic at the first tensor. A runtime registered already (the same device named twice)
    // is reused through the lazy constructor.
    match Device::wgpu_options().device_kind(kind.clone()).init() {
        Ok(device) => Ok(device),
        Err(WgpuInitError::Registration { .. }) => Ok(Device::wgpu(kind)),
        Err(err) => Err(anyhow::anyhow!("--device wgpu: {err}")),
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> anyhow::Result<Device> {
    Err(anyhow::anyhow!(
        "--device wgpu: rebuild with `--features wgpu`"
    ))
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> anyhow::Result<Device> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let device = Device::cuda(index);
    // cubecl opens the GPU at the first tensor and panics when it cannot (no driver, no such
    // GPU): touch it here, so that the user gets an error instead of a panic mid-run.
    let probe = catch_unwind(AssertUnwindSafe(|| {
        burn::tensor::Tensor::<1>::zeros([1], &device).into_data()
    }));
    match probe {
        Ok(_) => Ok(device),
        Err(_) => Err(anyhow::anyhow!(
            "--device cuda:{index}: no usable NVIDIA GPU (is the driver installed, and does GPU \
             {index} exist?); cubecl's message is above"
        )),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> anyhow::Result<Device> {
    Err(anyhow::anyhow!(
        "--device cuda: rebuild with `--features cuda` (see docs/gpu.md)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_available_and_bad_names_are_explained() {
        assert!(parse("cpu").is_ok());
        let err = parse("cpu:1").unwrap_err().to_string();
        assert!(err.contains("takes no index"), "{err}");
        let err = parse("tpu").unwrap_err().to_string();
        assert!(err.contains("expected cpu, wgpu or cuda"), "{err}");
        let err = parse("cuda:x").unwrap_err().to_string();
        assert!(err.contains("not a device index"), "{err}");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_backend_left_out_says_which_feature_adds_it() {
        let err = parse("cuda:1").unwrap_err().to_string();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
