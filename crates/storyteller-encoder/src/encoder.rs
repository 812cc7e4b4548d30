//! The inference-ready encoder: weights loaded, identified and folded.

use std::path::Path;

use burn::tensor::{Device, Tensor};

use crate::error::Result;
use crate::resnet::{ResNet, ResNetConfig};
use crate::weights::LoadReport;

/// A ResNet ready for feature extraction: weights loaded from a file, hashed, then
/// BatchNorm folded into the convolutions ([`ResNet::fuse`]). The depth (ResNet-50, -101 or
/// -152) is read from the file.
#[derive(Debug)]
pub struct Encoder {
    network: ResNet,
    weights_hash: String,
    report: Option<LoadReport>,
}

impl Encoder {
    /// Loads ResNet weights from `path` (torchvision `.pth`, `.safetensors` or Burn `.bpk`;
    /// see [`ResNet::load_weights`]) onto `device`, building the depth the file's keys
    /// describe (ResNet-50 when they describe none, so that the errors name what is
    /// missing).
    ///
    /// # Errors
    /// Everything [`ResNet::load_weights`] reports.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        let format = crate::WeightFormat::detect(path)?;
        let found = crate::weights::read_tensors(path, format)?;
        let config = ResNetConfig::from_torchvision_keys(found.keys().map(String::as_str))
            .unwrap_or_else(ResNetConfig::resnet50);
        let mut network = config.init(device);
        let report = network.load_tensors(path, format, found)?;
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

    /// Spatial features: the last map pooled to `grid` x `grid` regions
    /// ([`ResNet::forward_grid`]).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - returns `[batch, grid * grid, 2048]`
    pub fn forward_grid(&self, images: Tensor<4>, grid: usize) -> Tensor<3> {
        self.network.forward_grid(images, grid)
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

    /// Which network: `ResNet-50`, `ResNet-101`, `ResNet-152`.
    pub fn name(&self) -> String {
        ResNetConfig::new(self.network.stage_depths()).name()
    }
}
