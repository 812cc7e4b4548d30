//! The feature cache: encoder outputs for a set of images in one
//! `.safetensors` file, memory-mapped for reading, written atomically,
//! resumable.
//!
//! Layout (read by other tools): tensor `features`, f32 or f16, `[N, width]` (2048 for
//! ResNet-50's pooled vector) or `[N, regions, width]` (spatial features: one row per
//! region of a grid, see [`CacheKey::with_regions`]); metadata `image_ids` (JSON list of the row ids, in row order: sorted by
//! id, so the same images give the same file whatever order they were encoded in),
//! `encoder` (a hash of the encoder weights), `preprocess` (JSON of the
//! [`PreprocessConfig`](crate::PreprocessConfig)), `image_digests` (JSON list, in row
//! order, of the SHA-256 of each image file's bytes as `sha256:<hex>`, so that a row is
//! keyed by its image's content and not only by its name; `""` where unknown; absent in
//! caches written before digests) and, in the cache of one shard of a sharded extraction
//! only, `shard` (JSON of a [`ShardRecord`]).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::shard::ShardRecord;

/// Metadata key of a shard cache's [`ShardRecord`].
const SHARD_KEY: &str = "shard";
/// Metadata key of the image digests.
const DIGESTS_KEY: &str = "image_digests";

/// The content key of an image file's bytes: `sha256:<hex>`.
pub fn image_digest(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(bytes);
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in hash {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// [`image_digest`] of a file.
///
/// # Errors
/// The file cannot be read.
pub fn file_image_digest(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    Ok(image_digest(&bytes))
}

/// Name of the features tensor.
pub const FEATURES: &str = "features";
/// Default feature width (ResNet-50's pooled output).
pub const DEFAULT_WIDTH: usize = 2048;

/// How a cache stores its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Storage {
    /// 32-bit floats (the default).
    #[default]
    F32,
    /// 16-bit floats: half the disk, about 3 significant digits (read back as f32).
    F16,
}

impl Storage {
    fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// What a cache must have been made with: the encoder hash, the preprocessing JSON, the
/// feature width, the regions per image and the storage. A cache with another key is
/// refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// Hash of the encoder weights.
    pub encoder: String,
    /// JSON of the preprocessing settings (compared as JSON values, so key
    /// order and spacing do not matter).
    pub preprocess: String,
    /// Feature width.
    pub width: usize,
    /// Feature vectors per image: 1 for a pooled vector, `g * g` for a `g x g` grid.
    pub regions: usize,
    /// How values are stored.
    pub storage: Storage,
}

impl CacheKey {
    /// A key; `preprocess` is any serialisable settings value.
    pub fn new(
        encoder: impl Into<String>,
        preprocess: &impl serde::Serialize,
        width: usize,
    ) -> Self {
        Self {
            encoder: encoder.into(),
            preprocess: serde_json::to_string(preprocess).expect("settings serialise to JSON"),
            width,
            regions: 1,
            storage: Storage::F32,
        }
    }

    /// The same key for `regions` feature vectors per image (spatial features).
    #[must_use]
    pub fn with_regions(mut self, regions: usize) -> Self {
        self.regions = regions;
        self
    }

    /// The same key with values stored as `storage`.
    #[must_use]
    pub fn with_storage(mut self, storage: Storage) -> Self {
        self.storage = storage;
        self
    }

    /// Values per image: `regions * width`.
    pub fn row_len(&self) -> usize {
        self.regions * self.width
    }

    /// Refuses a cache made with another key.
    fn check(&self, path: &Path, found: &CacheKey) -> Result<()> {
        let mismatch = |field, expected: String, found: String| DataError::CacheMismatch {
            path: path.to_owned(),
            field,
            expected,
            found,
        };
        if self.encoder != found.encoder {
            return Err(mismatch(
                "encoder",
                self.encoder.clone(),
                found.encoder.clone(),
            ));
        }
        let same_preprocess = match (
            serde_json::from_str::<serde_json::Value>(&self.preprocess),
            serde_json::from_str::<serde_json::Value>(&found.preprocess),
        ) {
            (Ok(a), Ok(b)) => a == b,
            _ => self.preprocess == found.preprocess,
        };
        if !same_preprocess {
            return Err(mismatch(
                "preprocess",
                self.preprocess.clone(),
                found.preprocess.clone(),
            ));
        }
        if self.width != found.width {
            return Err(mismatch(
                "width",
                self.width.to_string(),
                found.width.to_string(),
            ));
        }
        if self.regions != found.regions {
            return Err(mismatch(
                "regions",
                self.regions.to_string(),
                found.regions.to_string(),
            ));
        }
        if self.storage != found.storage {
            return Err(mismatch(
                "storage",
                format!("{:?}", self.storage),
                format!("{:?}", found.storage),
            ));
        }
        Ok(())
    }
}

/// A feature cache opened for reading (memory-mapped).
///
/// ```
/// use storyteller_data::{CacheKey, FeatureCache, FeatureCacheWriter, PreprocessConfig};
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("features.safetensors");
/// let key = CacheKey::new("sha256:1234", &PreprocessConfig::default(), 4);
/// let mut writer = FeatureCacheWriter::open_or_create(&path, key.clone())?;
/// writer.push("1.jpg", &[0.0, 1.0, 2.0, 3.0])?;
/// writer.finish()?;
/// let cache = FeatureCache::open_expecting(&path, &key)?;
/// assert_eq!(cache.get("1.jpg").unwrap(), [0.0, 1.0, 2.0, 3.0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FeatureCache {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    key: CacheKey,
    ids: Vec<String>,
    digests: Vec<String>,
    index: HashMap<String, usize>,
    shard: Option<ShardRecord>,
}

