//! torchvision's ImageNet evaluation transform: `Resize(256)` (shorter side,
//! bilinear, antialias), `CenterCrop(224)`, `ToTensor`, `Normalize(mean, std)`.

use std::path::{Path, PathBuf};

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::decode::{DecodeLimits, decode_rgb};
use crate::error::{DataError, Result};
use crate::resize::resize_bilinear;

/// ImageNet channel means (torchvision).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (torchvision).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The preprocessing settings; stored (as JSON) in feature caches so features
/// made with other settings are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreprocessConfig {
    /// Length the shorter side is resized to (torchvision `Resize(256)`).
    pub resize: u32,
    /// Side of the centre crop (torchvision `CenterCrop(224)`).
    pub crop: u32,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: [f32; 3],
    /// Per-channel standard deviation divided by.
    pub std: [f32; 3],
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        Self::imagenet(224)
    }
}

impl PreprocessConfig {
    /// The ImageNet transform for a crop of `crop` pixels, resizing to
    /// `crop * 256 / 224` (256 for 224).
    pub fn imagenet(crop: u32) -> Self {
        Self {
            resize: (u64::from(crop) * 256 / 224) as u32,
            crop,
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        }
    }

    /// Checks the settings: sizes positive, crop not larger than the resize,
    /// standard deviations positive.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| Err(DataError::InvalidConfig { reason });
        if self.crop == 0 || self.resize == 0 {
            return bad(format!(
                "resize {} and crop {} must be positive",
                self.resize, self.crop
            ));
        }
        if self.crop > self.resize {
            return bad(format!(
                "crop {} is larger than resize {}",
                self.crop, self.resize
            ));
        }
        if self.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return bad(format!(
                "std {:?} must be positive, mean {:?} finite",
                self.std, self.mean
            ));
        }
        Ok(())
    }

    /// The canonical JSON of the settings.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a config always serialises")
    }

    /// Output values per image (`3 * crop * crop`).
    pub fn values_per_image(&self) -> usize {
        3 * self.crop as usize * self.crop as usize
    }
}

/// torchvision's `Resize(size)` output size for an int `size`: the shorter
/// side becomes `size`, the longer `int(size * long / short)`.
pub fn resized_size(width: u32, height: u32, size: u32) -> (u32, u32) {
    let (short, long) = if width <= height {
        (width, height)
    } else {
        (height, width)
    };
    let new_long = (f64::from(size) * f64::from(long) / f64::from(short)) as u32;
    if width <= height {
        (size, new_long)
    } else {
        (new_long, size)
    }
}

/// Python's `round` (half to even), as torchvision's `center_crop` uses.
fn round_half_even(x: f64) -> i64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r as i64 % 2 != 0 {
        (r - x.signum()) as i64
    } else {
        r as i64
    }
}

/// Preprocesses a decoded image: resize, centre crop, scale to `[0, 1]`,
/// normalise. Returns `3 * crop * crop` values in CHW order (channel, row,
/// column), ready for a `[3, crop, crop]` tensor.
///
/// # Panics
///
/// If the config is invalid (see [`PreprocessConfig::validate`]) or the image empty.
pub fn preprocess(image: &RgbImage, config: &PreprocessConfig) -> Vec<f32> {
    let (w, h) = resized_size(image.width(), image.height(), config.resize);
    let resized = resize_bilinear(image, w.max(1), h.max(1));
    let crop = config.crop as usize;
    let (rw, rh) = (resized.width() as usize, resized.height() as usize);
    // torchvision pads with zeros when the image is smaller than the crop.
    let top = round_half_even((rh as f64 - crop as f64) / 2.0);
    let left = round_half_even((rw as f64 - crop as f64) / 2.0);
    let mut out = vec![0f32; 3 * crop * crop];
    let raw = resized.as_raw();
    for c in 0..3 {
        let zero = (0.0 - config.mean[c]) / config.std[c];
        let plane = &mut out[c * crop * crop..][..crop * crop];
        for y in 0..crop {
            let sy = y as i64 + top;
            for x in 0..crop {
                let sx = x as i64 + left;
                plane[y * crop + x] = if sy < 0 || sx < 0 || sy >= rh as i64 || sx >= rw as i64 {
                    zero
                } else {
                    let v = f32::from(raw[(sy as usize * rw + sx as usize) * 3 + c]) / 255.0;
                    (v - config.mean[c]) / config.std[c]
                };
            }
        }
    }
    out
}

