//! Weight import and export: torchvision checkpoints (`.pth`, `.safetensors`) and
//! Burn's own record format (burnpack).
//!
//! # Key map
//!
//! The network's fields copy torchvision's state-dict keys, so almost every key maps
//! to itself. The only differences, all handled by [`torchvision_to_burn`] and
//! [`burn_to_torchvision`] below (and listed in `docs/weights.md`):
//!
//! | torchvision                          | Burn                                  | why                                   |
//! |--------------------------------------|---------------------------------------|---------------------------------------|
//! | `layerN.i.downsample.0.weight`       | `layerN.i.downsample.conv.weight`     | `nn.Sequential` index vs struct field |
//! | `layerN.i.downsample.1.*`            | `layerN.i.downsample.bn.*`            | same                                  |
//! | `*bn*.weight`, `downsample.1.weight` | `*.gamma`                             | Burn's BatchNorm names its scale gamma|
//! | `*bn*.bias`, `downsample.1.bias`     | `*.beta`                              | and its shift beta                    |
//! | `*.num_batches_tracked`              | (none)                                | training counter, reported unused     |
//! | `fc.weight`, `fc.bias`               | (none)                                | classifier removed, reported unused   |
//!
//! `running_mean` and `running_var` keep their names. Vec indices (`layer1.0`) are the
//! same on both sides.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{BurnpackStore, ModuleSnapshot, ModuleStore, PytorchStore, SafetensorsStore};
use burn::tensor::DType;

use crate::error::{EncoderError, Result};
use crate::format::WeightFormat;
use crate::resnet::ResNet;

/// What a successful [`ResNet::load_weights`] found in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The file's format.
    pub format: WeightFormat,
    /// How many tensors were loaded into the network.
    pub applied: usize,
    /// Keys in the file the network has no place for, sorted (torchvision's
    /// `fc.weight`, `fc.bias` and every `num_batches_tracked`). They are ignored.
    pub unused: Vec<String>,
}

/// Whether the module path (without the parameter) names a BatchNorm, in either naming.
fn is_batch_norm(module: &[&str]) -> bool {
    match module {
        [.., last] if last.starts_with("bn") => true,
        [.., "downsample", "1"] => true,
        _ => false,
    }
}

/// Maps a torchvision state-dict key to the network's Burn module path.
///
/// ```
/// use storyteller_encoder::weights::torchvision_to_burn;
/// assert_eq!(torchvision_to_burn("layer2.0.downsample.1.weight"), "layer2.0.downsample.bn.gamma");
/// assert_eq!(torchvision_to_burn("layer1.2.bn3.bias"), "layer1.2.bn3.beta");
/// assert_eq!(torchvision_to_burn("conv1.weight"), "conv1.weight");
/// ```
pub fn torchvision_to_burn(key: &str) -> String {
    let segments: Vec<&str> = key.split('.').collect();
    let Some((param, module)) = segments.split_last() else {
        return key.to_string();
    };
    let param = match (is_batch_norm(module), *param) {
        (true, "weight") => "gamma",
        (true, "bias") => "beta",
        (_, other) => other,
    };
    let mut out: Vec<&str> = module.to_vec();
    if let [.., "downsample", index] = out.as_mut_slice() {
        *index = match *index {
            "0" => "conv",
            "1" => "bn",
            other => other,
        };
    }
    out.push(param);
    out.join(".")
}

/// Maps a Burn module path of the network to the torchvision state-dict key; the
/// inverse of [`torchvision_to_burn`].
///
/// ```
/// use storyteller_encoder::weights::burn_to_torchvision;
/// assert_eq!(burn_to_torchvision("layer2.0.downsample.bn.gamma"), "layer2.0.downsample.1.weight");
/// assert_eq!(burn_to_torchvision("bn1.running_var"), "bn1.running_var");
/// ```
pub fn burn_to_torchvision(path: &str) -> String {
    let segments: Vec<&str> = path.split('.').collect();
    let Some((param, module)) = segments.split_last() else {
        return path.to_string();
    };
    let mut out: Vec<&str> = module.to_vec();
    if let [.., "downsample", field] = out.as_mut_slice() {
        *field = match *field {
            "conv" => "0",
            "bn" => "1",
            other => other,
        };
    }
    let param = match (is_batch_norm(&out), *param) {
        (true, "gamma") => "weight",
        (true, "beta") => "bias",
        (_, other) => other,
    };
    out.push(param);
    out.join(".")
}

