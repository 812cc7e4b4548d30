//! Feature extraction: images in, a feature cache out.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use storyteller_data::{
    CacheKey, DecodeLimits, FeatureCacheWriter, OutputLock, PreprocessConfig, Shard, ShardRecord,
    Storage, preprocess_batch,
};
use storyteller_encoder::Encoder;

use crate::error::Result;

/// How [`extract_features`] runs.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Images per encoder forward.
    pub batch_size: usize,
    /// Write the cache to disk every this many batches (an interruption loses at most that).
    pub flush_every: usize,
    /// Decoding limits (decompression-bomb guard).
    pub limits: DecodeLimits,
    /// Encode only this shard of the images (see [`Shard`]), into a shard cache that
    /// [`merge_shards`](storyteller_data::merge_shards) combines with the others.
    pub shard: Option<Shard>,
    /// Spatial features: the last map pooled to a `g x g` grid ([`Encoder::forward_grid`]),
    /// `g * g` rows of 2048 per image, instead of the pooled vector.
    pub grid: Option<usize>,
    /// How the cache stores values (f16 halves the disk).
    pub storage: Storage,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            flush_every: 16,
            limits: DecodeLimits::default(),
            shard: None,
            grid: None,
            storage: Storage::F32,
        }
    }
}

/// What an extraction did.
#[derive(Debug, Clone, Default)]
pub struct ExtractSummary {
    /// Images encoded by this run.
    pub extracted: usize,
    /// Images already in the cache (an earlier, interrupted run) with the same content, not
    /// redone.
    pub already_cached: usize,
    /// Images whose cached row was made from other content (the file changed under its
    /// name, or the row predates content keys): encoded again. Counted in `extracted` too.
    pub recomputed: Vec<String>,
    /// Images that could not be read, with the reason; the run went on without them.
    pub failed: Vec<(PathBuf, String)>,
    /// Rows in the cache at the end.
    pub rows: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl ExtractSummary {
    /// Images encoded per second.
    pub fn images_per_second(&self) -> f64 {
        self.extracted as f64 / self.seconds.max(1e-9)
    }
}

/// Encodes `images` (id, file) into the feature cache `out`, resuming it when it exists;
/// `on_batch` sees the running summary and the number of images to do after each batch.
///
/// Batches are decoded and preprocessed in parallel (rayon) on a second thread while the
/// device encodes the previous batch, so memory holds at most two batches of pixels.
/// Unreadable images are skipped and listed in the summary. The cache records the encoder's
/// weight hash and `preprocess`; resuming a cache made otherwise is refused. With
/// `options.shard`, only that shard's images are encoded and the cache records the shard
/// and the whole image list; its [`ExtractSummary`] counts the shard's images only.
///
/// # Errors
/// The cache exists with another key, or cannot be written.
pub fn extract_features(
    encoder: &Encoder,
    images: &[(String, PathBuf)],
    preprocess: &PreprocessConfig,
    out: &Path,
    options: &ExtractOptions,
    device: &Device,
    on_batch: &mut dyn FnMut(&ExtractSummary, usize),
) -> Result<ExtractSummary> {
    let started = Instant::now();
    preprocess.validate()?;
    if options.grid == Some(0) {
        return Err(storyteller_data::DataError::InvalidConfig {
            reason: "the feature grid needs at least 1 x 1 regions".into(),
        }
        .into());
    }
    let key = CacheKey::new(encoder.weights_hash(), preprocess, encoder.d_feature())
        .with_regions(options.grid.map_or(1, |g| g * g))
        .with_storage(options.storage);
    // One writer per cache: a second extraction into it is refused while this one lives.
    let mut lock_name = out.file_name().unwrap_or_default().to_owned();
    lock_name.push(".lock");
    let _lock = OutputLock::acquire(out, &out.with_file_name(lock_name), "storyteller extract")?;
    // Under the lock no one else writes the cache: its temporaries are a killed run's.
    storyteller_data::remove_stale_temporaries(out)?;
    let (mut writer, mine): (_, Vec<&(String, PathBuf)>) = match options.shard {
        None => (
            FeatureCacheWriter::open_or_create(out, key)?,
            images.iter().collect(),
        ),
        Some(shard) => {
            let record = ShardRecord::new(shard, images.iter().map(|(id, _)| id.as_str()));
            (
                FeatureCacheWriter::open_or_create_shard(out, key, record)?,
                images.iter().filter(|(id, _)| shard.contains(id)).collect(),
            )
        }
    };
    // Rows are keyed by content: a cached row whose file changed is encoded again.
    let digests: Vec<Option<String>> = {
        use rayon::prelude::*;
        mine.par_iter()
            .map(|(_, path)| storyteller_data::file_image_digest(path).ok())
            .collect()
    };
    let mut recomputed = Vec::new();
    let mut todo: Vec<(&(String, PathBuf), String)> = Vec::new();
    for (&image, digest) in mine.iter().zip(digests) {
        let digest = digest.unwrap_or_default();
        if writer.contains(&image.0) {
            if !digest.is_empty() && writer.digest_of(&image.0) == Some(digest.as_str()) {
                continue;
            }
            writer.remove(&image.0);
            recomputed.push(image.0.clone());
        }
        todo.push((image, digest));
    }
    let mut summary = ExtractSummary {
        already_cached: mine.len() - todo.len(),
        recomputed,
        ..Default::default()
    };
    let crop = preprocess.crop as usize;
    let batches: Vec<&[(&(String, PathBuf), String)]> =
        todo.chunks(options.batch_size.max(1)).collect();

    let (sender, receiver) = sync_channel(1);
    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            for batch in &batches {
                let paths: Vec<&Path> = batch.iter().map(|(image, _)| image.1.as_path()).collect();
                let decoded = preprocess_batch(&paths, preprocess, &options.limits);
                if sender.send((*batch, decoded)).is_err() {
                    return;
                }
            }
        });
        for (index, (batch, decoded)) in receiver.iter().enumerate() {
            let decoded = decoded?;
            summary.failed.extend(
                decoded
                    .failed
                    .into_iter()
                    .map(|(path, err)| (path, err.to_string())),
            );
            if !decoded.ok.is_empty() {
                let n = decoded.ok.len();
                let pixels = Tensor::<4>::from_data(
                    TensorData::new(decoded.data, [n, 3, crop, crop]),
                    device,
                );
                let features = match options.grid {
                    None => encoder.forward(pixels).into_data(),
                    Some(grid) => encoder.forward_grid(pixels, grid).into_data(),
                };
                let features: Vec<f32> = features.try_to_vec::<f32>().expect("f32 features");
                let width = features.len() / n;
                for (row, &i) in decoded.ok.iter().enumerate() {
                    let ((id, _), digest) = &batch[i];
                    writer.push_image(
                        id.clone(),
                        digest.clone(),
                        &features[row * width..(row + 1) * width],
                    )?;
                }
                summary.extracted += n;
            }
            if (index + 1) % options.flush_every.max(1) == 0 {
                writer.flush()?;
            }
            on_batch(&summary, todo.len());
        }
        Ok(())
    })?;
    summary.rows = writer.finish()?;
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}
