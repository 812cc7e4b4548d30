//! A decoder of any family, prepared once for many searches.

use burn::tensor::{Int, Tensor};
use storyteller_search::{NextTokenScores, StepDecoder};

use crate::{Decoder, GateTable, StepState};

/// A [`Decoder`] with what its decoding steps can precompute: for Show and Tell, the
/// [`GateTable`] (the embedding folded into the first layer's input gates); the other
/// families step as they are.
///
/// Build it once per model and search with it as often as needed; it holds the decoder's
/// weights of the time it was built (it owns the decoder, so they cannot change under it).
/// Captions equal the plain decoder's up to float rounding (logits within 1e-5 in the
/// tests).
#[derive(Debug, Clone)]
pub struct SearchDecoder {
    decoder: Decoder,
    gate_table: Option<GateTable>,
}

impl SearchDecoder {
    /// Prepares `decoder` for searching (for Show and Tell this builds its gate table, a
    /// `vocab_size × d_embed × 4·d_hidden` product).
    pub fn new(decoder: Decoder) -> Self {
        let gate_table = match &decoder {
            Decoder::ShowTell(d) => Some(GateTable::new(d)),
            _ => None,
        };
        Self {
            decoder,
            gate_table,
        }
    }

    /// The decoder it searches.
    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// The decoder back, without the precomputed tables.
    pub fn into_decoder(self) -> Decoder {
        self.decoder
    }
}

impl StepDecoder for SearchDecoder {
    type State = StepState;

    fn vocab_size(&self) -> usize {
        self.decoder.vocab_size()
    }

    fn init_state(&self, features: Tensor<2>) -> StepState {
        StepDecoder::init_state(&self.decoder, features)
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
        match (&self.decoder, &self.gate_table, state) {
            (Decoder::ShowTell(d), Some(table), StepState::ShowTell(s)) => {
                let (logits, s) = d.step_logits_with_table(table, tokens, s);
                (NextTokenScores::Logits(logits), StepState::ShowTell(s))
            }
            (decoder, _, state) => decoder.step_scores(tokens, state),
        }
    }

    fn reorder_state(&self, state: StepState, rows: Tensor<1, Int>) -> StepState {
        self.decoder.reorder_state(state, rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaptionDecoderConfig;
    use burn::tensor::{Device, Distribution};
    use storyteller_search::{BeamSearch, GreedySearch};

    /// Greedy and beam-3 captions of the prepared decoder equal the plain decoder's.
    #[test]
    fn searches_equal_the_plain_decoders() {
        let device = Device::flex();
        let decoder = Decoder::ShowTell(
            CaptionDecoderConfig::new(40)
                .with_d_feature(12)
                .with_d_embed(8)
                .with_d_hidden(16)
                .init(&device)
                .unwrap()
                .materialized(),
        );
        let prepared = SearchDecoder::new(decoder.clone());
        let features = Tensor::<2>::random([5, 12], Distribution::Normal(0.0, 3.0), &device);
        let greedy = GreedySearch::new().with_max_len(8);
        let beam = BeamSearch::new().with_width(3).with_max_len(8);
        let pairs = [
            (
                greedy.search(&decoder, features.clone()).unwrap(),
                greedy.search(&prepared, features.clone()).unwrap(),
            ),
            (
                beam.search(&decoder, features.clone()).unwrap(),
                beam.search(&prepared, features).unwrap(),
            ),
        ];
        for (want, got) in pairs {
            for (a, b) in want.iter().zip(&got) {
                assert_eq!(a[0].tokens, b[0].tokens);
                assert!((a[0].log_prob - b[0].log_prob).abs() < 1e-5);
            }
        }
    }
}
