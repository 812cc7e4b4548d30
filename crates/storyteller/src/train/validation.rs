//! The validation pass of every epoch: teacher-forced loss, greedy BLEU-4, CIDEr-D and the
//! share of distinct captions on the validation split.

use burn::tensor::{Device, Tensor, TensorData};
use storyteller_data::{FeatureCache, ImageItem, Vocab};
use storyteller_decoder::Decoder;
use storyteller_decoder::train::TrainStep;
use storyteller_metrics::bleu::coco_bleu;
use storyteller_metrics::{CiderConfig, Corpus, cider_d};
use storyteller_search::GreedySearch;

use crate::error::Result;
use crate::train::TrainConfig;
use crate::train::examples::{CaptionExamples, feature_derangement};

/// Images decoded per validation search batch.
const VAL_BATCH: usize = 256;

/// The validation images with features, their captions as examples, and their references.
pub(crate) struct Validation {
    examples: CaptionExamples,
    rows: Vec<usize>,
    references: Vec<Vec<String>>,
}

/// What one validation pass measured.
pub(crate) struct ValidationScores {
    pub loss: f64,
    pub bleu4: f64,
    pub cider_d: f64,
    pub distinct: f64,
}

impl Validation {
    /// The first `config.val_images` validation images that have features.
    pub fn new(
        images: &[ImageItem],
        features: &FeatureCache,
        vocab: &Vocab,
        config: &TrainConfig,
    ) -> Self {
        let limit = config.val_images.unwrap_or(usize::MAX);
        let images: Vec<&ImageItem> = images
            .iter()
            .filter(|i| features.index_of(&i.id).is_some())
            .take(limit)
            .collect();
        let owned: Vec<ImageItem> = images.iter().map(|i| (*i).clone()).collect();
        let (examples, _) = CaptionExamples::build(&owned, features, vocab, config.max_caption_len);
        Self {
            examples,
            rows: images
                .iter()
                .filter_map(|i| features.index_of(&i.id))
                .collect(),
            references: images
                .iter()
                .map(|i| i.captions.iter().map(|c| c.tokens.join(" ")).collect())
                .collect(),
        }
    }

    /// Whether no validation image has features.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Gives every validation image another one's features, once (blind training).
    pub fn shuffle_features(&mut self, seed: u64) {
        let moved = feature_derangement(&self.rows, seed, 0);
        for row in self.examples.rows.iter_mut().chain(self.rows.iter_mut()) {
            *row = moved[&*row];
        }
    }

    /// Scores `decoder` (an inference copy) on the validation set.
    pub fn score(
        &self,
        decoder: &Decoder,
        step: &TrainStep,
        features: &FeatureCache,
        vocab: &Vocab,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<ValidationScores> {
        let mut loss_sum = 0.0f64;
        let mut weight = 0usize;
        let all: Vec<usize> = (0..self.examples.len()).collect();
        for indices in all.chunks(config.batch_size.max(1)) {
            let batch = self.examples.batch(indices, features, device);
            loss_sum +=
                f64::from(step.loss(decoder, &batch).into_scalar::<f32>()) * indices.len() as f64;
            weight += indices.len();
        }
        let greedy = GreedySearch::new().with_max_len(config.val_max_len);
        let width = features.row_len();
        let mut hypotheses: Vec<Vec<String>> = Vec::with_capacity(self.rows.len());
        for rows in self.rows.chunks(VAL_BATCH) {
            let mut values = vec![0.0f32; rows.len() * width];
            for (b, &row) in rows.iter().enumerate() {
                features.copy_row(row, &mut values[b * width..(b + 1) * width]);
            }
            let tensor = Tensor::from_data(TensorData::new(values, [rows.len(), width]), device);
            for ranked in greedy.search(decoder, tensor)? {
                hypotheses.push(
                    vocab
                        .decode_tokens(&ranked[0].tokens)
                        .into_iter()
                        .map(str::to_owned)
                        .collect(),
                );
            }
        }
        let distinct = hypotheses
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len() as f64
            / hypotheses.len().max(1) as f64;
        let corpus = Corpus::from_tokens(hypotheses.into_iter().zip(self.references.iter().map(
            |refs| {
                refs.iter()
                    .map(|r| r.split(' ').map(str::to_owned).collect::<Vec<_>>())
                    .collect::<Vec<_>>()
            },
        )))?;
        Ok(ValidationScores {
            loss: loss_sum / weight.max(1) as f64,
            bleu4: coco_bleu(&corpus, 4)?.corpus[3],
            cider_d: cider_d(&corpus, CiderConfig::default())?.mean,
            distinct,
        })
    }
}
