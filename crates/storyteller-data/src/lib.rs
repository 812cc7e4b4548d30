//! Data for Neural Storyteller: Flickr30k readers, vocabulary, image
//! preprocessing, feature cache and a synthetic shapes dataset. No model code.
//!
//! ```
//! use storyteller_data::{Vocab, tokenize};
//!
//! let captions = ["A red circle.", "a red square", "A blue circle"];
//! let vocab = Vocab::from_captions(captions, 1);
//! assert_eq!(tokenize("A red circle."), ["a", "red", "circle"]);
//! assert_eq!(vocab.decode(&vocab.encode("a red circle")), "a red circle");
//! ```
//!
//! - [`Flickr30k`]: the three real annotation layouts (Karpathy JSON, token
//!   file, Kaggle CSV), auto-detected, with splits, counted [`Warning`]s for
//!   bad lines, and Burn `Dataset` views ([`Flickr30kSplit`], [`CaptionPairs`]).
//! - [`Vocab`]: specials, min count, deterministic ids, JSON files.
//! - [`decode_rgb`] and [`preprocess`]: torchvision's `Resize(256)` +
//!   `CenterCrop(224)` + `ToTensor` + `Normalize`, bit-identical to
//!   torchvision on lossless input; [`preprocess_batch`] in parallel.
//! - [`FeatureCache`] / [`FeatureCacheWriter`]: encoder features in one
//!   `.safetensors` file, memory-mapped, atomic, resumable.
//! - [`generate`]: the synthetic shapes dataset, written in any layout, with
//!   [`SceneTruth`] (`scenes.json`): what every image shows.
//! - [`grounding`]: whether captions are true of their images (colours,
//!   shapes, sizes, positions, counts, background), compared with chance;
//!   [`parse_claims`] reads a caption's claims.
//!
//! `docs/data.md` describes every format.

mod atomic;
mod decode;
mod error;
mod feature_cache;
mod feature_merge;
mod flickr30k;
mod grounding;
mod jpeg_end;
mod output_lock;
mod preprocess;
mod resize;
mod rng;
mod shard;
mod split;
mod synth;
mod vocab;
mod word_map;

pub use atomic::{remove_stale_temporaries, remove_stale_temporaries_under, write_atomic};
pub use decode::{DecodeLimits, decode_rgb, decode_rgb_bytes, image_dimensions};
pub use error::{DataError, Result};
pub use feature_cache::{
    CacheKey, DEFAULT_WIDTH, FEATURES, FeatureCache, FeatureCacheWriter, Storage,
    file_image_digest, image_digest,
};
pub use feature_merge::{MergeSummary, merge_shards};
pub use flickr30k::{
    Caption, CaptionItem, CaptionPairs, DatasetSummary, Detected, Flickr30k, Flickr30kSplit,
    IMAGE_DIRS, ImageItem, KAGGLE_FILE, KARPATHY_FILE, Layout, LoadOptions, SplitCounts,
    TOKEN_FILE, Warning, WarningKind, detect,
};
pub use grounding::{
    Attribute, AttributeScore, AttributeScores, CHANCE_PERMUTATIONS, CaptionClaims,
    GroundingReport, ObjectClaim, PositionClaim, Relation, RelationClaim, grounding,
    grounding_with_permutations, parse_claims,
};
pub use output_lock::OutputLock;
pub use preprocess::{
    Batch, IMAGENET_MEAN, IMAGENET_STD, PreprocessConfig, preprocess, preprocess_batch,
    preprocess_file, preprocess_into, resized_size,
};
pub use resize::resize_bilinear;
pub use shard::{Shard, ShardRecord, image_list_fingerprint};
pub use split::{Split, SplitConfig};
/// The project tokenizer (re-exported from `storyteller-metrics`): lowercase,
/// punctuation deleted, whitespace split.
pub use storyteller_metrics::tokenize;
pub use synth::{
    BACKGROUNDS, COLOURS, Position, SCENES_FILE, SCENES_FORMAT, SCENES_GENERATOR, Scene,
    SceneTruth, Shape, ShapeKind, SynthConfig, SynthImage, SynthReport, Texture, generate,
    image_dir_name, synth_image,
};
pub use vocab::{DEFAULT_MIN_COUNT, END, PAD, SPECIALS, START, UNK, Vocab};
pub use word_map::WordMap;
