//! The training loop: epochs over cached features, validation, early stopping, checkpoints.
//!
//! A run has five phases, each its own function: [`Prepared::new`] (vocabulary, examples,
//! validation set, decoder config), [`claim`] (lock the directory, refuse to replace a
//! model without `overwrite`), [`Run::start`] (resume from the checkpoint or initialise),
//! [`Run::train_epoch`] and [`Run::end_epoch`] (validate, publish the best model,
//! checkpoint, metrics, plot).

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use indicatif::{ProgressBar, ProgressStyle};
use storyteller_data::{FeatureCache, Flickr30k, OutputLock, PAD, PreprocessConfig, Split, Vocab};
use storyteller_decoder::train::{GradientReduction, TrainStep, inference_copy};
use storyteller_decoder::{
    AttentionDecoderConfig, CaptionDecoderConfig, Decoder, DecoderConfig, TransformerDecoderConfig,
};

use crate::error::{Result, StorytellerError, io_error};
use crate::model_dir::{DecoderKind, EncoderRef, ModelConfig, ModelLayout, publish, write_bytes};
use crate::train::checkpoint::{self, CHECKPOINT_FORMAT, EpochMetrics, TrainState};
use crate::train::examples::{CaptionExamples, epoch_order};
use crate::train::validation::Validation;
use crate::train::whitening::{feature_statistics, whitened_width, whitening};
use crate::train::{Selection, TrainConfig, plot};

/// Training batches between reads of their losses (for the progress bar and the divergence
/// check).
const LOSS_READ_INTERVAL: usize = 8;

/// What a training run needs besides its [`TrainConfig`].
#[derive(Debug)]
pub struct TrainOptions<'a> {
    /// The dataset (captions and splits).
    pub dataset: &'a Flickr30k,
    /// Its features, from `storyteller extract`.
    pub features: &'a FeatureCache,
    /// The encoder the features came from (its hash must match the cache's).
    pub encoder: EncoderRef,
    /// The model directory to write.
    pub out_dir: &'a Path,
    /// Continue from the checkpoint in `out_dir`.
    pub resume: bool,
    /// Replace the model (and discard the training checkpoint) already in `out_dir`. The
    /// old model stays loadable until the new run's first epoch publishes its replacement.
    /// Without it, a fresh run into a directory holding a model is refused.
    pub overwrite: bool,
    /// More devices for data-parallel training: every batch is split across the main
    /// device and these, gradients are summed, and one update is made (empty: one device).
    pub data_parallel: Vec<Device>,
    /// How the data-parallel workers' gradients are combined (ignored with one device).
    pub reduction: GradientReduction,
    /// Stop (as if interrupted) after this epoch; `None` runs to the end.
    pub stop_after: Option<usize>,
    /// Show progress bars.
    pub progress: bool,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Last completed epoch.
    pub epochs: usize,
    /// Epoch of the best validation score (its decoder is in the model directory).
    pub best_epoch: usize,
    /// The validation BLEU-4 of that epoch.
    pub best_bleu4: f64,
    /// The criterion that picked it.
    pub selection: Selection,
    /// Its score under that criterion.
    pub best_score: f64,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Every epoch's metrics.
    pub history: Vec<EpochMetrics>,
    /// Warnings worth showing (images without features, plotting problems).
    pub warnings: Vec<String>,
}

/// Trains a decoder on cached features and writes a model directory.
///
/// Per epoch: shuffled teacher-forced batches (seeded by `config.seed` and the epoch, so
/// a resumed run matches an uninterrupted one), then validation loss, greedy BLEU-4 and
/// CIDEr-D on the validation split. The best decoder under `config.selection` (CIDEr-D by
/// default) is published with its vocabulary and config (see [`crate::model_dir`]);
/// training stops after `patience` epochs without improvement. Every epoch is checkpointed
/// atomically. A batch loss that is NaN, infinite or above 100·ln(vocabulary size) (a
/// hundred times a uniform guess) stops the run with [`StorytellerError::Diverged`]; the
/// last checkpoint and the last published model stay.
///
/// # Errors
/// Unusable data, a feature cache from other encoder weights, a checkpoint from another
/// configuration (`resume`), a directory holding a model (without `overwrite` or
/// `resume`), a diverging loss, or an I/O failure.
pub fn train(
    config: &TrainConfig,
    options: TrainOptions<'_>,
    device: &Device,
) -> Result<TrainSummary> {
    let prepared = Prepared::new(config, &options)?;
    let layout = ModelLayout::new(options.out_dir);
    let _lock = claim(&layout, &options)?;
    let mut run = Run::start(config, &options, prepared, layout, device)?;
    while let Some(epoch) = run.next_epoch(options.stop_after) {
        let started = Instant::now();
        let train_loss = run.train_epoch(epoch, options.progress)?;
        let train_seconds = started.elapsed().as_secs_f64();
        run.end_epoch(epoch, train_loss, train_seconds, started, options.progress)?;
    }
    Ok(run.summary())
}

