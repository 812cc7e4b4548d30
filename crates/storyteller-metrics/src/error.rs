//! The error type of this crate.

/// What can go wrong when building a corpus or computing a metric.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum MetricsError {
    /// A sample was given no reference captions; every metric needs at least one.
    #[error("sample {sample} has no reference captions (every image needs at least one)")]
    NoReferences {
        /// Index of the sample in insertion order.
        sample: usize,
    },
    /// The corpus holds no samples, so no corpus-level score is defined.
    #[error("the corpus is empty: nothing to score")]
    EmptyCorpus,
    /// BLEU weights were empty, or negative, or not finite.
    #[error(
        "invalid BLEU weights {weights:?}: give one finite, non-negative weight per n-gram order"
    )]
    InvalidWeights {
        /// The weights as given.
        weights: Vec<f64>,
    },
    /// An n-gram order of zero was asked for.
    #[error("n-gram order must be at least 1")]
    ZeroOrder,
    /// NLTK's smoothing method 6 needs a non-zero trigram precision.
    #[error("NLTK smoothing method 6 needs a non-zero trigram precision, and this corpus has none")]
    Method6NeedsTrigrams,
}
