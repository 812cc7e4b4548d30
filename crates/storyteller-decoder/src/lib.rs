//! The LSTM caption decoder of Neural Storyteller.
//!
//! [`CaptionDecoder`] turns a 2048-d image feature into a caption, Show-and-Tell style:
//! the feature initialises the LSTM state, word embeddings drive it, a linear layer scores
//! the vocabulary. It implements [`storyteller_search::StepDecoder`], so greedy and beam
//! search decode it; [`CaptionDecoder::forward`] is the teacher-forced forward used in
//! training; [`load_pytorch`] imports the PyTorch reference decoder's weights.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use storyteller_decoder::CaptionDecoderConfig;
//! use storyteller_search::GreedySearch;
//!
//! let device = Device::default();
//! let config = CaptionDecoderConfig::new(100).with_d_feature(64).with_d_embed(16).with_d_hidden(32);
//! let decoder = config.init(&device)?;
//! let features = Tensor::<2>::zeros([2, 64], &device);
//! let captions = GreedySearch::new().with_max_len(5).search(&decoder, features)?;
//! assert_eq!(captions.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! With the `train` feature, [`train::TrainStep`] runs masked cross-entropy and Adam with
//! gradient clipping on an autodiff device.

pub mod attention;
mod config;
mod decoder;
mod decoder_kind;
mod error;
pub mod fused_cell;
mod gate_table;
mod lstm_cell;
mod search_decoder;
mod state_dict;
mod step;
#[cfg(feature = "train")]
pub mod train;
pub mod transformer;
mod weights;

pub use attention::{AttentionDecoder, AttentionDecoderConfig};
pub use config::{CaptionDecoderConfig, Conditioning};
pub use decoder::{CaptionDecoder, DecoderState};
pub use decoder_kind::{Decoder, DecoderConfig, StepState};
pub use error::DecoderError;
pub use gate_table::GateTable;
pub use lstm_cell::LstmCell;
pub use search_decoder::SearchDecoder;
pub use transformer::{TransformerDecoder, TransformerDecoderConfig};
pub use weights::{PytorchImport, load_pytorch};
