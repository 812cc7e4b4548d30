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

use rustc_hash::FxHashMap;

use crate::ngram::{counts, positions};
use crate::parallel::map_images;
use crate::rouge::mean;
use crate::{Corpus, MetricsError, Sample};

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

/// A caption as TF-IDF vectors, one sorted list per n-gram order.
struct Vector<'a> {
    weights: Vec<Vec<(&'a [u32], f64)>>,
    norms: Vec<f64>,
    bigrams: usize,
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
    let df = document_frequencies(corpus, config.max_order);
    let log_images = (corpus.len() as f64).ln();
    let per_image = map_images(corpus.samples(), |s| {
        image_score(s, &df, log_images, config)
    });
    Ok(CiderD {
        mean: mean(&per_image),
        per_image,
    })
}

/// In how many images' reference sets each n-gram occurs.
fn document_frequencies(corpus: &Corpus, max_order: usize) -> FxHashMap<&[u32], u32> {
    let distinct = map_images(corpus.samples(), |sample| {
        let mut grams: Vec<&[u32]> = sample
            .references()
            .iter()
            .flat_map(|r| (1..=max_order).flat_map(move |n| r.windows(n)))
            .collect();
        grams.sort_unstable();
        grams.dedup();
        grams
    });
    let total: usize = distinct.iter().map(Vec::len).sum();
    let mut df = FxHashMap::with_capacity_and_hasher(total / 2, Default::default());
    for gram in distinct.into_iter().flatten() {
        *df.entry(gram).or_insert(0) += 1;
    }
    df
}

fn vector<'a>(
    tokens: &'a [u32],
    df: &FxHashMap<&[u32], u32>,
    log_images: f64,
    max_order: usize,
) -> Vector<'a> {
    let mut norms = Vec::with_capacity(max_order);
    let weights = (1..=max_order)
        .map(|n| {
            let weights: Vec<(&[u32], f64)> = counts(tokens, n)
                .into_iter()
                .map(|(gram, tf)| {
                    let doc_freq = f64::from(df.get(gram).copied().unwrap_or(0)).max(1.0);
                    (gram, f64::from(tf) * (log_images - doc_freq.ln()))
                })
                .collect();
            norms.push(weights.iter().map(|(_, w)| w * w).sum::<f64>().sqrt());
            weights
        })
        .collect();
    Vector {
        weights,
        norms,
        bigrams: positions(tokens.len(), 2),
    }
}

fn image_score(
    sample: &Sample,
    df: &FxHashMap<&[u32], u32>,
    log_images: f64,
    config: CiderConfig,
) -> f64 {
    let hyp = vector(sample.hypothesis(), df, log_images, config.max_order);
    let mut per_order = vec![0.0_f64; config.max_order];
    for reference in sample.references() {
        let reference = vector(reference, df, log_images, config.max_order);
        let delta = hyp.bigrams as f64 - reference.bigrams as f64;
        let penalty =
            std::f64::consts::E.powf(-(delta * delta) / (2.0 * config.sigma * config.sigma));
        for (n, total) in per_order.iter_mut().enumerate() {
            let mut value = clipped_dot(&hyp.weights[n], &reference.weights[n]);
            if hyp.norms[n] != 0.0 && reference.norms[n] != 0.0 {
                value /= hyp.norms[n] * reference.norms[n];
            }
            *total += value * penalty;
        }
    }
    let order_mean = per_order.iter().fold(0.0, |acc, v| acc + v) / config.max_order as f64;
    order_mean / sample.references().len() as f64 * 10.0
}

/// `Σ_g min(h(g), r(g)) · r(g)` over the hypothesis n-grams, both lists sorted.
fn clipped_dot(hyp: &[(&[u32], f64)], reference: &[(&[u32], f64)]) -> f64 {
    let mut sum = 0.0;
    let mut j = 0;
    for &(gram, h) in hyp {
        while j < reference.len() && reference[j].0 < gram {
            j += 1;
        }
        if j < reference.len() && reference[j].0 == gram {
            let r = reference[j].1;
            sum += h.min(r) * r;
        }
    }
    sum
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