/// Decodes and preprocesses one file.
pub fn preprocess_file(
    path: impl AsRef<Path>,
    config: &PreprocessConfig,
    limits: &DecodeLimits,
) -> Result<Vec<f32>> {
    config.validate()?;
    let image = decode_rgb(path, limits)?;
    Ok(preprocess(&image, config))
}

/// The result of [`preprocess_batch`].
#[derive(Debug)]
pub struct Batch {
    /// `ok.len() * 3 * crop * crop` values: the good images, in input order, CHW each.
    pub data: Vec<f32>,
    /// Indices (into the input paths) of the images in `data`.
    pub ok: Vec<usize>,
    /// Files that could not be read, with the reason; the caller warns and goes on.
    pub failed: Vec<(PathBuf, DataError)>,
}

/// Decodes and preprocesses files in parallel (rayon). Bad files do not stop
/// the batch: they are returned in [`Batch::failed`].
pub fn preprocess_batch<P: AsRef<Path> + Sync>(
    paths: &[P],
    config: &PreprocessConfig,
    limits: &DecodeLimits,
) -> Result<Batch> {
    config.validate()?;
    let results: Vec<Result<Vec<f32>>> = paths
        .par_iter()
        .map(|p| preprocess_file(p, config, limits))
        .collect();
    let mut batch = Batch {
        data: Vec::with_capacity(paths.len() * config.values_per_image()),
        ok: Vec::with_capacity(paths.len()),
        failed: Vec::new(),
    };
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(values) => {
                batch.data.extend_from_slice(&values);
                batch.ok.push(i);
            }
            Err(e) => batch.failed.push((paths[i].as_ref().to_owned(), e)),
        }
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn resize_rule_matches_torchvision() {
        assert_eq!(resized_size(500, 375, 256), (341, 256));
        assert_eq!(resized_size(375, 500, 256), (256, 341));
        assert_eq!(resized_size(256, 256, 256), (256, 256));
        assert_eq!(resized_size(64, 48, 256), (341, 256));
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(58.5), 58);
        assert_eq!(round_half_even(59.5), 60);
        assert_eq!(round_half_even(16.0), 16);
        assert_eq!(round_half_even(-0.5), 0);
        assert_eq!(round_half_even(2.6), 3);
    }

    #[test]
    fn output_shape_and_normalisation() {
        let img = RgbImage::from_pixel(64, 48, Rgb([255, 0, 128]));
        let config = PreprocessConfig::imagenet(32);
        assert_eq!(config.resize, 36);
        let out = preprocess(&img, &config);
        assert_eq!(out.len(), 3 * 32 * 32);
        let expect = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (128.0 / 255.0 - 0.406) / 0.225,
        ];
        for c in 0..3 {
            assert!((out[c * 1024] - expect[c]).abs() < 1e-6);
            assert!((out[c * 1024 + 1023] - expect[c]).abs() < 1e-6);
        }
    }

    #[test]
    fn invalid_configs_are_errors() {
        for config in [
            PreprocessConfig {
                crop: 300,
                ..PreprocessConfig::default()
            },
            PreprocessConfig {
                crop: 0,
                ..PreprocessConfig::default()
            },
            PreprocessConfig {
                std: [0.0, 1.0, 1.0],
                ..PreprocessConfig::default()
            },
        ] {
            assert!(config.validate().is_err());
        }
    }

    #[test]
    fn batches_skip_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.png");
        RgbImage::from_pixel(40, 30, Rgb([1, 2, 3]))
            .save(&good)
            .unwrap();
        let bad = dir.path().join("bad.jpg");
        std::fs::write(&bad, b"not a jpeg").unwrap();
        let missing = dir.path().join("missing.jpg");
        let config = PreprocessConfig::imagenet(16);
        let batch = preprocess_batch(
            &[&good, &bad, &missing, &good],
            &config,
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(batch.ok, [0, 3]);
        assert_eq!(batch.data.len(), 2 * config.values_per_image());
        assert_eq!(batch.failed.len(), 2);
        assert!(batch.failed[0].1.to_string().contains("bad.jpg"));
    }
}
