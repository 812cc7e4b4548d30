//! BLEU exactly as NLTK's `nltk.translate.bleu_score` computes it (NLTK 3.9/3.10).
//!
//! Corpus BLEU sums clipped matches (numerators) and hypothesis n-gram counts
//! (denominators, at least 1 per sentence) over the corpus, applies a smoothing
//! function to the per-order precisions, and returns
//! `BP * exp(fsum(w_k * ln p_k for p_k > 0))` with `BP = exp(1 - r/c)` when
//! `c <= r` (1 when longer, 0 when `c == 0`). When no unigram matches, the score
//! is 0. NLTK passes the *last* sentence of the corpus to the smoothing
//! functions that look at sentences (methods 5, 6, 7); this port does the same.

use std::hash::Hash;

use crate::bleu::coco::closest_reference_len;
use crate::index::{NgramIndex, clipped_matches, positions};
use crate::{Corpus, MetricsError};

/// NLTK's smoothing functions (`SmoothingFunction().methodN`), Chen & Cherry (2014).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Smoothing {
    /// No smoothing: a zero precision becomes the smallest positive float (score ~0).
    #[default]
    Method0,
    /// Add `epsilon` to zero numerators (NLTK default 0.1).
    Method1 {
        /// Added to a zero match count.
        epsilon: f64,
    },
    /// Add one to numerator and denominator of orders >= 2 (Lin & Och, 2004).
    Method2,
    /// Zero precisions become `1 / (2^i * denominator)`, i counting zeros (NIST geometric sequence).
    Method3,
    /// Zero precisions become `1 / (2^i * k / ln(c))` over the denominator, c the corpus length (NLTK default k = 5).
    Method4 {
        /// NLTK's `k`.
        k: f64,
    },
    /// Each precision is averaged with its neighbours (the 5-gram precision closes the row).
    Method5,
    /// Interpolates orders >= 3 with the `alpha`-weighted prior `p_{n-1}^2 / p_{n-2}` (NLTK default 5).
    Method6 {
        /// NLTK's `alpha`.
        alpha: f64,
    },
    /// Method 4, then method 5.
    Method7 {
        /// NLTK's `k` for the method-4 step.
        k: f64,
    },
}

impl Smoothing {
    /// NLTK's `SmoothingFunction().method{n}` with its default parameters, `None` above 7.
    pub fn nltk_method(n: u8) -> Option<Self> {
        Some(match n {
            0 => Self::Method0,
            1 => Self::Method1 { epsilon: 0.1 },
            2 => Self::Method2,
            3 => Self::Method3,
            4 => Self::Method4 { k: 5.0 },
            5 => Self::Method5,
            6 => Self::Method6 { alpha: 5.0 },
            7 => Self::Method7 { k: 5.0 },
            _ => return None,
        })
    }
}

/// Settings of NLTK's `corpus_bleu`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NltkBleu {
    /// Weight of each n-gram order, unigrams first (NLTK default: four times 0.25).
    pub weights: Vec<f64>,
    /// Smoothing function.
    pub smoothing: Smoothing,
    /// NLTK's `auto_reweigh`: a corpus shorter than 4 tokens gets uniform weights over its length.
    pub auto_reweigh: bool,
}

impl Default for NltkBleu {
    fn default() -> Self {
        Self::cumulative(4)
    }
}

impl NltkBleu {
    /// Cumulative BLEU-n: uniform weights `1/n` over orders 1..=n, no smoothing.
    pub fn cumulative(n: usize) -> Self {
        Self {
            weights: vec![1.0 / n as f64; n],
            smoothing: Smoothing::Method0,
            auto_reweigh: false,
        }
    }

    /// The same weights with another smoothing function.
    pub fn with_smoothing(mut self, smoothing: Smoothing) -> Self {
        self.smoothing = smoothing;
        self
    }
}

/// A modified precision before smoothing: NLTK's unnormalised `Fraction`.
#[derive(Debug, Clone, Copy)]
struct Precision {
    numerator: u64,
    denominator: u64,
}

impl Precision {
    fn value(self) -> f64 {
        self.numerator as f64 / self.denominator as f64
    }
}

