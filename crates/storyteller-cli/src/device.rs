//! `--device cpu|wgpu|cuda[:N]`: the backends this binary was compiled with.

use burn::tensor::Device;

/// Parses a `--device` value into a Burn device.
///
/// # Errors
/// An unknown name, a bad index, or a backend this binary was built without (with the
/// cargo feature that adds it).
pub fn parse(name: &str) -> anyhow::Result<Device> {
    let (kind, index) = match name.split_once(':') {
        Some((kind, index)) => {
            let index: usize = index
                .parse()
                .map_err(|_| anyhow::anyhow!("--device {name}: {index:?} is not a device index"))?;
            (kind, index)
        }
        None => (name, 0),
    };
    match kind {
        "cpu" | "flex" => cpu(index),
        "wgpu" => wgpu(index),
        "cuda" => cuda(index),
        other => anyhow::bail!("--device {other}: expected cpu, wgpu or cuda[:N]"),
    }
}

fn cpu(index: usize) -> anyhow::Result<Device> {
    anyhow::ensure!(index == 0, "--device cpu takes no index");
    #[cfg(feature = "flex")]
    return Ok(Device::flex());
    #[allow(unreachable_code)]
    Err(anyhow::anyhow!(
        "--device cpu: this binary was built without the `flex` feature"
    ))
}

fn wgpu(index: usize) -> anyhow::Result<Device> {
    #[cfg(feature = "wgpu")]
    return Ok(if index == 0 {
        Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
    } else {
        Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index))
    });
    #[allow(unreachable_code)]
    {
        let _ = index;
        Err(anyhow::anyhow!(
            "--device wgpu: rebuild with `--features wgpu`"
        ))
    }
}

fn cuda(index: usize) -> anyhow::Result<Device> {
    #[cfg(feature = "cuda")]
    return Ok(Device::cuda(index));
    #[allow(unreachable_code)]
    {
        let _ = index;
        Err(anyhow::anyhow!(
            "--device cuda: rebuild with `--features cuda` (see docs/architecture.md)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_available_and_bad_names_are_explained() {
        assert!(parse("cpu").is_ok());
        let err = parse("tpu").unwrap_err().to_string();
        assert!(err.contains("expected cpu, wgpu or cuda"), "{err}");
        let err = parse("cuda:x").unwrap_err().to_string();
        assert!(err.contains("not a device index"), "{err}");
    }
}