/// Everything a run derives from its data before touching the model directory.
struct Prepared<'a> {
    features: &'a FeatureCache,
    encoder: EncoderRef,
    preprocess: PreprocessConfig,
    vocab: Vocab,
    examples: CaptionExamples,
    validation: Validation,
    decoder_config: DecoderConfig,
    warnings: Vec<String>,
}

impl<'a> Prepared<'a> {
    /// Checks the features against the encoder, builds the vocabulary from the training
    /// captions, the examples, the validation set and the decoder config.
    fn new(config: &TrainConfig, options: &TrainOptions<'a>) -> Result<Self> {
        let (dataset, features, encoder) = (options.dataset, options.features, &options.encoder);
        let mut warnings = Vec::new();
        if !(0.0..1.0).contains(&config.label_smoothing) {
            return Err(StorytellerError::InvalidTrainSetting {
                field: "label_smoothing",
                value: config.label_smoothing.to_string(),
                reason: "must be in [0, 1)",
            });
        }
        if features.key().encoder != encoder.hash {
            return Err(StorytellerError::EncoderMismatch {
                path: encoder.weights.clone(),
                found: encoder.hash.clone(),
                expected: features.key().encoder.clone(),
                context: format!("the feature cache {}", features.path().display()),
            });
        }
        let grid = feature_grid(features, config.kind)?;
        // Rows are keyed by image content: refuse features of other images under the same
        // names (regenerated images, another dataset's cache).
        let images: Vec<(&str, &std::path::Path)> = dataset
            .images()
            .iter()
            .map(|image| (image.id.as_str(), image.path.as_path()))
            .collect();
        let unverified = features.verify_images(&images)?;
        if unverified > 0 {
            warnings.push(format!(
                "{unverified} images have features without a content digest in {} (written \
                 before content keys, or by hand): they cannot be checked against the image files",
                features.path().display()
            ));
        }
        let preprocess: PreprocessConfig = serde_json::from_str(&features.key().preprocess)
            .map_err(|source| StorytellerError::Json {
                path: features.path().to_owned(),
                what: "preprocessing record",
                source,
            })?;
        let train_images = dataset.split(Split::Train);
        let vocab = Vocab::from_tokens(
            train_images
                .images()
                .iter()
                .flat_map(|i| i.captions.iter().map(|c| c.tokens.as_slice())),
            config.min_count,
        );
        let (examples, missing) = CaptionExamples::build(
            train_images.images(),
            features,
            &vocab,
            config.max_caption_len,
        );
        if missing > 0 {
            warnings.push(format!(
                "{missing} training images have no features in {} and are skipped",
                features.path().display()
            ));
        }
        if examples.is_empty() {
            return Err(StorytellerError::NoTrainingData(format!(
                "no training caption has features: {} training images, {} cached features in {}",
                train_images.images().len(),
                features.len(),
                features.path().display()
            )));
        }
        let mut validation =
            Validation::new(dataset.split(Split::Val).images(), features, &vocab, config);
        if config.blind {
            validation.shuffle_features(config.seed);
        }
        if validation.is_empty() {
            return Err(StorytellerError::NoTrainingData(
                "no validation image has features: early stopping needs the validation split"
                    .into(),
            ));
        }
        // The whitening width is part of the decoder config a resume must match; the
        // statistics and the projection themselves are computed only for a fresh start.
        let decoder_config: DecoderConfig = match config.kind {
            DecoderKind::ShowTell => {
                let d_whitened = config
                    .d_whitened
                    .map(|k| whitened_width(k, &examples.rows, features.width()));
                CaptionDecoderConfig::new(vocab.len())
                    .with_d_feature(features.width())
                    .with_d_embed(config.d_embed)
                    .with_d_hidden(config.d_hidden)
                    .with_n_layers(config.n_layers)
                    .with_dropout(config.dropout)
                    .with_conditioning(config.conditioning)
                    .with_d_whitened(d_whitened)
                    .into()
            }
            DecoderKind::Transformer => TransformerDecoderConfig::new(vocab.len())
                .with_d_feature(features.width())
                .with_grid(grid)
                .with_d_model(config.d_hidden)
                .with_n_heads(config.n_heads)
                .with_n_layers(config.n_layers)
                .with_d_ff(config.d_ff.unwrap_or(4 * config.d_hidden))
                .with_dropout(config.dropout)
                .with_tied_output(config.tied_output)
                .into(),
            DecoderKind::ShowAttendTell => AttentionDecoderConfig::new(vocab.len())
                .with_d_feature(features.width())
                .with_grid(grid)
                .with_d_embed(config.d_embed)
                .with_d_attention(config.d_attention)
                .with_d_hidden(config.d_hidden)
                .with_dropout(config.dropout)
                .with_alpha_c(config.alpha_c)
                .into(),
        };
        decoder_config.validate()?;
        Ok(Self {
            features,
            encoder: encoder.clone(),
            preprocess,
            vocab,
            examples,
            validation,
            decoder_config,
            warnings,
        })
    }

