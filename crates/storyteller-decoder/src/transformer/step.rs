//! The Transformer decoder as a [`StepDecoder`], so greedy and beam search can drive it.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use storyteller_search::{NextTokenScores, StepDecoder};

use crate::transformer::{TransformerDecoder, TransformerState};

impl StepDecoder for TransformerDecoder {
    type State = TransformerState;

    fn vocab_size(&self) -> usize {
        TransformerDecoder::vocab_size(self)
    }

    /// `features`: `[batch, regions·d_feature]`, each row an image's regions flattened.
    fn init_state(&self, features: Tensor<2>) -> TransformerState {
        TransformerDecoder::init_state(self, features)
    }

    fn step(
        &self,
        tokens: Tensor<1, Int>,
        state: TransformerState,
    ) -> (Tensor<2>, TransformerState) {
        let (logits, state) = self.step_logits(tokens, state);
        (log_softmax(logits, 1), state)
    }

    /// The logits, unnormalised: greedy search takes each row's best without
    /// normalising the whole row.
    fn step_scores(
        &self,
        tokens: Tensor<1, Int>,
        state: TransformerState,
    ) -> (NextTokenScores, TransformerState) {
        let (logits, state) = self.step_logits(tokens, state);
        (NextTokenScores::Logits(logits), state)
    }

    fn reorder_state(&self, state: TransformerState, rows: Tensor<1, Int>) -> TransformerState {
        state.select_rows(rows)
    }
}
