//! What a decoding step scores the next token with: log-probabilities or raw logits.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor};

/// The scores a decoder gives every candidate next token of every row
/// ([`StepDecoder::step_scores`](crate::StepDecoder::step_scores)).
///
/// A decoder that ends in a linear layer has logits; handing them over unnormalised lets the
/// search normalise only what it needs. Greedy search needs one value per row, and
/// `log_softmax(x)[argmax] = (x_max − x_max) − log Σ exp(x − x_max) = −log Σ exp(x − x_max)`:
/// one arg-max pass and one sum of exponentials, where `log_softmax` followed by an arg-max
/// writes the whole normalised row and reads it twice more.
#[derive(Debug, Clone)]
pub enum NextTokenScores {
    /// Natural-log probabilities: every row is already normalised.
    LogProbs(Tensor<2>),
    /// Unnormalised logits: `log_softmax` along each row gives the log-probabilities.
    Logits(Tensor<2>),
}

impl NextTokenScores {
    /// `[rows, vocab_size]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Self::LogProbs(t) | Self::Logits(t) => t.dims(),
        }
    }

    /// The log-probabilities, normalising logits with `log_softmax`.
    ///
    /// # Shapes
    ///
    /// * returns `[rows, vocab_size]`
    pub fn into_log_probs(self) -> Tensor<2> {
        match self {
            Self::LogProbs(t) => t,
            Self::Logits(t) => log_softmax(t, 1),
        }
    }

    /// Every row's most probable token and its log-probability, ties to the lowest token id.
    ///
    /// For logits, the value is the one [`into_log_probs`](Self::into_log_probs) holds at
    /// that token, bit for bit on a backend that reduces both the same way (the sum of
    /// exponentials is the same expression over the same shape), without writing the
    /// normalised rows. On the CubeCL backend (features `wgpu`, `cuda`) logits take one fused
    /// kernel ([`best_token`](crate::best_token)); its sum runs in another order, so the value
    /// agrees within float rounding and the token exactly.
    ///
    /// # Shapes
    ///
    /// * returned log-probabilities and tokens: `[rows]`
    pub fn best(self) -> (Tensor<1>, Tensor<1, Int>) {
        match self {
            Self::LogProbs(log_probs) => {
                let [rows, _] = log_probs.dims();
                let (best, token) = log_probs.max_dim_with_indices(1);
                (best.reshape([rows]), token.reshape([rows]))
            }
            Self::Logits(logits) => crate::best_token::best_token(logits),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// The best of logits equals the best of their log-softmax, value (bit for bit on Flex)
    /// and token, with ties and `-inf` entries.
    #[test]
    fn best_of_logits_equals_log_softmax_then_argmax() {
        let device = Device::flex();
        let (rows, vocab) = (7, 301);
        let mut values: Vec<f32> = (0..rows * vocab)
            .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 30.0)
            .collect();
        // Row 1: a tie between columns 5 and 9 (the lower wins); row 2: -inf entries.
        values[vocab + 5] = 40.0;
        values[vocab + 9] = 40.0;
        for v in &mut values[2 * vocab..2 * vocab + 100] {
            *v = f32::NEG_INFINITY;
        }
        let logits = Tensor::<2>::from_data(TensorData::new(values, [rows, vocab]), &device);
        let normalised = NextTokenScores::Logits(logits.clone()).into_log_probs();
        let (want_value, want_token) = NextTokenScores::LogProbs(normalised).best();
        let (value, token) = NextTokenScores::Logits(logits).best();
        let want_value = want_value.into_data().try_to_vec::<f32>().unwrap();
        let value = value.into_data().try_to_vec::<f32>().unwrap();
        let want_token = want_token.into_data().iter::<i64>().collect::<Vec<_>>();
        let token = token.into_data().iter::<i64>().collect::<Vec<_>>();
        assert_eq!(token, want_token);
        assert_eq!(token[1], 5);
        for (a, b) in value.iter().zip(&want_value) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} vs {b}");
        }
    }
}
