//! The training loop: epochs over cached features, validation, early stopping, checkpoints.

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use storyteller_data::{
    FeatureCache, Flickr30k, ImageItem, OutputLock, PAD, PreprocessConfig, Split, Vocab,
};
use storyteller_decoder::train::{GradientReduction, TrainStep, inference_copy};
use storyteller_decoder::{CaptionDecoder, CaptionDecoderConfig};
use storyteller_metrics::bleu::coco_bleu;
use storyteller_metrics::{CiderConfig, Corpus, cider_d};
use storyteller_search::GreedySearch;

use crate::error::{Result, StorytellerError, io_error};
use crate::model_dir::{
    DECODER_FILE, EncoderRef, ModelConfig, VOCAB_FILE, save_decoder, write_bytes,
};
use crate::train::checkpoint::{self, CHECKPOINT_FORMAT, EpochMetrics, TrainState};
use crate::train::examples::{CaptionExamples, epoch_order, feature_derangement};
use crate::train::whitening::{feature_statistics, whitened_width, whitening};
use crate::train::{Selection, TrainConfig, plot};

/// The lock file in a model directory being trained.
const LOCK_FILE: &str = ".train.lock";

/// Images decoded per validation search batch.
const VAL_BATCH: usize = 256;

/// Training batches between reads of their losses (for the progress bar and the divergence
/// check).
const LOSS_READ_INTERVAL: usize = 8;

/// Reads a run of batch losses (each `[1]`, on one device) with one host read.
fn read_losses(losses: Vec<Tensor<1>>) -> Vec<f32> {
    Tensor::cat(losses, 0)
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 losses")
}

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

struct Validation {
    examples: CaptionExamples,
    rows: Vec<usize>,
    references: Vec<Vec<String>>,
}

impl Validation {
    /// Gives every validation image another one's features, once (blind training).
    fn shuffle_features(&mut self, seed: u64) {
        let moved = feature_derangement(&self.rows, seed, 0);
        for row in self.examples.rows.iter_mut().chain(self.rows.iter_mut()) {
            *row = moved[&*row];
        }
    }
}