/// The file's tensors, keyed by torchvision key.
pub(crate) fn read_tensors(
    path: &Path,
    format: WeightFormat,
) -> Result<BTreeMap<String, PackTensor>> {
    let pathbuf = || path.to_path_buf();
    let tensors: Vec<PackTensor> = match format {
        WeightFormat::Pytorch => {
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            let all = store
                .get_all_tensors()
                .map_err(|source| EncoderError::Pytorch {
                    path: pathbuf(),
                    source,
                })?;
            all.values().cloned().collect()
        }
        WeightFormat::Safetensors => {
            let mut store = SafetensorsStore::from_file(path).map_indices_contiguous(false);
            let all = store
                .get_all_tensors()
                .map_err(|source| EncoderError::Safetensors {
                    path: pathbuf(),
                    source,
                })?;
            all.values().cloned().collect()
        }
        WeightFormat::Burnpack => {
            let mut store = BurnpackStore::from_file(path).auto_extension(false);
            let all = store
                .get_all_tensors()
                .map_err(|source| EncoderError::Burnpack {
                    path: pathbuf(),
                    source,
                })?;
            all.values()
                .cloned()
                .map(|mut t| {
                    t.name = burn_to_torchvision(&t.name);
                    t
                })
                .collect()
        }
    };
    Ok(tensors.into_iter().map(|t| (t.name.clone(), t)).collect())
}

impl ResNet {
    /// The network's tensors as torchvision keys and shapes, sorted.
    pub fn torchvision_shapes(&self) -> BTreeMap<String, Vec<usize>> {
        self.collect(None, None, false)
            .into_iter()
            .map(|t| (burn_to_torchvision(&t.name), t.shape.to_vec()))
            .collect()
    }