/// NLTK's `modified_precision(references, hypothesis, n)` of sample `i`.
fn modified_precision(corpus: &Corpus, index: &NgramIndex, i: usize, n: usize) -> Precision {
    Precision {
        numerator: clipped_matches(index.hypothesis(i, n), index.references(i, n)),
        denominator: (positions(corpus.samples()[i].hypothesis().len(), n) as u64).max(1),
    }
}

/// The sentence NLTK hands to its smoothing functions: the corpus' last.
struct Last<'a> {
    corpus: &'a Corpus,
    index: &'a NgramIndex,
    sample: usize,
}

impl Last<'_> {
    fn hypothesis_len(&self) -> usize {
        self.corpus.samples()[self.sample].hypothesis().len()
    }

    fn precision(&self, n: usize) -> Precision {
        modified_precision(self.corpus, self.index, self.sample, n)
    }
}

/// NLTK's `corpus_bleu(list_of_references, hypotheses, weights, smoothing_function, auto_reweigh)`.
///
/// # Errors
/// [`MetricsError::EmptyCorpus`], [`MetricsError::InvalidWeights`], and
/// [`MetricsError::Method6NeedsTrigrams`] where NLTK's method 6 asserts.
pub fn corpus_bleu(corpus: &Corpus, config: &NltkBleu) -> Result<f64, MetricsError> {
    Ok(corpus_bleu_many(
        corpus,
        std::slice::from_ref(&config.weights),
        config.smoothing,
        config.auto_reweigh,
    )?[0])
}

/// NLTK's `corpus_bleu` with a list of weight vectors: one score per vector, as NLTK returns.
///
/// # Errors
/// As [`corpus_bleu`].
pub fn corpus_bleu_many(
    corpus: &Corpus,
    weights: &[Vec<f64>],
    smoothing: Smoothing,
    auto_reweigh: bool,
) -> Result<Vec<f64>, MetricsError> {
    if corpus.is_empty() {
        return Err(MetricsError::EmptyCorpus);
    }
    for w in weights {
        if w.is_empty() || w.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(MetricsError::InvalidWeights { weights: w.clone() });
        }
    }
    let max_order = weights
        .iter()
        .map(Vec::len)
        .max()
        .ok_or(MetricsError::InvalidWeights { weights: vec![] })?;

    // Methods 5 and 7 look at the last sentence's 5-gram precision.
    let five = matches!(smoothing, Smoothing::Method5 | Smoothing::Method7 { .. });
    let index = corpus.ngram_index(if five { max_order.max(5) } else { max_order });
    let mut numerators = vec![0u64; max_order];
    let mut denominators = vec![0u64; max_order];
    let (mut hyp_len, mut ref_len) = (0usize, 0usize);
    for (i, sample) in corpus.samples().iter().enumerate() {
        for n in 1..=max_order {
            let p = modified_precision(corpus, &index, i, n);
            numerators[n - 1] += p.numerator;
            denominators[n - 1] += p.denominator;
        }
        hyp_len += sample.hypothesis().len();
        ref_len += closest_reference_len(sample.references(), sample.hypothesis().len());
    }
    if numerators[0] == 0 {
        return Ok(vec![0.0; weights.len()]);
    }
    let bp = brevity_penalty(ref_len, hyp_len);
    let precisions: Vec<Precision> = numerators
        .iter()
        .zip(&denominators)
        .map(|(&numerator, &denominator)| Precision {
            numerator,
            denominator,
        })
        .collect();
    let last = Last {
        corpus,
        index: &index,
        sample: corpus.len() - 1,
    };
    let smoothed = smooth(smoothing, &precisions, &last, hyp_len)?;

    Ok(weights
        .iter()
        .map(|w| {
            let uniform;
            let w: &[f64] = if auto_reweigh && hyp_len < 4 && w.as_slice() == [0.25; 4] {
                uniform = vec![1.0 / hyp_len as f64; hyp_len];
                &uniform
            } else {
                w
            };
            let terms: Vec<f64> = w
                .iter()
                .zip(&smoothed)
                .filter(|(_, p)| **p > 0.0)
                .map(|(w, p)| w * p.ln())
                .collect();
            bp * fsum(&terms).exp()
        })
        .collect())
}

