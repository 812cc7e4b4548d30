//! The training hyper-parameters `train` and `bench` share, with one set of defaults.

use clap::Args;
use storyteller::train::{Selection, TrainConfig};

/// Training hyper-parameters (every decoder family; those of one family say so).
#[derive(Debug, Clone, Args)]
pub struct TrainingArgs {
    /// Maximum epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Captions per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Initial learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Halve the learning rate every N epochs (0: never).
    #[arg(long, default_value_t = 5)]
    lr_decay_every: usize,
    /// Early stopping: epochs without a better validation score (the `--selection` metric).
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Minimum word count for the vocabulary.
    #[arg(long, default_value_t = 5)]
    min_count: usize,
    /// Attention MLP width (show-attend-tell).
    #[arg(long, default_value_t = 512)]
    d_attention: usize,
    /// Weight of the doubly stochastic attention regulariser (show-attend-tell; 0 turns it
    /// off).
    #[arg(long, default_value_t = 1.0)]
    alpha_c: f64,
    /// Attention heads per layer (transformer).
    #[arg(long, default_value_t = 8)]
    heads: usize,
    /// Feed-forward width (transformer; default 4 x --d-hidden).
    #[arg(long)]
    d_ff: Option<usize>,
    /// Score words with the transposed token embedding (transformer).
    #[arg(long)]
    tied_output: bool,
    /// Label smoothing of the training cross-entropy (0: none).
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Warm the learning rate up linearly over this many optimiser steps (0: none).
    #[arg(long, default_value_t = 0)]
    warmup_steps: usize,
    /// Embedding width (LSTM decoders).
    #[arg(long, default_value_t = 256)]
    d_embed: usize,
    /// LSTM width; the model width of a transformer.
    #[arg(long, default_value_t = 512)]
    d_hidden: usize,
    /// LSTM or Transformer layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Dropout probability.
    #[arg(long, default_value_t = 0.5)]
    dropout: f64,
    /// Validate on at most this many images.
    #[arg(long)]
    val_images: Option<usize>,
    /// The validation score that picks the best epoch: cider-d, bleu4 or val-loss.
    #[arg(long, default_value = "cider-d", value_parser = parse_selection)]
    selection: Selection,
    /// PCA-whiten the features to this many dimensions before the decoder (show-tell; 0:
    /// only standardise each dimension, as the seed's model did).
    #[arg(long, default_value_t = 256)]
    whiten: usize,
}

impl TrainingArgs {
    /// The training settings (the decoder family, its conditioning and `blind` at their
    /// defaults: the caller sets them).
    pub fn config(&self) -> TrainConfig {
        TrainConfig::new()
            .with_epochs(self.epochs)
            .with_batch_size(self.batch_size)
            .with_learning_rate(self.lr)
            .with_lr_decay_every(self.lr_decay_every)
            .with_patience(self.patience)
            .with_seed(self.seed)
            .with_min_count(self.min_count)
            .with_d_attention(self.d_attention)
            .with_alpha_c(self.alpha_c)
            .with_n_heads(self.heads)
            .with_d_ff(self.d_ff)
            .with_tied_output(self.tied_output)
            .with_label_smoothing(self.label_smoothing)
            .with_warmup_steps(self.warmup_steps)
            .with_d_embed(self.d_embed)
            .with_d_hidden(self.d_hidden)
            .with_n_layers(self.layers)
            .with_dropout(self.dropout)
            .with_val_images(self.val_images)
            .with_selection(self.selection)
            .with_d_whitened((self.whiten > 0).then_some(self.whiten))
    }
}

/// Parses `--selection`.
pub fn parse_selection(value: &str) -> Result<Selection, String> {
    Selection::parse(value)
        .ok_or_else(|| format!("expected cider-d, bleu4 or val-loss, not {value:?}"))
}