    /// Loads weights from a torchvision checkpoint (`.pth`, `.safetensors`) or a Burn
    /// record (`.bpk`), recognised by content and then by extension.
    ///
    /// Every tensor of the network must be present with the right shape and `f32`
    /// elements; the classifier (`fc.*`) and BatchNorm's `num_batches_tracked` are listed
    /// in the report and ignored; any other key the network has no place for is an error
    /// (a deeper ResNet's file would otherwise load its first blocks silently). On error the
    /// network is left unchanged.
    ///
    /// # Errors
    /// [`EncoderError::MissingTensor`] and [`EncoderError::ShapeMismatch`] name the key
    /// and the shapes; [`EncoderError::UnexpectedTensors`] names a foreign key; unreadable, truncated or foreign files give the format's read
    /// error; [`EncoderError::Fused`] if the network was already fused.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<LoadReport> {
        let path = path.as_ref();
        if self.is_fused() {
            return Err(EncoderError::Fused {
                operation: "loading weights",
            });
        }
        let format = WeightFormat::detect(path)?;
        let found = read_tensors(path, format)?;
        self.load_tensors(path, format, found)
    }

    /// [`load_weights`](Self::load_weights) from tensors already read (keyed by their
    /// torchvision names).
    pub(crate) fn load_tensors(
        &mut self,
        path: &Path,
        format: WeightFormat,
        mut found: BTreeMap<String, PackTensor>,
    ) -> Result<LoadReport> {
        let expected = self.torchvision_shapes();

        for (key, shape) in &expected {
            if let Some(tensor) = found.get(key) {
                if tensor.shape.as_slice() != shape.as_slice() {
                    return Err(EncoderError::ShapeMismatch {
                        path: path.to_path_buf(),
                        key: key.clone(),
                        expected: shape.clone(),
                        found: tensor.shape.to_vec(),
                    });
                }
                if tensor.dtype != DType::F32 {
                    return Err(EncoderError::UnsupportedDtype {
                        path: path.to_path_buf(),
                        key: key.clone(),
                        dtype: format!("{:?}", tensor.dtype),
                    });
                }
            }
        }
        let missing: Vec<&String> = expected
            .keys()
            .filter(|k| !found.contains_key(*k))
            .collect();
        if let Some(first) = missing.first() {
            return Err(EncoderError::MissingTensor {
                path: path.to_path_buf(),
                key: (*first).clone(),
                expected: expected[*first].clone(),
                count: missing.len(),
            });
        }

        let unused: Vec<String> = found
            .keys()
            .filter(|k| !expected.contains_key(*k))
            .cloned()
            .collect();
        let foreign: Vec<&String> = unused
            .iter()
            .filter(|k| !k.starts_with("fc.") && !k.ends_with(".num_batches_tracked"))
            .collect();
        if let Some(first) = foreign.first() {
            return Err(EncoderError::UnexpectedTensors {
                path: path.to_path_buf(),
                key: (*first).clone(),
                count: foreign.len(),
            });
        }
        let tensors: Vec<PackTensor> = expected
            .keys()
            .filter_map(|k| found.remove(k))
            .map(|mut t| {
                t.name = torchvision_to_burn(&t.name);
                t
            })
            .collect();
        let result = self.apply(tensors, None, None, false);
        if let Some(error) = result.errors.into_iter().next() {
            let key = match &error {
                burn::store::ApplyError::ShapeMismatch { path, .. }
                | burn::store::ApplyError::DTypeMismatch { path, .. }
                | burn::store::ApplyError::AdapterError { path, .. }
                | burn::store::ApplyError::LoadError { path, .. } => burn_to_torchvision(path),
            };
            return Err(EncoderError::Apply {
                path: path.to_path_buf(),
                key,
                source: Box::new(error),
            });
        }
        Ok(LoadReport {
            format,
            applied: result.applied.len(),
            unused,
        })
    }

    /// Saves the network in Burn's record format (burnpack), atomically: written to a
    /// temporary file next to `path`, synced, then renamed over it.
    ///
    /// # Errors
    /// [`EncoderError::Fused`] for a fused network (save before fusing), I/O and
    /// burnpack errors naming `path`.
    pub fn save_burnpack(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        if self.is_fused() {
            return Err(EncoderError::Fused {
                operation: "saving a record",
            });
        }
        let io = |source| EncoderError::Io {
            path: path.to_path_buf(),
            source,
        };
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        // A unique temporary name (concurrent savers never share one), removed on failure.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", name.as_deref().unwrap_or("weights")))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io)?;
        let mut store = BurnpackStore::from_file(tmp.path())
            .auto_extension(false)
            .overwrite(true)
            .metadata("storyteller-encoder", "resnet");
        self.save_into(&mut store)
            .map_err(|source| EncoderError::Burnpack {
                path: path.to_path_buf(),
                source,
            })?;
        File::open(tmp.path())
            .and_then(|f| f.sync_all())
            .map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resnet::ResNetConfig;
    use burn::tensor::Device;

    #[test]
    fn key_map_round_trips_every_key() {
        let net = ResNetConfig::resnet50().init(&Device::flex());
        let shapes = net.torchvision_shapes();
        // 320 tensors in torchvision's resnet50 state dict, minus fc (2) and
        // num_batches_tracked (53).
        assert_eq!(shapes.len(), 320 - 2 - 53);
        for key in shapes.keys() {
            assert_eq!(burn_to_torchvision(&torchvision_to_burn(key)), *key);
            assert!(!key.contains("gamma") && !key.contains("beta"), "{key}");
            assert!(!key.contains("downsample.conv") && !key.contains("downsample.bn"));
        }
        assert_eq!(shapes["layer3.0.downsample.0.weight"], [1024, 512, 1, 1]);
        assert_eq!(shapes["layer3.0.downsample.1.running_var"], [1024]);
        assert_eq!(shapes["layer4.2.conv2.weight"], [512, 512, 3, 3]);
        assert_eq!(shapes["bn1.weight"], [64]);
    }
}
