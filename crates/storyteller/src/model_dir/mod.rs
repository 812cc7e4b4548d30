//! The model directory: what `storyteller train` writes and `caption`, `evaluate` and
//! `serve` read. [`ModelLayout`] names its files.
//!
//! A directory only ever holds a consistent model: `vocab.json` and `decoder.bpk` are
//! published together with a `config.json` that records their SHA-256, and loading checks
//! them, so a corrupted file or an interrupted re-training is an error naming the file,
//! never old weights under a new vocabulary.
//!
//! The encoder is referenced, not copied (ResNet-50 is 100 MB): `config.json` records its
//! path (relative to the model directory when it lies inside it) and the hash of its
//! weights, and loading checks the hash.

mod config;
mod files;
mod layout;

use std::path::{Path, PathBuf};

use storyteller_data::write_atomic;

#[cfg(feature = "train")]
pub(crate) use config::upgrade_decoder_config;
pub use config::{
    DecoderKind, EncoderRef, MAX_BEAM_WIDTH, MAX_CAPTION_TOKENS, MAX_DECODER_PARAMETERS,
    MAX_IMAGE_SIDE, MODEL_FORMAT, MODEL_FORMAT_V1, MODEL_FORMAT_V2, ModelConfig,
};
pub use files::{ModelFiles, digest, file_digest, publish, verify};
pub use layout::ModelLayout;

use crate::error::{Result, StorytellerError, io_error};

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
