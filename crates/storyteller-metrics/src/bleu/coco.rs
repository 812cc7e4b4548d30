//! BLEU exactly as pycocoevalcap's `Bleu` scorer computes it.
//!
//! Per n-gram order k the corpus precision is `(correct_k + 1e-15) / (guess_k + 1e-9)`;
//! BLEU-k is the geometric mean of orders 1..=k (a running product raised to
//! `1/k`), times the brevity penalty `exp(1 - r/c)` when the corpus is shorter
//! than its references, where `r` sums, per image, the reference length closest
//! to the hypothesis length (ties go to the shorter reference). The same formula
//! on one image gives that image's sentence-level score.

use crate::index::{NgramIndex, clipped_matches, positions};
use crate::parallel::map_indices;
use crate::{Corpus, MetricsError};

/// pycocoevalcap's constant that keeps a zero match count from giving `0^(1/k)` trouble.
const TINY: f64 = 1e-15;
/// pycocoevalcap's constant that keeps a zero guess count from dividing by zero.
const SMALL: f64 = 1e-9;

/// BLEU-1..n for a corpus and for each of its images.
#[derive(Debug, Clone, PartialEq)]
pub struct CocoBleu {
    /// Corpus-level BLEU-1..n, index k-1 for BLEU-k.
    pub corpus: Vec<f64>,
    /// Sentence-level BLEU-1..n of each image, in corpus order.
    pub per_image: Vec<Vec<f64>>,
    /// Total hypothesis length in tokens.
    pub hypothesis_len: usize,
    /// Total effective (closest) reference length in tokens.
    pub reference_len: usize,
}

/// Match statistics of one image.
#[derive(Debug, Clone)]
struct Counts {
    hypothesis_len: usize,
    reference_len: usize,
    guess: Vec<u64>,
    correct: Vec<u64>,
}

/// Computes pycocoevalcap's BLEU-1..`max_order` (`Bleu(4)` is `max_order = 4`).
///
/// # Errors
/// [`MetricsError::ZeroOrder`] for `max_order == 0`; [`MetricsError::EmptyCorpus`].
pub fn coco_bleu(corpus: &Corpus, max_order: usize) -> Result<CocoBleu, MetricsError> {
    if max_order == 0 {
        return Err(MetricsError::ZeroOrder);
    }
    if corpus.is_empty() {
        return Err(MetricsError::EmptyCorpus);
    }
    let index = corpus.ngram_index(max_order);
    let counts = map_indices(corpus.len(), |i| image_counts(corpus, &index, i, max_order));

    let mut total = Counts {
        hypothesis_len: 0,
        reference_len: 0,
        guess: vec![0; max_order],
        correct: vec![0; max_order],
    };
    let per_image = counts
        .iter()
        .map(|c| {
            total.hypothesis_len += c.hypothesis_len;
            total.reference_len += c.reference_len;
            for k in 0..max_order {
                total.guess[k] += c.guess[k];
                total.correct[k] += c.correct[k];
            }
            scores(c)
        })
        .collect();
    Ok(CocoBleu {
        corpus: scores(&total),
        per_image,
        hypothesis_len: total.hypothesis_len,
        reference_len: total.reference_len,
    })
}

fn image_counts(corpus: &Corpus, index: &NgramIndex, i: usize, max_order: usize) -> Counts {
    let sample = &corpus.samples()[i];
    let hypothesis_len = sample.hypothesis().len();
    Counts {
        hypothesis_len,
        reference_len: closest_reference_len(sample.references(), hypothesis_len),
        guess: (1..=max_order)
            .map(|n| positions(hypothesis_len, n) as u64)
            .collect(),
        correct: (1..=max_order)
            .map(|n| clipped_matches(index.hypothesis(i, n), index.references(i, n)))
            .collect(),
    }
}

/// The reference length closest to `hypothesis_len`; ties go to the shorter one.
pub(crate) fn closest_reference_len(references: &[Vec<u32>], hypothesis_len: usize) -> usize {
    references
        .iter()
        .map(|r| r.len())
        .min_by_key(|&len| (len.abs_diff(hypothesis_len), len))
        .unwrap_or(0)
}

/// BLEU-1..n from match statistics, in pycocoevalcap's order of floating-point operations.
fn scores(c: &Counts) -> Vec<f64> {
    let mut product = 1.0_f64;
    let mut bleus: Vec<f64> = c
        .correct
        .iter()
        .zip(&c.guess)
        .enumerate()
        .map(|(k, (&correct, &guess))| {
            product *= (correct as f64 + TINY) / (guess as f64 + SMALL);
            product.powf(1.0 / (k + 1) as f64)
        })
        .collect();
    let ratio = (c.hypothesis_len as f64 + TINY) / (c.reference_len as f64 + SMALL);
    if ratio < 1.0 {
        let penalty = (1.0 - 1.0 / ratio).exp();
        bleus.iter_mut().for_each(|b| *b *= penalty);
    }
    bleus
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(pairs: &[(&str, &[&str])]) -> Corpus {
        Corpus::from_whitespace_tokens(pairs.iter().map(|(h, r)| (*h, r.iter().copied()))).unwrap()
    }

    #[test]
    fn identical_caption_scores_one() {
        let c = corpus(&[(
            "a dog runs on the grass",
            &["a dog runs on the grass", "a cat"],
        )]);
        let bleu = coco_bleu(&c, 4).unwrap();
        for b in bleu.corpus {
            assert!((b - 1.0).abs() < 1e-9, "{b}");
        }
    }

    #[test]
    fn hand_computed_example() {
        // hyp "the cat sat" vs ref "the cat is here": p1 = 2/3, p2 = 1/2, closest ref len 4.
        let c = corpus(&[("the cat sat", &["the cat is here"])]);
        let bleu = coco_bleu(&c, 2).unwrap();
        let bp = (1.0_f64 - 4.0 / 3.0).exp();
        assert!((bleu.corpus[0] - bp * 2.0 / 3.0).abs() < 1e-9);
        assert!((bleu.corpus[1] - bp * (2.0_f64 / 3.0 * 0.5).sqrt()).abs() < 1e-9);
        assert_eq!(bleu.per_image[0].len(), 2);
    }

    #[test]
    fn closest_length_prefers_the_shorter_on_ties() {
        assert_eq!(closest_reference_len(&[vec![0; 6], vec![0; 4]], 5), 4);
        assert_eq!(closest_reference_len(&[vec![0; 9], vec![0; 2]], 8), 9);
    }

    #[test]
    fn zero_order_and_empty_corpus_are_errors() {
        assert_eq!(
            coco_bleu(&Corpus::default(), 4),
            Err(MetricsError::EmptyCorpus)
        );
        let c = corpus(&[("a", &["a"])]);
        assert_eq!(coco_bleu(&c, 0), Err(MetricsError::ZeroOrder));
    }
}
