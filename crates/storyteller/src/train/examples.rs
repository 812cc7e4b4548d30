//! Training examples: one (image feature row, caption) pair per reference caption.

use burn::tensor::{Device, Int, Tensor, TensorData};
use storyteller_data::{FeatureCache, ImageItem, PAD, Vocab};
use storyteller_decoder::train::CaptionBatch;

/// Captions of a split encoded for teacher forcing, each tied to its image's feature row.
#[derive(Debug, Clone, Default)]
pub struct CaptionExamples {
    /// Feature-cache row of each example.
    pub rows: Vec<usize>,
    /// `<start> words… <end>` of each example.
    pub captions: Vec<Vec<u32>>,
}

impl CaptionExamples {
    /// All captions of the images that have features, truncated to `max_words` words.
    /// Returns the examples and the number of images without features.
    pub fn build(
        images: &[ImageItem],
        features: &FeatureCache,
        vocab: &Vocab,
        max_words: usize,
    ) -> (Self, usize) {
        let mut examples = Self::default();
        let mut missing = 0;
        for image in images {
            let Some(row) = features.index_of(&image.id) else {
                missing += 1;
                continue;
            };
            for caption in &image.captions {
                let mut ids = vocab.encode_with_bounds(&caption.raw);
                if ids.len() > max_words + 2 {
                    ids.truncate(max_words + 1);
                    ids.push(storyteller_data::END);
                }
                examples.rows.push(row);
                examples.captions.push(ids);
            }
        }
        (examples, missing)
    }

    /// The same captions with their images' features swapped among the images: the
    /// distinct feature rows are put in a random order seeded by `seed` and `round`, and
    /// every image takes the row of the next image in that order (a derangement: no image
    /// keeps its own features when there are two or more). All captions of an image share
    /// its new row. Used to train the blind baseline, which cannot see the image.
    pub fn with_shuffled_features(&self, seed: u64, round: usize) -> Self {
        let replacement = feature_derangement(&self.rows, seed, round);
        Self {
            rows: self.rows.iter().map(|r| replacement[r]).collect(),
            captions: self.captions.clone(),
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The batch of the examples at `indices`, padded with `<pad>` to its longest caption.
    pub fn batch(
        &self,
        indices: &[usize],
        features: &FeatureCache,
        device: &Device,
    ) -> CaptionBatch {
        let width = features.row_len();
        let steps = indices
            .iter()
            .map(|&i| self.captions[i].len() - 1)
            .max()
            .unwrap_or(1);
        let mut feature_values = vec![0.0f32; indices.len() * width];
        let mut inputs = vec![i64::from(PAD); indices.len() * steps];
        let mut targets = vec![i64::from(PAD); indices.len() * steps];
        for (b, &i) in indices.iter().enumerate() {
            features.copy_row(
                self.rows[i],
                &mut feature_values[b * width..(b + 1) * width],
            );
            let caption = &self.captions[i];
            for t in 0..caption.len() - 1 {
                inputs[b * steps + t] = i64::from(caption[t]);
                targets[b * steps + t] = i64::from(caption[t + 1]);
            }
        }
        let n = indices.len();
        CaptionBatch {
            features: Tensor::from_data(TensorData::new(feature_values, [n, width]), device),
            inputs: Tensor::<2, Int>::from_data(TensorData::new(inputs, [n, steps]), device),
            targets: Tensor::<2, Int>::from_data(TensorData::new(targets, [n, steps]), device),
        }
    }
}

/// Where each distinct feature row of `rows` moves in round `round` of the blind shuffle: the
/// distinct rows in a random order seeded by `seed` and `round`, each mapped to the next in
/// that order (no row maps to itself when there are two or more).
pub(crate) fn feature_derangement(
    rows: &[usize],
    seed: u64,
    round: usize,
) -> std::collections::HashMap<usize, usize> {
    let mut distinct = rows.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let order = epoch_order(distinct.len(), seed ^ 0x0062_6c69_6e64, round);
    order
        .iter()
        .enumerate()
        .map(|(k, &from)| (distinct[from], distinct[order[(k + 1) % order.len()]]))
        .collect()
}

/// A deterministic permutation of `0..n` for epoch `epoch` of a run seeded with `seed`
/// (SplitMix64 driving a Fisher–Yates shuffle), so a resumed run shuffles as an
/// uninterrupted one.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut state = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_order_is_a_seeded_permutation() {
        let a = epoch_order(100, 7, 3);
        assert_eq!(a, epoch_order(100, 7, 3));
        assert_ne!(a, epoch_order(100, 7, 4));
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn shuffled_features_move_every_image_and_keep_its_captions_together() {
        // Three images (rows 10, 20, 30), two captions each.
        let examples = CaptionExamples {
            rows: vec![10, 10, 20, 20, 30, 30],
            captions: (0..6).map(|i| vec![1, 4 + i, 2]).collect(),
        };
        for round in 0..5 {
            let shuffled = examples.with_shuffled_features(3, round);
            assert_eq!(shuffled.captions, examples.captions);
            for pair in 0..3 {
                let (a, b) = (shuffled.rows[2 * pair], shuffled.rows[2 * pair + 1]);
                assert_eq!(a, b, "captions of one image got different features");
                assert_ne!(a, examples.rows[2 * pair], "an image kept its own features");
            }
            let mut rows = shuffled.rows.clone();
            rows.sort_unstable();
            assert_eq!(rows, examples.rows, "not a permutation of the images");
        }
        // Each round draws a new assignment.
        let many = CaptionExamples {
            rows: (0..20).collect(),
            captions: (0..20).map(|i| vec![1, 4 + i, 2]).collect(),
        };
        assert_ne!(
            many.with_shuffled_features(3, 0).rows,
            many.with_shuffled_features(3, 1).rows
        );
    }
}