/// Trains a decoder on cached features and writes a model directory.
///
/// Per epoch: shuffled teacher-forced batches (seeded by `config.seed` and the epoch, so
/// a resumed run matches an uninterrupted one), then validation loss, greedy BLEU-4 and
/// CIDEr-D on the validation split. The best decoder under `config.selection` (CIDEr-D by
/// default) is `decoder.bpk`; training stops after
/// `patience` epochs without improvement. Every epoch is checkpointed atomically. A batch
/// loss that is NaN, infinite or above 100·ln(vocabulary size) (a hundred times a uniform
/// guess) stops the run with [`StorytellerError::Diverged`]; the last checkpoint stays.
///
/// # Errors
/// Unusable data, a feature cache from other encoder weights, a checkpoint from another
/// configuration (`--resume`), a diverging loss, or an I/O failure.
pub fn train(
    config: &TrainConfig,
    options: TrainOptions<'_>,
    device: &Device,
) -> Result<TrainSummary> {
    let TrainOptions {
        dataset,
        features,
        encoder,
        out_dir,
        resume,
        data_parallel,
        reduction,
        stop_after,
        progress,
    } = options;
    let mut warnings = Vec::new();
    if features.key().encoder != encoder.hash {
        return Err(StorytellerError::EncoderMismatch {
            path: encoder.weights.clone(),
            found: encoder.hash.clone(),
            expected: features.key().encoder.clone(),
            context: format!("the feature cache {}", features.path().display()),
        });
    }
    let preprocess: PreprocessConfig =
        serde_json::from_str(&features.key().preprocess).map_err(|source| {
            StorytellerError::Json {
                path: features.path().to_owned(),
                what: "preprocessing record",
                source,
            }
        })?;
    std::fs::create_dir_all(out_dir)
        .map_err(io_error(out_dir, "cannot create the model directory"))?;
    // One writer per model directory: a second run into it is refused while this one lives.
    let _lock = OutputLock::acquire(out_dir, &out_dir.join(LOCK_FILE), "storyteller train")?;

    let train_images = dataset.split(Split::Train);
    let vocab = Vocab::from_tokens(
        train_images
            .images()
            .iter()
            .flat_map(|i| i.captions.iter().map(|c| c.tokens.as_slice())),
        config.min_count,
    );
    let (train_examples, missing) = CaptionExamples::build(
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
    if train_examples.is_empty() {
        return Err(StorytellerError::NoTrainingData(format!(
            "no training caption has features: {} training images, {} cached features in {}",
            train_images.images().len(),
            features.len(),
            features.path().display()
        )));
    }
    let mut validation =
        validation_set(dataset.split(Split::Val).images(), features, &vocab, config);
    if config.blind {
        validation.shuffle_features(config.seed);
    }
    if validation.rows.is_empty() {
        return Err(StorytellerError::NoTrainingData(
            "no validation image has features: early stopping needs the validation split".into(),
        ));
    }

    // The whitening width is part of the decoder config a resume must match; the
    // statistics and the projection themselves are computed only for a fresh start.
    let d_whitened = config
        .d_whitened
        .map(|k| whitened_width(k, &train_examples.rows, features.width()));
    let decoder_config = CaptionDecoderConfig::new(vocab.len())
        .with_d_feature(features.width())
        .with_d_embed(config.d_embed)
        .with_d_hidden(config.d_hidden)
        .with_n_layers(config.n_layers)
        .with_dropout(config.dropout)
        .with_conditioning(config.conditioning)
        .with_d_whitened(d_whitened);
    decoder_config.validate()?;

    // A loss 100 times that of a uniform guess is an explosion, not learning.
    let loss_limit = 100.0 * (vocab.len() as f32).ln();
    let train_device = device.clone().autodiff();
    let shard_devices: Vec<Device> = std::iter::once(train_device.clone())
        .chain(data_parallel.iter().map(|d| d.clone().autodiff()))
        .collect();
    let mut step = TrainStep::new(&config.optimizer, PAD).with_reduction(reduction, &shard_devices);
    let previous = checkpoint::load_state(out_dir)?;
    if resume && previous.is_none() {
        warnings.push(format!(
            "nothing to resume: no checkpoint in {}; training from scratch",
            out_dir.display()
        ));
    }
    let (mut decoder, mut state) = match previous {
        Some(state) if resume => {
            resume_checks(
                out_dir,
                &state,
                config,
                &decoder_config,
                &vocab,
                &encoder.hash,
            )?;
            let (decoder_path, optimizer_path) = checkpoint::epoch_files(out_dir, state.epoch);
            let decoder = CaptionDecoder::load(&decoder_path, &decoder_config, &train_device)?;
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
                decoder: decoder_config.clone(),
                encoder_hash: encoder.hash.clone(),
            };
            let (mean, std) = feature_statistics(features, &train_examples.rows);
            let decoder = decoder_config.init(&train_device)?.materialized();
            let decoder = match d_whitened {
                // Whitening divides by the principal components' spread: centre only.
                Some(k) => {
                    let (matrix, _) = whitening(features, &train_examples.rows, &mean, k);
                    decoder
                        .set_feature_statistics(&mean, &vec![1.0; mean.len()])
                        .set_feature_whitening(&matrix)
                }
                None => decoder.set_feature_statistics(&mean, &std),
            };
            (decoder, state)
        }
    };
    vocab.save(out_dir.join(VOCAB_FILE))?;
    ModelConfig::new(decoder_config.clone(), preprocess, encoder).save(out_dir)?;

    let mut epoch = state.epoch;
    while epoch < config.epochs && !state.stopped_early && state.epochs_since_best < config.patience
    {
        if stop_after.is_some_and(|last| epoch >= last) {
            break;
        }
        epoch += 1;
        let started = Instant::now();
        let learning_rate = config.learning_rate_at(epoch);
        for shard_device in &shard_devices {
            shard_device.seed(config.seed.wrapping_add(epoch as u64));
        }
        let shuffled;
        let train_examples = if config.blind {
            shuffled = train_examples.with_shuffled_features(config.seed, epoch);
            &shuffled
        } else {
            &train_examples
        };
        let order = epoch_order(train_examples.len(), config.seed, epoch);
        let batches: Vec<&[usize]> = order.chunks(config.batch_size.max(1)).collect();
        let bar = progress_bar(progress, batches.len() as u64, epoch, config.epochs);
        let mut loss_sum = 0.0f64;
        // Batch losses stay on the device and are read every few batches: a read waits for
        // the device, and the step itself never reads.
        let mut pending: Vec<Tensor<1>> = Vec::with_capacity(LOSS_READ_INTERVAL);
        for (b, indices) in batches.iter().enumerate() {
            let per_device = indices.len().div_ceil(shard_devices.len());
            let shards: Vec<_> = indices
                .chunks(per_device)
                .zip(&shard_devices)
                .map(|(rows, shard_device)| train_examples.batch(rows, features, shard_device))
                .collect();
            let (next, loss) = step.step_sharded(decoder, &shards, learning_rate);
            decoder = next;
            pending.push(loss);
            if pending.len() < LOSS_READ_INTERVAL && b + 1 < batches.len() {
                continue;
            }
            let first = b + 1 - pending.len();
            let losses = read_losses(std::mem::take(&mut pending));
            for (i, &loss) in losses.iter().enumerate() {
                if !loss.is_finite() || loss > loss_limit {
                    bar.abandon();
                    return Err(StorytellerError::Diverged {
                        epoch,
                        batch: first + i + 1,
                        loss,
                        last_good: state.epoch,
                        checkpoint: checkpoint::checkpoint_dir(out_dir),
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
        let train_seconds = started.elapsed().as_secs_f64();

        let inference = inference_copy(&decoder);
        let val = validate(
            &inference,
            &step,
            &validation,
            features,
            &vocab,
            config,
            device,
        )?;
        let metrics = EpochMetrics {
            epoch,
            learning_rate,
            train_loss: loss_sum / batches.len() as f64,
            val_loss: val.loss,
            val_bleu4: val.bleu4,
            val_cider_d: val.cider_d,
            val_distinct: val.distinct,
            seconds: started.elapsed().as_secs_f64(),
            captions_per_second: train_examples.len() as f64 / train_seconds.max(1e-9),
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
        state.history.push(metrics);
        let score = config.selection.score(val.loss, val.bleu4, val.cider_d);
        if score > state.best_score {
            state.best_score = score;
            state.best_bleu4 = val.bleu4;
            state.best_epoch = epoch;
            state.epochs_since_best = 0;
            save_decoder(&out_dir.join(DECODER_FILE), &inference)?;
        } else {
            state.epochs_since_best += 1;
        }
        state.epoch = epoch;
        state.stopped_early = state.epochs_since_best >= config.patience && epoch < config.epochs;
        checkpoint::save(
            out_dir,
            &state,
            &decoder.to_bytes()?,
            &step.state_bytes().map_err(|source| {
                StorytellerError::from(storyteller_decoder::DecoderError::Record {
                    path: checkpoint::checkpoint_dir(out_dir),
                    source,
                })
            })?,
        )?;
        write_metrics(out_dir, &state.history)?;
        if let Err(message) = plot::plot(&out_dir.join("training.png"), &state.history) {
            warnings.push(format!("training.png not drawn: {message}"));
        }
    }

    Ok(TrainSummary {
        epochs: state.epoch,
        best_epoch: state.best_epoch,
        best_bleu4: state.best_bleu4,
        selection: config.selection,
        best_score: state.best_score,
        stopped_early: state.stopped_early,
        history: state.history,
        warnings,
    })
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

fn validation_set(
    images: &[ImageItem],
    features: &FeatureCache,
    vocab: &Vocab,
    config: &TrainConfig,
) -> Validation {
    let limit = config.val_images.unwrap_or(usize::MAX);
    let images: Vec<&ImageItem> = images
        .iter()
        .filter(|i| features.index_of(&i.id).is_some())
        .take(limit)
        .collect();
    let owned: Vec<ImageItem> = images.iter().map(|i| (*i).clone()).collect();
    let (examples, _) = CaptionExamples::build(&owned, features, vocab, config.max_caption_len);
    Validation {
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

/// What one validation pass measured.
struct ValidationScores {
    loss: f64,
    bleu4: f64,
    cider_d: f64,
    distinct: f64,
}

fn validate(
    decoder: &CaptionDecoder,
    step: &TrainStep,
    validation: &Validation,
    features: &FeatureCache,
    vocab: &Vocab,
    config: &TrainConfig,
    device: &Device,
) -> Result<ValidationScores> {
    let mut loss_sum = 0.0f64;
    let mut weight = 0usize;
    let all: Vec<usize> = (0..validation.examples.len()).collect();
    for indices in all.chunks(config.batch_size.max(1)) {
        let batch = validation.examples.batch(indices, features, device);
        loss_sum +=
            f64::from(step.loss(decoder, &batch).into_scalar::<f32>()) * indices.len() as f64;
        weight += indices.len();
    }
    let greedy = GreedySearch::new().with_max_len(config.val_max_len);
    let width = features.width();
    let mut hypotheses: Vec<Vec<String>> = Vec::with_capacity(validation.rows.len());
    for rows in validation.rows.chunks(VAL_BATCH) {
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
    let corpus = Corpus::from_tokens(hypotheses.into_iter().zip(
        validation.references.iter().map(|refs| {
            refs.iter()
                .map(|r| r.split(' ').map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        }),
    ))?;
    Ok(ValidationScores {
        loss: loss_sum / weight.max(1) as f64,
        bleu4: coco_bleu(&corpus, 4)?.corpus[3],
        cider_d: cider_d(&corpus, CiderConfig::default())?.mean,
        distinct,
    })
}

fn resume_checks(
    out_dir: &Path,
    state: &TrainState,
    config: &TrainConfig,
    decoder: &CaptionDecoderConfig,
    vocab: &Vocab,
    encoder_hash: &str,
) -> Result<()> {
    let state_path = checkpoint::checkpoint_dir(out_dir).join("state.json");
    if state.encoder_hash != encoder_hash {
        return Err(StorytellerError::ResumeMismatch {
            path: state_path,
            field: "encoder weights (hash of the features' encoder)".into(),
            checkpoint: state.encoder_hash.clone(),
            now: encoder_hash.to_owned(),
        });
    }
    if let Some((field, checkpoint, now)) = checkpoint::first_difference(state, config, decoder) {
        return Err(StorytellerError::ResumeMismatch {
            path: state_path,
            field,
            checkpoint,
            now,
        });
    }
    let saved = Vocab::load(out_dir.join(VOCAB_FILE))?;
    if saved.words() != vocab.words() {
        let first = saved
            .words()
            .iter()
            .zip(vocab.words())
            .position(|(a, b)| a != b)
            .unwrap_or(saved.len().min(vocab.len()));
        return Err(StorytellerError::ResumeMismatch {
            path: out_dir.join(VOCAB_FILE),
            field: format!("vocabulary (first difference at id {first})"),
            checkpoint: format!("{} words", saved.len()),
            now: format!("{} words", vocab.len()),
        });
    }
    Ok(())
}

fn write_metrics(out_dir: &Path, history: &[EpochMetrics]) -> Result<()> {
    let lines: String = history
        .iter()
        .map(|m| serde_json::to_string(m).expect("metrics serialise") + "\n")
        .collect();
    write_bytes(&out_dir.join("metrics.jsonl"), lines.as_bytes())
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