    /// A freshly initialised decoder whose input statistics come from the training features.
    fn init_decoder(&self, device: &Device) -> Result<Decoder> {
        let features = self.features;
        let (mean, std) = feature_statistics(features, &self.examples.rows);
        match &self.decoder_config {
            DecoderConfig::ShowTell(config) => {
                let decoder = config.init(device)?.materialized();
                Ok(Decoder::ShowTell(match config.d_whitened {
                    // Whitening divides by the principal components' spread: centre only.
                    Some(k) => {
                        let (matrix, _) = whitening(features, &self.examples.rows, &mean, k);
                        decoder
                            .set_feature_statistics(&mean, &vec![1.0; mean.len()])
                            .set_feature_whitening(&matrix)
                    }
                    None => decoder.set_feature_statistics(&mean, &std),
                }))
            }
            DecoderConfig::ShowAttendTell(config) => Ok(Decoder::ShowAttendTell(
                config
                    .init(device)?
                    .materialized()
                    .set_feature_statistics(&mean, &std),
            )),
            DecoderConfig::Transformer(config) => Ok(Decoder::Transformer(
                config
                    .init(device)?
                    .materialized()
                    .set_feature_statistics(&mean, &std),
            )),
            other => Err(StorytellerError::NoTrainingData(format!(
                "this version cannot train a {} decoder",
                other.kind()
            ))),
        }
    }
}

/// The side of the feature grid a decoder of `kind` reads from `features`: 1 for Show and
/// Tell (which needs pooled features), the cache's grid for an attention decoder.
fn feature_grid(features: &FeatureCache, kind: DecoderKind) -> Result<usize> {
    let regions = features.regions();
    let grid = (1..=regions).find(|g| g * g >= regions).unwrap_or(1);
    match kind {
        DecoderKind::ShowTell if regions != 1 => Err(StorytellerError::NoTrainingData(format!(
            "{} holds spatial features ({regions} regions per image); the show-tell decoder \
             trains on pooled features: extract without --grid, or train --decoder show-attend-tell",
            features.path().display(),
        ))),
        DecoderKind::ShowAttendTell if regions == 1 => {
            Err(StorytellerError::NoTrainingData(format!(
                "{} holds pooled features (one vector per image); the show-attend-tell decoder \
                 attends over a grid of regions: extract with --grid G (2 or more)",
                features.path().display(),
            )))
        }
        _ if grid * grid != regions => Err(StorytellerError::NoTrainingData(format!(
            "{} holds {regions} regions per image, not a square grid",
            features.path().display(),
        ))),
        _ => Ok(grid),
    }
}

