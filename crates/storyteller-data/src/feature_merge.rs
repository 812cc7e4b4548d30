//! Merging the feature caches of a sharded extraction into one cache.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use crate::feature_cache::{FeatureCache, FeatureCacheWriter};
use crate::shard::Shard;

/// What [`merge_shards`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSummary {
    /// The number of shards merged.
    pub shards: usize,
    /// Rows in the merged cache.
    pub rows: usize,
    /// Images in the list the shards were cut from (images that could not be decoded have
    /// no row).
    pub images: usize,
}

/// Merges the caches of every shard of one sharded extraction (`storyteller extract
/// --shard I/N`) into one cache at `out`, equal to the cache one unsharded extraction
/// writes (same rows in the same order, bit for bit).
///
/// Refused, naming the file or shard: an input that is not a shard cache; shards made with
/// other encoder weights, preprocessing or width than the first; shards of another image
/// list or shard count; a shard given twice or missing; an image in a shard it does not
/// belong to, or in two shards; `out` among the inputs.
///
/// # Errors
/// Any of the above, or an I/O failure.
pub fn merge_shards(inputs: &[PathBuf], out: &Path) -> Result<MergeSummary> {
    let refuse = |reason: String| DataError::ShardMerge { reason };
    if inputs.is_empty() {
        return Err(refuse("no shard given".into()));
    }
    if let Some(input) = inputs.iter().find(|input| same_file(input, out)) {
        return Err(refuse(format!(
            "the output {} is also an input ({})",
            out.display(),
            input.display()
        )));
    }
    let caches = inputs
        .iter()
        .map(FeatureCache::open)
        .collect::<Result<Vec<_>>>()?;
    let record = |cache: &FeatureCache| {
        cache.shard().cloned().ok_or_else(|| {
            refuse(format!(
                "{} is a whole cache, not a shard (made without --shard)",
                cache.path().display()
            ))
        })
    };
    let first = record(&caches[0])?;
    let key = caches[0].key().clone();
    let mut by_index: BTreeMap<usize, &Path> = BTreeMap::new();
    for cache in &caches {
        let this = record(cache)?;
        FeatureCache::open_expecting(cache.path(), &key)?;
        if this.shard.count() != first.shard.count() {
            return Err(refuse(format!(
                "{} is shard {} but {} is shard {}: the shard counts differ",
                cache.path().display(),
                this.shard,
                caches[0].path().display(),
                first.shard
            )));
        }
        if this.images_fingerprint != first.images_fingerprint {
            return Err(refuse(format!(
                "{} was cut from another image list than {} ({} images, {} vs {} images, {}): \
                 extract every shard from the same dataset",
                cache.path().display(),
                caches[0].path().display(),
                this.images,
                this.images_fingerprint,
                first.images,
                first.images_fingerprint
            )));
        }
        if let Some(other) = by_index.insert(this.shard.index(), cache.path()) {
            return Err(refuse(format!(
                "shard {} is given twice: {} and {}",
                this.shard,
                other.display(),
                cache.path().display()
            )));
        }
    }
    let count = first.shard.count();
    let missing: Vec<String> = (0..count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "missing shard{} {} (of {count}; given {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            by_index
                .keys()
                .map(|i| format!("{i}/{count}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }

    let mut writer = FeatureCacheWriter::create(out, key)?;
    let mut owner: HashMap<&str, &Path> = HashMap::new();
    let mut row = vec![0.0f32; caches[0].row_len()];
    for cache in &caches {
        let shard = record(cache)?.shard;
        for (i, id) in cache.image_ids().iter().enumerate() {
            if !shard.contains(id) {
                return Err(refuse(format!(
                    "{}: image {id:?} belongs to shard {}/{count}, not {shard}",
                    cache.path().display(),
                    Shard::of(id, count)
                )));
            }
            if let Some(other) = owner.insert(id, cache.path()) {
                return Err(refuse(format!(
                    "image {id:?} is in {} and in {}",
                    other.display(),
                    cache.path().display()
                )));
            }
            cache.copy_row(i, &mut row);
            let digest = cache.digest(i).unwrap_or_default().to_owned();
            writer.push_image(id.clone(), digest, &row)?;
        }
    }
    let rows = writer.finish()?;
    Ok(MergeSummary {
        shards: caches.len(),
        rows,
        images: first.images,
    })
}

/// Whether two paths name the same file (by canonical path when both exist).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CacheKey, PreprocessConfig, ShardRecord};

    const IDS: [&str; 12] = [
        "a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg", "g.jpg", "h.jpg", "i.jpg", "j.jpg",
        "k.jpg", "l.jpg",
    ];

    fn key() -> CacheKey {
        CacheKey::new("sha256:abc", &PreprocessConfig::default(), 2)
    }

    fn features(id: &str) -> [f32; 2] {
        let x = id.as_bytes()[0] as f32;
        [x, -x / 7.0]
    }

    /// Writes shard `i` of `n` of `ids` (in reverse order, as another run might).
    fn write_shard(dir: &Path, ids: &[&str], i: usize, n: usize, key: CacheKey) -> PathBuf {
        let path = dir.join(format!("shard-{i}-of-{n}.safetensors"));
        let shard = Shard::new(i, n).unwrap();
        let record = ShardRecord::new(shard, ids.iter().copied());
        let mut writer = FeatureCacheWriter::open_or_create_shard(&path, key, record).unwrap();
        for id in ids.iter().rev().filter(|id| shard.contains(id)) {
            writer.push(*id, &features(id)).unwrap();
        }
        writer.finish().unwrap();
        path
    }

    fn shards(dir: &Path, n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| write_shard(dir, &IDS, i, n, key()))
            .collect()
    }

    #[test]
    fn merged_shards_equal_the_whole_cache_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("whole.safetensors");
        let mut writer = FeatureCacheWriter::create(&whole, key()).unwrap();
        for id in IDS {
            writer.push(id, &features(id)).unwrap();
        }
        writer.finish().unwrap();
        let whole = FeatureCache::open(&whole).unwrap();

        for n in [1, 3, 5] {
            let inputs = shards(dir.path(), n);
            let out = dir.path().join(format!("merged-{n}.safetensors"));
            let summary = merge_shards(&inputs, &out).unwrap();
            assert_eq!(
                summary,
                MergeSummary {
                    shards: n,
                    rows: IDS.len(),
                    images: IDS.len()
                }
            );
            let merged = FeatureCache::open(&out).unwrap();
            assert_eq!(merged.shard(), None);
            assert_eq!(merged.key(), whole.key());
            assert_eq!(merged.image_ids(), whole.image_ids());
            let bits =
                |c: &FeatureCache| c.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&merged), bits(&whole));
        }
    }

    fn merge_error(inputs: &[PathBuf], dir: &Path) -> String {
        merge_shards(inputs, &dir.join("out.safetensors"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_missing_duplicated_or_foreign_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let four = shards(dir.path(), 4);

        let err = merge_error(
            &[four[0].clone(), four[1].clone(), four[3].clone()],
            dir.path(),
        );
        assert!(err.contains("missing shard 2/4"), "{err}");

        let err = merge_error(&[four[0].clone(), four[0].clone()], dir.path());
        assert!(err.contains("shard 0/4 is given twice"), "{err}");

        let three = shards(dir.path(), 3);
        let err = merge_error(&[four[0].clone(), three[1].clone()], dir.path());
        assert!(err.contains("shard counts differ"), "{err}");

        // Another image list (one image more), other encoder weights, other preprocessing.
        let other = dir.path().join("other");
        std::fs::create_dir_all(&other).unwrap();
        let mut more = IDS.to_vec();
        more.push("m.jpg");
        let foreign = write_shard(&other, &more, 1, 4, key());
        let err = merge_error(&[four[0].clone(), foreign], dir.path());
        assert!(err.contains("another image list"), "{err}");

        let weights = CacheKey {
            encoder: "sha256:def".into(),
            ..key()
        };
        let foreign = write_shard(&other, &IDS, 2, 4, weights);
        let err = merge_error(&[four[0].clone(), foreign], dir.path());
        assert!(err.contains("encoder"), "{err}");

        let preprocess = CacheKey::new("sha256:abc", &PreprocessConfig::imagenet(64), 2);
        let foreign = write_shard(&other, &IDS, 3, 4, preprocess);
        let err = merge_error(&[four[0].clone(), foreign], dir.path());
        assert!(err.contains("preprocess"), "{err}");

        // A whole cache, and the output among the inputs.
        let whole = dir.path().join("whole.safetensors");
        FeatureCacheWriter::create(&whole, key())
            .unwrap()
            .finish()
            .unwrap();
        let err = merge_error(&[four[0].clone(), whole], dir.path());
        assert!(err.contains("not a shard"), "{err}");
        let err = merge_shards(&four, &four[2]).unwrap_err().to_string();
        assert!(err.contains("also an input"), "{err}");
        assert!(merge_error(&[], dir.path()).contains("no shard"));
    }

    #[test]
    fn an_image_in_the_wrong_shard_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut inputs = shards(dir.path(), 2);
        // Shard 1 that also holds an image of shard 0.
        let stray = IDS.iter().find(|id| Shard::of(id, 2) == 0).unwrap();
        let path = dir.path().join("bad-1.safetensors");
        let record = ShardRecord::new(Shard::new(1, 2).unwrap(), IDS);
        let mut writer = FeatureCacheWriter::open_or_create_shard(&path, key(), record).unwrap();
        writer.push(*stray, &features(stray)).unwrap();
        writer.finish().unwrap();
        inputs[1] = path;
        let err = merge_error(&inputs, dir.path());
        assert!(err.contains("belongs to shard 0/2, not 1/2"), "{err}");
    }

    #[test]
    fn a_shard_cache_resumes_only_as_the_same_shard() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_shard(dir.path(), &IDS, 1, 3, key());
        let record = |i, n| ShardRecord::new(Shard::new(i, n).unwrap(), IDS);
        let resumed = FeatureCacheWriter::open_or_create_shard(&path, key(), record(1, 3)).unwrap();
        assert!(!resumed.is_empty());
        for (i, n) in [(0, 3), (1, 4)] {
            let err = FeatureCacheWriter::open_or_create_shard(&path, key(), record(i, n))
                .unwrap_err()
                .to_string();
            assert!(err.contains("holds shard 1/3"), "{err}");
        }
        let err = FeatureCacheWriter::open_or_create(&path, key())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("whole (unsharded) cache was asked for"),
            "{err}"
        );
    }
}
