//! The inference-ready encoder: weights loaded, identified and folded.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::resnet::{ResNet, ResNetConfig};
use crate::weights::LoadReport;

/// A ResNet-50 ready for feature extraction: weights loaded from a file, hashed, then
/// BatchNorm folded into the convolutions ([`ResNet::fuse`]).
#[derive(Debug)]
pub struct Encoder {
    network: ResNet,
    weights_hash: String,
    report: Option<LoadReport>,
}

impl Encoder {
    /// Loads ResNet-50 weights from `path` (torchvision `.pth`, `.safetensors` or Burn
    /// `.bpk`; see [`ResNet::load_weights`]) onto `device`.
    ///
    /// # Errors
    /// Everything [`ResNet::load_weights`] reports.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let mut network = ResNetConfig::resnet50().init(device);
        let report = network.load_weights(path)?;
        let mut encoder = Self::from_network(network)?;
        encoder.report = Some(report);
        Ok(encoder)
    }

    /// Wraps an unfused network: hashes its weights, then fuses it.
    ///
    /// # Errors
    /// [`EncoderError::Fused`](crate::EncoderError::Fused) if `network` is already fused
    /// (its original weights can no longer be identified).
    pub fn from_network(network: ResNet) -> Result<Self> {
        let weights_hash = network.weights_hash()?;
        Ok(Self {
            network: network.fuse(),
            weights_hash,
            report: None,
        })
    }

    /// The pooled features of a batch of normalised images.
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`, height and width >= 32
    /// - returns `[batch, 2048]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.network.forward(images)
    }

    /// The last feature map (for attention decoders).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - returns `[batch, 2048, ceil(height / 32), ceil(width / 32)]`
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        self.network.forward_features(images)
    }

    /// [`ResNet::weights_hash`] of the weights before fusion.
    pub fn weights_hash(&self) -> &str {
        &self.weights_hash
    }

    /// What loading found, when the encoder came from a file.
    pub fn report(&self) -> Option<&LoadReport> {
        self.report.as_ref()
    }

    /// The fused network.
    pub fn network(&self) -> &ResNet {
        &self.network
    }

    /// Width of the feature vector: 2048.
    pub fn d_feature(&self) -> usize {
        ResNetConfig::resnet50().d_feature()
    }
}
