//! Every decoder family behind one type: what model directories, training and search hold.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};
use storyteller_search::{NextTokenScores, StepDecoder};

use crate::attention::{AttentionDecoder, AttentionDecoderConfig, AttentionState};
use crate::transformer::{TransformerDecoder, TransformerDecoderConfig, TransformerState};
use crate::{CaptionDecoder, CaptionDecoderConfig, DecoderError, DecoderState};

/// The hyper-parameters of one decoder family, tagged by its kind.
///
/// Serialised adjacently tagged, `{"kind": "show-tell", "decoder": {...}}`, which is how
/// `config.json` has always named its decoder (directories written before the kind existed
/// hold a Show-and-Tell decoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "decoder", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DecoderConfig {
    /// The LSTM of Show and Tell conditioned on the pooled feature.
    ShowTell(CaptionDecoderConfig),
    /// The soft-attention LSTM of Show, Attend and Tell over a grid of regions.
    ShowAttendTell(AttentionDecoderConfig),
    /// A pre-norm Transformer decoder over a grid of regions.
    Transformer(TransformerDecoderConfig),
}

impl DecoderConfig {
    /// The kind's name in configs and on the command line.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ShowTell(_) => "show-tell",
            Self::ShowAttendTell(_) => "show-attend-tell",
            Self::Transformer(_) => "transformer",
        }
    }

    /// Number of tokens, specials included.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::ShowTell(c) => c.vocab_size,
            Self::ShowAttendTell(c) => c.vocab_size,
            Self::Transformer(c) => c.vocab_size,
        }
    }

    /// Width of one feature vector (one region's, for attention).
    pub fn d_feature(&self) -> usize {
        match self {
            Self::ShowTell(c) => c.d_feature,
            Self::ShowAttendTell(c) => c.d_feature,
            Self::Transformer(c) => c.d_feature,
        }
    }

    /// Side of the feature grid the decoder reads: 1 (the pooled feature) for Show and
    /// Tell.
    pub fn grid(&self) -> usize {
        match self {
            Self::ShowTell(_) => 1,
            Self::ShowAttendTell(c) => c.grid,
            Self::Transformer(c) => c.grid,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] naming the first bad field.
    pub fn validate(&self) -> Result<(), DecoderError> {
        match self {
            Self::ShowTell(c) => c.validate(),
            Self::ShowAttendTell(c) => c.validate(),
            Self::Transformer(c) => c.validate(),
        }
    }

    /// A decoder with freshly initialised weights on `device`.
    ///
    /// # Errors
    /// [`DecoderError::InvalidConfig`] when [`validate`](Self::validate) fails.
    pub fn init(&self, device: &Device) -> Result<Decoder, DecoderError> {
        Ok(match self {
            Self::ShowTell(c) => Decoder::ShowTell(c.init(device)?),
            Self::ShowAttendTell(c) => Decoder::ShowAttendTell(c.init(device)?),
            Self::Transformer(c) => Decoder::Transformer(c.init(device)?),
        })
    }
}

impl From<CaptionDecoderConfig> for DecoderConfig {
    fn from(config: CaptionDecoderConfig) -> Self {
        Self::ShowTell(config)
    }
}

impl From<TransformerDecoderConfig> for DecoderConfig {
    fn from(config: TransformerDecoderConfig) -> Self {
        Self::Transformer(config)
    }
}

impl From<AttentionDecoderConfig> for DecoderConfig {
    fn from(config: AttentionDecoderConfig) -> Self {
        Self::ShowAttendTell(config)
    }
}

/// A decoder of any family.
// Variants hold tensor handles, a few kilobytes moved a few times per step against
// milliseconds of tensor work; boxing would not pay (and Module is not derived for Box).
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Decoder {
    /// Show and Tell.
    ShowTell(CaptionDecoder),
    /// Show, Attend and Tell.
    ShowAttendTell(AttentionDecoder),
    /// The Transformer.
    Transformer(TransformerDecoder),
}

/// The search state of a [`Decoder`].
#[allow(clippy::large_enum_variant)] // as for `Decoder`
#[derive(Debug, Clone)]
pub enum StepState {
    /// Show and Tell's.
    ShowTell(DecoderState),
    /// Show, Attend and Tell's.
    ShowAttendTell(AttentionState),
    /// The Transformer's.
    Transformer(TransformerState),
}

impl StepState {
    /// The attention weights of the last step, `[rows, regions]` (attention decoders, after
    /// the first step).
    pub fn attention(&self) -> Option<&Tensor<2>> {
        match self {
            Self::ShowTell(_) | Self::Transformer(_) => None,
            Self::ShowAttendTell(state) => state.alpha.as_ref(),
        }
    }
}

