//! Every metric of a corpus in one report, as the CLI and the evaluation print it.

use crate::bleu::{BleuFlavour, NltkBleu, coco_bleu, nltk::corpus_bleu_many};
use crate::{CiderConfig, Corpus, MetricsError, cider_d, precision_recall_f1, rouge_l};

/// All metrics of one corpus. Field names are the JSON keys of `storyteller score --json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Number of images scored.
    pub images: usize,
    /// Which BLEU implementation `bleu1..bleu4` follow.
    pub bleu_flavour: BleuFlavour,
    /// Corpus BLEU-1.
    pub bleu1: f64,
    /// Corpus BLEU-2.
    pub bleu2: f64,
    /// Corpus BLEU-3.
    pub bleu3: f64,
    /// Corpus BLEU-4.
    pub bleu4: f64,
    /// Unigram precision, macro-averaged over images.
    pub precision: f64,
    /// Unigram recall, macro-averaged over images.
    pub recall: f64,
    /// Unigram F1, macro-averaged over images.
    pub f1: f64,
    /// Unigram precision of the pooled counts.
    pub micro_precision: f64,
    /// Unigram recall of the pooled counts.
    pub micro_recall: f64,
    /// Unigram F1 of the pooled counts.
    pub micro_f1: f64,
    /// ROUGE-L (β = 1.2), mean over images.
    pub rouge_l: f64,
    /// CIDEr-D (σ = 6, ×10), mean over images.
    pub cider_d: f64,
}

impl Scores {
    /// BLEU-1..4 as an array.
    pub fn bleu(&self) -> [f64; 4] {
        [self.bleu1, self.bleu2, self.bleu3, self.bleu4]
    }
}

/// Scores a corpus with every metric.
///
/// ```
/// use storyteller_metrics::{Corpus, evaluate, bleu::BleuFlavour};
/// let corpus = Corpus::from_captions([
///     ("a dog runs on the grass", vec!["a dog is running on the grass", "a brown dog runs"]),
///     ("two people ride bikes", vec!["two people are riding bicycles", "people ride bikes"]),
/// ])?;
/// let scores = evaluate(&corpus, BleuFlavour::Coco)?;
/// assert!(scores.bleu1 > scores.bleu4);
/// assert!(scores.cider_d > 0.0);
/// # Ok::<(), storyteller_metrics::MetricsError>(())
/// ```
///
/// # Errors
/// [`MetricsError::EmptyCorpus`]; with the NLTK flavour, what its smoothing may refuse.
pub fn evaluate(corpus: &Corpus, bleu_flavour: BleuFlavour) -> Result<Scores, MetricsError> {
    let bleu: Vec<f64> = match bleu_flavour {
        BleuFlavour::Coco => coco_bleu(corpus, 4)?.corpus,
        BleuFlavour::Nltk(smoothing) => {
            let weights: Vec<Vec<f64>> = (1..=4).map(|n| NltkBleu::cumulative(n).weights).collect();
            corpus_bleu_many(corpus, &weights, smoothing, false)?
        }
    };
    let overlap = precision_recall_f1(corpus)?;
    Ok(Scores {
        images: corpus.len(),
        bleu_flavour,
        bleu1: bleu[0],
        bleu2: bleu[1],
        bleu3: bleu[2],
        bleu4: bleu[3],
        precision: overlap.macro_avg.precision,
        recall: overlap.macro_avg.recall,
        f1: overlap.macro_avg.f1,
        micro_precision: overlap.micro_avg.precision,
        micro_recall: overlap.micro_avg.recall,
        micro_f1: overlap.micro_avg.f1,
        rouge_l: rouge_l(corpus)?.mean,
        cider_d: cider_d(corpus, CiderConfig::default())?.mean,
    })
}
