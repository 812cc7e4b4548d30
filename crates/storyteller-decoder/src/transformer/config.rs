//! Hyper-parameters of the Transformer decoder.

use burn::config::Config;
use burn::tensor::Device;

use crate::DecoderError;
use crate::transformer::TransformerDecoder;

/// Hyper-parameters of [`TransformerDecoder`]; serialised as `config.json`'s `decoder` field
/// when the model's kind is `transformer`.
///
/// The defaults are a small captioning Transformer: 3 pre-norm layers of width 512 with 8
/// heads and a 2048-wide feed-forward, over a 7x7 grid of ResNet features.
#[derive(Config, Debug, PartialEq)]
pub struct TransformerDecoderConfig {
    /// Width of one region's feature (2048 for ResNet-50/101/152).
    #[config(default = 2048)]
    pub d_feature: usize,
    /// Side of the square feature grid: the decoder attends over `grid²` regions per image
    /// (1: the pooled feature alone).
    #[config(default = 7)]
    pub grid: usize,
    /// Width of the model: embeddings, attention and the residual stream.
    #[config(default = 512)]
    pub d_model: usize,
    /// Attention heads per layer (`d_model` must be a multiple).
    #[config(default = 8)]
    pub n_heads: usize,
    /// Number of decoder layers.
    #[config(default = 3)]
    pub n_layers: usize,
    /// Width of the feed-forward block's hidden layer.
    #[config(default = 2048)]
    pub d_ff: usize,
    /// Number of tokens, specials included.
    pub vocab_size: usize,
    /// Dropout probability on embeddings, attention weights, sub-layer outputs and the
    /// feed-forward's hidden layer (training only).
    #[config(default = 0.1)]
    pub dropout: f64,
    /// Score the vocabulary with the transposed token embedding (plus a bias) instead of
    /// an output layer of its own.
    #[config(default = false)]
    pub tied_output: bool,
}

impl TransformerDecoderConfig {
    /// Number of regions per image, `grid²`.
    pub fn regions(&self) -> usize {
        self.grid.saturating_mul(self.grid)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DecoderError> {
        let invalid = |field, value: String, reason| {
            Err(DecoderError::InvalidConfig {
                field,
                value,
                reason,
            })
        };
        let positive = [
            ("d_feature", self.d_feature),
            ("grid", self.grid),
            ("d_model", self.d_model),
            ("n_heads", self.n_heads),
            ("n_layers", self.n_layers),
            ("d_ff", self.d_ff),
        ];
        for (field, value) in positive {
            if value == 0 {
                return invalid(field, value.to_string(), "must be at least 1");
            }
        }
        if self.grid > 64 {
            return invalid(
                "grid",
                self.grid.to_string(),
                "must be at most 64 (4096 regions)",
            );
        }
        if self.n_layers > 64 {
            return invalid("n_layers", self.n_layers.to_string(), "must be at most 64");
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return invalid(
                "n_heads",
                self.n_heads.to_string(),
                "must divide d_model into equal heads",
            );
        }
        if !self.d_model.is_multiple_of(2) {
            return invalid(
                "d_model",
                self.d_model.to_string(),
                "must be even (sinusoidal positions pair sines and cosines)",
            );
        }
        if self.vocab_size < 5 {
            return invalid(
                "vocab_size",
                self.vocab_size.to_string(),
                "must hold the four special tokens and at least one word",
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid("dropout", self.dropout.to_string(), "must be in [0, 1)");
        }
        Ok(())
    }

    /// Number of parameters a decoder of this config has (saturating: a hostile config
    /// cannot overflow it).
    pub fn parameters(&self) -> u64 {
        let [f, r, d, ff, v, l] = [
            self.d_feature,
            self.regions(),
            self.d_model,
            self.d_ff,
            self.vocab_size,
            self.n_layers,
        ]
        .map(|x| x as u64);
        let linear = |i: u64, o: u64| i.saturating_mul(o).saturating_add(o);
        let attention = linear(d, d.saturating_mul(3)).saturating_add(linear(d, d));
        let layer = [
            attention,
            attention,
            linear(d, ff),
            linear(ff, d),
            d.saturating_mul(6), // three layer norms
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add);
        let output = if self.tied_output { v } else { linear(d, v) };
        [
            f.saturating_mul(2), // feature statistics
            linear(f, d),        // feature_proj
            r.saturating_mul(d), // region embedding
            v.saturating_mul(d), // token embedding
            layer.saturating_mul(l),
            d.saturating_mul(2), // final norm
            output,
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }

    /// A decoder with freshly initialised weights on `device`.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] when [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Result<TransformerDecoder, DecoderError> {
        self.validate()?;
        Ok(TransformerDecoder::new(self, device))
    }
}
