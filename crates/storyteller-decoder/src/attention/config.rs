//! Hyper-parameters of the soft-attention decoder.

use burn::config::Config;
use burn::tensor::Device;

use crate::DecoderError;
use crate::attention::AttentionDecoder;

/// Hyper-parameters of [`AttentionDecoder`]; serialised as `config.json`'s `decoder` field
/// when the model's kind is `show-attend-tell`.
///
/// The defaults are those of the widely used PyTorch tutorial implementation of Show,
/// Attend and Tell (512-d embeddings, attention and LSTM, dropout 0.5, λ = 1) on a 14x14
/// grid of ResNet features.
#[derive(Config, Debug, PartialEq)]
pub struct AttentionDecoderConfig {
    /// Width of one region's feature (2048 for ResNet-50/101/152).
    #[config(default = 2048)]
    pub d_feature: usize,
    /// Side of the square feature grid the encoder pools to: the decoder attends over
    /// `grid²` regions per image.
    #[config(default = 14)]
    pub grid: usize,
    /// Width of the word embeddings.
    #[config(default = 512)]
    pub d_embed: usize,
    /// Width of the attention MLP's hidden layer.
    #[config(default = 512)]
    pub d_attention: usize,
    /// Width of the LSTM hidden and cell states.
    #[config(default = 512)]
    pub d_hidden: usize,
    /// Number of tokens, specials included.
    pub vocab_size: usize,
    /// Dropout probability before the output layer (training only).
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Weight λ of the doubly stochastic attention regulariser,
    /// `λ · Σ_regions (1 − Σ_steps α)²` per image (0 turns it off).
    #[config(default = 1.0)]
    pub alpha_c: f64,
}

impl AttentionDecoderConfig {
    /// Number of regions per image, `grid²`.
    pub fn regions(&self) -> usize {
        self.grid.saturating_mul(self.grid)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DecoderError> {
        let positive = [
            ("d_feature", self.d_feature),
            ("grid", self.grid),
            ("d_embed", self.d_embed),
            ("d_attention", self.d_attention),
            ("d_hidden", self.d_hidden),
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
        if self.grid > 64 {
            return Err(DecoderError::InvalidConfig {
                field: "grid",
                value: self.grid.to_string(),
                reason: "must be at most 64 (4096 regions)",
            });
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
        if !(self.alpha_c.is_finite() && self.alpha_c >= 0.0) {
            return Err(DecoderError::InvalidConfig {
                field: "alpha_c",
                value: self.alpha_c.to_string(),
                reason: "must be a finite number, 0 or more",
            });
        }
        Ok(())
    }

    /// Number of parameters a decoder of this config has (saturating: a hostile config
    /// cannot overflow it).
    pub fn parameters(&self) -> u64 {
        let [f, e, a, h, v] = [
            self.d_feature,
            self.d_embed,
            self.d_attention,
            self.d_hidden,
            self.vocab_size,
        ]
        .map(|x| x as u64);
        let linear = |i: u64, o: u64| i.saturating_mul(o).saturating_add(o);
        [
            f.saturating_mul(2), // feature statistics
            linear(f, a),        // encoder_att
            linear(h, a),        // decoder_att
            linear(a, 1),        // full_att
            v.saturating_mul(e), // embedding
            (e.saturating_add(f).saturating_add(h).saturating_add(2))
                .saturating_mul(h.saturating_mul(4)), // LSTM
            linear(f, h).saturating_mul(2), // init_h, init_c
            linear(h, f),        // f_beta
            linear(h, v),        // fc
        ]
        .into_iter()
        .fold(0u64, u64::saturating_add)
    }

    /// A decoder with freshly initialised weights on `device`.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] when [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Result<AttentionDecoder, DecoderError> {
        self.validate()?;
        Ok(AttentionDecoder::new(self, device))
    }
}
