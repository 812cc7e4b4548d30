//! ResNet-50 image encoder for Neural Storyteller, ported to Burn 0.22 from
//! torchvision: the network (classifier removed), torchvision weight import from
//! `.pth` and `.safetensors`, Burn's own record format, a stable weight hash, and
//! BatchNorm folding for fast inference.
//!
//! ```no_run
//! use burn::tensor::{Device, Tensor};
//! use storyteller_encoder::Encoder;
//!
//! # fn main() -> Result<(), storyteller_encoder::EncoderError> {
//! let device = Device::default();
//! // torchvision's IMAGENET1K_V2 weights, as released.
//! let encoder = Encoder::load("resnet50-11ad3fa6.pth", &device)?;
//! // A batch of images preprocessed as torchvision does (resize 256, crop 224, normalise).
//! let images = Tensor::<4>::zeros([4, 3, 224, 224], &device);
//! let features = encoder.forward(images);
//! assert_eq!(features.dims(), [4, 2048]);
//! println!("encoder {}", encoder.weights_hash());
//! # Ok(())
//! # }
//! ```
//!
//! The network alone, randomly initialised (runs as a test):
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use storyteller_encoder::ResNetConfig;
//!
//! let device = Device::default();
//! let net = ResNetConfig::resnet50().init(&device);
//! let map = net.forward_features(Tensor::<4>::zeros([1, 3, 64, 64], &device));
//! assert_eq!(map.dims(), [1, 2048, 2, 2]);
//! ```
//!
//! Parity: on the CPU (Flex, f32) the outputs match PyTorch's to a maximum relative
//! error below 1e-4 (`tests/parity.rs`, fixture from `scripts/make_resnet_fixture.py`).

mod block;
mod encoder;
mod error;
mod format;
mod fuse;
mod hash;
mod resnet;
pub mod weights;

pub use block::{Bottleneck, BottleneckConfig, Downsample, EXPANSION};
pub use encoder::Encoder;
pub use error::{EncoderError, Result};
pub use format::WeightFormat;
pub use fuse::fold_batch_norm;
pub use resnet::{MAX_BLOCKS, ResNet, ResNetConfig};
pub use weights::LoadReport;