/// Creates and locks the model directory; a fresh run into one that holds a model or a
/// checkpoint is refused unless `overwrite`, which discards the old run's checkpoint (its
/// published model stays until the new run publishes).
fn claim(layout: &ModelLayout, options: &TrainOptions<'_>) -> Result<OutputLock> {
    let root = layout.root();
    std::fs::create_dir_all(root).map_err(io_error(root, "cannot create the model directory"))?;
    // One writer per model directory: a second run into it is refused while this one lives.
    let lock = OutputLock::acquire(root, &layout.lock(), "storyteller train")?;
    // Under the lock no one else writes here: temporaries are what a killed run left.
    storyteller_data::remove_stale_temporaries_under(root)?;
    let has_checkpoint = layout.checkpoint_state().exists();
    if options.resume && has_checkpoint {
        return Ok(lock);
    }
    if (layout.holds_model() || has_checkpoint) && !options.overwrite {
        let what = if layout.holds_model() {
            "a model"
        } else {
            "a training checkpoint"
        };
        return Err(StorytellerError::ModelDir {
            path: root.to_owned(),
            reason: format!(
                "already holds {what}: continue its training with --resume, or replace it with --overwrite"
            ),
        });
    }
    if has_checkpoint {
        let dir = layout.checkpoint();
        std::fs::remove_dir_all(&dir)
            .map_err(io_error(&dir, "cannot remove the old run's checkpoint"))?;
    }
    Ok(lock)
}

/// A run in progress: the model, its optimiser, the devices and the epoch bookkeeping.
struct Run<'a> {
    config: &'a TrainConfig,
    data: Prepared<'a>,
    layout: ModelLayout,
    device: Device,
    shard_devices: Vec<Device>,
    decoder: Decoder,
    step: TrainStep,
    state: TrainState,
    loss_limit: f32,
}

impl<'a> Run<'a> {
    /// Resumes from the checkpoint (when asked and one exists) or initialises a decoder.
    fn start(
        config: &'a TrainConfig,
        options: &TrainOptions<'_>,
        mut data: Prepared<'a>,
        layout: ModelLayout,
        device: &Device,
    ) -> Result<Self> {
        let train_device = device.clone().autodiff();
        let shard_devices: Vec<Device> = std::iter::once(train_device.clone())
            .chain(options.data_parallel.iter().map(|d| d.clone().autodiff()))
            .collect();
        let mut step = TrainStep::new(&config.optimizer, PAD)
            .with_label_smoothing(config.label_smoothing)
            .with_reduction(options.reduction, &shard_devices);
        let previous = checkpoint::load_state(&layout)?;
        if options.resume && previous.is_none() {
            data.warnings.push(format!(
                "nothing to resume: no checkpoint in {}; training from scratch",
                layout.root().display()
            ));
        }
        let (decoder, state) = match previous {
            Some(state) if options.resume => {
                resume_checks(&layout, &state, config, &data)?;
                let (decoder_path, optimizer_path) = layout.checkpoint_files(state.epoch);
                let decoder = Decoder::load(&decoder_path, &data.decoder_config, &train_device)?;
                let bytes = std::fs::read(&optimizer_path)
                    .map_err(io_error(&optimizer_path, "cannot read the optimiser state"))?;
                step = step.load_state_bytes(bytes).map_err(|source| {
                    StorytellerError::from(storyteller_decoder::DecoderError::Record {
                        path: optimizer_path,
                        source,
                    })
                })?;
                let state = TrainState {
                    config: config.clone(),
                    ..state
                };
                (decoder, state)
            }
            _ => {
                train_device.seed(config.seed);
                let state = TrainState {
                    format: CHECKPOINT_FORMAT.to_owned(),
                    epoch: 0,
                    best_epoch: 0,
                    best_bleu4: f64::NEG_INFINITY,
                    best_score: f64::NEG_INFINITY,
                    epochs_since_best: 0,
                    stopped_early: false,
                    history: Vec::new(),
                    config: config.clone(),
                    decoder: data.decoder_config.clone(),
                    encoder_hash: data.encoder.hash.clone(),
                };
                (data.init_decoder(&train_device)?, state)
            }
        };
        // A loss 100 times that of a uniform guess is an explosion, not learning.
        let loss_limit = 100.0 * (data.vocab.len() as f32).ln();
        Ok(Self {
            config,
            data,
            layout,
            device: device.clone(),
            shard_devices,
            decoder,
            step,
            state,
            loss_limit,
        })
    }

    /// The next epoch to train, or `None` when the run is over (epochs done, early stop,
    /// or `stop_after` reached).
    fn next_epoch(&self, stop_after: Option<usize>) -> Option<usize> {
        let epoch = self.state.epoch;
        let over = epoch >= self.config.epochs
            || self.state.stopped_early
            || self.state.epochs_since_best >= self.config.patience
            || stop_after.is_some_and(|last| epoch >= last);
        (!over).then_some(epoch + 1)
    }

