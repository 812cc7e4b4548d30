//! CIDEr-D (Vedantam et al., 2015) exactly as pycocoevalcap's `Cider` scorer computes it.
//!
//! Every caption becomes, per n-gram order 1..=4, a TF-IDF vector:
//! `w(g) = tf(g) · (ln N − ln max(1, df(g)))`, where N is the number of images
//! and df(g) the number of images whose references contain g (document
//! frequencies come from the evaluated references themselves). For each
//! reference and order, the hypothesis scores
//! `Σ_g min(w_hyp(g), w_ref(g)) · w_ref(g) / (‖w_hyp‖·‖w_ref‖)` (the clipping
//! that makes it CIDEr-*D*; the division is skipped when a norm is 0), times the
//! Gaussian length penalty `exp(−δ²/(2σ²))` with σ = 6. pycocoevalcap measures
//! δ as the difference of the two captions' *bigram* counts (length − 1), and so
//! does this port. The image score is 10 × the mean over orders of the mean over
//! references; the corpus score is the mean over images.

use crate::index::{Grams, NgramIndex, positions};
use crate::parallel::map_indices;
use crate::rouge::mean;
use crate::{Corpus, MetricsError};

/// Settings of CIDEr-D; the defaults are pycocoevalcap's.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CiderConfig {
    /// Highest n-gram order (default 4).
    pub max_order: usize,
    /// Standard deviation of the Gaussian length penalty (default 6).
    pub sigma: f64,
}

impl Default for CiderConfig {
    fn default() -> Self {
        Self {
            max_order: 4,
            sigma: 6.0,
        }
    }
}

/// CIDEr-D of a corpus and of each image.
#[derive(Debug, Clone, PartialEq)]
pub struct CiderD {
    /// Mean over images.
    pub mean: f64,
    /// Score of each image, in corpus order.
    pub per_image: Vec<f64>,
}

/// Computes pycocoevalcap's CIDEr-D.
///
/// # Errors
/// [`MetricsError::EmptyCorpus`], [`MetricsError::ZeroOrder`].
pub fn cider_d(corpus: &Corpus, config: CiderConfig) -> Result<CiderD, MetricsError> {
    if corpus.is_empty() {
        return Err(MetricsError::EmptyCorpus);
    }
    if config.max_order == 0 {
        return Err(MetricsError::ZeroOrder);
    }
    let index = corpus.ngram_index(config.max_order);
    let idf = inverse_document_frequencies(corpus, &index, config.max_order);
    let per_image = map_indices(corpus.len(), |i| {
        image_score(corpus, &index, &idf, i, config)
    });
    Ok(CiderD {
        mean: mean(&per_image),
        per_image,
    })
}

/// `ln N − ln max(1, df(g))` for every n-gram id, with df(g) the number of
/// images whose references contain g.
fn inverse_document_frequencies(corpus: &Corpus, index: &NgramIndex, max_order: usize) -> Vec<f64> {
    let mut df = vec![0u32; index.ids()];
    let mut seen = Vec::new();
    for i in 0..corpus.len() {
        seen.clear();
        for n in 1..=max_order {
            for reference in index.references(i, n) {
                seen.extend(reference.iter().map(|&(id, _)| id));
            }
        }
        seen.sort_unstable();
        seen.dedup();
        for &id in &seen {
            df[id as usize] += 1;
        }
    }
    let log_images = (corpus.len() as f64).ln();
    let log_df: Vec<f64> = (0..=corpus.len())
        .map(|d| (d as f64).max(1.0).ln())
        .collect();
    df.into_iter()
        .map(|d| log_images - log_df[d as usize])
        .collect()
}

fn image_score(
    corpus: &Corpus,
    index: &NgramIndex,
    idf: &[f64],
    i: usize,
    config: CiderConfig,
) -> f64 {
    let sample = &corpus.samples()[i];
    let hyp_bigrams = positions(sample.hypothesis().len(), 2) as f64;
    let hyp: Vec<(Vec<(u32, f64)>, f64)> = (1..=config.max_order)
        .map(|n| {
            let weights: Vec<(u32, f64)> = index
                .hypothesis(i, n)
                .iter()
                .map(|&(id, tf)| (id, f64::from(tf) * idf[id as usize]))
                .collect();
            let norm = weights.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
            (weights, norm)
        })
        .collect();
    let mut per_order = vec![0.0_f64; config.max_order];
    for (r, reference) in sample.references().iter().enumerate() {
        let delta = hyp_bigrams - positions(reference.len(), 2) as f64;
        let penalty =
            std::f64::consts::E.powf(-(delta * delta) / (2.0 * config.sigma * config.sigma));
        for (n, total) in per_order.iter_mut().enumerate() {
            let grams = index
                .references(i, n + 1)
                .nth(r)
                .expect("one list per reference");
            let (hyp_weights, hyp_norm) = &hyp[n];
            let (mut value, ref_norm) = clipped_dot(hyp_weights, grams, idf);
            if *hyp_norm != 0.0 && ref_norm != 0.0 {
                value /= hyp_norm * ref_norm;
            }
            *total += value * penalty;
        }
    }
    let order_mean = per_order.iter().fold(0.0, |acc, v| acc + v) / config.max_order as f64;
    order_mean / sample.references().len() as f64 * 10.0
}

/// `(Σ_g min(h(g), r(g)) · r(g), ‖r‖)` with the reference weights `r` made from
/// counts and `idf` on the fly; both lists are sorted by id.
fn clipped_dot(hyp: &[(u32, f64)], reference: &Grams, idf: &[f64]) -> (f64, f64) {
    let (mut dot, mut squares) = (0.0, 0.0);
    let mut j = 0;
    for &(id, tf) in reference {
        let r = f64::from(tf) * idf[id as usize];
        squares += r * r;
        while j < hyp.len() && hyp[j].0 < id {
            j += 1;
        }
        if j < hyp.len() && hyp[j].0 == id {
            dot += hyp[j].1.min(r) * r;
        }
    }
    (dot, f64::sqrt(squares))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ngrams_in_every_image_carry_no_weight() {
        // "a" occurs in both images' references: idf 0, so a hypothesis of only "a" scores 0.
        let corpus = Corpus::from_whitespace_tokens([("a", ["a b"]), ("a", ["a c"])]).unwrap();
        let cider = cider_d(&corpus, CiderConfig::default()).unwrap();
        assert_eq!(cider.per_image, vec![0.0, 0.0]);
    }

    #[test]
    fn a_perfect_match_of_a_unique_caption_scores_ten_over_orders_present() {
        // Two images with disjoint captions; hypothesis equals its only reference.
        // Orders 1..=2 have weight (cosine 1 each), orders 3..=4 are empty: 10 * (1+1+0+0)/4.
        let corpus = Corpus::from_whitespace_tokens([("a b", ["a b"]), ("c d", ["c d"])]).unwrap();
        let cider = cider_d(&corpus, CiderConfig::default()).unwrap();
        for score in cider.per_image {
            assert!((score - 5.0).abs() < 1e-12, "{score}");
        }
    }

    #[test]
    fn length_penalty_uses_bigram_counts() {
        let corpus =
            Corpus::from_whitespace_tokens([("x y", ["x y z w"]), ("p q", ["p q"])]).unwrap();
        let cider = cider_d(&corpus, CiderConfig::default()).unwrap();
        // Hypothesis 1 bigram vs reference 3 bigrams: delta = 2.
        let penalty = (-(4.0_f64) / 72.0).exp();
        assert!(cider.per_image[0] > 0.0);
        assert!(cider.per_image[0] < 5.0 * penalty + 1e-12);
    }
}
