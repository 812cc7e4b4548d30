//! Loading a model directory's decoder side, and publishing a new one consistently.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use burn::tensor::Device;
use sha2::{Digest, Sha256};
use storyteller_data::Vocab;
use storyteller_decoder::Decoder;

use super::{ModelConfig, ModelLayout, write_bytes};
use crate::error::{Result, StorytellerError, io_error};

/// A model directory's decoder side: config, vocabulary and decoder weights.
#[derive(Debug)]
pub struct ModelFiles {
    /// `config.json`.
    pub config: ModelConfig,
    /// `vocab.json`.
    pub vocab: Vocab,
    /// `decoder.bpk` on the requested device.
    pub decoder: Decoder,
}

impl ModelFiles {
    /// Loads config, vocabulary and decoder from `dir` onto `device`, after checking each
    /// file against the checksum `config.json` records for it.
    ///
    /// # Errors
    /// A missing, corrupt or mismatched file (one that was not published with this
    /// `config.json`), an invalid config, or a vocabulary whose size differs from the
    /// decoder's.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let layout = ModelLayout::new(dir);
        let config = ModelConfig::load(dir)?;
        verify(&layout, &config)?;
        let vocab = Vocab::load(layout.vocab())?;
        if vocab.len() != config.decoder.vocab_size() {
            return Err(StorytellerError::ModelDir {
                path: layout.vocab(),
                reason: format!(
                    "{} words, but the decoder in {} has vocab_size {}",
                    vocab.len(),
                    ModelLayout::CONFIG,
                    config.decoder.vocab_size()
                ),
            });
        }
        let decoder = Decoder::load(layout.decoder(), &config.decoder, device)?;
        Ok(Self {
            config,
            vocab,
            decoder,
        })
    }
}

/// Publishes a model: `vocab.json` and `decoder.bpk` first, then `config.json` recording
/// their checksums, each written atomically.
///
/// The config is the commit: until it is replaced, the directory's previous config no
/// longer matches the new files, and loading refuses the directory (naming the file)
/// instead of pairing old weights with a new vocabulary.
///
/// # Errors
/// A write failure.
pub fn publish(
    layout: &ModelLayout,
    config: &ModelConfig,
    vocab: &Vocab,
    decoder: &[u8],
) -> Result<()> {
    let vocab_json = vocab.to_json();
    let mut config = config.clone();
    config.files = BTreeMap::from([
        (ModelLayout::VOCAB.to_owned(), digest(vocab_json.as_bytes())),
        (ModelLayout::DECODER.to_owned(), digest(decoder)),
    ]);
    write_bytes(&layout.vocab(), vocab_json.as_bytes())?;
    write_bytes(&layout.decoder(), decoder)?;
    config.save(layout.root())
}

/// Checks every file `config.files` lists against its checksum.
///
/// # Errors
/// A file that is missing, unreadable or differs from what was published.
pub fn verify(layout: &ModelLayout, config: &ModelConfig) -> Result<()> {
    for (name, expected) in &config.files {
        if name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(StorytellerError::ModelDir {
                path: layout.config(),
                reason: format!("files lists {name:?}, which is not a file of the directory"),
            });
        }
        let path = layout.root().join(name);
        let found = file_digest(&path)?;
        if &found != expected {
            return Err(StorytellerError::ModelDir {
                path,
                reason: format!(
                    "checksum {found} differs from the {expected} that {} records: the file is corrupt or was not published with this config (an interrupted training run? train again, or --resume it)",
                    ModelLayout::CONFIG
                ),
            });
        }
    }
    Ok(())
}

/// `sha256:<hex>` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex_digest(Sha256::digest(bytes).as_slice())
}

/// `sha256:<hex>` of a file, streamed.
///
/// # Errors
/// The file cannot be read.
pub fn file_digest(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(io_error(path, "cannot read the file"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(io_error(path, "cannot read the file"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex_digest(hasher.finalize().as_slice()))
}

fn hex_digest(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model_dir::EncoderRef;
    use storyteller_data::PreprocessConfig;
    use storyteller_decoder::CaptionDecoderConfig;

    fn published() -> (tempfile::TempDir, ModelLayout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = ModelLayout::new(dir.path());
        let vocab = Vocab::from_captions(["a red square", "a blue circle"], 1);
        let config = ModelConfig::new(
            CaptionDecoderConfig::new(vocab.len()),
            PreprocessConfig::imagenet(64),
            EncoderRef {
                weights: "encoder.bpk".into(),
                hash: "sha256:abc".into(),
            },
        );
        publish(&layout, &config, &vocab, b"decoder weights").unwrap();
        (dir, layout)
    }

    #[test]
    fn published_files_verify() {
        let (_dir, layout) = published();
        let config = ModelConfig::load(layout.root()).unwrap();
        assert_eq!(config.files.len(), 2);
        verify(&layout, &config).unwrap();
        assert_eq!(
            config.files[ModelLayout::DECODER],
            file_digest(&layout.decoder()).unwrap()
        );
    }

    #[test]
    fn a_flipped_byte_is_refused_naming_the_file() {
        let (_dir, layout) = published();
        let mut bytes = std::fs::read(layout.decoder()).unwrap();
        bytes[3] ^= 0x10;
        std::fs::write(layout.decoder(), bytes).unwrap();
        let config = ModelConfig::load(layout.root()).unwrap();
        let err = verify(&layout, &config).unwrap_err().to_string();
        assert!(
            err.contains("decoder.bpk") && err.contains("checksum"),
            "{err}"
        );
    }

    #[test]
    fn a_vocabulary_from_another_run_is_refused() {
        let (_dir, layout) = published();
        Vocab::from_captions(["a green triangle"], 1)
            .save(layout.vocab())
            .unwrap();
        let config = ModelConfig::load(layout.root()).unwrap();
        let err = verify(&layout, &config).unwrap_err().to_string();
        assert!(err.contains("vocab.json"), "{err}");
    }

    #[test]
    fn a_listed_path_outside_the_directory_is_refused() {
        let (_dir, layout) = published();
        let mut config = ModelConfig::load(layout.root()).unwrap();
        config.files.insert("../secret".into(), "sha256:00".into());
        let err = verify(&layout, &config).unwrap_err().to_string();
        assert!(err.contains("not a file of the directory"), "{err}");
    }
}
