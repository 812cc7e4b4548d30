//! A Transformer caption decoder: pre-norm decoder layers with masked self-attention over
//! the caption and cross-attention over the image regions.
//!
//! [`TransformerDecoder`] has the layout of PyTorch's `nn.TransformerDecoder` (plus the
//! embeddings and projections around it), so its `state_dict` imports with
//! [`load_pytorch_transformer`]. As a [`storyteller_search::StepDecoder`] it decodes
//! incrementally: every layer keeps the keys and values of the tokens fed so far, so a
//! step costs one token's work, and beam search reorders the caches with the rows.

mod config;
mod decoder;
mod import;
mod layer;
mod multi_head;
mod step;

pub use config::TransformerDecoderConfig;
pub use decoder::{TransformerDecoder, TransformerState, sinusoid};
pub use import::{TransformerImport, load_pytorch_transformer};
pub use layer::TransformerLayer;
pub use multi_head::{KeyValue, MultiHeadAttention};