/// NLTK's `sentence_bleu(references, hypothesis, ...)`: corpus BLEU of a one-sentence corpus.
///
/// ```
/// use storyteller_metrics::bleu::{NltkBleu, Smoothing, sentence_bleu};
/// let hyp = ["a", "dog", "runs", "on", "grass"];
/// let refs = [&["a", "dog", "runs", "on", "the", "grass"][..]];
/// let b = sentence_bleu(&refs, &hyp, &NltkBleu::default().with_smoothing(Smoothing::nltk_method(1).unwrap()))?;
/// assert!(b > 0.4 && b < 1.0);
/// # Ok::<(), storyteller_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// As [`corpus_bleu`], plus [`MetricsError::NoReferences`] for an empty `references`.
pub fn sentence_bleu<T: Hash + Eq>(
    references: &[&[T]],
    hypothesis: &[T],
    config: &NltkBleu,
) -> Result<f64, MetricsError> {
    let corpus = Corpus::from_tokens([(hypothesis.iter(), references.iter().map(|r| r.iter()))])?;
    corpus_bleu(&corpus, config)
}

/// NLTK's `brevity_penalty(closest_ref_len, hyp_len)`.
fn brevity_penalty(ref_len: usize, hyp_len: usize) -> f64 {
    if hyp_len > ref_len {
        1.0
    } else if hyp_len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    }
}

/// Applies NLTK's smoothing to the corpus precisions; `last` is the corpus' last sentence.
fn smooth(
    smoothing: Smoothing,
    p: &[Precision],
    last: &Last<'_>,
    hyp_len: usize,
) -> Result<Vec<f64>, MetricsError> {
    Ok(match smoothing {
        Smoothing::Method0 => p
            .iter()
            .map(|p| {
                if p.numerator != 0 {
                    p.value()
                } else {
                    f64::MIN_POSITIVE
                }
            })
            .collect(),
        Smoothing::Method1 { epsilon } => p
            .iter()
            .map(|p| {
                if p.numerator == 0 {
                    epsilon / p.denominator as f64
                } else {
                    p.value()
                }
            })
            .collect(),
        Smoothing::Method2 => p
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    p.value()
                } else {
                    (p.numerator + 1) as f64 / (p.denominator + 1) as f64
                }
            })
            .collect(),
        Smoothing::Method3 => {
            let mut zeros = 0;
            p.iter()
                .map(|p| {
                    if p.numerator == 0 {
                        zeros += 1;
                        1.0 / (2f64.powi(zeros) * p.denominator as f64)
                    } else {
                        p.value()
                    }
                })
                .collect()
        }
        Smoothing::Method4 { k } => method4(p, k, hyp_len),
        Smoothing::Method5 => method5(p.iter().map(|p| p.value()).collect(), last),
        Smoothing::Method6 { alpha } => method6(p, alpha, last)?,
        Smoothing::Method7 { k } => method5(method4(p, k, hyp_len), last),
    })
}

fn method4(p: &[Precision], k: f64, hyp_len: usize) -> Vec<f64> {
    let mut zeros = 0;
    p.iter()
        .map(|p| {
            if p.numerator == 0 && hyp_len > 1 {
                zeros += 1;
                let numerator = 1.0 / (2f64.powi(zeros) * k / (hyp_len as f64).ln());
                numerator / p.denominator as f64
            } else {
                p.value()
            }
        })
        .collect()
}

fn method5(mut p: Vec<f64>, last: &Last<'_>) -> Vec<f64> {
    let mut next: Vec<f64> = p.clone();
    next.push(last.precision(5).value());
    let mut previous = p[0] + 1.0;
    for i in 0..p.len() {
        p[i] = (previous + p[i] + next[i + 1]) / 3.0;
        previous = p[i];
    }
    p
}

