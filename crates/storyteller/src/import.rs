//! Importing models trained elsewhere: the PyTorch Show, Attend and Tell tutorial's
//! `DecoderWithAttention`.

use std::path::Path;

use burn::tensor::Device;
use storyteller_data::{OutputLock, PreprocessConfig, WordMap};
use storyteller_decoder::AttentionDecoderConfig;
use storyteller_decoder::attention::load_tutorial;

use crate::error::{Result, StorytellerError, io_error};
use crate::model_dir::{EncoderRef, ModelConfig, ModelLayout, publish};

/// What [`import_tutorial`] needs.
#[derive(Debug, Clone)]
pub struct TutorialImportOptions<'a> {
    /// The decoder's `state_dict`, `.pth` (`torch.save`) or `.safetensors`.
    pub state_dict: &'a Path,
    /// The tutorial's word map JSON (`{word: index}`).
    pub word_map: &'a Path,
    /// Side of the feature grid the decoder was trained on (the tutorial: 14).
    pub grid: usize,
    /// The encoder the decoder was trained with (the tutorial: ResNet-101).
    pub encoder: EncoderRef,
    /// The width of that encoder's features (2048 for ResNet-50/101/152): the decoder must
    /// take features this wide.
    pub encoder_width: usize,
    /// How images are prepared for the encoder.
    pub preprocess: PreprocessConfig,
    /// The model directory to write.
    pub out_dir: &'a Path,
    /// Replace a model already in `out_dir`.
    pub overwrite: bool,
}

/// What an import made.
#[derive(Debug, Clone)]
pub struct TutorialImportSummary {
    /// The decoder's sizes, read from the weights.
    pub config: AttentionDecoderConfig,
    /// Vocabulary size, specials included.
    pub vocab_size: usize,
    /// Keys of the file that are not decoder weights (reported, ignored).
    pub unused: Vec<String>,
}

/// Writes a model directory (`config.json`, `vocab.json`, `decoder.bpk`) holding the
/// tutorial decoder of `options.state_dict`, so `caption`, `evaluate` and `serve` use it
/// like a model trained here. The vocabulary is the word map's, specials first; the
/// embedding and output rows are reordered to match, so the model scores exactly as it did
/// in PyTorch.
///
/// # Errors
/// An unreadable or malformed state dict or word map (the error names the file and, for a
/// tensor, the key and shapes), a word map of another size than the weights, a directory
/// that holds a model (without `overwrite`), or a write failure.
pub fn import_tutorial(
    options: &TutorialImportOptions<'_>,
    device: &Device,
) -> Result<TutorialImportSummary> {
    let word_map = WordMap::load(options.word_map)?;
    let import = load_tutorial(
        options.state_dict,
        options.grid,
        Some(&word_map.file_row),
        device,
    )?;
    if import.config.d_feature != options.encoder_width {
        return Err(StorytellerError::ModelDir {
            path: options.state_dict.to_owned(),
            reason: format!(
                "the decoder takes {}-d features, the encoder {} gives {}-d features",
                import.config.d_feature,
                options.encoder.weights.display(),
                options.encoder_width
            ),
        });
    }
    let layout = ModelLayout::new(options.out_dir);
    let root = layout.root();
    std::fs::create_dir_all(root).map_err(io_error(root, "cannot create the model directory"))?;
    let _lock = OutputLock::acquire(root, &layout.lock(), "storyteller import")?;
    if layout.holds_model() && !options.overwrite {
        return Err(StorytellerError::ModelDir {
            path: root.to_owned(),
            reason: "already holds a model: replace it with --overwrite".into(),
        });
    }
    let config = ModelConfig::new(
        import.config.clone(),
        options.preprocess.clone(),
        options.encoder.clone(),
    );
    config
        .validate()
        .map_err(|reason| StorytellerError::ModelDir {
            path: options.state_dict.to_owned(),
            reason,
        })?;
    publish(
        &layout,
        &config,
        &word_map.vocab,
        &import.decoder.to_bytes()?,
    )?;
    Ok(TutorialImportSummary {
        config: import.config,
        vocab_size: word_map.vocab.len(),
        unused: import.unused,
    })
}
