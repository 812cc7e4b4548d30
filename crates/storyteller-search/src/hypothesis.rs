//! One decoded caption with its scores, and the length penalty that ranks them.

/// One decoded token sequence for one image.
///
/// A search returns, per image, a list of hypotheses ranked best first (see
/// [`BeamSearch`](crate::BeamSearch) for the ranking rule).
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// The generated token ids, without `<start>` and without the final `<end>`.
    pub tokens: Vec<u32>,
    /// Sum of the natural-log probabilities of every generated token, including the `<end>`
    /// token when [`finished`](Self::finished) is true.
    pub log_prob: f32,
    /// The ranking score: `log_prob / len^alpha` (see [`length_penalized`]), where `len` is
    /// [`len`](Self::len). Greedy search has no length penalty: its score is `log_prob`.
    pub score: f32,
    /// Whether the sequence ended with `<end>`. `false` means it was cut at `max_len`.
    pub finished: bool,
}

impl Hypothesis {
    /// The number of generated tokens that `log_prob` sums over: the tokens plus one for the
    /// `<end>` token of a finished hypothesis. `<start>` is never counted.
    pub fn len(&self) -> usize {
        self.tokens.len() + usize::from(self.finished)
    }

    /// Whether no token was generated at all (impossible for a hypothesis returned by a search,
    /// which always takes at least one step).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The length-penalised score of a hypothesis: `log_prob / len^alpha`.
///
/// `len` counts the generated tokens including `<end>` when the hypothesis is finished, and
/// never `<start>` (see [`Hypothesis::len`]). `alpha = 0` ranks by raw log-probability, which
/// favours short captions; `alpha = 1` ranks by mean per-token log-probability; values in
/// between (0.6–0.8 are common) trade the two. Computed in `f64` and rounded to `f32`.
///
/// # Arguments
///
/// * `log_prob` - The summed log-probability of the hypothesis.
/// * `len` - The number of generated tokens it sums over (at least 1).
/// * `alpha` - The length-penalty exponent.
///
/// # Returns
///
/// The score; equal to `log_prob` when `alpha` is 0.
pub fn length_penalized(log_prob: f32, len: usize, alpha: f32) -> f32 {
    if alpha == 0.0 || len == 0 {
        return log_prob;
    }
    (f64::from(log_prob) / (len as f64).powf(f64::from(alpha))) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_alpha_is_raw_log_prob() {
        assert_eq!(length_penalized(-3.5, 7, 0.0), -3.5);
    }

    #[test]
    fn alpha_one_is_mean_log_prob() {
        assert!((length_penalized(-3.0, 4, 1.0) + 0.75).abs() < 1e-7);
    }

    #[test]
    fn len_counts_end_token() {
        let finished = Hypothesis {
            tokens: vec![5, 6],
            log_prob: -1.0,
            score: -1.0,
            finished: true,
        };
        assert_eq!(finished.len(), 3);
        let cut = Hypothesis {
            finished: false,
            ..finished
        };
        assert_eq!(cut.len(), 2);
        assert!(!cut.is_empty());
    }
}
