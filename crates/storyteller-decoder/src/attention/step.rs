//! The attention decoder as a [`StepDecoder`], so greedy and beam search can drive it.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use storyteller_search::{NextTokenScores, StepDecoder};

use crate::attention::{AttentionDecoder, AttentionState};

impl StepDecoder for AttentionDecoder {
    type State = AttentionState;

    fn vocab_size(&self) -> usize {
        AttentionDecoder::vocab_size(self)
    }

    /// `features`: `[batch, regions·d_feature]`, each row an image's regions flattened.
    fn init_state(&self, features: Tensor<2>) -> AttentionState {
        AttentionDecoder::init_state(self, features)
    }

    fn step(&self, tokens: Tensor<1, Int>, state: AttentionState) -> (Tensor<2>, AttentionState) {
        let (logits, state) = self.step_logits(tokens, state);
        (log_softmax(logits, 1), state)
    }

    /// The logits, unnormalised: greedy search takes each row's best without
    /// normalising the whole row.
    fn step_scores(
        &self,
        tokens: Tensor<1, Int>,
        state: AttentionState,
    ) -> (NextTokenScores, AttentionState) {
        let (logits, state) = self.step_logits(tokens, state);
        (NextTokenScores::Logits(logits), state)
    }

    fn reorder_state(&self, state: AttentionState, rows: Tensor<1, Int>) -> AttentionState {
        state.select_rows(rows)
    }
}
