//! Greedy search: the most probable token at every step.

use burn::config::Config;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use crate::{Hypothesis, SearchError, StepDecoder};

/// Greedy decoding: at every step each image takes its most probable next token.
///
/// A caption stops at `<end>` or after `max_len` tokens. Ties go to the lowest token id.
/// Equal to [`BeamSearch`](crate::BeamSearch) with width 1.
///
/// Two loops give the same captions:
/// - `sync_every: None` (the default): every step reads the chosen tokens back and drops
///   the images that finished from the batch, so the decoder only runs on rows that still
///   need a token. Best where a step is cheap to launch and costs arithmetic (the CPU).
/// - `sync_every: Some(k)`: fixed shapes. Tokens, log-probabilities and the finished mask
///   stay on the device; finished rows keep running (their outputs are ignored); the host
///   reads one flag every `k` steps to stop early and everything once at the end, at most
///   `⌈max_len / k⌉` reads per batch. Best where a host read stalls the device (GPUs).
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
    /// Keep the batch's shape and read the finished mask every this many steps (`None`:
    /// read every step and drop finished images; see the type's docs).
    #[config(default = "None")]
    pub sync_every: Option<usize>,
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
        if self.sync_every == Some(0) {
            return Err(SearchError::ZeroSyncInterval);
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
        Ok(self.search_counting_reads(decoder, features)?.0)
    }

    /// [`search`](Self::search), with the number of host reads it made.
    fn search_counting_reads<D: StepDecoder + ?Sized>(
        &self,
        decoder: &D,
        features: Tensor<2>,
    ) -> Result<(Vec<Vec<Hypothesis>>, usize), SearchError> {
        self.validate()?;
        if let Some(every) = self.sync_every {
            return self.search_fixed_shape(decoder, features, every);
        }
        let vocab_size = decoder.vocab_size();
        check_vocab(self.start_token, self.end_token, vocab_size)?;
        let [batch, _] = features.dims();
        if batch == 0 {
            return Ok((Vec::new(), 0));
        }
        let device = features.device();
        let mut state = decoder.init_state(features);
        let mut reads = 0;
        let mut tokens = vec![Vec::new(); batch];
        let mut log_probs = vec![0.0f32; batch];
        let mut finished = vec![false; batch];
        // The image of every row still decoding.
        let mut active: Vec<usize> = (0..batch).collect();
        let mut input = Tensor::<1, Int>::full([batch], self.start_token as i64, &device);

        for step in 0..self.max_len {
            let (scores, next_state) = decoder.step_scores(input, state);
            state = next_state;
            check_shape(scores.dims(), active.len(), vocab_size)?;
            let (best, best_tokens) = scores.best();
            let data = burn::tensor::Transaction::default()
                .register(best)
                .register(best_tokens.clone())
                .execute();
            reads += 1;
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

        Ok((hypotheses(tokens, log_probs, finished), reads))
    }

    /// The fixed-shape loop of `sync_every: Some(every)`.
    fn search_fixed_shape<D: StepDecoder + ?Sized>(
        &self,
        decoder: &D,
        features: Tensor<2>,
        every: usize,
    ) -> Result<(Vec<Vec<Hypothesis>>, usize), SearchError> {
        let vocab_size = decoder.vocab_size();
        check_vocab(self.start_token, self.end_token, vocab_size)?;
        let [batch, _] = features.dims();
        if batch == 0 {
            return Ok((Vec::new(), 0));
        }
        let device = features.device();
        let mut state = decoder.init_state(features);
        let mut input = Tensor::<1, Int>::full([batch], self.start_token as i64, &device);
        let mut finished = Tensor::<1, Bool>::full([batch], false, &device);
        let mut log_probs = Tensor::<1>::zeros([batch], &device);
        let mut chosen = Vec::with_capacity(self.max_len);
        let mut reads = 0;
        for step in 0..self.max_len {
            let (scores, next_state) = decoder.step_scores(input, state);
            state = next_state;
            check_shape(scores.dims(), batch, vocab_size)?;
            let (best, best_tokens) = scores.best();
            // Rows that finished earlier add nothing (a masked fill, not a product: a
            // finished row's −∞ times 0 would be NaN).
            log_probs = log_probs + best.mask_fill(finished.clone(), 0.0);
            finished = finished.bool_or(best_tokens.clone().equal_elem(self.end_token as i64));
            chosen.push(best_tokens.clone());
            input = best_tokens;
            let last = step + 1 == self.max_len;
            if !last && (step + 1) % every == 0 {
                reads += 1;
                if finished.clone().all().into_scalar::<bool>() {
                    break;
                }
            }
        }
        let steps = chosen.len();
        let data = burn::tensor::Transaction::default()
            .register(Tensor::stack::<2>(chosen, 1))
            .register(log_probs)
            .execute();
        reads += 1;
        let ids: Vec<i64> = data[0].iter::<i64>().collect();
        let mut tokens = Vec::with_capacity(batch);
        let mut done = Vec::with_capacity(batch);
        for row in ids.chunks(steps) {
            let end = row.iter().position(|&t| t as u32 == self.end_token);
            let words = &row[..end.unwrap_or(steps)];
            tokens.push(words.iter().map(|&t| t as u32).collect());
            done.push(end.is_some());
        }
        Ok((
            hypotheses(tokens, data[1].iter::<f32>().collect(), done),
            reads,
        ))
    }
}