impl FeatureCache {
    /// Opens and validates a cache, whatever encoder made it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_owned();
        let file = File::open(&path).map_err(|e| DataError::io(&path, e))?;
        let mmap = map(&file).map_err(|e| DataError::io(&path, e))?;
        let invalid = |reason: String| DataError::InvalidCache {
            path: path.clone(),
            reason,
        };
        let tensors = SafeTensors::deserialize(&mmap).map_err(|source| DataError::Safetensors {
            path: path.clone(),
            source,
        })?;
        let (_, header) =
            SafeTensors::read_metadata(&mmap).map_err(|source| DataError::Safetensors {
                path: path.clone(),
                source,
            })?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |name: &str| {
            meta.get(name)
                .cloned()
                .ok_or_else(|| invalid(format!("metadata has no {name:?}")))
        };
        let ids: Vec<String> = serde_json::from_str(&field("image_ids")?)
            .map_err(|e| invalid(format!("image_ids is not a JSON list of strings ({e})")))?;
        let encoder = field("encoder")?;
        let preprocess = field("preprocess")?;
        let digests: Vec<String> = match meta.get(DIGESTS_KEY) {
            None => vec![String::new(); ids.len()],
            Some(json) => serde_json::from_str(json).map_err(|e| {
                invalid(format!("image_digests is not a JSON list of strings ({e})"))
            })?,
        };
        if digests.len() != ids.len() {
            return Err(invalid(format!(
                "{} image_digests for {} image_ids",
                digests.len(),
                ids.len()
            )));
        }
        let shard = meta
            .get(SHARD_KEY)
            .map(|json| serde_json::from_str::<ShardRecord>(json))
            .transpose()
            .map_err(|e| invalid(format!("shard is not a shard record ({e})")))?;
        let view = tensors
            .tensor(FEATURES)
            .map_err(|_| invalid(format!("no {FEATURES:?} tensor")))?;
        let storage = match view.dtype() {
            Dtype::F32 => Storage::F32,
            Dtype::F16 => Storage::F16,
            other => {
                return Err(invalid(format!("{FEATURES} is {other:?}, not F32 or F16")));
            }
        };
        let (rows, regions, width) = match *view.shape() {
            [rows, width] => (rows, 1, width),
            [rows, regions, width] => (rows, regions, width),
            ref other => {
                return Err(invalid(format!(
                    "{FEATURES} has shape {other:?}, not [N, width] or [N, regions, width]"
                )));
            }
        };
        let rows = &rows;
        if *rows != ids.len() {
            return Err(invalid(format!(
                "{rows} feature rows but {} image_ids",
                ids.len()
            )));
        }
        let mut index = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if index.insert(id.clone(), i).is_some() {
                return Err(invalid(format!("image id {id:?} appears twice")));
            }
        }
        let data_start = view.data().as_ptr() as usize - mmap.as_ptr() as usize;
        let key = CacheKey {
            encoder,
            preprocess,
            width,
            regions,
            storage,
        };
        drop(tensors);
        Ok(Self {
            path,
            mmap,
            data_start,
            key,
            ids,
            digests,
            index,
            shard,
        })
    }

    /// The content digest ([`image_digest`]) of the image row `row` was made from, when the
    /// cache recorded it.
    pub fn digest(&self, row: usize) -> Option<&str> {
        self.digests
            .get(row)
            .map(String::as_str)
            .filter(|d| !d.is_empty())
    }

    /// Checks that `images` (id and file) are the images the cache's rows were made from,
    /// comparing file contents with the recorded digests (in parallel). Images without a
    /// row are not checked here (the caller decides what missing features mean), nor are
    /// rows without a recorded digest (written by [`FeatureCacheWriter::push`]): their
    /// number is returned.
    ///
    /// # Errors
    /// [`DataError::StaleFeatures`] when a file differs from its row's image; an image that
    /// cannot be read.
    pub fn verify_images(&self, images: &[(&str, &Path)]) -> Result<usize> {
        use rayon::prelude::*;
        let unverified = images
            .iter()
            .filter(|(id, _)| {
                self.index_of(id)
                    .is_some_and(|row| self.digest(row).is_none())
            })
            .count();
        let checked: Vec<(usize, bool)> = images
            .par_iter()
            .filter_map(|(id, path)| {
                let row = self.index_of(id)?;
                self.digest(row).map(|recorded| (row, recorded, *path))
            })
            .map(|(row, recorded, path)| Ok((row, file_image_digest(path)? == recorded)))
            .collect::<Result<_>>()?;
        let stale: Vec<usize> = checked
            .iter()
            .filter(|(_, same)| !same)
            .map(|(row, _)| *row)
            .collect();
        match stale.first() {
            None => Ok(unverified),
            Some(&first) => Err(DataError::StaleFeatures {
                path: self.path.clone(),
                stale: stale.len(),
                checked: checked.len(),
                first: self.ids[first].clone(),
            }),
        }
    }

    /// Opens a cache and refuses it unless it was made with `key`.
    pub fn open_expecting(path: impl AsRef<Path>, key: &CacheKey) -> Result<Self> {
        let cache = Self::open(path)?;
        key.check(&cache.path, &cache.key)?;
        Ok(cache)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Encoder hash, preprocessing JSON and width.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// Feature width.
    pub fn width(&self) -> usize {
        self.key.width
    }

    /// Which shard of a sharded extraction this cache holds; `None` for a whole cache.
    pub fn shard(&self) -> Option<&ShardRecord> {
        self.shard.as_ref()
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the cache has no row.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row ids, in row order.
    pub fn image_ids(&self) -> &[String] {
        &self.ids
    }

    /// The row of an id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Feature vectors per image (1 for pooled features).
    pub fn regions(&self) -> usize {
        self.key.regions
    }

    /// Values per image: `regions * width`.
    pub fn row_len(&self) -> usize {
        self.key.row_len()
    }

    /// Copies row `row` (every region, region-major) into `out` (`out.len() == row_len()`),
    /// as f32 whatever the storage.
    ///
    /// # Panics
    ///
    /// If `row >= len()` or `out` has the wrong length.
    pub fn copy_row(&self, row: usize, out: &mut [f32]) {
        assert!(
            row < self.len(),
            "row {row} out of range (cache has {})",
            self.len()
        );
        assert_eq!(out.len(), self.row_len(), "output buffer length");
        let size = self.row_len() * self.key.storage.bytes();
        decode_values(
            &self.mmap[self.data_start + row * size..][..size],
            self.key.storage,
            out,
        );
    }

    /// Row `row` as a vector, or `None` when out of range.
    pub fn row(&self, row: usize) -> Option<Vec<f32>> {
        (row < self.len()).then(|| {
            let mut out = vec![0.0; self.row_len()];
            self.copy_row(row, &mut out);
            out
        })
    }

    /// The features of an image id.
    pub fn get(&self, id: &str) -> Option<Vec<f32>> {
        self.row(self.index_of(id)?)
    }

    /// Every row, `len() * row_len()` values in row order.
    pub fn to_vec(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.len() * self.row_len()];
        let size = out.len() * self.key.storage.bytes();
        decode_values(
            &self.mmap[self.data_start..][..size],
            self.key.storage,
            &mut out,
        );
        out
    }
}

