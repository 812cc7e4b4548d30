//! Beam search, batched across images and beams.

use burn::config::Config;
use burn::tensor::{Int, Tensor, TensorData};

use crate::greedy::{check_shape, check_vocab};
use crate::topk::best_continuations;
use crate::{Hypothesis, SearchError, StepDecoder, length_penalized};

/// Beam search: keeps the `width` most probable partial captions of every image.
///
/// # Algorithm
///
/// All images and all their beams are one batch of `images * width` decoder rows on the
/// device. At every step, for each image, the `2 * width` best continuations (beam, token)
/// by cumulative log-probability are taken from the `[width * vocab_size]` candidates (see
/// the crate docs for how this stays O(vocab) on the device). Walking them best first:
///
/// * a continuation with `<end>` that ranks among the first `width` becomes a *finished*
///   hypothesis (one ranked lower is dropped, as it would not have survived in the beam);
/// * any other continuation fills the next free beam, until `width` beams are alive.
///
/// An image is done when it has `width` finished hypotheses; its rows leave the batch. The
/// search stops when every image is done or after `max_len` steps. Ties are broken toward
/// the lower beam, then the lower token id, on every backend, so results are deterministic.
/// With `width = 1` the result is exactly [`GreedySearch`](crate::GreedySearch)'s.
///
/// # Ranking
///
/// The beam is pruned by raw cumulative log-probability. The returned hypotheses are ranked
/// by [`score`](Hypothesis::score) `= log_prob / len^length_penalty`, where `len` counts the
/// generated tokens including `<end>` but not `<start>` ([`length_penalized`]). Finished
/// hypotheses always rank before unfinished ones; unfinished ones (the beams alive at
/// `max_len`) only fill the list when fewer than `n_best` finished, so an image where no beam
/// ever reached `<end>` still gets its best `n_best` unfinished captions. Equal scores keep
/// the order in which the hypotheses were found (shorter first, then better rank).
#[derive(Config, Debug)]
pub struct BeamSearch {
    /// Number of beams kept per image (at least 1).
    #[config(default = 3)]
    pub width: usize,
    /// Maximum number of generated tokens per caption, counting `<end>` (at least 1).
    #[config(default = 20)]
    pub max_len: usize,
    /// Exponent `alpha` of the length penalty `score = log_prob / len^alpha`; 0 ranks by raw
    /// log-probability, 1 by mean log-probability per token.
    #[config(default = 0.0)]
    pub length_penalty: f32,
    /// Number of hypotheses returned per image, best first (1 to `width`).
    #[config(default = 1)]
    pub n_best: usize,
    /// Token id fed to the decoder at the first step.
    #[config(default = 1)]
    pub start_token: u32,
    /// Token id that ends a caption.
    #[config(default = 2)]
    pub end_token: u32,
}

/// One partial or finished caption of one image.
#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    log_prob: f32,
}

/// The host-side bookkeeping of one image still being decoded.
#[derive(Debug)]
struct ImageBeams {
    /// Position of the image in the input batch.
    image: usize,
    /// Live beams, best first; `log_prob == -inf` marks an empty slot.
    alive: Vec<Beam>,
    /// Finished hypotheses in the order they were found.
    finished: Vec<Beam>,
}

impl BeamSearch {
    /// Checks the settings without running anything.
    ///
    /// # Returns
    ///
    /// An error for width 0, `max_len` 0, `n_best` 0 or above `width`, or a non-finite length
    /// penalty.
    pub fn validate(&self) -> Result<(), SearchError> {
        if self.width == 0 {
            return Err(SearchError::ZeroWidth);
        }
        if self.max_len == 0 {
            return Err(SearchError::ZeroMaxLen);
        }
        if self.n_best == 0 {
            return Err(SearchError::ZeroNBest);
        }
        if self.n_best > self.width {
            return Err(SearchError::NBestExceedsWidth {
                n_best: self.n_best,
                width: self.width,
            });
        }
        if !self.length_penalty.is_finite() {
            return Err(SearchError::InvalidLengthPenalty {
                value: self.length_penalty,
            });
        }
        Ok(())
    }

