//! The facade's error type: what only the facade knows, and the component crates' errors
//! behind one opaque variant (so that this crate's API does not change with theirs).

use std::error::Error;
use std::fmt;
use std::path::PathBuf;

/// Which component crate an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Component {
    /// `storyteller-data`: datasets, vocabulary, images, feature caches.
    Data,
    /// `storyteller-encoder`: encoder weights and network.
    Encoder,
    /// `storyteller-decoder`: decoder configuration and weights.
    Decoder,
    /// `storyteller-search`: search settings.
    Search,
    /// `storyteller-metrics`: metric inputs.
    Metrics,
}

/// An error of a component crate, kept whole.
#[derive(Debug)]
pub struct ComponentError {
    part: Component,
    inner: Box<dyn Error + Send + Sync + 'static>,
}

impl ComponentError {
    /// The component the error came from.
    pub fn part(&self) -> Component {
        self.part
    }

    /// The component's own error, when it is a `T` (e.g. `storyteller_data::DataError`).
    pub fn downcast_ref<T: Error + 'static>(&self) -> Option<&T> {
        self.inner.downcast_ref::<T>()
    }
}

impl fmt::Display for ComponentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Error for ComponentError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.inner.source()
    }
}

macro_rules! from_component {
    ($($part:ident: $error:ty),* $(,)?) => {$(
        impl From<$error> for StorytellerError {
            fn from(error: $error) -> Self {
                StorytellerError::Component(ComponentError {
                    part: Component::$part,
                    inner: Box::new(error),
                })
            }
        }
    )*};
}

from_component!(
    Data: storyteller_data::DataError,
    Encoder: storyteller_encoder::EncoderError,
    Decoder: storyteller_decoder::DecoderError,
    Search: storyteller_search::SearchError,
    Metrics: storyteller_metrics::MetricsError,
);

/// What can go wrong when captioning, training or evaluating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorytellerError {
    /// An error of one of the component crates (data, encoder, decoder, search, metrics).
    /// Its message is the component's; [`ComponentError::part`] says which component and
    /// [`ComponentError::downcast_ref`] reaches the component's own error type.
    #[error(transparent)]
    Component(ComponentError),
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
        "training diverged at epoch {epoch}, batch {batch}: loss {loss}; {}",
        kept(*.last_good, .checkpoint.as_deref())
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
        /// Where that checkpoint is (`None` when no epoch completed).
        checkpoint: Option<PathBuf>,
    },
    /// A model produced scores that are not finite numbers (its weights hold NaN or
    /// infinity).
    #[error("{0}")]
    NonFinite(String),
    /// Training data is unusable (no captions, no features for the split, ...).
    #[error("{0}")]
    NoTrainingData(String),
    /// A benchmark cannot run as asked: an unknown decoder name, features a decoder cannot
    /// read, or a finished row measured with other settings.
    #[error("{0}")]
    Bench(String),
    /// A training setting is out of range.
    #[error("training setting {field} = {value}: {reason}")]
    InvalidTrainSetting {
        /// The setting.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// What it must be.
        reason: &'static str,
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

/// What a diverged run leaves behind, for its message.
fn kept(last_good: usize, checkpoint: Option<&std::path::Path>) -> String {
    match checkpoint {
        Some(path) => format!(
            "the last good checkpoint (epoch {last_good}) is kept in {} (continue with --resume)",
            path.display()
        ),
        None => "no epoch had completed, so there is no checkpoint to resume".into(),
    }
}
