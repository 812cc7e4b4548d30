//! The decoder as a [`StepDecoder`], so greedy and beam search can drive it.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};
use storyteller_search::{NextTokenScores, StepDecoder};

use crate::{CaptionDecoder, DecoderState};

impl StepDecoder for CaptionDecoder {
    type State = DecoderState;

    fn vocab_size(&self) -> usize {
        CaptionDecoder::vocab_size(self)
    }

    fn init_state(&self, features: Tensor<2>) -> DecoderState {
        CaptionDecoder::init_state(self, features)
    }

    fn step(&self, tokens: Tensor<1, Int>, state: DecoderState) -> (Tensor<2>, DecoderState) {
        let (logits, state) = self.step_logits(tokens, state);
        (log_softmax(logits, 1), state)
    }

    /// The logits, unnormalised: greedy search takes each row's best without
    /// normalising the whole row.
    fn step_scores(
        &self,
        tokens: Tensor<1, Int>,
        state: DecoderState,
    ) -> (NextTokenScores, DecoderState) {
        let (logits, state) = self.step_logits(tokens, state);
        (NextTokenScores::Logits(logits), state)
    }

    fn reorder_state(&self, state: DecoderState, rows: Tensor<1, Int>) -> DecoderState {
        state.select_rows(rows)
    }
}