fn method6(p: &[Precision], alpha: f64, last: &Last<'_>) -> Result<Vec<f64>, MetricsError> {
    if p.get(2).is_none_or(|p| p.numerator == 0) {
        return Err(MetricsError::Method6NeedsTrigrams);
    }
    let mut out: Vec<f64> = p.iter().map(|p| p.value()).collect();
    for i in 2..p.len() {
        let prior = if out[i - 2] == 0.0 {
            0.0
        } else {
            out[i - 1] * out[i - 1] / out[i - 2]
        };
        let grams = positions(last.hypothesis_len(), i + 1) as f64;
        out[i] = (p[i].numerator as f64 + alpha * prior) / (grams + alpha);
    }
    Ok(out)
}

/// Correctly rounded sum, as Python's `math.fsum` (Shewchuk's algorithm).
fn fsum(values: &[f64]) -> f64 {
    let mut partials: Vec<f64> = Vec::new();
    for &value in values {
        let mut x = value;
        let mut kept = 0;
        for j in 0..partials.len() {
            let mut y = partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let high = x + y;
            let low = y - (high - x);
            if low != 0.0 {
                partials[kept] = low;
                kept += 1;
            }
            x = high;
        }
        partials.truncate(kept);
        partials.push(x);
    }
    // Round the partials (non-overlapping, increasing magnitude) to one float, half-even as fsum does.
    let Some(mut high) = partials.pop() else {
        return 0.0;
    };
    let mut low = 0.0;
    while let Some(y) = partials.pop() {
        let x = high;
        high = x + y;
        let y_rounded = high - x;
        low = y - y_rounded;
        if low != 0.0 {
            break;
        }
    }
    if let Some(&next) = partials.last()
        && ((low < 0.0 && next < 0.0) || (low > 0.0 && next > 0.0))
    {
        let y = low * 2.0;
        let x = high + y;
        if y == x - high {
            high = x;
        }
    }
    high
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsum_is_exact_where_naive_summation_is_not() {
        assert_eq!(fsum(&[1e100, 1.0, -1e100, 1e-100]), 1.0);
        assert_eq!(fsum(&[0.1; 10]), 1.0);
        assert_eq!(fsum(&[]), 0.0);
    }

    #[test]
    fn no_unigram_match_scores_zero() {
        let b = sentence_bleu(&[&["a", "b"][..]], &["c", "d"], &NltkBleu::default()).unwrap();
        assert_eq!(b, 0.0);
    }

    #[test]
    fn nltk_docstring_example() {
        // The first example of NLTK's sentence_bleu docstring: 0.5045666840058485.
        let hyp = "It is a guide to action which ensures that the military always obeys the commands of the party";
        let refs = [
            "It is a guide to action that ensures that the military will forever heed Party commands",
            "It is the guiding principle which guarantees the military forces always being under the command of the Party",
            "It is the practical guide for the army always to heed the directions of the party",
        ];
        let hyp: Vec<&str> = hyp.split(' ').collect();
        let refs: Vec<Vec<&str>> = refs.iter().map(|r| r.split(' ').collect()).collect();
        let refs: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
        let b = sentence_bleu(&refs, &hyp, &NltkBleu::default()).unwrap();
        assert!((b - 0.504_566_684_005_848_5).abs() < 1e-12, "{b}");
    }

    #[test]
    fn invalid_weights_are_rejected() {
        let corpus = Corpus::from_whitespace_tokens([("a", ["a"])]).unwrap();
        let config = NltkBleu {
            weights: vec![],
            ..NltkBleu::default()
        };
        assert!(matches!(
            corpus_bleu(&corpus, &config),
            Err(MetricsError::InvalidWeights { .. })
        ));
        let config = NltkBleu {
            weights: vec![f64::NAN],
            ..NltkBleu::default()
        };
        assert!(matches!(
            corpus_bleu(&corpus, &config),
            Err(MetricsError::InvalidWeights { .. })
        ));
    }

    #[test]
    fn method6_without_trigram_matches_is_an_error() {
        let corpus = Corpus::from_whitespace_tokens([("a b c", ["a x b y c"])]).unwrap();
        let config = NltkBleu::default().with_smoothing(Smoothing::nltk_method(6).unwrap());
        assert_eq!(
            corpus_bleu(&corpus, &config),
            Err(MetricsError::Method6NeedsTrigrams)
        );
    }
}