    /// One epoch of teacher-forced batches; returns the mean batch loss.
    fn train_epoch(&mut self, epoch: usize, progress: bool) -> Result<f64> {
        let (config, features) = (self.config, self.data.features);
        let started = Instant::now();
        for shard_device in &self.shard_devices {
            shard_device.seed(config.seed.wrapping_add(epoch as u64));
        }
        let shuffled;
        let examples = if config.blind {
            shuffled = self
                .data
                .examples
                .with_shuffled_features(config.seed, epoch);
            &shuffled
        } else {
            &self.data.examples
        };
        let order = epoch_order(examples.len(), config.seed, epoch);
        let batches: Vec<&[usize]> = order.chunks(config.batch_size.max(1)).collect();
        // Every epoch has the same number of batches: the step count of a resumed run is
        // that of the uninterrupted one.
        let steps_before = (epoch - 1) * batches.len();
        let bar = progress_bar(progress, batches.len() as u64, epoch, config.epochs);
        let mut loss_sum = 0.0f64;
        // Batch losses stay on the device and are read every few batches: a read waits for
        // the device, and the step itself never reads.
        let mut pending: Vec<Tensor<1>> = Vec::with_capacity(LOSS_READ_INTERVAL);
        for (b, indices) in batches.iter().enumerate() {
            let per_device = indices.len().div_ceil(self.shard_devices.len());
            let shards: Vec<_> = indices
                .chunks(per_device)
                .zip(&self.shard_devices)
                .map(|(rows, shard_device)| examples.batch(rows, features, shard_device))
                .collect();
            let decoder = self.decoder.clone();
            let learning_rate = config.learning_rate_at_step(epoch, steps_before + b + 1);
            let (next, loss) = self.step.step_sharded(decoder, &shards, learning_rate);
            self.decoder = next;
            pending.push(loss);
            if pending.len() < LOSS_READ_INTERVAL && b + 1 < batches.len() {
                continue;
            }
            let first = b + 1 - pending.len();
            for (i, loss) in read_losses(std::mem::take(&mut pending))
                .into_iter()
                .enumerate()
            {
                if !loss.is_finite() || loss > self.loss_limit {
                    bar.abandon();
                    let last_good = self.state.epoch;
                    return Err(StorytellerError::Diverged {
                        epoch,
                        batch: first + i + 1,
                        loss,
                        last_good,
                        checkpoint: (last_good > 0).then(|| self.layout.checkpoint()),
                    });
                }
                loss_sum += f64::from(loss);
            }
            let rate =
                ((b + 1) * config.batch_size) as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.3}  {rate:.0} captions/s",
                loss_sum / (b + 1) as f64
            ));
            bar.set_position((b + 1) as u64);
        }
        bar.finish_and_clear();
        Ok(loss_sum / batches.len() as f64)
    }

    /// Validates, publishes the model when it is the best so far, checkpoints, and writes
    /// the metrics and the plot.
    fn end_epoch(
        &mut self,
        epoch: usize,
        train_loss: f64,
        train_seconds: f64,
        started: Instant,
        progress: bool,
    ) -> Result<()> {
        let config = self.config;
        let inference = inference_copy(&self.decoder);
        let val = self.data.validation.score(
            &inference,
            &self.step,
            self.data.features,
            &self.data.vocab,
            config,
            &self.device,
        )?;
        let metrics = EpochMetrics {
            epoch,
            learning_rate: config.learning_rate_at(epoch),
            train_loss,
            val_loss: val.loss,
            val_bleu4: val.bleu4,
            val_cider_d: val.cider_d,
            val_distinct: val.distinct,
            seconds: started.elapsed().as_secs_f64(),
            captions_per_second: self.data.examples.len() as f64 / train_seconds.max(1e-9),
        };
        if progress {
            eprintln!(
                "epoch {epoch}/{}: train loss {:.4}, val loss {:.4}, val BLEU-4 {:.4}, CIDEr-D {:.4}, distinct {:.0}%, {:.0} captions/s, {:.1} s",
                config.epochs,
                metrics.train_loss,
                metrics.val_loss,
                metrics.val_bleu4,
                metrics.val_cider_d,
                100.0 * metrics.val_distinct,
                metrics.captions_per_second,
                metrics.seconds
            );
        }
        let state = &mut self.state;
        state.history.push(metrics);
        let score = config.selection.score(val.loss, val.bleu4, val.cider_d);
        if score > state.best_score {
            state.best_score = score;
            state.best_bleu4 = val.bleu4;
            state.best_epoch = epoch;
            state.epochs_since_best = 0;
            let model = ModelConfig::new(
                self.data.decoder_config.clone(),
                self.data.preprocess.clone(),
                self.data.encoder.clone(),
            );
            publish(
                &self.layout,
                &model,
                &self.data.vocab,
                &inference.to_bytes()?,
            )?;
        } else {
            state.epochs_since_best += 1;
        }
        state.epoch = epoch;
        state.stopped_early = state.epochs_since_best >= config.patience && epoch < config.epochs;
        let optimizer = self.step.state_bytes().map_err(|source| {
            StorytellerError::from(storyteller_decoder::DecoderError::Record {
                path: self.layout.checkpoint(),
                source,
            })
        })?;
        checkpoint::save(
            &self.layout,
            &self.state,
            &self.decoder.to_bytes()?,
            &optimizer,
            &self.data.vocab.to_json(),
        )?;
        write_metrics(&self.layout, &self.state.history)?;
        if let Err(message) = plot::plot(&self.layout.plot(), &self.state.history) {
            self.data
                .warnings
                .push(format!("training.png not drawn: {message}"));
        }
        Ok(())
    }

    fn summary(self) -> TrainSummary {
        let state = self.state;
        TrainSummary {
            epochs: state.epoch,
            best_epoch: state.best_epoch,
            best_bleu4: state.best_bleu4,
            selection: self.config.selection,
            best_score: state.best_score,
            stopped_early: state.stopped_early,
            history: state.history,
            warnings: self.data.warnings,
        }
    }
}

