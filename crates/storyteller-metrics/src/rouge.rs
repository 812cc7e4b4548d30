//! ROUGE-L (Lin, 2004) exactly as pycocoevalcap's `Rouge` scorer computes it.
//!
//! Per image, with LCS the longest common subsequence of hypothesis and reference:
//! `P = max_r LCS/|hyp|`, `R = max_r LCS/|ref|` (maxima taken separately), and
//! `ROUGE-L = (1 + β²)·P·R / (R + β²·P)` with β = 1.2, or 0 when P or R is 0.
//! The corpus score is the mean over images. Like pycocoevalcap, which splits
//! on a single space, an empty caption counts as one empty token.

use crate::parallel::map_indices;
use crate::{Corpus, MetricsError, Sample};

/// pycocoevalcap's recall weight.
const BETA: f64 = 1.2;

/// ROUGE-L of a corpus and of each image.
#[derive(Debug, Clone, PartialEq)]
pub struct RougeL {
    /// Mean over images.
    pub mean: f64,
    /// Score of each image, in corpus order.
    pub per_image: Vec<f64>,
}

/// Computes pycocoevalcap's ROUGE-L.
///
/// # Errors
/// [`MetricsError::EmptyCorpus`].
pub fn rouge_l(corpus: &Corpus) -> Result<RougeL, MetricsError> {
    if corpus.is_empty() {
        return Err(MetricsError::EmptyCorpus);
    }
    let per_image = map_indices(corpus.len(), |i| image_score(&corpus.samples()[i]));
    Ok(RougeL {
        mean: mean(&per_image),
        per_image,
    })
}

fn image_score(sample: &Sample) -> f64 {
    let hyp = sample.hypothesis();
    let (mut precision, mut recall) = (0.0_f64, 0.0_f64);
    let mut row = Vec::new();
    for reference in sample.references() {
        let lcs = if hyp.is_empty() && reference.is_empty() {
            1 // pycocoevalcap: [""] against [""]
        } else {
            lcs_len(reference, hyp, &mut row)
        };
        precision = precision.max(lcs as f64 / hyp.len().max(1) as f64);
        recall = recall.max(lcs as f64 / reference.len().max(1) as f64);
    }
    if precision != 0.0 && recall != 0.0 {
        ((1.0 + BETA.powi(2)) * precision * recall) / (recall + BETA.powi(2) * precision)
    } else {
        0.0
    }
}

/// Length of the longest common subsequence, with one DP row reused across calls.
fn lcs_len(a: &[u32], b: &[u32], row: &mut Vec<u32>) -> u32 {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    row.clear();
    row.resize(short.len() + 1, 0);
    for &x in long {
        let mut diagonal = 0;
        for (j, &y) in short.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y {
                diagonal + 1
            } else {
                above.max(row[j])
            };
            diagonal = above;
        }
    }
    row[short.len()]
}

/// Mean as numpy computes it for these sizes: pairwise summation over blocks.
pub(crate) fn mean(values: &[f64]) -> f64 {
    pairwise_sum(values) / values.len() as f64
}

/// numpy's pairwise summation (blocks of 8 partial sums below 128 elements).
fn pairwise_sum(v: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    if v.len() < 8 {
        return v.iter().fold(-0.0, |acc, x| acc + x);
    }
    if v.len() <= BLOCK {
        let mut r = [0.0_f64; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i + 8 <= v.len() {
            for k in 0..8 {
                r[k] += v[i + k];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for x in &v[i..] {
            res += x;
        }
        return res;
    }
    let mut half = v.len() / 2;
    half -= half % 8;
    pairwise_sum(&v[..half]) + pairwise_sum(&v[half..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lcs_of_known_pairs() {
        let mut row = Vec::new();
        assert_eq!(lcs_len(&[1, 2, 3, 4], &[1, 3, 4], &mut row), 3);
        assert_eq!(lcs_len(&[1, 3, 4], &[1, 2, 3, 4], &mut row), 3);
        assert_eq!(lcs_len(&[5, 6], &[1, 2, 3], &mut row), 0);
        assert_eq!(lcs_len(&[], &[1], &mut row), 0);
    }

    #[test]
    fn hand_computed_score() {
        // hyp "a b c d", ref "a c d e f": LCS 3, P = 3/4, R = 3/5.
        let corpus = Corpus::from_whitespace_tokens([("a b c d", ["a c d e f"])]).unwrap();
        let (p, r) = (0.75_f64, 0.6_f64);
        let expected = (1.0 + 1.44) * p * r / (r + 1.44 * p);
        assert!((rouge_l(&corpus).unwrap().mean - expected).abs() < 1e-12);
    }

    #[test]
    fn empty_hypothesis_scores_zero() {
        let corpus = Corpus::from_whitespace_tokens([("", ["a b"])]).unwrap();
        assert_eq!(rouge_l(&corpus).unwrap().mean, 0.0);
    }

    #[test]
    fn pairwise_sum_matches_a_plain_sum_closely() {
        let v: Vec<f64> = (0..1000).map(|i| (i as f64).sin()).collect();
        let plain: f64 = v.iter().sum();
        assert!((pairwise_sum(&v) - plain).abs() < 1e-12);
        assert_eq!(mean(&[1.0, 2.0, 3.0]), 2.0);
    }
}
