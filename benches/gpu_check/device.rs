//! `--device cpu|wgpu|cuda[:N]` for the harness (the CLI's rules: `crates/storyteller-cli/src/device.rs`).

use anyhow::{Result, bail};
use burn::tensor::Device;

/// Parses a device name into a Burn device; errors name the cargo feature a backend needs.
pub fn parse(name: &str) -> Result<Device> {
    let (kind, index) = match name.split_once(':') {
        Some((kind, index)) => match index.parse::<usize>() {
            Ok(index) => (kind, Some(index)),
            Err(_) => bail!("--device {name}: {index:?} is not a device index"),
        },
        None => (name, None),
    };
    match (kind, index) {
        ("cpu" | "flex", None) => Ok(Device::flex()),
        ("wgpu", index) => wgpu(index),
        ("cuda", index) => cuda(index.unwrap_or(0)),
        _ => bail!("--device {name}: expected cpu, wgpu or cuda[:N]"),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu(index: Option<usize>) -> Result<Device> {
    use burn::tensor::DeviceKind;
    let kind = index.map_or(DeviceKind::DefaultDevice, DeviceKind::DiscreteGpu);
    Device::wgpu_options()
        .device_kind(kind)
        .init()
        .map_err(|err| anyhow::anyhow!("--device wgpu: {err}"))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu(_index: Option<usize>) -> Result<Device> {
    bail!("--device wgpu: build with `--features wgpu`")
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(_index: usize) -> Result<Device> {
    bail!("--device cuda: build with `--features cuda` (benches/gpu/build-cuda.sh)")
}
