//! Neural Storyteller: image captioning in pure Rust on Burn.
//!
//! A ResNet-50 encoder ([`storyteller_encoder`]) turns an image into a 2048-d feature, an
//! LSTM decoder ([`storyteller_decoder`]) initialised from it writes the caption, greedy or
//! beam search ([`storyteller_search`]) picks the words, and [`storyteller_metrics`] scores
//! captions as pycocoevalcap does. This crate ties them together: [`Captioner`] captions
//! images from a model directory, `train::train` (with the `train` feature) trains one on
//! cached features, and [`evaluate()`] scores a model on a dataset split.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use storyteller::{Captioner, Search, BeamSearch};
//!
//! let device = Device::default();
//! let captioner = Captioner::load("model", &device)?
//!     .with_search(Search::Beam(BeamSearch::new().with_width(5)))?;
//! for caption in captioner.n_best(&image::open("dog.jpg").unwrap().to_rgb8(), 3)? {
//!     println!("{:7.3}  {}", caption.score, caption.text);
//! }
//! # Ok::<(), storyteller::StorytellerError>(())
//! ```

pub mod attention_view;
#[cfg(feature = "train")]
pub mod bench;
mod captioner;
#[cfg(feature = "train")]
mod chart;
#[cfg(feature = "train")]
pub mod demo;
mod error;
pub mod evaluate;
pub mod extract;
mod glyphs;
pub mod import;
pub mod model_dir;
#[cfg(feature = "train")]
pub mod train;

/// Burn, whose [`Device`] and tensors this API takes: use this re-export to name them at the
/// version this crate was built with.
pub use burn;
pub use burn::tensor::Device;
pub use captioner::{AttentionMaps, Caption, Captioner, decode_image};
pub use error::{Component, ComponentError, Result, StorytellerError};
pub use evaluate::{Evaluation, ImageCaptions, evaluate, evaluate_with_progress};
pub use extract::{ExtractOptions, ExtractSummary, extract_features};
/// The `image` crate, whose [`RgbImage`] [`Captioner`] captions.
pub use image;
pub use image::RgbImage;
pub use import::{ImportOptions, ImportSummary, PytorchDecoder, import_pytorch};
pub use model_dir::{DecoderKind, EncoderRef, ModelConfig, ModelLayout};
pub use storyteller_data::{
    FeatureCache, Flickr30k, MergeSummary, PreprocessConfig, Shard, Split, Storage, Vocab,
    merge_shards,
};
pub use storyteller_decoder::{
    AttentionDecoder, AttentionDecoderConfig, CaptionDecoder, CaptionDecoderConfig, Conditioning,
    Decoder, DecoderConfig, SearchDecoder, TransformerDecoder, TransformerDecoderConfig,
};
pub use storyteller_encoder::Encoder;
pub use storyteller_metrics::Scores;
pub use storyteller_search::{
    BeamSearch, GreedySearch, Hypothesis, NextTokenScores, Search, StepDecoder,
};
