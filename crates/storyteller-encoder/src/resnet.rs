//! The ResNet backbone (classification head removed).
//!
//! He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
//! (<https://arxiv.org/abs/1512.03385>), table 1, as torchvision implements it in
//! `torchvision.models.resnet.ResNet` with `Bottleneck` blocks ("V1.5", stride on the
//! 3x3 convolution). The `avgpool` is kept as a global mean; `fc` is dropped, so the
//! network ends in the 2048-d feature vector an image-captioning decoder consumes.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::block::{Bottleneck, BottleneckConfig, EXPANSION, conv, maybe_bn};
use crate::fuse::fold_batch_norm;

/// Channels of the stem and width of `layer1`; each later stage doubles the width.
const STEM_CHANNELS: usize = 64;

/// Builds a [`ResNet`]. [`ResNetConfig::resnet50`] is the one this project uses.
#[derive(Config, Debug)]
pub struct ResNetConfig {
    /// Bottleneck blocks in `layer1`..`layer4` (`[3, 4, 6, 3]` for ResNet-50,
    /// `[3, 4, 23, 3]` for ResNet-101, `[3, 8, 36, 3]` for ResNet-152).
    pub layers: [usize; 4],
}

impl ResNetConfig {
    /// ResNet-50: `[3, 4, 6, 3]` bottleneck blocks, 2048-d output.
    pub fn resnet50() -> Self {
        Self::new([3, 4, 6, 3])
    }

    /// Width of the output feature vector (`4 * 512 = 2048` for every bottleneck ResNet).
    pub fn d_feature(&self) -> usize {
        EXPANSION * STEM_CHANNELS * 8
    }

    /// Initialises the network with torchvision's random initialisation.
    ///
    /// # Panics
    /// If a stage has zero blocks.
    pub fn init(&self, device: &Device) -> ResNet {
        assert!(
            self.layers.iter().all(|&n| n > 0),
            "every stage needs a block"
        );
        let mut d_input = STEM_CHANNELS;
        let mut stage =
            |index: usize| {
                let d_hidden = STEM_CHANNELS << index;
                let stride = if index == 0 { 1 } else { 2 };
                (0..self.layers[index])
                    .map(|i| {
                        let block = BottleneckConfig::new(d_input, d_hidden)
                            .with_stride(if i == 0 { stride } else { 1 });
                        d_input = block.d_output();
                        block.init(device)
                    })
                    .collect::<Vec<_>>()
            };
        let layer1 = stage(0);
        let layer2 = stage(1);
        let layer3 = stage(2);
        let layer4 = stage(3);
        ResNet {
            conv1: conv(3, STEM_CHANNELS, 7, 2).init(device),
            bn1: Some(BatchNormConfig::new(STEM_CHANNELS).init(device)),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1,
            layer2,
            layer3,
            layer4,
        }
    }
}

/// ResNet with the classification layer removed: an image in, a feature map or a
/// pooled feature vector out.
///
/// Field names are torchvision's state-dict keys (`conv1`, `bn1`, `layer1.0.conv2`, ...),
/// so a torchvision checkpoint maps onto it with the few remaps listed in
/// `docs/weights.md`.
#[derive(Module, Debug)]
pub struct ResNet {
    /// Stem convolution, 7x7 stride 2, `3 -> 64`.
    pub conv1: Conv2d,
    /// Stem BatchNorm; `None` once folded into `conv1`.
    pub bn1: Option<BatchNorm>,
    /// Stem max pooling, 3x3 stride 2 padding 1.
    pub maxpool: MaxPool2d,
    /// Stage 1: width 64, stride 1, 256 channels out.
    pub layer1: Vec<Bottleneck>,
    /// Stage 2: width 128, stride 2, 512 channels out.
    pub layer2: Vec<Bottleneck>,
    /// Stage 3: width 256, stride 2, 1024 channels out.
    pub layer3: Vec<Bottleneck>,
    /// Stage 4: width 512, stride 2, 2048 channels out.
    pub layer4: Vec<Bottleneck>,
}

impl ResNet {
    /// The last feature map, before global average pooling.
    ///
    /// The input is a batch of normalised RGB images (ImageNet mean and standard
    /// deviation, as torchvision's `Normalize`). Any size from 32 px up works; the map is
    /// 1/32 of the input, rounded up at each stride-2 step (224 -> 7, 64 -> 2).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - returns `[batch, 2048, ceil(height / 32), ceil(width / 32)]`
    ///
    /// # Panics
    /// If `images` does not have 3 channels.
    pub fn forward_features(&self, images: Tensor<4>) -> Tensor<4> {
        let x = relu(maybe_bn(&self.bn1, self.conv1.forward(images)));
        let mut x = self.maxpool.forward(x);
        for block in self
            .layer1
            .iter()
            .chain(&self.layer2)
            .chain(&self.layer3)
            .chain(&self.layer4)
        {
            x = block.forward(x);
        }
        x
    }

    /// The pooled feature vector: [`forward_features`](Self::forward_features) followed by
    /// the global average pool (torchvision's `avgpool` + `flatten`; `fc` removed).
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - returns `[batch, 2048]`
    ///
    /// # Panics
    /// If `images` does not have 3 channels.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let map = self.forward_features(images);
        let [batch, channels, height, width] = map.dims();
        map.reshape([batch, channels, height * width])
            .mean_dim(2)
            .reshape([batch, channels])
    }

    /// Folds every BatchNorm into the convolution before it, for inference.
    ///
    /// Same outputs up to float rounding (see `fuse.rs`), one pass less over every
    /// activation. The fused network cannot be trained, saved as a torchvision-layout
    /// record or hashed as the original weights: hash first (the [`Encoder`](crate::Encoder)
    /// does).
    pub fn fuse(self) -> Self {
        let fuse_all = |blocks: Vec<Bottleneck>| blocks.into_iter().map(Bottleneck::fuse).collect();
        let conv1 = match &self.bn1 {
            Some(bn) => fold_batch_norm(self.conv1, bn),
            None => self.conv1,
        };
        Self {
            conv1,
            bn1: None,
            maxpool: self.maxpool,
            layer1: fuse_all(self.layer1),
            layer2: fuse_all(self.layer2),
            layer3: fuse_all(self.layer3),
            layer4: fuse_all(self.layer4),
        }
    }

    /// Whether [`fuse`](Self::fuse) has been applied.
    pub fn is_fused(&self) -> bool {
        self.bn1.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet50_has_torchvision_parameter_count() {
        let device = Device::flex();
        let net = ResNetConfig::resnet50().init(&device);
        // torchvision resnet50: 25_557_032 parameters, of which fc has 2048 * 1000 + 1000;
        // Burn also counts the BatchNorm running mean and variance (26_560 channels each).
        assert_eq!(net.num_params(), 25_557_032 - 2_049_000 + 2 * 26_560);
    }

    #[test]
    fn small_inputs_give_the_expected_shapes() {
        let device = Device::flex();
        let net = ResNetConfig::new([1, 1, 1, 1]).init(&device);
        let x = Tensor::<4>::zeros([2, 3, 32, 45], &device);
        assert_eq!(net.forward_features(x.clone()).dims(), [2, 2048, 1, 2]);
        assert_eq!(net.forward(x).dims(), [2, 2048]);
    }
}
