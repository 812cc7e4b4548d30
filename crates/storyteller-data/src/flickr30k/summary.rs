//! What a dataset holds, for `storyteller dataset DIR [--json]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Flickr30k, Layout, Warning};
use crate::split::Split;
use crate::vocab::Vocab;

/// Image and caption counts of one split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SplitCounts {
    /// Images.
    pub images: usize,
    /// Captions.
    pub captions: usize,
}

/// A dataset's contents: counts per split, what was skipped and why, and the
/// vocabulary size of the training captions at a min count.
#[derive(Debug, Clone, Serialize)]
pub struct DatasetSummary {
    /// The dataset directory.
    pub root: PathBuf,
    /// The detected layout.
    pub layout: Layout,
    /// The annotation file.
    pub annotations: PathBuf,
    /// The image folder.
    pub image_dir: PathBuf,
    /// Images kept.
    pub images: usize,
    /// Captions kept.
    pub captions: usize,
    /// Counts per split (`train`, `val`, `test`).
    pub splits: BTreeMap<Split, SplitCounts>,
    /// Number of warnings of each kind.
    pub skipped_by_kind: BTreeMap<String, usize>,
    /// Every warning, with file and line.
    pub skipped: Vec<Warning>,
    /// The min count the vocabulary size was computed with.
    pub min_count: usize,
    /// Vocabulary size (specials included) of the training captions.
    pub vocab_size: usize,
}

impl Flickr30k {
    /// Summarises the dataset; the vocabulary is built from the training split.
    pub fn summary(&self, min_count: usize) -> DatasetSummary {
        let mut splits: BTreeMap<Split, SplitCounts> = Split::ALL
            .iter()
            .map(|s| (*s, SplitCounts::default()))
            .collect();
        for image in self.images() {
            let counts = splits.entry(image.split).or_default();
            counts.images += 1;
            counts.captions += image.captions.len();
        }
        let mut skipped_by_kind = BTreeMap::new();
        for w in self.warnings() {
            *skipped_by_kind.entry(w.kind.name().to_owned()).or_insert(0) += 1;
        }
        DatasetSummary {
            root: self.root().to_owned(),
            layout: self.layout(),
            annotations: self.detected().annotations.clone(),
            image_dir: self.detected().image_dir.clone(),
            images: self.images().len(),
            captions: self.images().iter().map(|i| i.captions.len()).sum(),
            splits,
            skipped_by_kind,
            skipped: self.warnings().to_vec(),
            min_count,
            vocab_size: self.vocab(min_count).len(),
        }
    }

    /// The vocabulary of the training captions.
    pub fn vocab(&self, min_count: usize) -> Vocab {
        Vocab::from_tokens(
            self.images()
                .iter()
                .filter(|i| i.split == Split::Train)
                .flat_map(|i| i.captions.iter().map(|c| c.tokens.as_slice())),
            min_count,
        )
    }
}
