//! The model directory: what `storyteller train` writes and `caption`, `evaluate` and
//! `serve` read.
//!
//! ```text
//! MODEL_DIR/
//!   config.json      ModelConfig: decoder hyper-parameters, preprocessing, encoder reference, search defaults
//!   vocab.json       the vocabulary (storyteller-data's format)
//!   decoder.bpk      the best decoder weights (Burn's burnpack record)
//!   metrics.jsonl    one line per training epoch
//!   training.png     loss and BLEU-4 curves
//!   checkpoint/      the last epoch's decoder, optimiser and trainer state (for --resume)
//! ```
//!
//! The encoder is referenced, not copied (ResNet-50 is 100 MB): `config.json` records its
//! path (relative to the model directory when it lies inside it) and the hash of its
//! weights, and loading checks the hash.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use storyteller_data::{PreprocessConfig, Vocab, write_atomic};
use storyteller_decoder::{CaptionDecoder, CaptionDecoderConfig};
use storyteller_search::BeamSearch;

use crate::error::{Result, StorytellerError, io_error};

/// Format tag of `config.json`.
pub const MODEL_FORMAT: &str = "storyteller-model/2";
/// The previous format (no `decoder.conditioning`: every such model is init-inject); it
/// still loads.
pub const MODEL_FORMAT_V1: &str = "storyteller-model/1";
/// Model configuration file.
pub const CONFIG_FILE: &str = "config.json";
/// Vocabulary file.
pub const VOCAB_FILE: &str = "vocab.json";
/// Decoder weights file.
pub const DECODER_FILE: &str = "decoder.bpk";

/// Which encoder weights a model expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderRef {
    /// The weights file (`.pth`, `.safetensors` or `.bpk`); relative paths are relative to
    /// the model directory.
    pub weights: PathBuf,
    /// Hash of the weights (`storyteller_encoder::Encoder::weights_hash`).
    pub hash: String,
}

/// `config.json` of a model directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// Decoder hyper-parameters.
    pub decoder: CaptionDecoderConfig,
    /// Image preprocessing the features were made with.
    pub preprocess: PreprocessConfig,
    /// The encoder.
    pub encoder: EncoderRef,
    /// Default beam search for captioning.
    pub beam: BeamSearch,
}

impl ModelConfig {
    /// A config with the default beam search (width 3, 20 tokens).
    pub fn new(
        decoder: CaptionDecoderConfig,
        preprocess: PreprocessConfig,
        encoder: EncoderRef,
    ) -> Self {
        Self {
            format: MODEL_FORMAT.to_owned(),
            decoder,
            preprocess,
            encoder,
            beam: BeamSearch::new(),
        }
    }

    /// Reads `config.json` of `dir`.
    ///
    /// # Errors
    /// Missing or malformed file, or another format version.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(CONFIG_FILE);
        if !path.exists() {
            return Err(StorytellerError::ModelDir {
                path: dir.to_owned(),
                reason: format!(
                    "not a model directory ({CONFIG_FILE} is missing; `storyteller train` writes one)"
                ),
            });
        }
        let mut value: serde_json::Value = read_json(&path, "model config")?;
        let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format == MODEL_FORMAT_V1 {
            if let Some(decoder) = value.get_mut("decoder") {
                upgrade_decoder_config(decoder);
            }
            value["format"] = MODEL_FORMAT.into();
        } else if format != MODEL_FORMAT {
            return Err(StorytellerError::ModelDir {
                path,
                reason: format!(
                    "format {format:?}, this version reads {MODEL_FORMAT:?} and {MODEL_FORMAT_V1:?}"
                ),
            });
        }
        serde_json::from_value(value).map_err(|source| StorytellerError::Json {
            path,
            what: "model config",
            source,
        })
    }

    /// Writes `config.json` into `dir` atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a model config serialises");
        write_bytes(&dir.join(CONFIG_FILE), json.as_bytes())
    }

    /// The encoder weights path, resolved against the model directory.
    pub fn encoder_weights(&self, dir: &Path) -> PathBuf {
        if self.encoder.weights.is_absolute() {
            self.encoder.weights.clone()
        } else {
            dir.join(&self.encoder.weights)
        }
    }
}

