//! Training hyper-parameters.

use burn::config::Config;
use serde::{Deserialize, Serialize};
use storyteller_decoder::Conditioning;
use storyteller_decoder::train::OptimizerConfig;

use crate::model_dir::DecoderKind;

/// Everything `storyteller train` can set; saved in the checkpoint so `--resume` can tell
/// whether it continues the same run.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// Maximum number of epochs.
    #[config(default = 20)]
    pub epochs: usize,
    /// Captions per batch.
    #[config(default = 64)]
    pub batch_size: usize,
    /// Initial learning rate of Adam.
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Step decay: the rate is multiplied by this factor every `lr_decay_every` epochs.
    #[config(default = 0.5)]
    pub lr_decay: f64,
    /// Epochs between learning-rate decays (0 keeps the rate constant).
    #[config(default = 5)]
    pub lr_decay_every: usize,
    /// Stop after this many epochs without a better validation score (see `selection`).
    #[config(default = 3)]
    pub patience: usize,
    /// Seed of the weight initialisation, the shuffling and dropout.
    #[config(default = 42)]
    pub seed: u64,
    /// Words kept per training caption (longer captions are truncated).
    #[config(default = 30)]
    pub max_caption_len: usize,
    /// Minimum count of a word in the training captions to enter the vocabulary.
    #[config(default = 5)]
    pub min_count: usize,
    /// The decoder family: `show-tell` trains on pooled features, `show-attend-tell` on a
    /// spatial cache (`storyteller extract --grid G`).
    #[config(default = "DecoderKind::ShowTell")]
    pub kind: DecoderKind,
    /// Width of the attention MLP (`show-attend-tell` only).
    #[config(default = 512)]
    pub d_attention: usize,
    /// Weight λ of the doubly stochastic attention regulariser (`show-attend-tell` only).
    #[config(default = 1.0)]
    pub alpha_c: f64,
    /// Attention heads per layer (`transformer` only; `d_hidden` is its model width and
    /// `n_layers` its depth).
    #[config(default = 8)]
    pub n_heads: usize,
    /// Width of the feed-forward blocks (`transformer` only; `None`: 4 × `d_hidden`).
    #[config(default = "None")]
    pub d_ff: Option<usize>,
    /// Score the vocabulary with the transposed token embedding (`transformer` only).
    #[config(default = false)]
    pub tied_output: bool,
    /// Label smoothing ε of the training cross-entropy (0: none; any decoder).
    #[config(default = 0.0)]
    pub label_smoothing: f64,
    /// Linear learning-rate warm-up over this many optimiser steps from the start of
    /// training (0: none; any decoder): step s (from 1) uses `min(1, s / warmup_steps)` of
    /// the epoch's rate.
    #[config(default = 0)]
    pub warmup_steps: usize,
    /// Width of the word embeddings (LSTM decoders).
    #[config(default = 256)]
    pub d_embed: usize,
    /// Width of the LSTM state; the model width of a `transformer`.
    #[config(default = 512)]
    pub d_hidden: usize,
    /// Number of LSTM layers (`show-tell`) or Transformer layers (`transformer`).
    #[config(default = 1)]
    pub n_layers: usize,
    /// Dropout probability.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Maximum caption length of the greedy decoding used for validation BLEU-4.
    #[config(default = 20)]
    pub val_max_len: usize,
    /// Validate on at most this many images (all when `None`).
    #[config(default = "None")]
    pub val_images: Option<usize>,
    /// Adam and gradient clipping.
    #[config(default = "OptimizerConfig::new()")]
    pub optimizer: OptimizerConfig,
    /// How the image feature enters the decoder (`show-tell` only).
    #[config(default = "Conditioning::Both")]
    pub conditioning: Conditioning,
    /// The validation score that picks the best epoch (and drives early stopping).
    #[config(default = "Selection::CiderD")]
    pub selection: Selection,
    /// PCA-whiten the training features to this many dimensions before they enter the
    /// decoder (`None`: standardise each dimension only; `show-tell` only, an attention
    /// decoder standardises each region's feature). Decorrelated unit-variance inputs
    /// are what let the decoder learn to read a frozen encoder's features in a few epochs.
    #[config(default = "Some(256)")]
    pub d_whitened: Option<usize>,
    /// Train a model that cannot see: every epoch gives each training image the feature of
    /// another, randomly chosen training image (validation images are shuffled once), so the
    /// features carry no information about the captions. The baseline that grounding and
    /// caption metrics are compared with.
    #[config(default = false)]
    pub blind: bool,
}