/// Little-endian values of `storage` into f32.
fn decode_values(bytes: &[u8], storage: Storage, out: &mut [f32]) {
    match storage {
        Storage::F32 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Storage::F16 => {
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
            }
        }
    }
}

/// f32 values as little-endian bytes of `storage` (f16 rounds to nearest).
fn encode_values<'a>(values: impl Iterator<Item = &'a f32>, storage: Storage) -> Vec<u8> {
    match storage {
        Storage::F32 => values.flat_map(|v| v.to_le_bytes()).collect(),
        Storage::F16 => values
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
    }
}

#[allow(unsafe_code)]
fn map(file: &File) -> std::io::Result<Mmap> {
    // SAFETY: the map is read-only, and caches are replaced by rename (never
    // modified in place), so the mapped bytes do not change under us unless
    // another program truncates the file, which the memmap2 docs accept as
    // the caller's risk; every read is bounds-checked against the header.
    unsafe { Mmap::map(file) }
}

/// Writes a feature cache; reopening an existing one resumes it.
///
/// Rows are kept in memory and the whole file is rewritten atomically (temp
/// file, fsync, rename) on [`flush`](Self::flush) and
/// [`finish`](Self::finish), so an interrupted extraction keeps every row
/// flushed before the interruption and continues from there.
#[derive(Debug)]
pub struct FeatureCacheWriter {
    path: PathBuf,
    key: CacheKey,
    ids: Vec<String>,
    digests: Vec<String>,
    rows: HashMap<String, usize>,
    data: Vec<f32>,
    dirty: bool,
    shard: Option<ShardRecord>,
}

