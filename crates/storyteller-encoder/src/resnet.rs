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
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};

use crate::block::{Bottleneck, BottleneckConfig, EXPANSION, conv, maybe_bn};
use crate::fuse::fold_batch_norm;

/// Channels of the stem and width of `layer1`; each later stage doubles the width.
const STEM_CHANNELS: usize = 64;

/// Most blocks in one stage of a network read from a checkpoint (ResNet-152 has 36).
pub const MAX_BLOCKS: usize = 64;

/// Builds a [`ResNet`]: ResNet-50 (the default of this project), ResNet-101 or ResNet-152.
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

    /// ResNet-101: `[3, 4, 23, 3]` bottleneck blocks, 2048-d output.
    pub fn resnet101() -> Self {
        Self::new([3, 4, 23, 3])
    }

    /// ResNet-152: `[3, 8, 36, 3]` bottleneck blocks, 2048-d output.
    pub fn resnet152() -> Self {
        Self::new([3, 8, 36, 3])
    }

    /// The stage depths that the torchvision keys of a checkpoint describe (one more than
    /// the largest block index `N` of the keys `layerS.N.*` of each stage). `None` when a
    /// stage has no key, or more than [`MAX_BLOCKS`] blocks (not a ResNet this crate
    /// builds).
    pub fn from_torchvision_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let mut layers = [0usize; 4];
        for key in keys {
            let Some(rest) = key.strip_prefix("layer") else {
                continue;
            };
            let mut parts = rest.splitn(3, '.');
            let (Some(stage), Some(block)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (Ok(stage), Ok(block)) = (stage.parse::<usize>(), block.parse::<usize>()) else {
                continue;
            };
            if (1..=4).contains(&stage) {
                layers[stage - 1] = layers[stage - 1].max(block.saturating_add(1));
            }
        }
        layers
            .iter()
            .all(|&n| (1..=MAX_BLOCKS).contains(&n))
            .then_some(Self::new(layers))
    }

    /// `ResNet-50`, `ResNet-101`, `ResNet-152`, or the stage depths of another.
    pub fn name(&self) -> String {
        match self.layers {
            [3, 4, 6, 3] => "ResNet-50".to_owned(),
            [3, 4, 23, 3] => "ResNet-101".to_owned(),
            [3, 8, 36, 3] => "ResNet-152".to_owned(),
            layers => format!("ResNet with blocks {layers:?}"),
        }
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

    /// Spatial features: the last feature map averaged over a `grid` x `grid` partition of
    /// it (torch's `AdaptiveAvgPool2d((grid, grid))`), one 2048-d row per region, regions in
    /// row-major order (top-left first). A grid larger than the map repeats cells, as torch
    /// does.
    ///
    /// # Shapes
    /// - `images`: `[batch, 3, height, width]`
    /// - returns `[batch, grid * grid, 2048]`
    ///
    /// # Panics
    /// If `images` does not have 3 channels or `grid` is 0.
    pub fn forward_grid(&self, images: Tensor<4>, grid: usize) -> Tensor<3> {
        assert!(grid > 0, "the grid needs at least one region");
        let map = adaptive_avg_pool2d(self.forward_features(images), [grid, grid]);
        let [batch, channels, height, width] = map.dims();
        map.reshape([batch, channels, height * width])
            .swap_dims(1, 2)
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

    /// Blocks in `layer1`..`layer4`.
    pub fn stage_depths(&self) -> [usize; 4] {
        [
            self.layer1.len(),
            self.layer2.len(),
            self.layer3.len(),
            self.layer4.len(),
        ]
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
    fn depths_are_read_from_checkpoint_keys() {
        let device = Device::flex();
        for config in [
            ResNetConfig::resnet50(),
            ResNetConfig::resnet101(),
            ResNetConfig::resnet152(),
        ] {
            let keys = ResNetConfig::new(config.layers)
                .init(&device)
                .torchvision_shapes();
            let found = ResNetConfig::from_torchvision_keys(keys.keys().map(String::as_str));
            assert_eq!(found.map(|c| c.layers), Some(config.layers));
        }
        assert_eq!(ResNetConfig::resnet101().name(), "ResNet-101");
        assert!(ResNetConfig::from_torchvision_keys(["conv1.weight", "layer1.0.x"]).is_none());
        assert!(
            ResNetConfig::from_torchvision_keys([
                "layer1.0.a",
                "layer2.0.a",
                "layer3.0.a",
                "layer4.999.a"
            ])
            .is_none()
        );
    }

    #[test]
    fn grid_features_are_region_means_of_the_map() {
        let device = Device::flex();
        let net = ResNetConfig::new([1, 1, 1, 1]).init(&device);
        // 128 px: a 4x4 map; a 2x2 grid averages 2x2 cells per region.
        let x = Tensor::<4>::random(
            [1, 3, 128, 128],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let map = net.forward_features(x.clone());
        assert_eq!(map.dims(), [1, 2048, 4, 4]);
        let grid = net.forward_grid(x.clone(), 2);
        assert_eq!(grid.dims(), [1, 4, 2048]);
        // Region 1 (top right) is the mean of rows 0..2, columns 2..4.
        let expected = map
            .slice([0..1, 0..2048, 0..2, 2..4])
            .reshape([1, 2048, 4])
            .mean_dim(2)
            .reshape([2048]);
        let region = grid.clone().slice([0..1, 1..2, 0..2048]).reshape([2048]);
        let diff = (region - expected).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
        // A 1x1 grid is the pooled vector.
        let one = net.forward_grid(x.clone(), 1).reshape([1, 2048]);
        let diff = (one - net.forward(x)).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{diff}");
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
