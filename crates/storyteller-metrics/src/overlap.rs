//! Unigram precision, recall and F1 of captions against their references.
//!
//! Per image and reference, `overlap = Σ_w min(count_hyp(w), count_ref(w))`
//! (clipped counts), `P = overlap/|hyp|`, `R = overlap/|ref|`,
//! `F1 = 2PR/(P+R)` (each 0 where its denominator is 0). Each image keeps the
//! reference with the best F1 (the first one on ties). The macro average is the
//! mean of the per-image P, R and F1; the micro average pools the chosen
//! overlaps and lengths over the corpus before dividing. docs/evaluation.md
//! has a worked example.

use crate::index::{Grams, NgramIndex};
use crate::parallel::map_indices;
use crate::{Corpus, MetricsError};

/// Precision, recall and F1.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Prf {
    /// Matched hypothesis words over hypothesis length.
    pub precision: f64,
    /// Matched words over reference length.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

impl Prf {
    fn from_counts(overlap: u64, hypothesis_len: u64, reference_len: u64) -> Self {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(overlap, hypothesis_len);
        let recall = ratio(overlap, reference_len);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            precision,
            recall,
            f1,
        }
    }
}

/// One image's best match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageOverlap {
    /// Scores against the chosen reference.
    pub scores: Prf,
    /// Index of the reference with the best F1.
    pub reference: usize,
    /// Clipped unigram matches with that reference.
    pub overlap: u64,
    /// Length of that reference.
    pub reference_len: u64,
}

/// Precision, recall and F1 of a corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// Mean of the per-image scores.
    pub macro_avg: Prf,
    /// Scores of the pooled counts.
    pub micro_avg: Prf,
    /// Each image's best match, in corpus order.
    pub per_image: Vec<ImageOverlap>,
}

/// Computes unigram precision, recall and F1, macro- and micro-averaged.
///
/// # Errors
/// [`MetricsError::EmptyCorpus`].
pub fn precision_recall_f1(corpus: &Corpus) -> Result<Overlap, MetricsError> {
    if corpus.is_empty() {
        return Err(MetricsError::EmptyCorpus);
    }
    let index = corpus.ngram_index(1);
    let per_image = map_indices(corpus.len(), |i| best_reference(corpus, &index, i));
    let n = per_image.len() as f64;
    let mut macro_avg = Prf::default();
    let (mut overlap, mut hyp_len, mut ref_len) = (0u64, 0u64, 0u64);
    for (image, sample) in per_image.iter().zip(corpus.samples()) {
        macro_avg.precision += image.scores.precision;
        macro_avg.recall += image.scores.recall;
        macro_avg.f1 += image.scores.f1;
        overlap += image.overlap;
        hyp_len += sample.hypothesis().len() as u64;
        ref_len += image.reference_len;
    }
    macro_avg.precision /= n;
    macro_avg.recall /= n;
    macro_avg.f1 /= n;
    Ok(Overlap {
        macro_avg,
        micro_avg: Prf::from_counts(overlap, hyp_len, ref_len),
        per_image,
    })
}

fn best_reference(corpus: &Corpus, index: &NgramIndex, i: usize) -> ImageOverlap {
    let sample = &corpus.samples()[i];
    let hyp = index.hypothesis(i, 1);
    let hyp_len = sample.hypothesis().len() as u64;
    let mut best: Option<ImageOverlap> = None;
    for (reference, (grams, tokens)) in index.references(i, 1).zip(sample.references()).enumerate()
    {
        let overlap = clipped_overlap(hyp, grams);
        let reference_len = tokens.len() as u64;
        let scores = Prf::from_counts(overlap, hyp_len, reference_len);
        if best.is_none_or(|b| scores.f1 > b.scores.f1) {
            best = Some(ImageOverlap {
                scores,
                reference,
                overlap,
                reference_len,
            });
        }
    }
    best.expect("a corpus sample has at least one reference")
}

fn clipped_overlap(a: &Grams, b: &Grams) -> u64 {
    let (mut i, mut j, mut sum) = (0, 0, 0u64);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                sum += u64::from(a[i].1.min(b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_from_the_docs() {
        // docs/evaluation.md: hyp "a dog a dog runs", refs "a dog runs fast" / "the cat sleeps".
        let corpus = Corpus::from_whitespace_tokens([(
            "a dog a dog runs",
            ["a dog runs fast", "the cat sleeps"],
        )])
        .unwrap();
        let o = precision_recall_f1(&corpus).unwrap();
        let image = o.per_image[0];
        assert_eq!(
            (image.reference, image.overlap, image.reference_len),
            (0, 3, 4)
        );
        assert!((image.scores.precision - 0.6).abs() < 1e-12);
        assert!((image.scores.recall - 0.75).abs() < 1e-12);
        assert!((image.scores.f1 - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
    }

    #[test]
    fn two_image_worked_example_from_the_docs() {
        let corpus = Corpus::from_whitespace_tokens([
            (
                "a dog a dog runs",
                vec!["a dog runs fast", "the cat sleeps"],
            ),
            ("a cat", vec!["a black cat sits"]),
        ])
        .unwrap();
        let o = precision_recall_f1(&corpus).unwrap();
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(o.macro_avg.precision, 0.8);
        close(o.macro_avg.recall, 0.625);
        close(o.macro_avg.f1, 2.0 / 3.0);
        close(o.micro_avg.precision, 5.0 / 7.0);
        close(o.micro_avg.recall, 0.625);
        close(o.micro_avg.f1, 2.0 / 3.0);
    }

    #[test]
    fn micro_pools_counts_and_macro_averages_images() {
        let corpus = Corpus::from_whitespace_tokens([
            ("a b", ["a b"]),                 // 2/2, 2/2
            ("x y z w", ["x q q q q q q q"]), // 1/4, 1/8
        ])
        .unwrap();
        let o = precision_recall_f1(&corpus).unwrap();
        assert!((o.macro_avg.precision - (1.0 + 0.25) / 2.0).abs() < 1e-12);
        assert!((o.micro_avg.precision - 3.0 / 6.0).abs() < 1e-12);
        assert!((o.micro_avg.recall - 3.0 / 10.0).abs() < 1e-12);
    }

    #[test]
    fn empty_hypothesis_scores_zero_without_dividing_by_zero() {
        let corpus = Corpus::from_whitespace_tokens([("", ["a b"])]).unwrap();
        let o = precision_recall_f1(&corpus).unwrap();
        assert_eq!(o.macro_avg, Prf::default());
    }
}