impl FeatureCacheWriter {
    /// Starts an empty cache at `path`, replacing any file there on the first flush.
    pub fn create(path: impl AsRef<Path>, key: CacheKey) -> Result<Self> {
        if key.width == 0 || key.regions == 0 {
            return Err(DataError::InvalidConfig {
                reason: "feature width and regions must be positive".into(),
            });
        }
        Ok(Self {
            path: path.as_ref().to_owned(),
            key,
            ids: Vec::new(),
            digests: Vec::new(),
            rows: HashMap::new(),
            data: Vec::new(),
            dirty: true,
            shard: None,
        })
    }

    /// Resumes the cache at `path` if there is one (refusing it if it was made
    /// with another key, or if it holds one shard of a sharded extraction), or starts an
    /// empty one.
    pub fn open_or_create(path: impl AsRef<Path>, key: CacheKey) -> Result<Self> {
        Self::resume(path.as_ref(), key, None)
    }

    /// [`open_or_create`](Self::open_or_create) for one shard of a sharded extraction: the
    /// cache records `record`; an existing cache must hold the same shard (of the same
    /// count). A changed image list (images added) is accepted and recorded: an image's
    /// shard depends on its id only.
    pub fn open_or_create_shard(
        path: impl AsRef<Path>,
        key: CacheKey,
        record: ShardRecord,
    ) -> Result<Self> {
        Self::resume(path.as_ref(), key, Some(record))
    }

