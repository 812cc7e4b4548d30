//! The one interface a caption model implements to be searched.

use burn::tensor::{Int, Tensor};

use crate::NextTokenScores;

/// An autoregressive decoder that can be advanced one token at a time.
///
/// The searches in this crate know nothing about the model behind this trait: an LSTM, a
/// transformer with a key/value cache, or a hand-written probability table in a test all look
/// the same. Every method works on a batch of *rows*; a row is one partial caption (one image
/// for greedy search, one beam of one image for beam search). All tensors live on the device
/// of the features passed to [`init_state`](Self::init_state).
pub trait StepDecoder {
    /// Everything the decoder carries from one step to the next, for a batch of rows
    /// (for an LSTM: the hidden and cell states, each `[rows, d_hidden]`).
    type State;

    /// The number of tokens the decoder scores: the width of the log-probabilities that
    /// [`step`](Self::step) returns.
    fn vocab_size(&self) -> usize;

    /// The state before the first token, one row per image.
    ///
    /// # Arguments
    ///
    /// * `features` - Image features, one row per image.
    ///
    /// # Shapes
    ///
    /// * `features`: `[batch, d_feature]`
    ///
    /// # Returns
    ///
    /// A state with `batch` rows.
    fn init_state(&self, features: Tensor<2>) -> Self::State;

    /// Feeds one token per row and returns the log-probabilities of the next token.
    ///
    /// # Arguments
    ///
    /// * `tokens` - The previous token of every row (`<start>` at the first step).
    /// * `state` - The state of the same rows.
    ///
    /// # Shapes
    ///
    /// * `tokens`: `[rows]`
    /// * returned log-probabilities: `[rows, vocab_size]`
    ///
    /// # Returns
    ///
    /// The natural-log probabilities of every vocabulary token for every row (finite or
    /// `-inf`; `-inf` marks a token that can never follow) and the advanced state.
    fn step(&self, tokens: Tensor<1, Int>, state: Self::State) -> (Tensor<2>, Self::State);

    /// [`step`](Self::step), with the scores in whichever form the decoder has them.
    ///
    /// The searches call this one. The default wraps `step`'s log-probabilities; a decoder
    /// whose step ends in logits returns [`NextTokenScores::Logits`] (and `step` their
    /// `log_softmax`), so that greedy search can take each row's best token without
    /// normalising the whole row ([`NextTokenScores::best`]).
    ///
    /// # Shapes
    ///
    /// * `tokens`: `[rows]`
    /// * returned scores: `[rows, vocab_size]`
    fn step_scores(
        &self,
        tokens: Tensor<1, Int>,
        state: Self::State,
    ) -> (NextTokenScores, Self::State) {
        let (log_probs, state) = self.step(tokens, state);
        (NextTokenScores::LogProbs(log_probs), state)
    }

    /// Builds a new state whose row `i` is row `rows[i]` of `state`.
    ///
    /// Rows may repeat (a beam that spawns several children), be dropped (a finished image) or
    /// be reordered, and the result can have more or fewer rows than the input. Beam search
    /// calls it once after the first step to expand each image into its beams, then after each
    /// step to follow the surviving beams.
    ///
    /// # Arguments
    ///
    /// * `state` - The current state.
    /// * `rows` - For every row of the new state, the row of `state` it copies.
    ///
    /// # Shapes
    ///
    /// * `rows`: `[new_rows]`, every value in `0..rows_of(state)`
    ///
    /// # Returns
    ///
    /// A state with `new_rows` rows.
    fn reorder_state(&self, state: Self::State, rows: Tensor<1, Int>) -> Self::State;
}
