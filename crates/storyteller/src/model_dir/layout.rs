//! Where each file of a model directory lives: the one place that names them.

use std::path::{Path, PathBuf};

/// The file names of a model directory.
///
/// ```text
/// MODEL_DIR/
///   config.json      ModelConfig: decoder kind and hyper-parameters, preprocessing, encoder
///                    reference, search defaults, SHA-256 of vocab.json and decoder.bpk
///   vocab.json       the vocabulary (storyteller-data's format)
///   decoder.bpk      the best decoder weights (Burn's burnpack record)
///   metrics.jsonl    one line per training epoch
///   training.png     loss, BLEU-4 and CIDEr-D curves
///   checkpoint/      the last epoch's decoder, optimiser and trainer state (for --resume)
///   .train.lock      held while `storyteller train` writes the directory
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelLayout {
    root: PathBuf,
}

impl ModelLayout {
    /// Model configuration file name.
    pub const CONFIG: &'static str = "config.json";
    /// Vocabulary file name.
    pub const VOCAB: &'static str = "vocab.json";
    /// Decoder weights file name.
    pub const DECODER: &'static str = "decoder.bpk";
    /// Training metrics file name.
    pub const METRICS: &'static str = "metrics.jsonl";
    /// Training curves file name.
    pub const PLOT: &'static str = "training.png";
    /// Checkpoint directory name.
    pub const CHECKPOINT: &'static str = "checkpoint";
    /// Lock file name.
    pub const LOCK: &'static str = ".train.lock";

    /// The layout of the model directory `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join(Self::CONFIG)
    }

    /// `vocab.json`.
    pub fn vocab(&self) -> PathBuf {
        self.root.join(Self::VOCAB)
    }

    /// `decoder.bpk`.
    pub fn decoder(&self) -> PathBuf {
        self.root.join(Self::DECODER)
    }

    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.root.join(Self::METRICS)
    }

    /// `training.png`.
    pub fn plot(&self) -> PathBuf {
        self.root.join(Self::PLOT)
    }

    /// `.train.lock`.
    pub fn lock(&self) -> PathBuf {
        self.root.join(Self::LOCK)
    }

    /// `checkpoint/`.
    pub fn checkpoint(&self) -> PathBuf {
        self.root.join(Self::CHECKPOINT)
    }

    /// `checkpoint/state.json`.
    pub fn checkpoint_state(&self) -> PathBuf {
        self.checkpoint().join("state.json")
    }

    /// `checkpoint/epoch-NNNN/`.
    pub fn checkpoint_epoch(&self, epoch: usize) -> PathBuf {
        self.checkpoint().join(format!("epoch-{epoch:04}"))
    }

    /// The decoder and optimiser files of a checkpoint epoch.
    pub fn checkpoint_files(&self, epoch: usize) -> (PathBuf, PathBuf) {
        let dir = self.checkpoint_epoch(epoch);
        (dir.join(Self::DECODER), dir.join("optimizer.bpk"))
    }

    /// Whether the directory holds a published model (its `config.json`).
    pub fn holds_model(&self) -> bool {
        self.config().exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_under_the_root() {
        let layout = ModelLayout::new("m");
        for path in [
            layout.config(),
            layout.vocab(),
            layout.decoder(),
            layout.metrics(),
            layout.plot(),
            layout.lock(),
            layout.checkpoint_state(),
            layout.checkpoint_files(7).0,
            layout.checkpoint_files(7).1,
        ] {
            assert!(path.starts_with("m"), "{}", path.display());
        }
        assert_eq!(
            layout.checkpoint_files(7).1,
            Path::new("m/checkpoint/epoch-0007/optimizer.bpk")
        );
    }
}