    fn resume(path: &Path, key: CacheKey, shard: Option<ShardRecord>) -> Result<Self> {
        let mut writer = Self::create(path, key.clone())?;
        writer.shard = shard;
        if !path.exists() {
            return Ok(writer);
        }
        let cache = FeatureCache::open_expecting(path, &key)?;
        let found = cache.shard().map(|r| r.shard);
        let wanted = writer.shard.as_ref().map(|r| r.shard);
        if found != wanted {
            let describe = |s: Option<crate::Shard>| {
                s.map_or("a whole (unsharded) cache".to_owned(), |s| {
                    format!("shard {s}")
                })
            };
            return Err(DataError::InvalidCache {
                path: path.to_owned(),
                reason: format!(
                    "it holds {}, but {} was asked for; write to another file",
                    describe(found),
                    describe(wanted)
                ),
            });
        }
        writer.dirty = cache.shard() != writer.shard.as_ref();
        writer.data = cache.to_vec();
        writer.ids = cache.image_ids().to_vec();
        writer.digests = cache.digests.clone();
        writer.rows = writer
            .ids
            .iter()
            .enumerate()
            .map(|(row, id)| (id.clone(), row))
            .collect();
        Ok(writer)
    }

    /// Whether the cache already has an id (skip it when resuming).
    pub fn contains(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    /// The recorded content digest of an id's image, if the id has a row with one.
    pub fn digest_of(&self, id: &str) -> Option<&str> {
        self.rows
            .get(id)
            .map(|&row| self.digests[row].as_str())
            .filter(|d| !d.is_empty())
    }

    /// Removes an id's row (its image changed); returns whether there was one.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(row) = self.rows.remove(id) else {
            return false;
        };
        let width = self.key.row_len();
        let last = self.ids.len() - 1;
        if row != last {
            self.data
                .copy_within(last * width..(last + 1) * width, row * width);
            self.rows.insert(self.ids[last].clone(), row);
        }
        self.data.truncate(last * width);
        self.ids.swap_remove(row);
        self.digests.swap_remove(row);
        self.dirty = true;
        true
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no row yet.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends one row without a content digest. A wrong width or an id already present is
    /// an error.
    pub fn push(&mut self, id: impl Into<String>, features: &[f32]) -> Result<()> {
        self.push_image(id, String::new(), features)
    }

    /// Appends one row made from the image whose [`image_digest`] is `digest`. A wrong
    /// width or an id already present is an error.
    pub fn push_image(
        &mut self,
        id: impl Into<String>,
        digest: String,
        features: &[f32],
    ) -> Result<()> {
        let id = id.into();
        if features.len() != self.key.row_len() {
            return Err(DataError::InvalidConfig {
                reason: format!(
                    "features for {id:?} have {} values, the cache holds {} ({} regions of {})",
                    features.len(),
                    self.key.row_len(),
                    self.key.regions,
                    self.key.width
                ),
            });
        }
        if self.rows.contains_key(&id) {
            return Err(DataError::InvalidConfig {
                reason: format!(
                    "{}: image id {id:?} is already in the cache",
                    self.path.display()
                ),
            });
        }
        self.rows.insert(id.clone(), self.ids.len());
        self.ids.push(id);
        self.digests.push(digest);
        self.data.extend_from_slice(features);
        self.dirty = true;
        Ok(())
    }

