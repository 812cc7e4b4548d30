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

/// Where torchvision's `center_crop` starts along one axis: `round((size -
/// crop) / 2)`, or, when the image is smaller than the crop (it pads with
/// zeros, `(crop - size) // 2` before), minus that padding.
fn crop_offset(size: usize, crop: usize) -> i64 {
    if size >= crop {
        round_half_even((size - crop) as f64 / 2.0)
    } else {
        -(((crop - size) / 2) as i64)
    }
}

/// Preprocesses a decoded image: resize, centre crop, scale to `[0, 1]`,
/// normalise. Returns `3 * crop * crop` values in CHW order (channel, row,
/// column), ready for a `[3, crop, crop]` tensor.
///
/// Check the config with [`PreprocessConfig::validate`] first: a crop larger
/// than the resize is zero-padded (as torchvision does), a zero std gives
/// infinities.
///
/// # Panics
///
/// If the image is empty.
pub fn preprocess(image: &RgbImage, config: &PreprocessConfig) -> Vec<f32> {
    let mut out = vec![0f32; config.values_per_image()];
    preprocess_into(image, config, &mut out);
    out
}

/// Like [`preprocess`], writing into `out` (`3 * crop * crop` values), so a
/// batch can be filled in place.
///
/// # Panics
///
/// If `out` has the wrong length or the image is empty.
pub fn preprocess_into(image: &RgbImage, config: &PreprocessConfig, out: &mut [f32]) {
    assert_eq!(out.len(), config.values_per_image(), "output buffer length");
    let (w, h) = resized_size(image.width(), image.height(), config.resize);
    let resized = resize_bilinear(image, w.max(1), h.max(1));
    let crop = config.crop as usize;
    let (rw, rh) = (resized.width() as usize, resized.height() as usize);
    let top = crop_offset(rh, crop);
    let left = crop_offset(rw, crop);
    let raw = resized.as_raw();
    for c in 0..3 {
        // The same f32 arithmetic as ToTensor + Normalize, tabulated per byte value.
        let lut: Vec<f32> = (0..=255u8)
            .map(|v| (f32::from(v) / 255.0 - config.mean[c]) / config.std[c])
            .collect();
        let zero = (0.0 - config.mean[c]) / config.std[c];
        let plane = &mut out[c * crop * crop..][..crop * crop];
        for (y, plane_row) in plane.chunks_exact_mut(crop).enumerate() {
            let sy = y as i64 + top;
            if sy < 0 || sy >= rh as i64 {
                plane_row.fill(zero);
                continue;
            }
            let src_row = &raw[sy as usize * rw * 3..][..rw * 3];
            if left >= 0 && left as usize + crop <= rw {
                // The usual case: the crop lies inside the image.
                let src = &src_row[left as usize * 3..][..crop * 3];
                for (value, px) in plane_row.iter_mut().zip(src.chunks_exact(3)) {
                    *value = lut[usize::from(px[c])];
                }
            } else {
                for (x, value) in plane_row.iter_mut().enumerate() {
                    let sx = x as i64 + left;
                    *value = if sx < 0 || sx >= rw as i64 {
                        zero
                    } else {
                        lut[usize::from(src_row[sx as usize * 3 + c])]
                    };
                }
            }
        }
    }
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
    let per = config.values_per_image();
    let mut data = vec![0f32; paths.len() * per];
    let results: Vec<Result<()>> = data
        .par_chunks_mut(per)
        .zip(paths.par_iter())
        .map(|(out, path)| {
            let image = decode_rgb(path, limits)?;
            preprocess_into(&image, config, out);
            Ok(())
        })
        .collect();
    let mut batch = Batch {
        data: Vec::new(),
        ok: Vec::with_capacity(paths.len()),
        failed: Vec::new(),
    };
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(()) => {
                let slot = batch.ok.len();
                if slot != i {
                    data.copy_within(i * per..(i + 1) * per, slot * per);
                }
                batch.ok.push(i);
            }
            Err(e) => batch.failed.push((paths[i].as_ref().to_owned(), e)),
        }
    }
    data.truncate(batch.ok.len() * per);
    batch.data = data;
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
    fn crop_offsets_follow_torchvision() {
        assert_eq!(crop_offset(256, 224), 16);
        assert_eq!(crop_offset(341, 224), 58);
        assert_eq!(crop_offset(343, 224), 60);
        assert_eq!(crop_offset(8, 12), -2);
        assert_eq!(crop_offset(8, 11), -1);
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
    fn a_crop_larger_than_the_image_is_zero_padded_like_torchvision() {
        let img = RgbImage::from_pixel(8, 8, Rgb([255, 255, 255]));
        let config = PreprocessConfig {
            resize: 8,
            crop: 12,
            ..PreprocessConfig::default()
        };
        let out = preprocess(&img, &config);
        let zero = -0.485 / 0.229;
        let white = (1.0 - 0.485) / 0.229;
        assert!((out[0] - zero).abs() < 1e-6);
        assert!((out[2 * 12 + 2] - white).abs() < 1e-6);
        assert!((out[2 * 12 + 10] - zero).abs() < 1e-6);
        assert!((out[11 * 12 + 5] - zero).abs() < 1e-6);
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
            &[&bad, &good, &missing, &good],
            &config,
            &DecodeLimits::default(),
        )
        .unwrap();
        assert_eq!(batch.ok, [1, 3]);
        let single = preprocess_file(&good, &config, &DecodeLimits::default()).unwrap();
        assert_eq!(&batch.data[..single.len()], &single[..]);
        assert_eq!(&batch.data[single.len()..], &single[..]);
        assert_eq!(batch.data.len(), 2 * config.values_per_image());
        assert_eq!(batch.failed.len(), 2);
        assert!(batch.failed[0].1.to_string().contains("bad.jpg"));
        assert!(batch.failed[1].1.to_string().contains("missing.jpg"));
    }
}