/// One greedy hypothesis per image.
fn hypotheses(
    tokens: Vec<Vec<u32>>,
    log_probs: Vec<f32>,
    finished: Vec<bool>,
) -> Vec<Vec<Hypothesis>> {
    tokens
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
        .collect()
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

/// Fails when the decoder's scores are not `[rows, vocab_size]`.
pub(crate) fn check_shape(
    found: [usize; 2],
    rows: usize,
    vocab_size: usize,
) -> Result<(), SearchError> {
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

    /// Next-token scores from the previous token (a table) plus a per-image bias (the
    /// features), so images finish at different steps.
    struct Biased {
        table: Tensor<2>,
    }

    impl StepDecoder for Biased {
        type State = Tensor<2>;
        fn vocab_size(&self) -> usize {
            self.table.dims()[1]
        }
        fn init_state(&self, features: Tensor<2>) -> Tensor<2> {
            features
        }
        fn step(&self, tokens: Tensor<1, Int>, bias: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
            let logits = self.table.clone().select(0, tokens) + bias.clone();
            (burn::tensor::activation::log_softmax(logits, 1), bias)
        }
        fn reorder_state(&self, bias: Tensor<2>, rows: Tensor<1, Int>) -> Tensor<2> {
            bias.select(0, rows)
        }
    }

    fn seeded(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * scale
            })
            .collect()
    }

    /// The fixed-shape loop gives the compacting loop's captions, finished flags and
    /// log-probabilities, and reads the host at most ⌈max_len / k⌉ times.
    #[test]
    fn the_fixed_shape_loop_equals_the_compacting_one_with_fewer_reads() {
        let device = burn::tensor::Device::flex();
        let (vocab, images, max_len) = (9, 12, 10);
        let table = Tensor::<2>::from_data(
            TensorData::new(seeded(vocab * vocab, 3, 6.0), [vocab, vocab]),
            &device,
        );
        let decoder = Biased { table };
        let features = Tensor::<2>::from_data(
            TensorData::new(seeded(images * vocab, 5, 8.0), [images, vocab]),
            &device,
        );
        let compacting = GreedySearch::new().with_max_len(max_len);
        let (expected, reads) = compacting
            .search_counting_reads(&decoder, features.clone())
            .unwrap();
        let lengths: Vec<usize> = expected.iter().map(|h| h[0].tokens.len()).collect();
        assert!(
            expected.iter().any(|h| h[0].finished) && expected.iter().any(|h| !h[0].finished),
            "the test needs finished and unfinished captions: {lengths:?}"
        );
        assert!(reads > 1);
        for every in [1, 3, 4, max_len, 100] {
            let fixed = compacting.clone().with_sync_every(Some(every));
            let (found, reads) = fixed
                .search_counting_reads(&decoder, features.clone())
                .unwrap();
            assert!(
                reads <= max_len.div_ceil(every),
                "{reads} reads every {every}"
            );
            for (want, got) in expected.iter().zip(&found) {
                assert_eq!(want[0].tokens, got[0].tokens, "every {every}");
                assert_eq!(want[0].finished, got[0].finished);
                assert!((want[0].log_prob - got[0].log_prob).abs() < 1e-5);
            }
        }
        let err = compacting.with_sync_every(Some(0)).validate().unwrap_err();
        assert_eq!(err, SearchError::ZeroSyncInterval);
    }

    /// All captions end early: the fixed-shape loop stops at the first check after the
    /// last `<end>` instead of running `max_len` steps.
    #[test]
    fn the_fixed_shape_loop_stops_when_every_caption_ended() {
        let device = burn::tensor::Device::flex();
        // Token 2 (<end>) always wins after <start>.
        let mut values = vec![0.0f32; 25];
        values[5 + 2] = 10.0;
        let decoder = Biased {
            table: Tensor::from_data(TensorData::new(values, [5, 5]), &device),
        };
        let features = Tensor::<2>::zeros([3, 5], &device);
        let search = GreedySearch::new()
            .with_max_len(50)
            .with_sync_every(Some(2));
        let (found, reads) = search.search_counting_reads(&decoder, features).unwrap();
        assert!(
            found
                .iter()
                .all(|h| h[0].finished && h[0].tokens.is_empty())
        );
        assert_eq!(reads, 2, "one check after step 2, then the final read");
    }

    #[test]
    fn zero_max_len_is_an_error() {
        let err = GreedySearch::new().with_max_len(0).validate().unwrap_err();
        assert_eq!(err, SearchError::ZeroMaxLen);
        assert!(err.to_string().contains("max_len"));
    }
}