    /// Decodes the `n_best` best captions of every image.
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
    /// For every image, in input order, up to `n_best` hypotheses ranked best first (see
    /// [Ranking](Self#ranking)). A list is shorter than `n_best` only when the decoder gives
    /// fewer continuations a finite log-probability. An error when the settings are invalid
    /// or the decoder's output does not fit them (see [`SearchError`]).
    pub fn search<D: StepDecoder + ?Sized>(
        &self,
        decoder: &D,
        features: Tensor<2>,
    ) -> Result<Vec<Vec<Hypothesis>>, SearchError> {
        self.validate()?;
        let vocab_size = decoder.vocab_size();
        check_vocab(self.start_token, self.end_token, vocab_size)?;
        let [batch, _] = features.dims();
        let device = features.device();
        let width = self.width;
        let mut results: Vec<Vec<Hypothesis>> = vec![Vec::new(); batch];
        if batch == 0 {
            return Ok(results);
        }

        let mut state = decoder.init_state(features);
        let mut input = Tensor::<1, Int>::full([batch], self.start_token as i64, &device);
        let mut scores = Tensor::<2>::zeros([batch, 1], &device);
        let mut beams_per_image = 1;
        let mut images: Vec<ImageBeams> = (0..batch)
            .map(|image| ImageBeams {
                image,
                alive: vec![Beam {
                    tokens: Vec::new(),
                    log_prob: 0.0,
                }],
                finished: Vec::new(),
            })
            .collect();

        for step in 0..self.max_len {
            let rows = images.len() * beams_per_image;
            let (next_token_scores, next_state) = decoder.step_scores(input, state);
            state = next_state;
            check_shape(next_token_scores.dims(), rows, vocab_size)?;
            let log_probs = next_token_scores.into_log_probs();
            let candidates = best_continuations(log_probs, scores, beams_per_image, 2 * width);

            // Source row, token and cumulative log-probability of every next row.
            let mut next_rows = Vec::with_capacity(images.len() * width);
            let mut next_tokens = Vec::with_capacity(images.len() * width);
            let mut next_scores = Vec::with_capacity(images.len() * width);
            let mut still_active = Vec::with_capacity(images.len());
            for (position, mut beams) in images.into_iter().enumerate() {
                let first = position * candidates.per_image;
                let mut alive: Vec<(usize, Beam)> = Vec::with_capacity(width);
                let mut seen: Vec<(usize, u32)> = Vec::with_capacity(candidates.per_image);
                for j in first..first + candidates.per_image {
                    let (value, beam, token) = (
                        candidates.values[j],
                        candidates.beams[j],
                        candidates.tokens[j],
                    );
                    if value.is_nan() || seen.contains(&(beam, token)) {
                        continue;
                    }
                    if value == f32::NEG_INFINITY || (alive.len() == width && seen.len() >= width) {
                        break;
                    }
                    let rank = seen.len();
                    seen.push((beam, token));
                    let parent = &beams.alive[beam];
                    if token == self.end_token {
                        if rank < width {
                            beams.finished.push(Beam {
                                tokens: parent.tokens.clone(),
                                log_prob: value,
                            });
                        }
                    } else if alive.len() < width {
                        let mut tokens = Vec::with_capacity(parent.tokens.len() + 1);
                        tokens.extend_from_slice(&parent.tokens);
                        tokens.push(token);
                        alive.push((
                            position * beams_per_image + beam,
                            Beam {
                                tokens,
                                log_prob: value,
                            },
                        ));
                    }
                }
                if beams.finished.len() >= width || alive.is_empty() {
                    beams.alive.clear();
                    let image = beams.image;
                    results[image] = self.rank(beams);
                    continue;
                }
                // Empty slots copy the first beam's row with a -inf score: they never win.
                let filler_row = alive[0].0;
                beams.alive.clear();
                for slot in 0..width {
                    match alive.get_mut(slot) {
                        Some((row, beam)) => {
                            next_rows.push(*row as i64);
                            next_tokens.push(i64::from(*beam.tokens.last().unwrap_or(&0)));
                            next_scores.push(beam.log_prob);
                            beams.alive.push(std::mem::replace(
                                beam,
                                Beam {
                                    tokens: Vec::new(),
                                    log_prob: 0.0,
                                },
                            ));
                        }
                        None => {
                            next_rows.push(filler_row as i64);
                            next_tokens.push(i64::from(self.end_token));
                            next_scores.push(f32::NEG_INFINITY);
                            beams.alive.push(Beam {
                                tokens: Vec::new(),
                                log_prob: f32::NEG_INFINITY,
                            });
                        }
                    }
                }
                still_active.push(beams);
            }
            images = still_active;
            if images.is_empty() || step + 1 == self.max_len {
                break;
            }
            let next = next_rows.len();
            let rows_tensor =
                Tensor::<1, Int>::from_data(TensorData::new(next_rows, [next]), &device);
            state = decoder.reorder_state(state, rows_tensor);
            input = Tensor::<1, Int>::from_data(TensorData::new(next_tokens, [next]), &device);
            scores = Tensor::<2>::from_data(TensorData::new(next_scores, [next, 1]), &device);
            beams_per_image = width;
        }

        // Images still alive at max_len.
        for beams in images {
            let image = beams.image;
            results[image] = self.rank(beams);
        }
        Ok(results)
    }