/// A model directory's decoder side: config, vocabulary and decoder weights.
#[derive(Debug)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: ModelConfig,
    /// `vocab.json`.
    pub vocab: Vocab,
    /// `decoder.bpk` on the requested device.
    pub decoder: CaptionDecoder,
}

impl ModelFiles {
    /// Loads config, vocabulary and decoder from `dir` onto `device`.
    ///
    /// # Errors
    /// A missing or corrupt file, or a vocabulary whose size differs from the decoder's.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let config = ModelConfig::load(dir)?;
        let vocab = Vocab::load(dir.join(VOCAB_FILE))?;
        if vocab.len() != config.decoder.vocab_size {
            return Err(StorytellerError::ModelDir {
                path: dir.join(VOCAB_FILE),
                reason: format!(
                    "{} words, but the decoder in {CONFIG_FILE} has vocab_size {}",
                    vocab.len(),
                    config.decoder.vocab_size
                ),
            });
        }
        let decoder = CaptionDecoder::load(dir.join(DECODER_FILE), &config.decoder, device)?;
        Ok(Self {
            config,
            vocab,
            decoder,
        })
    }
}

/// Fills the decoder-config fields that models written before they existed lack, with the
/// value those models had: `conditioning` `init` (the seed's init-inject decoder).
pub(crate) fn upgrade_decoder_config(decoder: &mut serde_json::Value) {
    if let Some(map) = decoder.as_object_mut() {
        map.entry("conditioning").or_insert_with(|| "init".into());
    }
}

/// Writes the decoder weights of a model directory atomically.
///
/// # Errors
/// Serialisation or write failure.
pub fn save_decoder(path: &Path, decoder: &CaptionDecoder) -> Result<()> {
    write_bytes(path, &decoder.to_bytes()?)
}

/// Reads a JSON file of the model directory; `what` names it in errors.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_error(path, "cannot read the file"))?;
    serde_json::from_str(&text).map_err(|source| StorytellerError::Json {
        path: path.to_owned(),
        what,
        source,
    })
}

/// Writes `bytes` to `path` atomically (temporary file, fsync, rename).
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |w| w.write_all(bytes))?;
    Ok(())
}

/// Makes `path` relative to `dir` when it lies inside it, absolute otherwise.
pub fn reference_path(path: &Path, dir: &Path) -> PathBuf {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    match std::fs::canonicalize(dir) {
        Ok(dir) => absolute
            .strip_prefix(&dir)
            .map(Path::to_owned)
            .unwrap_or(absolute),
        Err(_) => absolute,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_refuses_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig::new(
            CaptionDecoderConfig::new(40),
            PreprocessConfig::imagenet(64),
            EncoderRef {
                weights: "encoder.bpk".into(),
                hash: "abc".into(),
            },
        );
        config.save(dir.path()).unwrap();
        let loaded = ModelConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.decoder, config.decoder);
        assert_eq!(
            loaded.encoder_weights(dir.path()),
            dir.path().join("encoder.bpk")
        );

        let text = std::fs::read_to_string(dir.path().join(CONFIG_FILE)).unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            text.replace(MODEL_FORMAT, "storyteller-model/99"),
        )
        .unwrap();
        let err = ModelConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("storyteller-model/99"), "{err}");
    }

    #[test]
    fn a_version_1_config_loads_as_init_inject() {
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig::new(
            CaptionDecoderConfig::new(40).with_conditioning(storyteller_decoder::Conditioning::Par),
            PreprocessConfig::imagenet(64),
            EncoderRef {
                weights: "encoder.bpk".into(),
                hash: "abc".into(),
            },
        );
        let mut value = serde_json::to_value(&config).unwrap();
        value["format"] = MODEL_FORMAT_V1.into();
        value["decoder"]
            .as_object_mut()
            .unwrap()
            .remove("conditioning");
        std::fs::write(dir.path().join(CONFIG_FILE), value.to_string()).unwrap();
        let loaded = ModelConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.format, MODEL_FORMAT);
        assert_eq!(
            loaded.decoder.conditioning,
            storyteller_decoder::Conditioning::Init
        );
    }

    #[test]
    fn a_directory_without_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a model directory"), "{err}");
    }
}
