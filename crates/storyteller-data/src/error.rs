//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while reading datasets, images, vocabularies
/// and feature caches. Every variant names the file (and line, where there is
/// one) that caused it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}", path = path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A JSON file does not parse (or does not have the expected shape).
    #[error("{path}: invalid JSON: {source}", path = path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error (it carries the line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A file is empty where content is required.
    #[error("{path}: file is empty", path = path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A line of an annotation file is invalid (strict mode turns every
    /// skipped line into this error).
    #[error("{path}:{line}: {reason}", path = path.display())]
    InvalidLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A dataset directory holds no annotation file this crate knows.
    #[error(
        "{dir}: no Flickr30k annotations found (looked for dataset_flickr30k.json, \
         results_20130124.token and results.csv, also under flickr30k_images/)",
        dir = dir.display()
    )]
    NoAnnotations {
        /// The dataset directory.
        dir: PathBuf,
    },
    /// A dataset has no usable image after all bad entries were skipped.
    #[error("{path}: no usable image (every entry was skipped)", path = path.display())]
    NoImages {
        /// The annotation file.
        path: PathBuf,
    },
    /// A vocabulary file is not a storyteller vocabulary, or is corrupt.
    #[error("{path}: not a valid storyteller vocabulary: {reason}", path = path.display())]
    InvalidVocab {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tutorial word map (`{word: index}`) is malformed.
    #[error("{path}: not a usable word map: {reason}", path = path.display())]
    InvalidWordMap {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An image cannot be decoded (corrupt, truncated, unsupported or not an image).
    #[error("{path}: cannot decode image: {source}", path = path.display())]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An image is larger than the decoder may decode (checked from its header, before
    /// decoding).
    #[error(
        "{path}: the image is {width}x{height} pixels, over the limit of {limit}",
        path = path.display()
    )]
    TooLarge {
        /// The image file.
        path: PathBuf,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The limit it breaks, in words.
        limit: String,
    },
    /// Feature rows were made from other images than the files now under their ids.
    #[error(
        "{path}: {stale} of {checked} images differ from the images their features were made from \
         (first: {first:?}); run `storyteller extract` again to update them",
        path = path.display()
    )]
    StaleFeatures {
        /// The feature cache.
        path: PathBuf,
        /// How many rows are stale (changed files, or rows without a recorded digest).
        stale: usize,
        /// How many images were checked.
        checked: usize,
        /// The first stale image id.
        first: String,
    },
    /// A safetensors file cannot be read or written.
    #[error("{path}: safetensors: {source}", path = path.display())]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A file is a safetensors file but not a valid feature cache.
    #[error("{path}: not a valid feature cache: {reason}", path = path.display())]
    InvalidCache {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A feature cache was made with another encoder or preprocessing.
    #[error(
        "{path}: feature cache was made with {field} {found}, but {expected} was asked for; \
         extract the features again into a new file",
        path = path.display()
    )]
    CacheMismatch {
        /// The cache file.
        path: PathBuf,
        /// Which setting differs (`encoder`, `preprocess`, `width`, `regions` or `storage`).
        field: &'static str,
        /// The value the caller expects.
        expected: String,
        /// The value stored in the cache.
        found: String,
    },
    /// A scene truth file (`scenes.json`) has another format version, a
    /// missing field or an unknown word.
    #[error("{path}: not a valid storyteller scene file: {reason}", path = path.display())]
    InvalidScenes {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (the entry and field, where there is one).
        reason: String,
    },
    /// Feature shards that do not make one cache: a shard missing or given twice, shards of
    /// different image lists or shard counts, an image in two shards.
    #[error("cannot merge the feature shards: {reason}")]
    ShardMerge {
        /// What is wrong, naming the shard or file.
        reason: String,
    },
    /// Another process (or another writer in this one) is writing the same output.
    #[error(
        "{path} is being written by {holder}; wait for it to finish, or write elsewhere",
        path = path.display()
    )]
    Locked {
        /// The output (model directory or feature cache).
        path: PathBuf,
        /// Who holds the lock, as it recorded itself.
        holder: String,
    },
    /// A configuration value or argument is out of range.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
    },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_file_and_line() {
        let err = DataError::InvalidLine {
            path: PathBuf::from("results.csv"),
            line: 7,
            reason: "empty caption".into(),
        };
        assert_eq!(err.to_string(), "results.csv:7: empty caption");
        let err = DataError::io("x.jpg", io::Error::from(io::ErrorKind::NotFound));
        assert!(err.to_string().starts_with("x.jpg: "));
        assert!(std::error::Error::source(&err).is_some());
    }
}