    /// The `n_best` hypotheses of one image: finished ones by score, then unfinished ones.
    fn rank(&self, beams: ImageBeams) -> Vec<Hypothesis> {
        let alpha = self.length_penalty;
        let finish = |beam: Beam, finished: bool| {
            let len = beam.tokens.len() + usize::from(finished);
            Hypothesis {
                score: length_penalized(beam.log_prob, len, alpha),
                log_prob: beam.log_prob,
                tokens: beam.tokens,
                finished,
            }
        };
        let by_score = |a: &Hypothesis, b: &Hypothesis| b.score.total_cmp(&a.score);
        let mut ranked: Vec<Hypothesis> = beams
            .finished
            .into_iter()
            .map(|beam| finish(beam, true))
            .collect();
        ranked.sort_by(by_score);
        if ranked.len() < self.n_best {
            let mut unfinished: Vec<Hypothesis> = beams
                .alive
                .into_iter()
                .filter(|beam| beam.log_prob > f32::NEG_INFINITY)
                .map(|beam| finish(beam, false))
                .collect();
            unfinished.sort_by(by_score);
            ranked.extend(unfinished);
        }
        ranked.truncate(self.n_best);
        ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = BeamSearch::new();
        assert_eq!(config.width, 3);
        assert_eq!(config.n_best, 1);
        assert_eq!(config.length_penalty, 0.0);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn config_errors_have_clear_messages() {
        let cases = [
            (
                BeamSearch::new().with_width(0),
                SearchError::ZeroWidth,
                "width",
            ),
            (
                BeamSearch::new().with_max_len(0),
                SearchError::ZeroMaxLen,
                "max_len",
            ),
            (
                BeamSearch::new().with_n_best(0),
                SearchError::ZeroNBest,
                "n_best",
            ),
            (
                BeamSearch::new().with_width(2).with_n_best(3),
                SearchError::NBestExceedsWidth {
                    n_best: 3,
                    width: 2,
                },
                "n_best (3) must not exceed the beam width (2)",
            ),
        ];
        for (config, expected, message) in cases {
            let err = config.validate().unwrap_err();
            assert_eq!(err, expected);
            assert!(err.to_string().contains(message), "{err}");
        }
        let err = BeamSearch::new()
            .with_length_penalty(f32::NAN)
            .validate()
            .unwrap_err();
        assert!(matches!(err, SearchError::InvalidLengthPenalty { .. }));
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = BeamSearch::new().with_width(5).with_length_penalty(0.7);
        let json = serde_json::to_string(&config).unwrap();
        let back: BeamSearch = serde_json::from_str(&json).unwrap();
        assert_eq!((back.width, back.length_penalty), (5, 0.7));
    }
}
