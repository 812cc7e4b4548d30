//! Importing decoders trained in PyTorch: the Show, Attend and Tell tutorial's
//! `DecoderWithAttention` and `nn.TransformerDecoder` captioners.

use std::path::Path;

use burn::tensor::Device;
use storyteller_data::{OutputLock, PreprocessConfig, WordMap};
use storyteller_decoder::attention::load_tutorial;
use storyteller_decoder::transformer::load_pytorch_transformer;
use storyteller_decoder::{Decoder, DecoderConfig};

use crate::error::{Result, StorytellerError, io_error};
use crate::model_dir::{EncoderRef, ModelConfig, ModelLayout, publish};

/// The PyTorch decoder a `state_dict` holds, with what its weights do not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PytorchDecoder {
    /// The Show, Attend and Tell tutorial's `DecoderWithAttention`, trained on a
    /// `grid x grid` feature grid (the tutorial: 14).
    ShowAttendTell {
        /// Side of the feature grid.
        grid: usize,
    },
    /// An `nn.TransformerDecoder` captioner in the layout of
    /// [`storyteller_decoder::transformer::load_pytorch_transformer`] (its grid is read from
    /// the region embedding).
    Transformer {
        /// Attention heads per layer.
        n_heads: usize,
    },
}

/// What [`import_pytorch`] needs.
#[derive(Debug, Clone)]
pub struct ImportOptions<'a> {
    /// The decoder's `state_dict`, `.pth` (`torch.save`) or `.safetensors`.
    pub state_dict: &'a Path,
    /// The word map JSON (`{word: index}`, with `<pad>`, `<start>`, `<end>`, `<unk>`).
    pub word_map: &'a Path,
    /// Which decoder the file holds.
    pub decoder: PytorchDecoder,
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
pub struct ImportSummary {
    /// The decoder's sizes, read from the weights.
    pub config: DecoderConfig,
    /// Vocabulary size, specials included.
    pub vocab_size: usize,
    /// Keys of the file that are not decoder weights (reported, ignored).
    pub unused: Vec<String>,
}

/// Writes a model directory (`config.json`, `vocab.json`, `decoder.bpk`) holding the
/// PyTorch decoder of `options.state_dict`, so `caption`, `evaluate` and `serve` use it
/// like a model trained here. The vocabulary is the word map's, specials first; the
/// embedding and output rows are reordered to match, so the model scores exactly as it did
/// in PyTorch.
///
/// # Errors
/// An unreadable or malformed state dict or word map (the error names the file and, for a
/// tensor, the key and shapes), a word map of another size than the weights, a directory
/// that holds a model (without `overwrite`), or a write failure.
pub fn import_pytorch(options: &ImportOptions<'_>, device: &Device) -> Result<ImportSummary> {
    let word_map = WordMap::load(options.word_map)?;
    let rows = Some(word_map.file_row.as_slice());
    let (decoder, config, unused): (Decoder, DecoderConfig, Vec<String>) = match options.decoder {
        PytorchDecoder::ShowAttendTell { grid } => {
            let import = load_tutorial(options.state_dict, grid, rows, device)?;
            (
                Decoder::ShowAttendTell(import.decoder),
                import.config.into(),
                import.unused,
            )
        }
        PytorchDecoder::Transformer { n_heads } => {
            let import = load_pytorch_transformer(options.state_dict, n_heads, rows, device)?;
            (
                Decoder::Transformer(import.decoder),
                import.config.into(),
                import.unused,
            )
        }
    };
    if config.d_feature() != options.encoder_width {
        return Err(StorytellerError::ModelDir {
            path: options.state_dict.to_owned(),
            reason: format!(
                "the decoder takes {}-d features, the encoder {} gives {}-d features",
                config.d_feature(),
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
    let model = ModelConfig::new(
        config.clone(),
        options.preprocess.clone(),
        options.encoder.clone(),
    );
    model
        .validate()
        .map_err(|reason| StorytellerError::ModelDir {
            path: options.state_dict.to_owned(),
            reason,
        })?;
    publish(&layout, &model, &word_map.vocab, &decoder.to_bytes()?)?;
    Ok(ImportSummary {
        config,
        vocab_size: word_map.vocab.len(),
        unused,
    })
}
