//! `--device cpu|wgpu|cuda[:N]`: the backends this binary was compiled with.

use burn::tensor::Device;

/// The backends a `--device` value can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Backend {
    /// Burn's Flex CPU backend (`cpu`, alias `flex`).
    Cpu,
    /// wgpu (Vulkan, Metal, DX12; lavapipe on a machine without a GPU).
    Wgpu,
    /// CUDA.
    Cuda,
}

/// A checked `--device` value: `cpu`, `wgpu[:N]` or `cuda[:N]`, of a backend this binary
/// was built with. Parsing opens nothing; [`DeviceName::open`] does.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeviceName {
    backend: Backend,
    index: Option<usize>,
}

impl DeviceName {
    /// Which backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Opens the device.
    ///
    /// `cpu` is Burn's Flex backend. `wgpu` is the adapter wgpu prefers (a high-power GPU,
    /// else whatever Vulkan/Metal/DX12 offers — lavapipe on a machine without a GPU);
    /// `wgpu:N` is the N-th discrete GPU. `cuda` and `cuda:N` are NVIDIA GPU 0 and N.
    ///
    /// # Errors
    /// No wgpu adapter, or a CUDA GPU that cannot be opened.
    pub fn open(&self) -> anyhow::Result<Device> {
        match self.backend {
            Backend::Cpu => cpu(self.index),
            Backend::Wgpu => wgpu(self.index),
            Backend::Cuda => cuda(self.index.unwrap_or(0)),
        }
    }
}

#[cfg(test)]
impl DeviceName {
    /// A name without the compiled-backend check (for tests of code that only reads names).
    pub fn unchecked(backend: Backend, index: Option<usize>) -> Self {
        Self { backend, index }
    }
}

impl std::fmt::Display for DeviceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.backend {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        };
        match self.index {
            Some(index) => write!(f, "{name}:{index}"),
            None => f.write_str(name),
        }
    }
}

impl std::str::FromStr for DeviceName {
    type Err = String;

    /// Checks the name, the index and that this binary has the backend (the error names the
    /// cargo feature that adds it).
    fn from_str(name: &str) -> Result<Self, String> {
        let (kind, index) = match name.trim().split_once(':') {
            Some((kind, index)) => {
                let index: usize = index
                    .parse()
                    .map_err(|_| format!("{index:?} is not a device index"))?;
                (kind, Some(index))
            }
            None => (name.trim(), None),
        };
        let backend = match kind {
            "cpu" | "flex" => Backend::Cpu,
            "wgpu" => Backend::Wgpu,
            "cuda" => Backend::Cuda,
            other => return Err(format!("{other:?}: expected cpu, wgpu[:N] or cuda[:N]")),
        };
        if backend == Backend::Cpu && index.is_some() {
            return Err("cpu takes no index".into());
        }
        let (compiled, feature) = match backend {
            Backend::Cpu => (cfg!(feature = "flex"), "flex"),
            Backend::Wgpu => (cfg!(feature = "wgpu"), "wgpu"),
            Backend::Cuda => (cfg!(feature = "cuda"), "cuda"),
        };
        if !compiled {
            return Err(format!(
                "this binary was built without {kind}: rebuild with `--features {feature}` (see docs/gpu.md)"
            ));
        }
        Ok(Self { backend, index })
    }
}

/// A comma-separated `--device` list (`cuda:0,cuda:1`): the first is the main device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceList(pub Vec<DeviceName>);

impl std::str::FromStr for DeviceList {
    type Err = String;

    fn from_str(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::parse)
            .collect::<Result<Vec<DeviceName>, String>>()
            .map(DeviceList)
    }
}

fn cpu(index: Option<usize>) -> anyhow::Result<Device> {
    anyhow::ensure!(index.is_none(), "--device cpu takes no index");
    #[cfg(feature = "flex")]
    return Ok(Device::flex());
    #[allow(unreachable_code)]
    Err(anyhow::anyhow!(
        "--device cpu: rebuild with `--features flex`"
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

    fn parse(name: &str) -> anyhow::Result<Device> {
        let name: DeviceName = name
            .parse()
            .map_err(|err: String| anyhow::anyhow!("{err}"))?;
        name.open()
    }

    #[test]
    fn cpu_is_available_and_bad_names_are_explained() {
        assert!(parse("cpu").is_ok());
        let err = parse("cpu:1").unwrap_err().to_string();
        assert!(err.contains("takes no index"), "{err}");
        let err = parse("tpu").unwrap_err().to_string();
        assert!(err.contains("expected cpu, wgpu[:N] or cuda[:N]"), "{err}");
        let list: DeviceList = "cpu, cpu".parse().unwrap();
        assert_eq!(list.0.len(), 2);
        assert_eq!(list.0[1].to_string(), "cpu");
        assert!("cpu,tpu".parse::<DeviceList>().is_err());
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
