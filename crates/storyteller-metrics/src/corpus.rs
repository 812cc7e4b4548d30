//! A scored corpus: one hypothesis and its references per image, interned to token ids.

use std::borrow::Cow;
use std::hash::Hash;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use crate::index::NgramIndex;
use crate::{MetricsError, tokenize};

/// N-gram order of the index a corpus keeps: BLEU-4 and CIDEr-D need no more.
const CACHED_ORDER: usize = 4;

/// One image's captions as token ids: the hypothesis to score and the references to score it against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    hypothesis: Vec<u32>,
    references: Vec<Vec<u32>>,
}

impl Sample {
    /// The hypothesis' token ids.
    pub fn hypothesis(&self) -> &[u32] {
        &self.hypothesis
    }

    /// The references' token ids, at least one.
    pub fn references(&self) -> &[Vec<u32>] {
        &self.references
    }
}

/// Hypotheses and references of a whole evaluation set, ready for every metric.
///
/// Tokens of any hashable type are interned to `u32` ids, so the metrics
/// compare integers and never strings. Two tokens are the same word exactly
/// when they compare equal.
///
/// ```
/// use storyteller_metrics::Corpus;
/// // From raw captions, through the project tokenizer:
/// let corpus = Corpus::from_captions([("A dog runs.", vec!["a dog is running", "the dog runs"])])?;
/// assert_eq!(corpus.len(), 1);
/// // From tokens of any type, e.g. vocabulary ids:
/// let ids = Corpus::from_tokens([(vec![4u32, 5], vec![vec![4u32, 5, 6]])])?;
/// assert_eq!(ids.samples()[0].references()[0].len(), 3);
/// # Ok::<(), storyteller_metrics::MetricsError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Corpus {
    samples: Vec<Sample>,
    distinct_tokens: usize,
    /// N-gram ids up to [`CACHED_ORDER`], built by the first metric that needs them.
    index: OnceLock<NgramIndex>,
}

impl Corpus {
    /// Builds a corpus from `(hypothesis, references)` pairs of already tokenised captions.
    ///
    /// # Errors
    /// [`MetricsError::NoReferences`] when a sample has no reference.
    pub fn from_tokens<T, H, R, W>(
        samples: impl IntoIterator<Item = (H, R)>,
    ) -> Result<Self, MetricsError>
    where
        T: Hash + Eq,
        H: IntoIterator<Item = T>,
        R: IntoIterator<Item = W>,
        W: IntoIterator<Item = T>,
    {
        let mut builder = CorpusBuilder::new();
        for (hypothesis, references) in samples {
            builder.push(hypothesis, references)?;
        }
        Ok(builder.build())
    }

    /// Builds a corpus from raw captions, tokenised with [`tokenize`].
    ///
    /// # Errors
    /// [`MetricsError::NoReferences`] when a sample has no reference.
    pub fn from_captions<H, R, S>(
        samples: impl IntoIterator<Item = (H, R)>,
    ) -> Result<Self, MetricsError>
    where
        H: AsRef<str>,
        R: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::from_tokens(samples.into_iter().map(|(hypothesis, references)| {
            (
                tokenize(hypothesis.as_ref()),
                references
                    .into_iter()
                    .map(|r| tokenize(r.as_ref()))
                    .collect::<Vec<_>>(),
            )
        }))
    }

    /// Builds a corpus from captions that are already tokenised and joined by
    /// whitespace, splitting them on whitespace only, as pycocoevalcap's scorers do.
    ///
    /// # Errors
    /// [`MetricsError::NoReferences`] when a sample has no reference.
    pub fn from_whitespace_tokens<'a, R>(
        samples: impl IntoIterator<Item = (&'a str, R)>,
    ) -> Result<Self, MetricsError>
    where
        R: IntoIterator<Item = &'a str>,
    {
        Self::from_tokens(samples.into_iter().map(|(hypothesis, references)| {
            (
                hypothesis.split_whitespace(),
                references
                    .into_iter()
                    .map(str::split_whitespace)
                    .collect::<Vec<_>>(),
            )
        }))
    }

    /// The samples in insertion order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Number of samples (images).
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether the corpus holds no sample.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Number of distinct tokens over all hypotheses and references.
    pub fn distinct_tokens(&self) -> usize {
        self.distinct_tokens
    }

    /// The n-gram index up to `max_order`: the cached one where it reaches that far.
    pub(crate) fn ngram_index(&self, max_order: usize) -> Cow<'_, NgramIndex> {
        if max_order > CACHED_ORDER {
            return Cow::Owned(NgramIndex::build(self, max_order));
        }
        Cow::Borrowed(
            self.index
                .get_or_init(|| NgramIndex::build(self, CACHED_ORDER)),
        )
    }
}

/// Builds a [`Corpus`] one sample at a time, interning tokens of type `T`.
#[derive(Debug)]
pub struct CorpusBuilder<T> {
    ids: FxHashMap<T, u32>,
    samples: Vec<Sample>,
}

impl<T: Hash + Eq> Default for CorpusBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Hash + Eq> CorpusBuilder<T> {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            ids: FxHashMap::default(),
            samples: Vec::new(),
        }
    }

    /// Adds one image's hypothesis and references.
    ///
    /// # Errors
    /// [`MetricsError::NoReferences`] when `references` is empty; the builder is unchanged.
    pub fn push<H, R, W>(&mut self, hypothesis: H, references: R) -> Result<&mut Self, MetricsError>
    where
        H: IntoIterator<Item = T>,
        R: IntoIterator<Item = W>,
        W: IntoIterator<Item = T>,
    {
        let hypothesis = self.intern(hypothesis);
        let references: Vec<Vec<u32>> = references.into_iter().map(|r| self.intern(r)).collect();
        if references.is_empty() {
            return Err(MetricsError::NoReferences {
                sample: self.samples.len(),
            });
        }
        self.samples.push(Sample {
            hypothesis,
            references,
        });
        Ok(self)
    }

    /// The finished corpus.
    pub fn build(self) -> Corpus {
        Corpus {
            distinct_tokens: self.ids.len(),
            samples: self.samples,
            index: OnceLock::new(),
        }
    }

    fn intern(&mut self, tokens: impl IntoIterator<Item = T>) -> Vec<u32> {
        tokens
            .into_iter()
            .map(|token| {
                let next = u32::try_from(self.ids.len()).expect("more than 2^32 distinct tokens");
                *self.ids.entry(token).or_insert(next)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tokens_share_an_id_across_samples() {
        let corpus =
            Corpus::from_whitespace_tokens([("a dog", vec!["a cat"]), ("the dog", vec!["a dog"])])
                .unwrap();
        let [first, second] = corpus.samples() else {
            panic!("two samples")
        };
        assert_eq!(first.hypothesis()[1], second.hypothesis()[1]);
        assert_eq!(first.references()[0][0], second.references()[0][0]);
        assert_eq!(corpus.distinct_tokens(), 4);
    }

    #[test]
    fn a_sample_without_references_is_an_error() {
        let err = Corpus::from_whitespace_tokens([("a", vec!["a"]), ("b", vec![])]).unwrap_err();
        assert_eq!(err, MetricsError::NoReferences { sample: 1 });
    }

    #[test]
    fn captions_go_through_the_project_tokenizer() {
        let corpus = Corpus::from_captions([("A Dog!", ["a dog"])]).unwrap();
        let sample = &corpus.samples()[0];
        assert_eq!(sample.hypothesis(), sample.references()[0].as_slice());
    }
}
