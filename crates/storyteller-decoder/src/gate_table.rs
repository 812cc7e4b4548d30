//! The word embedding folded into the first LSTM layer's input gates, for decoding.

use burn::tensor::module::linear;
use burn::tensor::{Int, Tensor};

use crate::{CaptionDecoder, DecoderState};

/// The first layer's input gates of every word, `embed(w)·W_ih + b_ih + b_hh`, `[vocab_size,
/// 4·d_hidden]`: what a decoding step of a [`CaptionDecoder`] computes from the fed token
/// before the recurrence.
///
/// A step then gathers one row per token instead of embedding it and multiplying by `W_ih`
/// (one kernel instead of three on a GPU, and `d_embed·4·d_hidden` multiply-adds less per row
/// on any device). Building it costs `vocab_size·d_embed·4·d_hidden` multiply-adds, about as
/// much as decoding `vocab_size` rows for one step, so it is built once per model (see
/// [`SearchDecoder`](crate::SearchDecoder)), not per search. The values differ from the
/// step's own product by float rounding only (a matrix product of another shape).
///
/// For inference: dropout on the embedding (training only) is not part of the table.
#[derive(Debug, Clone)]
pub struct GateTable {
    gates: Tensor<2>,
}

impl GateTable {
    /// The table of `decoder`'s current weights (a table of other weights gives another
    /// model's steps: rebuild it after changing them).
    pub fn new(decoder: &CaptionDecoder) -> Self {
        let embedding = decoder.embed.weight.val();
        let first = &decoder.lstm[0];
        Self {
            gates: linear(embedding, first.weight_ih.val(), Some(first.gate_bias())),
        }
    }

    /// `[vocab_size, 4·d_hidden]`.
    pub fn dims(&self) -> [usize; 2] {
        self.gates.dims()
    }

    /// The input gates of the given tokens.
    ///
    /// # Shapes
    /// - `tokens`: `[rows]`
    /// - returns `[rows, 4·d_hidden]`
    pub fn gather(&self, tokens: Tensor<1, Int>) -> Tensor<2> {
        self.gates.clone().select(0, tokens)
    }
}

impl CaptionDecoder {
    /// [`step_logits`](Self::step_logits) with the input gates gathered from `table`
    /// (built from this decoder's weights by [`GateTable::new`]).
    ///
    /// # Shapes
    /// - `tokens`: `[rows]`
    /// - returns `[rows, vocab_size]` and the advanced state.
    pub fn step_logits_with_table(
        &self,
        table: &GateTable,
        tokens: Tensor<1, Int>,
        state: DecoderState,
    ) -> (Tensor<2>, DecoderState) {
        self.step_from_input_gates(table.gather(tokens), state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CaptionDecoderConfig, Conditioning};
    use burn::tensor::{Device, Distribution, TensorData};

    /// Steps through the table give the embedding's logits and states within 1e-5, for
    /// every conditioning and two layers.
    #[test]
    fn table_steps_equal_embedding_steps() {
        let device = Device::flex();
        for conditioning in Conditioning::ALL {
            let decoder = CaptionDecoderConfig::new(23)
                .with_d_feature(10)
                .with_d_embed(6)
                .with_d_hidden(8)
                .with_n_layers(2)
                .with_conditioning(conditioning)
                .with_d_whitened(None)
                .init(&device)
                .unwrap()
                .materialized();
            let table = GateTable::new(&decoder);
            assert_eq!(table.dims(), [23, 32]);
            let features = Tensor::<2>::random([3, 10], Distribution::Default, &device);
            let mut plain = decoder.init_state(features.clone());
            let mut tabled = decoder.init_state(features);
            for step in 0..4i64 {
                let tokens = Tensor::<1, Int>::from_data(
                    TensorData::new(vec![1 + step, 7 + 3 * step, 22 - step], [3]),
                    &device,
                );
                let (want, next_plain) = decoder.step_logits(tokens.clone(), plain);
                let (got, next_tabled) = decoder.step_logits_with_table(&table, tokens, tabled);
                let worst = (want - got).abs().max().into_scalar::<f32>();
                assert!(worst < 1e-5, "{conditioning}, step {step}: {worst}");
                for (a, b) in next_plain.cell.iter().zip(&next_tabled.cell) {
                    let drift = (a.clone() - b.clone()).abs().max().into_scalar::<f32>();
                    assert!(drift < 1e-5, "{conditioning}, step {step}: cell {drift}");
                }
                (plain, tabled) = (next_plain, next_tabled);
            }
        }
    }
}
