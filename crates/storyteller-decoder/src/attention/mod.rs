//! Show, Attend and Tell: an LSTM decoder with soft attention over a grid of image regions.
//!
//! [`AttentionDecoder`] has the PyTorch tutorial implementation's layout, so its
//! `state_dict` imports with [`load_tutorial`]; it trains with the same
//! [`TrainStep`](crate::train::TrainStep) as the Show-and-Tell decoder (plus the doubly
//! stochastic regulariser) and is searched through [`storyteller_search::StepDecoder`].

mod config;
mod decoder;
mod import;
mod soft_attention;
mod step;

pub use config::AttentionDecoderConfig;
pub use decoder::{AttentionDecoder, AttentionState};
pub use import::{TutorialImport, load_tutorial};
pub use soft_attention::SoftAttention;