    /// Writes every row so far to disk, atomically.
    pub fn flush(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        // Rows in id order: the file depends on the set of rows, not on the order in which
        // they were encoded (one run, a resumed one, or merged shards).
        let width = self.key.row_len();
        let mut order: Vec<usize> = (0..self.ids.len()).collect();
        order.sort_unstable_by(|&a, &b| self.ids[a].cmp(&self.ids[b]));
        let ids: Vec<&String> = order.iter().map(|&i| &self.ids[i]).collect();
        let bytes = encode_values(
            order
                .iter()
                .flat_map(|&i| &self.data[i * width..(i + 1) * width]),
            self.key.storage,
        );
        let safetensors_error = |source| DataError::Safetensors {
            path: self.path.clone(),
            source,
        };
        let dtype = match self.key.storage {
            Storage::F32 => Dtype::F32,
            Storage::F16 => Dtype::F16,
        };
        let shape = if self.key.regions == 1 {
            vec![self.ids.len(), self.key.width]
        } else {
            vec![self.ids.len(), self.key.regions, self.key.width]
        };
        let view = TensorView::new(dtype, shape, &bytes).map_err(safetensors_error)?;
        let mut metadata = HashMap::from([
            (
                "image_ids".to_owned(),
                serde_json::to_string(&ids).expect("strings serialise"),
            ),
            ("encoder".to_owned(), self.key.encoder.clone()),
            ("preprocess".to_owned(), self.key.preprocess.clone()),
        ]);
        if self.digests.iter().any(|d| !d.is_empty()) {
            let digests: Vec<&String> = order.iter().map(|&i| &self.digests[i]).collect();
            metadata.insert(
                DIGESTS_KEY.to_owned(),
                serde_json::to_string(&digests).expect("strings serialise"),
            );
        }
        if let Some(record) = &self.shard {
            metadata.insert(
                SHARD_KEY.to_owned(),
                serde_json::to_string(record).expect("a shard record serialises"),
            );
        }
        let file = safetensors::serialize([(FEATURES, view)], Some(metadata))
            .map_err(safetensors_error)?;
        write_atomic(&self.path, |w| w.write_all(&file))?;
        self.dirty = false;
        Ok(())
    }

