//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong while loading, checking or saving encoder weights.
///
/// Every variant names the file it is about; tensor-level variants also name the
/// torchvision state-dict key and the shapes involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncoderError {
    /// The file holds tensors the network has no place for (besides the classifier `fc.*`
    /// and BatchNorm's `num_batches_tracked`): another network, such as a deeper ResNet.
    #[error(
        "{}: {count} tensors have no place in this network (first: {key:?}); is it another \
         network, such as ResNet-101 or -152 loaded into a ResNet-50? (`Encoder::load` builds \
         the depth the file describes)",
        path.display()
    )]
    UnexpectedTensors {
        /// The weights file.
        path: PathBuf,
        /// The first such key.
        key: String,
        /// How many there are.
        count: usize,
    },
    /// The file could not be opened or read.
    #[error("{}: cannot read weights", path.display())]
    Io {
        /// The weights file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is none of the supported formats (`.pth`/`.pt` zip or legacy pickle,
    /// `.safetensors`, Burn's `.bpk`).
    #[error(
        "{}: not a weights file this crate reads (expected a PyTorch .pth, a .safetensors or a Burn .bpk checkpoint)",
        path.display()
    )]
    UnknownFormat {
        /// The weights file.
        path: PathBuf,
    },
    /// The PyTorch checkpoint could not be parsed (truncated, corrupt, not a state dict).
    #[error("{}: cannot read the PyTorch checkpoint", path.display())]
    Pytorch {
        /// The weights file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: burn::store::PytorchStoreError,
    },
    /// The safetensors file could not be parsed (truncated, corrupt header).
    #[error("{}: cannot read the safetensors file", path.display())]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// The reader's error.
        #[source]
        source: burn::store::SafetensorsStoreError,
    },
    /// The Burn record (burnpack) could not be read or written.
    #[error("{}: cannot read or write the Burn record", path.display())]
    Burnpack {
        /// The weights file.
        path: PathBuf,
        /// The burnpack error.
        #[source]
        source: burn::store::burn_pack::Error,
    },
    /// A tensor the network needs is absent from the file.
    #[error(
        "{}: tensor `{key}` (shape {expected:?}) is missing; {count} of the network's tensors are missing in all",
        path.display()
    )]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The first missing torchvision key, in sorted order.
        key: String,
        /// The shape the network expects for it.
        expected: Vec<usize>,
        /// How many tensors are missing.
        count: usize,
    },
    /// A tensor has a different shape from the one the network expects.
    #[error(
        "{}: tensor `{key}` has shape {found:?}, the network expects {expected:?}",
        path.display()
    )]
    ShapeMismatch {
        /// The weights file.
        path: PathBuf,
        /// The torchvision key.
        key: String,
        /// The shape the network expects.
        expected: Vec<usize>,
        /// The shape found in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored with an element type other than `f32`.
    #[error("{}: tensor `{key}` is stored as {dtype}, only f32 is supported", path.display())]
    UnsupportedDtype {
        /// The weights file.
        path: PathBuf,
        /// The torchvision key.
        key: String,
        /// The stored element type.
        dtype: String,
    },
    /// Burn refused a tensor while applying it to the network.
    #[error("{}: cannot apply tensor `{key}`", path.display())]
    Apply {
        /// The weights file.
        path: PathBuf,
        /// The tensor's key.
        key: String,
        /// Burn's error.
        #[source]
        source: Box<burn::store::ApplyError>,
    },
    /// The operation needs an unfused network (BatchNorm still separate), but this one
    /// has been folded for inference.
    #[error("the network has been fused for inference; {operation} needs the unfused network")]
    Fused {
        /// What was attempted.
        operation: &'static str,
    },
}

/// `Result` with [`EncoderError`].
pub type Result<T, E = EncoderError> = std::result::Result<T, E>;
