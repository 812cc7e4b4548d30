//! The crate's error type.

/// Why a search could not run.
///
/// Every variant is a configuration or input problem that the caller can fix; a search never
/// panics on user input. Decoding itself has no failure mode: "no beam reached `<end>`" is a
/// normal outcome (the best unfinished hypotheses are returned), not an error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// `width` was 0: a beam search needs at least one beam.
    #[error("beam search width must be at least 1, got 0")]
    ZeroWidth,
    /// `max_len` was 0: a caption needs at least one decoding step.
    #[error("max_len must be at least 1 decoding step, got 0")]
    ZeroMaxLen,
    /// `sync_every` was `Some(0)`: the finished mask must be read every 1 or more steps.
    #[error("sync_every must be at least 1 step, got 0")]
    ZeroSyncInterval,
    /// `n_best` was 0: a search must return at least one hypothesis per image.
    #[error("n_best must be at least 1, got 0")]
    ZeroNBest,
    /// More hypotheses were asked for than the beam keeps.
    #[error("n_best ({n_best}) must not exceed the beam width ({width})")]
    NBestExceedsWidth {
        /// The requested number of hypotheses per image.
        n_best: usize,
        /// The beam width.
        width: usize,
    },
    /// The length penalty was NaN or infinite.
    #[error("length_penalty must be a finite number, got {value}")]
    InvalidLengthPenalty {
        /// The rejected value.
        value: f32,
    },
    /// The `<start>` or `<end>` token id is not smaller than the decoder's vocabulary size.
    #[error("{name} token id {token} is outside the decoder's vocabulary of {vocab_size} tokens")]
    TokenOutOfVocab {
        /// Which special token: `"<start>"` or `"<end>"`.
        name: &'static str,
        /// The configured token id.
        token: u32,
        /// The decoder's [`vocab_size`](crate::StepDecoder::vocab_size).
        vocab_size: usize,
    },
    /// The decoder returned log-probabilities of the wrong shape.
    #[error(
        "the decoder returned log-probabilities of shape {found:?}, expected {expected:?} ([rows fed, vocab_size])"
    )]
    DecoderShape {
        /// `[rows, vocab_size]`: the number of tokens fed to
        /// [`StepDecoder::step`](crate::StepDecoder::step) and its vocabulary size.
        expected: [usize; 2],
        /// The shape it returned.
        found: [usize; 2],
    },
}