    /// Flushes and closes; returns the number of rows.
    pub fn finish(mut self) -> Result<usize> {
        self.flush()?;
        Ok(self.ids.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PreprocessConfig;

    fn key(width: usize) -> CacheKey {
        CacheKey::new("sha256:abc", &PreprocessConfig::default(), width)
    }

    #[test]
    fn spatial_rows_in_f16_round_trip_and_their_key_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.safetensors");
        let spatial = key(3).with_regions(4).with_storage(Storage::F16);
        let mut w = FeatureCacheWriter::open_or_create(&path, spatial.clone()).unwrap();
        let row: Vec<f32> = (0..12).map(|i| i as f32 * 0.1 - 0.55).collect();
        w.push_image("a.jpg", image_digest(b"a"), &row).unwrap();
        assert!(
            w.push("b.jpg", &[1.0, 2.0, 3.0]).is_err(),
            "one region is not four"
        );
        w.finish().unwrap();
        let cache = FeatureCache::open_expecting(&path, &spatial).unwrap();
        assert_eq!(
            (cache.regions(), cache.width(), cache.row_len()),
            (4, 3, 12)
        );
        let back = cache.get("a.jpg").unwrap();
        for (a, b) in back.iter().zip(&row) {
            // f16 keeps 11 significant bits.
            assert!((a - b).abs() <= b.abs() / 1024.0 + 1e-7, "{a} vs {b}");
        }
        assert_eq!(cache.to_vec(), back);
        // Python sees [N, regions, width] in float16.
        let bytes = std::fs::read(&path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let view = file.tensor(FEATURES).unwrap();
        assert_eq!((view.dtype(), view.shape()), (Dtype::F16, &[1, 4, 3][..]));
        // Resuming with another grid or precision is refused, naming the field.
        for (other, field) in [
            (key(3).with_regions(9).with_storage(Storage::F16), "regions"),
            (key(3).with_regions(4), "storage"),
        ] {
            let err = FeatureCacheWriter::open_or_create(&path, other).unwrap_err();
            assert!(
                matches!(&err, DataError::CacheMismatch { field: found, .. } if *found == field),
                "{err}"
            );
        }
    }

    #[test]
    fn round_trip_and_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        let mut w = FeatureCacheWriter::open_or_create(&path, key(3)).unwrap();
        w.push("a.jpg", &[1.0, 2.0, 3.0]).unwrap();
        w.flush().unwrap();
        w.push("b.jpg", &[4.0, 5.0, 6.0]).unwrap();
        // Dropped without flushing: "b.jpg" is lost, "a.jpg" survives.
        drop(w);
        let mut w = FeatureCacheWriter::open_or_create(&path, key(3)).unwrap();
        assert!(w.contains("a.jpg") && !w.contains("b.jpg"));
        w.push("b.jpg", &[4.0, 5.0, -6.5]).unwrap();
        assert_eq!(w.finish().unwrap(), 2);
        let cache = FeatureCache::open_expecting(&path, &key(3)).unwrap();
        assert_eq!(cache.image_ids(), ["a.jpg", "b.jpg"]);
        assert_eq!(cache.get("b.jpg").unwrap(), [4.0, 5.0, -6.5]);
        assert_eq!(cache.to_vec(), [1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
        assert_eq!(cache.row(2), None);
        assert_eq!(fs_entries(dir.path()), 1);
    }

    fn fs_entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn empty_cache_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        FeatureCacheWriter::create(&path, key(DEFAULT_WIDTH))
            .unwrap()
            .finish()
            .unwrap();
        let cache = FeatureCache::open(&path).unwrap();
        assert!(cache.is_empty());
        assert_eq!(cache.width(), DEFAULT_WIDTH);
    }

    #[test]
    fn another_encoder_preprocessing_or_width_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        let mut w = FeatureCacheWriter::create(&path, key(2)).unwrap();
        w.push("a.jpg", &[1.0, 2.0]).unwrap();
        w.finish().unwrap();
        let other_encoder = CacheKey {
            encoder: "sha256:def".into(),
            ..key(2)
        };
        let other_pre = CacheKey::new("sha256:abc", &PreprocessConfig::imagenet(64), 2);
        for (k, field) in [
            (other_encoder, "encoder"),
            (other_pre, "preprocess"),
            (key(3), "width"),
        ] {
            let err = FeatureCache::open_expecting(&path, &k).unwrap_err();
            assert!(
                matches!(err, DataError::CacheMismatch { field: f, .. } if f == field),
                "{err}"
            );
            assert!(err.to_string().contains("f.safetensors"), "{err}");
            assert!(FeatureCacheWriter::open_or_create(&path, k).is_err());
        }
        // Same settings, other JSON spelling: accepted.
        let spaced = CacheKey {
            preprocess: serde_json::to_string_pretty(&PreprocessConfig::default()).unwrap(),
            ..key(2)
        };
        assert!(FeatureCache::open_expecting(&path, &spaced).is_ok());
    }

    #[test]
    fn bad_rows_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        let mut w = FeatureCacheWriter::create(&path, key(2)).unwrap();
        assert!(w.push("a", &[1.0]).is_err());
        w.push("a", &[1.0, 2.0]).unwrap();
        assert!(w.push("a", &[1.0, 2.0]).is_err());
        assert!(FeatureCacheWriter::create(&path, key(0)).is_err());

        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            FeatureCache::open(&path),
            Err(DataError::Safetensors { .. })
        ));
        assert!(matches!(
            FeatureCache::open(dir.path().join("none")),
            Err(DataError::Io { .. })
        ));

        // A valid safetensors file that is not a feature cache.
        let bytes = vec![0u8; 8];
        let view = TensorView::new(Dtype::F32, vec![2], &bytes).unwrap();
        let file = safetensors::serialize([("weights", view)], None).unwrap();
        std::fs::write(&path, file).unwrap();
        let err = FeatureCache::open(&path).unwrap_err();
        assert!(matches!(err, DataError::InvalidCache { .. }), "{err}");
    }
}