/// Which validation score picks the best epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// CIDEr-D of greedy captions: its TF-IDF weights give little to n-grams every caption
    /// shares, so a model that writes one sentence for every image scores low.
    CiderD,
    /// BLEU-4 of greedy captions (the seed's choice; it can prefer a model that writes one
    /// well-formed generic sentence for every image).
    Bleu4,
    /// Teacher-forced validation loss (lower is better).
    ValLoss,
}

impl Selection {
    /// Every variant.
    pub const ALL: [Selection; 3] = [Selection::CiderD, Selection::Bleu4, Selection::ValLoss];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Selection::CiderD => "cider-d",
            Selection::Bleu4 => "bleu4",
            Selection::ValLoss => "val-loss",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The score of an epoch under this criterion, higher is better.
    pub fn score(self, val_loss: f64, val_bleu4: f64, val_cider_d: f64) -> f64 {
        match self {
            Selection::CiderD => val_cider_d,
            Selection::Bleu4 => val_bleu4,
            Selection::ValLoss => -val_loss,
        }
    }
}

impl std::fmt::Display for Selection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TrainConfig {
    /// The learning rate of epoch `epoch` (1-based) under the step decay.
    pub fn learning_rate_at(&self, epoch: usize) -> f64 {
        if self.lr_decay_every == 0 {
            return self.learning_rate;
        }
        let decays = (epoch.saturating_sub(1) / self.lr_decay_every) as i32;
        self.learning_rate * self.lr_decay.powi(decays)
    }

    /// The learning rate of optimiser step `step` (1-based, counted from the start of
    /// training) in epoch `epoch`: the epoch's rate under the warm-up.
    pub fn learning_rate_at_step(&self, epoch: usize, step: usize) -> f64 {
        let rate = self.learning_rate_at(epoch);
        if self.warmup_steps == 0 {
            return rate;
        }
        rate * (step as f64 / self.warmup_steps as f64).min(1.0)
    }

    /// Fields whose change would make a resumed run differ from an uninterrupted one:
    /// all but `epochs` and `patience`, which only move the end.
    pub(crate) fn resume_fields(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("a train config serialises");
        if let Some(map) = value.as_object_mut() {
            map.remove("epochs");
            map.remove("patience");
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay() {
        let config = TrainConfig::new()
            .with_learning_rate(1.0)
            .with_lr_decay(0.5)
            .with_lr_decay_every(2);
        let rates: Vec<f64> = (1..=5).map(|e| config.learning_rate_at(e)).collect();
        assert_eq!(rates, vec![1.0, 1.0, 0.5, 0.5, 0.25]);
        assert_eq!(
            config.clone().with_lr_decay_every(0).learning_rate_at(9),
            1.0
        );
    }

    #[test]
    fn warm_up_ramps_linearly_then_follows_the_decay() {
        let config = TrainConfig::new()
            .with_learning_rate(1.0)
            .with_lr_decay(0.5)
            .with_lr_decay_every(2)
            .with_warmup_steps(4);
        let rates: Vec<f64> = (1..=6)
            .map(|s| config.learning_rate_at_step(1, s))
            .collect();
        assert_eq!(rates, vec![0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
        assert_eq!(config.learning_rate_at_step(3, 100), 0.5);
        assert_eq!(config.with_warmup_steps(0).learning_rate_at_step(1, 1), 1.0);
    }
}
