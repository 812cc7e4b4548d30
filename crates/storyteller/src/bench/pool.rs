//! A pooled feature cache derived from a spatial one, so that Show and Tell trains on the
//! same encoder outputs as the decoders that read the grid.
//!
//! Each image's pooled vector is the mean of its `G²` region vectors. The regions are the
//! encoder's last feature map average-pooled to a `G x G` grid (as
//! `nn.AdaptiveAvgPool2d`); when `G` divides the map's side every region averages the same
//! number of positions, so the mean of the regions equals the global average pool that
//! `storyteller extract` without `--grid` stores (up to f32 rounding, and the f16 rounding of
//! an `--f16` cache). With uneven bins (a 7x7 map pooled to 2x2) the regions overlap and the
//! mean weighs the shared positions twice.

use std::path::Path;

use storyteller_data::{CacheKey, FeatureCache, FeatureCacheWriter};

use crate::error::Result;

/// The mean of a row's `regions` vectors of `width` values (region-major, as
/// [`FeatureCache::copy_row`] gives them).
///
/// # Panics
/// If `row.len() != regions * width` or `regions == 0`.
pub fn pool_regions(row: &[f32], regions: usize, width: usize) -> Vec<f32> {
    assert!(regions > 0, "a row has at least one region");
    assert_eq!(row.len(), regions * width, "row length");
    let mut sum = vec![0.0f64; width];
    for region in row.chunks_exact(width) {
        for (s, v) in sum.iter_mut().zip(region) {
            *s += f64::from(*v);
        }
    }
    sum.into_iter()
        .map(|s| (s / regions as f64) as f32)
        .collect()
}

/// The key of the pooled cache of `spatial`: the same encoder, preprocessing and width, one
/// region, f32.
fn pooled_key(spatial: &FeatureCache) -> CacheKey {
    CacheKey {
        regions: 1,
        storage: storyteller_data::Storage::F32,
        ..spatial.key().clone()
    }
}

/// Opens the pooled cache of `spatial` at `path`, writing it first (atomically) unless a
/// cache there already holds it: the same key, image ids and content digests.
///
/// # Errors
/// `spatial` is already pooled, or reading or writing a cache fails.
pub fn pooled_cache(spatial: &FeatureCache, path: &Path) -> Result<FeatureCache> {
    if spatial.regions() == 1 {
        return Err(crate::StorytellerError::Bench(format!(
            "{} already holds pooled features (one vector per image)",
            spatial.path().display()
        )));
    }
    let key = pooled_key(spatial);
    if let Ok(existing) = FeatureCache::open_expecting(path, &key)
        && existing.image_ids() == spatial.image_ids()
        && (0..spatial.len()).all(|row| existing.digest(row) == spatial.digest(row))
    {
        return Ok(existing);
    }
    let mut writer = FeatureCacheWriter::create(path, key)?;
    let (regions, width) = (spatial.regions(), spatial.width());
    let mut row = vec![0.0f32; spatial.row_len()];
    for (index, id) in spatial.image_ids().iter().enumerate() {
        spatial.copy_row(index, &mut row);
        let digest = spatial.digest(index).unwrap_or_default().to_owned();
        writer.push_image(id.clone(), digest, &pool_regions(&row, regions, width))?;
    }
    writer.finish()?;
    Ok(FeatureCache::open(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyteller_data::{PreprocessConfig, Storage, image_digest};

    #[test]
    fn a_pooled_row_is_the_mean_of_its_regions() {
        // Two regions of three values.
        let row = [1.0, 2.0, 3.0, 3.0, -2.0, 5.0];
        assert_eq!(pool_regions(&row, 2, 3), [2.0, 0.0, 4.0]);
        assert_eq!(pool_regions(&row, 1, 6), row);
    }

    #[test]
    fn the_pooled_cache_keeps_the_key_ids_and_digests_and_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let spatial_path = dir.path().join("grid.safetensors");
        let key = CacheKey::new("sha256:enc", &PreprocessConfig::imagenet(64), 3)
            .with_regions(4)
            .with_storage(Storage::F16);
        let mut writer = FeatureCacheWriter::create(&spatial_path, key).unwrap();
        let rows: Vec<Vec<f32>> = (0..3)
            .map(|i| (0..12).map(|j| (i * 12 + j) as f32 * 0.25).collect())
            .collect();
        writer
            .push_image("b.jpg", image_digest(b"b"), &rows[0])
            .unwrap();
        writer.push("a.jpg", &rows[1]).unwrap();
        writer
            .push_image("c.jpg", image_digest(b"c"), &rows[2])
            .unwrap();
        writer.finish().unwrap();
        let spatial = FeatureCache::open(&spatial_path).unwrap();

        let path = dir.path().join("pooled.safetensors");
        let pooled = pooled_cache(&spatial, &path).unwrap();
        assert_eq!((pooled.regions(), pooled.width()), (1, 3));
        assert_eq!(pooled.key().storage, Storage::F32);
        assert_eq!(pooled.key().encoder, spatial.key().encoder);
        assert_eq!(pooled.key().preprocess, spatial.key().preprocess);
        assert_eq!(pooled.image_ids(), spatial.image_ids());
        for (row, id) in spatial.image_ids().iter().enumerate() {
            assert_eq!(pooled.digest(row), spatial.digest(row), "{id}");
            let expected = pool_regions(&spatial.get(id).unwrap(), 4, 3);
            assert_eq!(pooled.get(id).unwrap(), expected, "{id}");
        }
        assert_eq!(pooled.digest(0), None, "a.jpg had no digest");

        // A second call reuses the file; a stale file is rewritten.
        let written = std::fs::metadata(&path).unwrap().modified().unwrap();
        pooled_cache(&spatial, &path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written
        );
        let mut stale = FeatureCacheWriter::create(&path, pooled_key(&spatial)).unwrap();
        stale.push("a.jpg", &[0.0; 3]).unwrap();
        stale.finish().unwrap();
        assert_eq!(pooled_cache(&spatial, &path).unwrap().len(), 3);

        let err = pooled_cache(&pooled, &dir.path().join("again.safetensors")).unwrap_err();
        assert!(err.to_string().contains("already holds pooled"), "{err}");
    }
}