impl Decoder {
    /// Number of tokens the decoder scores.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::ShowTell(d) => d.vocab_size(),
            Self::ShowAttendTell(d) => d.vocab_size(),
            Self::Transformer(d) => d.vocab_size(),
        }
    }

    /// Width of one feature vector (one region's, for attention).
    pub fn d_feature(&self) -> usize {
        match self {
            Self::ShowTell(d) => d.d_feature(),
            Self::ShowAttendTell(d) => d.d_feature(),
            Self::Transformer(d) => d.d_feature(),
        }
    }

    /// Side of the feature grid the decoder reads (1: the pooled feature).
    pub fn grid(&self) -> usize {
        match self {
            Self::ShowTell(_) => 1,
            Self::ShowAttendTell(d) => d.grid(),
            Self::Transformer(d) => d.grid(),
        }
    }

    /// Teacher-forced logits `[batch, T, vocab_size]` of features `[batch, grid²·d_feature]`
    /// and input tokens `[batch, T]`.
    pub fn forward(&self, features: Tensor<2>, tokens: Tensor<2, Int>) -> Tensor<3> {
        match self {
            Self::ShowTell(d) => d.forward(features, tokens),
            Self::ShowAttendTell(d) => d.forward(features, tokens),
            Self::Transformer(d) => d.forward(features, tokens),
        }
    }

    /// Teacher-forced logits and, for an attention decoder, the weights of every step
    /// `[batch, T, regions]`.
    pub fn forward_with_attention(
        &self,
        features: Tensor<2>,
        tokens: Tensor<2, Int>,
    ) -> (Tensor<3>, Option<Tensor<3>>) {
        match self {
            Self::ShowTell(d) => (d.forward(features, tokens), None),
            Self::Transformer(d) => (d.forward(features, tokens), None),
            Self::ShowAttendTell(d) => {
                let (logits, alphas) = d.forward_with_attention(features, tokens);
                (logits, Some(alphas))
            }
        }
    }

    /// Draws every lazily initialised parameter now, in module order (see
    /// [`CaptionDecoder::materialized`]).
    pub fn materialized(self) -> Self {
        match self {
            Self::ShowTell(d) => Self::ShowTell(d.materialized()),
            Self::ShowAttendTell(d) => Self::ShowAttendTell(d.materialized()),
            Self::Transformer(d) => Self::Transformer(d.materialized()),
        }
    }

    /// The weights in Burn's record format (burnpack), laid out as the family's own module
    /// (a Show-and-Tell `decoder.bpk` from before the kinds existed loads unchanged).
    ///
    /// # Errors
    /// [`DecoderError::Record`] (with an empty path) when serialisation fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecoderError> {
        match self {
            Self::ShowTell(d) => d.to_bytes(),
            Self::ShowAttendTell(d) => d.to_bytes(),
            Self::Transformer(d) => d.to_bytes(),
        }
    }

    /// A decoder of `config` with the weights of a burnpack file written by
    /// [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// The config is invalid, or the file is unreadable or does not fit the config.
    pub fn load(
        path: impl AsRef<Path>,
        config: &DecoderConfig,
        device: &Device,
    ) -> Result<Self, DecoderError> {
        let path = path.as_ref();
        match config {
            DecoderConfig::ShowTell(c) => {
                Ok(Self::ShowTell(CaptionDecoder::load(path, c, device)?))
            }
            DecoderConfig::ShowAttendTell(c) => Ok(Self::ShowAttendTell(AttentionDecoder::load(
                path, c, device,
            )?)),
            DecoderConfig::Transformer(c) => Ok(Self::Transformer(TransformerDecoder::load(
                path, c, device,
            )?)),
        }
    }
}

impl StepDecoder for Decoder {
    type State = StepState;

    fn vocab_size(&self) -> usize {
        Decoder::vocab_size(self)
    }

    fn init_state(&self, features: Tensor<2>) -> StepState {
        match self {
            Self::ShowTell(d) => StepState::ShowTell(StepDecoder::init_state(d, features)),
            Self::ShowAttendTell(d) => {
                StepState::ShowAttendTell(StepDecoder::init_state(d, features))
            }
            Self::Transformer(d) => StepState::Transformer(StepDecoder::init_state(d, features)),
        }
    }

    fn step(&self, tokens: Tensor<1, Int>, state: StepState) -> (Tensor<2>, StepState) {
        let (scores, state) = self.step_scores(tokens, state);
        (scores.into_log_probs(), state)
    }

    fn step_scores(
        &self,
        tokens: Tensor<1, Int>,
        state: StepState,
    ) -> (NextTokenScores, StepState) {
        match (self, state) {
            (Self::ShowTell(d), StepState::ShowTell(s)) => {
                let (scores, s) = d.step_scores(tokens, s);
                (scores, StepState::ShowTell(s))
            }
            (Self::ShowAttendTell(d), StepState::ShowAttendTell(s)) => {
                let (scores, s) = d.step_scores(tokens, s);
                (scores, StepState::ShowAttendTell(s))
            }
            (Self::Transformer(d), StepState::Transformer(s)) => {
                let (scores, s) = d.step_scores(tokens, s);
                (scores, StepState::Transformer(s))
            }
            _ => panic!("a search state of one decoder kind passed to another"),
        }
    }

    fn reorder_state(&self, state: StepState, rows: Tensor<1, Int>) -> StepState {
        match state {
            StepState::ShowTell(s) => StepState::ShowTell(s.select_rows(rows)),
            StepState::ShowAttendTell(s) => StepState::ShowAttendTell(s.select_rows(rows)),
            StepState::Transformer(s) => StepState::Transformer(s.select_rows(rows)),
        }
    }
}
