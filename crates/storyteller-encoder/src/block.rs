//! The bottleneck residual block of ResNet-50/101/152.
//!
//! He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016,
//! section 3.3 and figure 5 (right). Laid out as torchvision's
//! `torchvision.models.resnet.Bottleneck` ("ResNet V1.5"): the stride sits on the 3x3
//! convolution, not on the first 1x1 as in the paper, and the projection shortcut is a
//! strided 1x1 convolution followed by BatchNorm.

use burn::config::Config;
use burn::module::{Initializer, Module};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::fuse::fold_batch_norm;

/// Output channels per bottleneck width (torchvision's `Bottleneck.expansion`).
pub const EXPANSION: usize = 4;

/// Builds a [`Bottleneck`].
#[derive(Config, Debug)]
pub struct BottleneckConfig {
    /// Channels entering the block.
    pub d_input: usize,
    /// Width of the block: channels of the 1x1 reduction and of the 3x3 convolution.
    /// The block outputs `EXPANSION * d_hidden` channels.
    pub d_hidden: usize,
    /// Stride of the 3x3 convolution (and of the projection shortcut).
    #[config(default = 1)]
    pub stride: usize,
}

impl BottleneckConfig {
    /// Channels leaving the block.
    pub fn d_output(&self) -> usize {
        EXPANSION * self.d_hidden
    }

    /// Initialises a block with torchvision's random initialisation (Kaiming normal,
    /// fan-out, for convolutions; BatchNorm weight 1, bias 0, statistics 0 and 1).
    pub fn init(&self, device: &Device) -> Bottleneck {
        let d_output = self.d_output();
        let downsample = (self.stride != 1 || self.d_input != d_output).then(|| Downsample {
            conv: conv(self.d_input, d_output, 1, self.stride).init(device),
            bn: Some(BatchNormConfig::new(d_output).init(device)),
        });
        Bottleneck {
            conv1: conv(self.d_input, self.d_hidden, 1, 1).init(device),
            bn1: Some(BatchNormConfig::new(self.d_hidden).init(device)),
            conv2: conv(self.d_hidden, self.d_hidden, 3, self.stride).init(device),
            bn2: Some(BatchNormConfig::new(self.d_hidden).init(device)),
            conv3: conv(self.d_hidden, d_output, 1, 1).init(device),
            bn3: Some(BatchNormConfig::new(d_output).init(device)),
            downsample,
        }
    }
}

/// A bias-free convolution with torchvision's padding (`kernel / 2`) and initialisation.
pub(crate) fn conv(d_input: usize, d_output: usize, kernel: usize, stride: usize) -> Conv2dConfig {
    Conv2dConfig::new([d_input, d_output], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            kernel / 2,
            kernel / 2,
            kernel / 2,
            kernel / 2,
        ))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: true,
        })
}

/// Applies `bn` when present; a fused network has folded it into the convolution.
pub(crate) fn maybe_bn(bn: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    match bn {
        Some(bn) => bn.forward(x),
        None => x,
    }
}

/// The projection shortcut: 1x1 convolution (strided) and BatchNorm.
///
/// torchvision stores it as `nn.Sequential(conv, bn)`, so its keys are
/// `downsample.0.*` and `downsample.1.*`; see `weights.rs` for the remap.
#[derive(Module, Debug)]
pub struct Downsample {
    /// torchvision `downsample.0`.
    pub conv: Conv2d,
    /// torchvision `downsample.1`; `None` once folded into `conv`.
    pub bn: Option<BatchNorm>,
}

impl Downsample {
    /// # Shapes
    /// - `x`: `[batch, d_input, h, w]`
    /// - returns `[batch, d_output, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        maybe_bn(&self.bn, self.conv.forward(x))
    }

    fn fuse(self) -> Self {
        Self {
            conv: fold(self.conv, self.bn),
            bn: None,
        }
    }
}

/// The bottleneck block: 1x1 reduce, 3x3 (strided), 1x1 expand, each followed by
/// BatchNorm, ReLU after the first two and after the residual sum.
///
/// Field names are torchvision's state-dict keys.
#[derive(Module, Debug)]
pub struct Bottleneck {
    /// 1x1 convolution, `d_input -> d_hidden`.
    pub conv1: Conv2d,
    /// BatchNorm after `conv1`; `None` once folded.
    pub bn1: Option<BatchNorm>,
    /// 3x3 convolution, `d_hidden -> d_hidden`, carries the block's stride.
    pub conv2: Conv2d,
    /// BatchNorm after `conv2`; `None` once folded.
    pub bn2: Option<BatchNorm>,
    /// 1x1 convolution, `d_hidden -> 4 * d_hidden`.
    pub conv3: Conv2d,
    /// BatchNorm after `conv3`; `None` once folded.
    pub bn3: Option<BatchNorm>,
    /// Projection shortcut, present when the stride or the channel count changes.
    pub downsample: Option<Downsample>,
}

impl Bottleneck {
    /// Runs the block.
    ///
    /// # Arguments
    /// - `x`: the input feature map.
    ///
    /// # Shapes
    /// - `x`: `[batch, d_input, h, w]`
    /// - returns `[batch, 4 * d_hidden, ceil(h / stride), ceil(w / stride)]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = relu(maybe_bn(&self.bn1, self.conv1.forward(x)));
        let out = relu(maybe_bn(&self.bn2, self.conv2.forward(out)));
        let out = maybe_bn(&self.bn3, self.conv3.forward(out));
        relu(out + identity)
    }

    /// Folds every BatchNorm of the block into the convolution before it.
    pub fn fuse(self) -> Self {
        Self {
            conv1: fold(self.conv1, self.bn1),
            bn1: None,
            conv2: fold(self.conv2, self.bn2),
            bn2: None,
            conv3: fold(self.conv3, self.bn3),
            bn3: None,
            downsample: self.downsample.map(Downsample::fuse),
        }
    }

    /// Whether the block's BatchNorms have been folded.
    pub fn is_fused(&self) -> bool {
        self.bn1.is_none()
    }
}

fn fold(conv: Conv2d, bn: Option<BatchNorm>) -> Conv2d {
    match bn {
        Some(bn) => fold_batch_norm(conv, &bn),
        None => conv,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_stride_and_expansion() {
        let device = Device::flex();
        let block = BottleneckConfig::new(64, 32).with_stride(2).init(&device);
        assert!(block.downsample.is_some());
        let y = block.forward(Tensor::zeros([2, 64, 9, 8], &device));
        assert_eq!(y.dims(), [2, 128, 5, 4]);
    }

    #[test]
    fn identity_shortcut_when_shapes_agree() {
        let device = Device::flex();
        let block = BottleneckConfig::new(128, 32).init(&device);
        assert!(block.downsample.is_none());
        let y = block.forward(Tensor::ones([1, 128, 4, 4], &device));
        assert_eq!(y.dims(), [1, 128, 4, 4]);
    }
}
