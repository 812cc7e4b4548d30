//! Checkpoints: the last completed epoch's decoder, optimiser and trainer state.
//!
//! ```text
//! MODEL_DIR/checkpoint/state.json          TrainState (written last, atomically)
//! MODEL_DIR/checkpoint/epoch-0007/decoder.bpk
//! MODEL_DIR/checkpoint/epoch-0007/optimizer.bpk
//! MODEL_DIR/checkpoint/epoch-0007/vocab.json      the run's vocabulary (a resume checks it)
//! ```
//!
//! Each epoch writes a new `epoch-NNNN` directory, then points `state.json` at it, then
//! removes the older ones, so an interruption at any moment leaves a consistent checkpoint.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use storyteller_decoder::DecoderConfig;

use crate::error::{Result, StorytellerError, io_error};
use crate::model_dir::{ModelLayout, read_json, write_bytes};
use crate::train::TrainConfig;

/// Format tag of `state.json`.
pub const CHECKPOINT_FORMAT: &str = "storyteller-checkpoint/1";

/// What one epoch measured; one line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Learning rate used.
    pub learning_rate: f64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Teacher-forced loss on the validation captions.
    pub val_loss: f64,
    /// Corpus BLEU-4 (pycocoevalcap flavour) of greedy captions on the validation images.
    pub val_bleu4: f64,
    /// CIDEr-D of the same captions (0 in checkpoints written before it was measured).
    #[serde(default)]
    pub val_cider_d: f64,
    /// Distinct greedy captions / validation images (0 in older checkpoints).
    #[serde(default)]
    pub val_distinct: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
    /// Training throughput.
    pub captions_per_second: f64,
}

/// The trainer's state after a completed epoch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// Last completed epoch.
    pub epoch: usize,
    /// Epoch of the best validation score so far (its decoder is `MODEL_DIR/decoder.bpk`).
    pub best_epoch: usize,
    /// The validation BLEU-4 of that epoch.
    pub best_bleu4: f64,
    /// Its score under the config's `selection` (higher is better).
    pub best_score: f64,
    /// Epochs since the best one.
    pub epochs_since_best: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Every epoch so far.
    pub history: Vec<EpochMetrics>,
    /// The training settings.
    pub config: TrainConfig,
    /// The decoder family (`kind`) and its settings (`decoder`).
    #[serde(flatten)]
    pub decoder: DecoderConfig,
    /// Hash of the encoder weights the features came from.
    pub encoder_hash: String,
}

/// The vocabulary saved with a checkpoint epoch (absent in checkpoints written before it
/// was saved there).
pub fn vocab_file(layout: &ModelLayout, epoch: usize) -> PathBuf {
    layout.checkpoint_epoch(epoch).join(ModelLayout::VOCAB)
}

/// Reads the checkpoint state of a model directory, `None` when there is no checkpoint.
///
/// # Errors
/// A malformed state file or another format version.
pub fn load_state(layout: &ModelLayout) -> Result<Option<TrainState>> {
    let path = layout.checkpoint_state();
    if !path.exists() {
        return Ok(None);
    }
    let mut value: serde_json::Value = read_json(&path, "checkpoint state")?;
    upgrade_state(&mut value);
    let state: TrainState =
        serde_json::from_value(value).map_err(|source| StorytellerError::Json {
            path: path.clone(),
            what: "checkpoint state",
            source,
        })?;
    if state.format != CHECKPOINT_FORMAT {
        return Err(StorytellerError::ModelDir {
            path,
            reason: format!(
                "checkpoint format {:?}, this version reads {CHECKPOINT_FORMAT:?}",
                state.format
            ),
        });
    }
    Ok(Some(state))
}

/// Fills what checkpoints written before conditioning variants, blind training and the
/// selection criterion lack, with the values those runs had: init-inject, seeing, selected
/// by BLEU-4.
fn upgrade_state(state: &mut serde_json::Value) {
    if let Some(decoder) = state.get_mut("decoder") {
        crate::model_dir::upgrade_decoder_config(decoder);
    }
    if let Some(map) = state.as_object_mut() {
        map.entry("kind").or_insert_with(|| "show-tell".into());
    }
    if let Some(config) = state.get_mut("config").and_then(|c| c.as_object_mut()) {
        config
            .entry("conditioning")
            .or_insert_with(|| "init".into());
        config.entry("selection").or_insert_with(|| "bleu4".into());
        config.entry("blind").or_insert(false.into());
        config.entry("kind").or_insert_with(|| "show-tell".into());
        config.entry("d_attention").or_insert(512.into());
        config.entry("alpha_c").or_insert(1.0.into());
        config
            .entry("d_whitened")
            .or_insert(serde_json::Value::Null);
    }
    if let Some(map) = state.as_object_mut()
        && !map.contains_key("best_score")
    {
        let best = map
            .get("best_bleu4")
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        map.insert("best_score".into(), best);
    }
}

/// Writes an epoch's checkpoint: weights, optimiser and vocabulary first, then the state
/// pointing at them, then removes older epochs.
///
/// # Errors
/// A write failure (the previous checkpoint stays valid).
pub fn save(
    layout: &ModelLayout,
    state: &TrainState,
    decoder: &[u8],
    optimizer: &[u8],
    vocab_json: &str,
) -> Result<()> {
    let dir = layout.checkpoint_epoch(state.epoch);
    std::fs::create_dir_all(&dir)
        .map_err(io_error(&dir, "cannot create the checkpoint directory"))?;
    let (decoder_path, optimizer_path) = layout.checkpoint_files(state.epoch);
    write_bytes(&decoder_path, decoder)?;
    write_bytes(&optimizer_path, optimizer)?;
    write_bytes(&vocab_file(layout, state.epoch), vocab_json.as_bytes())?;
    let json = serde_json::to_string_pretty(state).expect("a train state serialises");
    write_bytes(&layout.checkpoint_state(), json.as_bytes())?;
    let keep = dir.file_name().map(|n| n.to_owned());
    if let Ok(entries) = std::fs::read_dir(layout.checkpoint()) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with("epoch-") && Some(&name) != keep.as_ref() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}

/// The first setting in which `state` differs from the run about to resume it.
pub fn first_difference(
    state: &TrainState,
    config: &TrainConfig,
    decoder: &DecoderConfig,
) -> Option<(String, String, String)> {
    let compare = |prefix: &str, a: serde_json::Value, b: serde_json::Value| {
        let (Some(a), Some(b)) = (a.as_object().cloned(), b.as_object().cloned()) else {
            return None;
        };
        a.iter().find_map(|(key, value)| {
            let now = b.get(key).cloned().unwrap_or(serde_json::Value::Null);
            (value != &now).then(|| {
                (
                    format!("{prefix}.{key}"),
                    value.to_string(),
                    now.to_string(),
                )
            })
        })
    };
    if state.decoder.kind() != decoder.kind() {
        return Some((
            "decoder.kind".into(),
            state.decoder.kind().into(),
            decoder.kind().into(),
        ));
    }
    let settings =
        |d: &DecoderConfig| serde_json::to_value(d).expect("serialises")["decoder"].take();
    compare("decoder", settings(&state.decoder), settings(decoder)).or_else(|| {
        compare(
            "train",
            state.config.resume_fields(),
            config.resume_fields(),
        )
    })
}
