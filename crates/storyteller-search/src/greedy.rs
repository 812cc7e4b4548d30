//! Greedy search: the most probable token at every step.

use burn::config::Config;
use burn::tensor::{Int, Tensor, TensorData};

use crate::{Hypothesis, SearchError, StepDecoder};

/// Greedy decoding: at every step each image takes its most probable next token.
///
/// A caption stops at `<end>` or after `max_len` tokens. Ties go to the lowest token id.
/// Images that have finished are dropped from the batch, so the decoder only runs on rows that
/// still need a token. Equal to [`BeamSearch`](crate::BeamSearch) with width 1.
#[derive(Config, Debug)]
pub struct GreedySearch {
    /// Maximum number of generated tokens per caption, counting `<end>` (at least 1).
    #[config(default = 20)]
    pub max_len: usize,
    /// Token id fed to the decoder at the first step.
    #[config(default = 1)]
    pub start_token: u32,
    /// Token id that ends a caption.
    #[config(default = 2)]
    pub end_token: u32,
}

impl GreedySearch {
    /// Checks the settings without running anything.
    ///
    /// # Returns
    ///
    /// [`SearchError::ZeroMaxLen`] when `max_len` is 0.
    pub fn validate(&self) -> Result<(), SearchError> {
        if self.max_len == 0 {
            return Err(SearchError::ZeroMaxLen);
        }
        Ok(())
    }

    /// Decodes one caption per image.
    ///
    /// # Arguments
    ///
    /// * `decoder` - The model, advanced one token at a time.
    /// * `features` - Image features, one row per image.
    ///
    /// # Shapes
    ///
    /// * `features`: `[batch, d_feature]`
    ///
    /// # Returns
    ///
    /// For every image, in input order, a list with one [`Hypothesis`] whose `score` is its
    /// `log_prob`. An error when the settings are invalid or the decoder's output does not fit
    /// them (see [`SearchError`]).
    pub fn search<D: StepDecoder + ?Sized>(
        &self,
        decoder: &D,
        features: Tensor<2>,
    ) -> Result<Vec<Vec<Hypothesis>>, SearchError> {
        self.validate()?;
        let vocab_size = decoder.vocab_size();
        check_vocab(self.start_token, self.end_token, vocab_size)?;
        let [batch, _] = features.dims();
        if batch == 0 {
            return Ok(Vec::new());
        }
        let device = features.device();
        let mut state = decoder.init_state(features);
        let mut tokens = vec![Vec::new(); batch];
        let mut log_probs = vec![0.0f32; batch];
        let mut finished = vec![false; batch];
        // The image of every row still decoding.
        let mut active: Vec<usize> = (0..batch).collect();
        let mut input = Tensor::<1, Int>::full([batch], self.start_token as i64, &device);

        for step in 0..self.max_len {
            let (step_log_probs, next_state) = decoder.step(input, state);
            state = next_state;
            check_shape(&step_log_probs, active.len(), vocab_size)?;
            let rows = active.len();
            let (best, best_tokens) = step_log_probs.max_dim_with_indices(1);
            let best_tokens = best_tokens.reshape([rows]);
            let data = burn::tensor::Transaction::default()
                .register(best)
                .register(best_tokens.clone())
                .execute();
            let mut still_active = Vec::with_capacity(active.len());
            let mut keep_rows = Vec::with_capacity(active.len());
            for (row, (value, token)) in
                data[0].iter::<f32>().zip(data[1].iter::<i64>()).enumerate()
            {
                let image = active[row];
                log_probs[image] += value;
                if token as u32 == self.end_token {
                    finished[image] = true;
                } else {
                    tokens[image].push(token as u32);
                    still_active.push(image);
                    keep_rows.push(row as i64);
                }
            }
            if still_active.is_empty() || step + 1 == self.max_len {
                break;
            }
            if still_active.len() == active.len() {
                input = best_tokens;
            } else {
                let rows_len = keep_rows.len();
                let keep =
                    Tensor::<1, Int>::from_data(TensorData::new(keep_rows, [rows_len]), &device);
                input = best_tokens.select(0, keep.clone());
                state = decoder.reorder_state(state, keep);
            }
            active = still_active;
        }

        Ok(tokens
            .into_iter()
            .zip(log_probs)
            .zip(finished)
            .map(|((tokens, log_prob), finished)| {
                vec![Hypothesis {
                    tokens,
                    log_prob,
                    score: log_prob,
                    finished,
                }]
            })
            .collect())
    }
}

/// Fails when a special token is not a column of the decoder's output.
pub(crate) fn check_vocab(start: u32, end: u32, vocab_size: usize) -> Result<(), SearchError> {
    for (name, token) in [("<start>", start), ("<end>", end)] {
        if token as usize >= vocab_size {
            return Err(SearchError::TokenOutOfVocab {
                name,
                token,
                vocab_size,
            });
        }
    }
    Ok(())
}

/// Fails when the decoder's log-probabilities are not `[rows, vocab_size]`.
pub(crate) fn check_shape(
    log_probs: &Tensor<2>,
    rows: usize,
    vocab_size: usize,
) -> Result<(), SearchError> {
    let found = log_probs.dims();
    if found != [rows, vocab_size] {
        return Err(SearchError::DecoderShape {
            expected: [rows, vocab_size],
            found,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_use_the_vocab_specials() {
        let config = GreedySearch::new();
        assert_eq!(
            (config.start_token, config.end_token, config.max_len),
            (1, 2, 20)
        );
    }

    #[test]
    fn zero_max_len_is_an_error() {
        let err = GreedySearch::new().with_max_len(0).validate().unwrap_err();
        assert_eq!(err, SearchError::ZeroMaxLen);
        assert!(err.to_string().contains("max_len"));
    }
}
