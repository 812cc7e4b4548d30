//! Counting a decoder's weights: those training learns, and the fixed input statistics.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// The fields every decoder family stores but never trains: the feature standardisation
/// (mean and scale) and Show and Tell's PCA whitening projection.
const FIXED: [&str; 3] = ["feature_mean", "feature_scale", "feature_whitening"];

/// The weights of a decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterCount {
    /// Weights training learns.
    pub trained: u64,
    /// Weights stored with them but computed from the training features and never trained:
    /// the per-channel mean and scale and, for a whitened Show and Tell, the
    /// `d_feature x d_whitened` projection.
    pub fixed: u64,
}

impl ParameterCount {
    /// Counts the float weights of `module` (any Burn module), telling the fixed input
    /// statistics apart by their field names.
    pub fn of<M: Module>(module: &M) -> Self {
        let mut counter = Counter::default();
        module.visit(&mut counter);
        Self {
            trained: counter.trained,
            fixed: counter.fixed,
        }
    }
}

#[derive(Default)]
struct Counter {
    path: Vec<String>,
    trained: u64,
    fixed: u64,
}

impl ModuleVisitor for Counter {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_owned());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let count = param.lazy_shape().num_elements() as u64;
        if self.path.iter().any(|name| FIXED.contains(&name.as_str())) {
            self.fixed += count;
        } else {
            self.trained += count;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use storyteller_decoder::{AttentionDecoderConfig, CaptionDecoderConfig};

    #[test]
    fn fixed_statistics_are_counted_apart() {
        let device = Device::flex();
        let whitened = CaptionDecoderConfig::new(30)
            .with_d_feature(12)
            .with_d_embed(8)
            .with_d_hidden(16)
            .with_d_whitened(Some(5))
            .init(&device)
            .unwrap();
        let count = ParameterCount::of(&whitened);
        assert_eq!(count.fixed, 12 + 12 + 12 * 5);
        assert_eq!(count.trained + count.fixed, whitened.num_params() as u64);

        let attention = AttentionDecoderConfig::new(30)
            .with_d_feature(12)
            .with_grid(2)
            .with_d_embed(8)
            .with_d_attention(8)
            .with_d_hidden(16)
            .init(&device)
            .unwrap();
        let count = ParameterCount::of(&attention);
        assert_eq!(count.fixed, 24);
        assert_eq!(count.trained + count.fixed, attention.num_params() as u64);
    }
}
