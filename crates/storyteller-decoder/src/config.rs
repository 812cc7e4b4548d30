//! The decoder's hyper-parameters.

use burn::config::Config;
use burn::tensor::Device;

use crate::{CaptionDecoder, DecoderError};

/// Hyper-parameters of [`CaptionDecoder`]; serialised as `config.json`'s `decoder` field.
#[derive(Config, Debug, PartialEq)]
pub struct CaptionDecoderConfig {
    /// Width of the image feature vector (2048 for ResNet-50).
    #[config(default = 2048)]
    pub d_feature: usize,
    /// Width of the word embeddings.
    #[config(default = 256)]
    pub d_embed: usize,
    /// Width of the LSTM hidden and cell states.
    #[config(default = 512)]
    pub d_hidden: usize,
    /// Number of tokens, specials included.
    pub vocab_size: usize,
    /// Number of stacked LSTM layers.
    #[config(default = 1)]
    pub n_layers: usize,
    /// Dropout probability on the embeddings, between LSTM layers and before the output
    /// projection (training only).
    #[config(default = 0.5)]
    pub dropout: f64,
}

impl CaptionDecoderConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DecoderError> {
        let positive = [
            ("d_feature", self.d_feature),
            ("d_embed", self.d_embed),
            ("d_hidden", self.d_hidden),
            ("n_layers", self.n_layers),
        ];
        for (field, value) in positive {
            if value == 0 {
                return Err(DecoderError::InvalidConfig {
                    field,
                    value: value.to_string(),
                    reason: "must be at least 1",
                });
            }
        }
        if self.vocab_size < 5 {
            return Err(DecoderError::InvalidConfig {
                field: "vocab_size",
                value: self.vocab_size.to_string(),
                reason: "must hold the four special tokens and at least one word",
            });
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(DecoderError::InvalidConfig {
                field: "dropout",
                value: self.dropout.to_string(),
                reason: "must be in [0, 1)",
            });
        }
        Ok(())
    }

    /// A decoder with freshly initialised weights on `device`.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] when [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Result<CaptionDecoder, DecoderError> {
        self.validate()?;
        Ok(CaptionDecoder::new(self, device))
    }
}
