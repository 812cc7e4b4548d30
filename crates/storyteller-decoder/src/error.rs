//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong when building, loading or saving a decoder.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecoderError {
    /// A configuration value is out of range.
    #[error("invalid decoder config: {field} = {value} ({reason})")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What the field must be.
        reason: &'static str,
    },
    /// A weight file could not be read.
    #[error("cannot read decoder weights {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A weight file is not valid safetensors.
    #[error("{path} is not a safetensors file")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A tensor the decoder needs is not in the file.
    #[error("{path}: tensor {key:?} is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
    },
    /// A tensor has the wrong shape for this config.
    #[error("{path}: tensor {key:?} has shape {found:?}, the config needs {expected:?}")]
    ShapeMismatch {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is not stored as f32.
    #[error("{path}: tensor {key:?} has dtype {dtype}, expected F32")]
    DType {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
        /// The dtype found.
        dtype: String,
    },
    /// A PyTorch checkpoint could not be imported.
    #[error("cannot import {path}: {reason}")]
    Import {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Burn's own record format failed to save or load.
    #[error("decoder record {path}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: burn::store::RecordError,
    },
}
