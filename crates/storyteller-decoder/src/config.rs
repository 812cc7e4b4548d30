//! The decoder's hyper-parameters.

use burn::config::Config;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

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
    /// How the image feature enters the LSTM.
    #[config(default = "Conditioning::Init")]
    pub conditioning: Conditioning,
    /// Width of the PCA-whitened feature, when the centred feature is projected onto its
    /// principal components and scaled to unit variance before it enters the LSTM (`None`:
    /// the feature enters at `d_feature`; see
    /// [`CaptionDecoder::set_feature_whitening`]).
    #[config(default = "None")]
    pub d_whitened: Option<usize>,
}

/// How the image feature conditions the decoder.
///
/// Terms from Tanti, Gatt and Camilleri, "Where to put the image in an image caption
/// generator" (2018).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Conditioning {
    /// Init-inject, the seed's Show-and-Tell model: the feature sets the initial state,
    /// `h₀ = tanh(init_h·f)`, `c₀ = tanh(init_c·f)`, and is not seen again.
    #[default]
    Init,
    /// Par-inject: the state starts at zero and the feature enters the first LSTM layer at
    /// every step, `gates += feature_gates·f` (equal to concatenating `f` to each input).
    Par,
    /// Both: the feature sets the initial state and enters every step.
    Both,
}

impl Conditioning {
    /// Every variant.
    pub const ALL: [Conditioning; 3] = [Conditioning::Init, Conditioning::Par, Conditioning::Both];

    /// Whether the feature sets the initial state.
    pub fn injects_init(self) -> bool {
        matches!(self, Conditioning::Init | Conditioning::Both)
    }

    /// Whether the feature enters every step.
    pub fn injects_every_step(self) -> bool {
        matches!(self, Conditioning::Par | Conditioning::Both)
    }

    /// The name used in configs and on the command line (`init`, `par`, `both`).
    pub fn name(self) -> &'static str {
        match self {
            Conditioning::Init => "init",
            Conditioning::Par => "par",
            Conditioning::Both => "both",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl std::fmt::Display for Conditioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
        if let Some(d) = self.d_whitened
            && (d == 0 || d > self.d_feature)
        {
            return Err(DecoderError::InvalidConfig {
                field: "d_whitened",
                value: d.to_string(),
                reason: "must be 1 to d_feature",
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
