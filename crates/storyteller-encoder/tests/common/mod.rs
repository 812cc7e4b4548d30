//! Shared helpers for the integration tests: the generated fixture and tensor comparison.

#![allow(dead_code)]

mod compare;

pub use compare::max_abs_difference;

use std::collections::HashMap;
use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::SafeTensors;

/// The version stamp `scripts/make_resnet_fixture.py` writes.
pub const FIXTURE_VERSION: &str = "encoder-fixture-v2";

/// The fixture directory when it holds a current fixture. Otherwise prints a visible
/// skip message and returns `None`, or panics when `STORYTELLER_REQUIRE_FIXTURES=1`.
pub fn fixture_dir(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("STORYTELLER_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/storyteller/fixtures")
        });
    let stamp = std::fs::read_to_string(dir.join("VERSION-encoder")).unwrap_or_default();
    if stamp.trim() == FIXTURE_VERSION {
        return Some(dir);
    }
    let message = format!(
        "SKIPPED {test}: encoder fixture {FIXTURE_VERSION} not found in {} \
         (run scripts/fixtures.d/40-encoder.sh)",
        dir.display()
    );
    if std::env::var("STORYTELLER_REQUIRE_FIXTURES").as_deref() == Ok("1") {
        panic!("{message}, and STORYTELLER_REQUIRE_FIXTURES=1");
    }
    // Written to the stderr handle, not with eprintln!, so libtest's output capture
    // does not hide it.
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "{message}");
    None
}

/// The reference tensors and metadata written by the fixture script.
pub struct Reference {
    pub tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    pub metadata: HashMap<String, String>,
}

impl Reference {
    pub fn load(dir: &std::path::Path) -> Reference {
        let bytes = std::fs::read(dir.join("resnet50-reference.safetensors")).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
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

    pub fn tensor<const D: usize>(&self, name: &str, device: &Device) -> Tensor<D> {
        let (shape, values) = &self.tensors[name];
        Tensor::from_data(TensorData::new(values.clone(), shape.clone()), device)
    }

    pub fn values(&self, name: &str) -> &[f32] {
        &self.tensors[name].1
    }
}

/// Relative error as reported by the parity tests: `max |a - b| / max |b|`, with `b`
/// the PyTorch reference.
pub fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    let scale = reference.iter().map(|b| b.abs()).fold(0f32, f32::max);
    max_abs_difference(ours, reference) / scale
}

/// [`relative_error`] of a tensor, read back to the host.
pub fn max_relative_error<const D: usize>(ours: Tensor<D>, reference: &[f32]) -> f32 {
    let ours = ours
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    relative_error(&ours, reference)
}
