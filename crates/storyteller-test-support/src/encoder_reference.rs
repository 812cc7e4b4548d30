//! PyTorch's ResNet outputs for the encoder fixture (`resnet50-reference.safetensors` and
//! the deeper networks' files, made by `scripts/make_resnet_fixture.py`).

use std::collections::HashMap;
use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::SafeTensors;

use crate::compare::relative_error;

/// The reference tensors and metadata written by the fixture script.
pub struct Reference {
    /// Every tensor: its shape and f32 values.
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    /// The file's metadata (versions of the tools that made it).
    pub metadata: HashMap<String, String>,
}

impl Reference {
    /// Reads `resnet50-reference.safetensors` from the fixture directory.
    ///
    /// # Panics
    /// When the file is missing or not a safetensors file of f32 tensors.
    pub fn load(dir: &Path) -> Reference {
        Self::load_file(&dir.join("resnet50-reference.safetensors"))
    }

    /// Reads one reference file (`resnet101-reference.safetensors`, ...).
    ///
    /// # Panics
    /// When the file is missing or not a safetensors file of f32 tensors.
    pub fn load_file(path: &Path) -> Reference {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (_, meta) = SafeTensors::read_metadata(&bytes).expect("a safetensors header");
        let file = SafeTensors::deserialize(&bytes).expect("a safetensors file");
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (name, (view.shape().to_vec(), values))
            })
            .collect();
        Reference {
            tensors,
            metadata: meta.metadata().clone().unwrap_or_default(),
        }
    }

    /// The tensor `name` on `device`.
    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let (shape, values) = &self.tensors[name];
        Tensor::from_data(TensorData::new(values.clone(), shape.clone()), device)
    }

    /// The values of the tensor `name`.
    pub fn values(&self, name: &str) -> &[f32] {
        &self.tensors[name].1
    }
}

/// [`relative_error`] of a tensor, read back to the host.
///
/// # Panics
/// When the tensor cannot be read back as f32 values.
pub fn max_relative_error<const D: usize>(ours: Tensor<D>, reference: &[f32]) -> f32 {
    let ours = ours
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 values");
    relative_error(&ours, reference)
}