/// Reads a run of batch losses (each `[1]`, on one device) with one host read.
fn read_losses(losses: Vec<Tensor<1>>) -> Vec<f32> {
    Tensor::cat(losses, 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 losses")
}

fn progress_bar(show: bool, len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches, {msg}, ETA {eta}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Refuses to resume a checkpoint made with other encoder weights, settings or vocabulary.
fn resume_checks(
    layout: &ModelLayout,
    state: &TrainState,
    config: &TrainConfig,
    data: &Prepared<'_>,
) -> Result<()> {
    let state_path = layout.checkpoint_state();
    if state.encoder_hash != data.encoder.hash {
        return Err(StorytellerError::ResumeMismatch {
            path: state_path,
            field: "encoder weights (hash of the features' encoder)".into(),
            checkpoint: state.encoder_hash.clone(),
            now: data.encoder.hash.clone(),
        });
    }
    if let Some((field, checkpoint, now)) =
        checkpoint::first_difference(state, config, &data.decoder_config)
    {
        return Err(StorytellerError::ResumeMismatch {
            path: state_path,
            field,
            checkpoint,
            now,
        });
    }
    // The checkpoint's own vocabulary; checkpoints written before it was kept there rely on
    // the published one.
    let saved_path = Some(checkpoint::vocab_file(layout, state.epoch))
        .filter(|path| path.exists())
        .unwrap_or_else(|| layout.vocab());
    let saved = Vocab::load(&saved_path)?;
    let vocab = &data.vocab;
    if saved.words() != vocab.words() {
        let first = saved
            .words()
            .iter()
            .zip(vocab.words())
            .position(|(a, b)| a != b)
            .unwrap_or(saved.len().min(vocab.len()));
        return Err(StorytellerError::ResumeMismatch {
            path: saved_path,
            field: format!("vocabulary (first difference at id {first})"),
            checkpoint: format!("{} words", saved.len()),
            now: format!("{} words", vocab.len()),
        });
    }
    Ok(())
}

fn write_metrics(layout: &ModelLayout, history: &[EpochMetrics]) -> Result<()> {
    let lines: String = history
        .iter()
        .map(|m| serde_json::to_string(m).expect("metrics serialise") + "\n")
        .collect();
    write_bytes(&layout.metrics(), lines.as_bytes())
}

impl std::fmt::Display for TrainSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} epochs, best epoch {} by validation {} ({:.4}; BLEU-4 {:.4}){}",
            self.epochs,
            self.best_epoch,
            self.selection,
            self.best_score.abs(),
            self.best_bleu4,
            if self.stopped_early {
                " (stopped early)"
            } else {
                ""
            }
        )
    }
}
