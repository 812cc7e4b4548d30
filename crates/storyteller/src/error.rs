//! The facade's error type: every lower crate's error, plus what only the facade knows.

use std::path::PathBuf;

/// What can go wrong when captioning, training or evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorytellerError {
    /// Dataset, vocabulary, image or feature-cache problem.
    #[error(transparent)]
    Data(#[from] storyteller_data::DataError),
    /// Encoder weights or network problem.
    #[error(transparent)]
    Encoder(#[from] storyteller_encoder::EncoderError),
    /// Decoder config or weights problem.
    #[error(transparent)]
    Decoder(#[from] storyteller_decoder::DecoderError),
    /// Search settings problem.
    #[error(transparent)]
    Search(#[from] storyteller_search::SearchError),
    /// Metric computation problem.
    #[error(transparent)]
    Metrics(#[from] storyteller_metrics::MetricsError),
    /// A file of a model directory or checkpoint could not be read or written.
    #[error("{path}: {action}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file (config, training state) is malformed.
    #[error("{path} is not a valid {what}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the file should be.
        what: &'static str,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
    /// A model directory lacks a file or was written by an incompatible version.
    #[error("{path}: {reason}")]
    ModelDir {
        /// The directory or file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The encoder weights differ from the ones the model (or its features) was trained with.
    #[error("encoder weights {path} have hash {found}, but {context} expects {expected}")]
    EncoderMismatch {
        /// The weights file.
        path: PathBuf,
        /// Their hash.
        found: String,
        /// The hash on record.
        expected: String,
        /// What recorded it.
        context: String,
    },
    /// `--resume` found a checkpoint made with different settings.
    #[error("cannot resume from {path}: {field} differs (checkpoint: {checkpoint}, now: {now})")]
    ResumeMismatch {
        /// The checkpoint state file.
        path: PathBuf,
        /// The setting that differs.
        field: String,
        /// Its value in the checkpoint.
        checkpoint: String,
        /// Its value now.
        now: String,
    },
    /// The training loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}, batch {batch}: loss {loss}; the last good checkpoint (epoch {last_good}) is kept in {checkpoint}"
    )]
    Diverged {
        /// Epoch (1-based) where it happened.
        epoch: usize,
        /// Batch within the epoch (1-based).
        batch: usize,
        /// The loss value.
        loss: f32,
        /// The last completed epoch with a checkpoint (0 = none).
        last_good: usize,
        /// Where the checkpoint is.
        checkpoint: PathBuf,
    },
    /// Training data is unusable (no captions, no features for the split, ...).
    #[error("{0}")]
    NoTrainingData(String),
    /// An image to caption could not be used.
    #[error("{path}: {reason}")]
    Image {
        /// The image.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Result with [`StorytellerError`].
pub type Result<T, E = StorytellerError> = std::result::Result<T, E>;

pub(crate) fn io_error(
    path: impl Into<PathBuf>,
    action: &'static str,
) -> impl FnOnce(std::io::Error) -> StorytellerError {
    let path = path.into();
    move |source| StorytellerError::Io {
        path,
        action,
        source,
    }
}
