//! Image decoding with the `image` crate: JPEG and PNG (8/16-bit, grey,
//! RGBA), EXIF orientation applied, decoded size limited.

use std::io::{BufRead, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, metadata::Orientation};

use crate::error::{DataError, Result};
use crate::jpeg_end::{jpeg_is_complete, looks_like_jpeg};

/// Limits on what a decoder may allocate, so a decompression bomb (a small
/// file that claims a huge image) fails cleanly instead of exhausting memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width accepted, in pixels.
    pub max_width: u32,
    /// Largest height accepted, in pixels.
    pub max_height: u32,
    /// Most pixels (width x height) accepted.
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 16,384 x 16,384 pixels, 128 megapixels and 512 MiB.
    fn default() -> Self {
        Self {
            max_width: 16_384,
            max_height: 16_384,
            max_pixels: 128 << 20,
            max_alloc: 512 << 20,
        }
    }
}

impl DecodeLimits {
    /// Refuses an image of `width` x `height` that breaks a limit.
    fn check(&self, path: &Path, width: u32, height: u32) -> Result<()> {
        let too_large = |limit: String| {
            Err(DataError::TooLarge {
                path: path.to_owned(),
                width,
                height,
                limit,
            })
        };
        if width > self.max_width || height > self.max_height {
            return too_large(format!("{}x{} pixels", self.max_width, self.max_height));
        }
        if u64::from(width) * u64::from(height) > self.max_pixels {
            return too_large(format!("{} pixels", self.max_pixels));
        }
        Ok(())
    }

    fn to_image_limits(self) -> image::Limits {
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }
}

/// Decodes an image file to 8-bit RGB: the format is guessed from the
/// content, EXIF orientation is applied, grey is replicated, alpha dropped
/// and 16-bit samples scaled to 8 bits. A truncated file is an error (also a
/// JPEG, whose decoder would fill the missing part with grey). Errors name
/// the file.
pub fn decode_rgb(path: impl AsRef<Path>, limits: &DecodeLimits) -> Result<RgbImage> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_rgb_bytes(&bytes, path, limits)
}

/// The width and height an image's header declares, read without decoding it (to weigh an
/// upload before paying for it). Errors name `path`.
pub fn image_dimensions(bytes: &[u8], path: &Path) -> Result<(u32, u32)> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .into_dimensions()
        .map_err(|source| DataError::Image {
            path: path.to_owned(),
            source,
        })
}

/// Like [`decode_rgb`], from bytes in memory; `path` only names them in errors.
pub fn decode_rgb_bytes(bytes: &[u8], path: &Path, limits: &DecodeLimits) -> Result<RgbImage> {
    // The declared size first: the decoders' own limit errors do not say what the size is.
    if let Ok((width, height)) = image_dimensions(bytes, path) {
        limits.check(path, width, height)?;
    }
    if looks_like_jpeg(bytes) && !jpeg_is_complete(bytes) {
        return Err(DataError::Image {
            path: path.to_owned(),
            source: image::ImageError::Decoding(image::error::DecodingError::new(
                image::error::ImageFormatHint::Exact(image::ImageFormat::Jpeg),
                "truncated: the JPEG ends before its end-of-image marker",
            )),
        });
    }
    decode_reader(ImageReader::new(Cursor::new(bytes)), path, limits)
}

fn decode_reader<R: BufRead + Seek>(
    reader: ImageReader<R>,
    path: &Path,
    limits: &DecodeLimits,
) -> Result<RgbImage> {
    let image_error = |source| DataError::Image {
        path: path.to_owned(),
        source,
    };
    let mut reader = reader
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?;
    reader.limits(limits.to_image_limits());
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    // Not every decoder checks the allocation limit before allocating the
    // output buffer, so check the decoded size here.
    let (width, height) = decoder.dimensions();
    limits.check(path, width, height)?;
    if decoder.total_bytes() > limits.max_alloc {
        return Err(image_error(image::ImageError::Limits(
            image::error::LimitError::from_kind(image::error::LimitErrorKind::InsufficientMemory),
        )));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(image_error)?;
    image.apply_orientation(orientation);
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};

    fn encode(img: impl Into<DynamicImage>, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        img.into().write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    const LIMITS: DecodeLimits = DecodeLimits {
        max_width: 16_384,
        max_height: 16_384,
        max_pixels: 128 << 20,
        max_alloc: 512 << 20,
    };

    #[test]
    fn png_variants_decode_to_rgb() {
        let p = Path::new("x.png");
        let grey = ImageBuffer::from_pixel(3, 2, Luma([100u8]));
        let rgb = decode_rgb_bytes(&encode(grey, ImageFormat::Png), p, &LIMITS).unwrap();
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([100, 100, 100]));
        let grey_alpha = ImageBuffer::from_pixel(3, 2, LumaA([7u8, 0]));
        let rgb = decode_rgb_bytes(&encode(grey_alpha, ImageFormat::Png), p, &LIMITS).unwrap();
        assert_eq!(rgb.get_pixel(2, 1), &Rgb([7, 7, 7]));
        let rgba = ImageBuffer::from_pixel(3, 2, Rgba([10u8, 20, 30, 0]));
        let rgb = decode_rgb_bytes(&encode(rgba, ImageFormat::Png), p, &LIMITS).unwrap();
        assert_eq!(rgb.get_pixel(1, 1), &Rgb([10, 20, 30]));
        let deep = ImageBuffer::from_pixel(3, 2, Rgb([65535u16, 0, 257 * 128]));
        let rgb = decode_rgb_bytes(&encode(deep, ImageFormat::Png), p, &LIMITS).unwrap();
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([255, 0, 128]));
        assert_eq!(rgb.dimensions(), (3, 2));
    }

    #[test]
    fn jpeg_decodes() {
        let img = ImageBuffer::from_pixel(16, 8, Rgb([200u8, 50, 50]));
        let rgb =
            decode_rgb_bytes(&encode(img, ImageFormat::Jpeg), Path::new("a.jpg"), &LIMITS).unwrap();
        assert_eq!(rgb.dimensions(), (16, 8));
        let px = rgb.get_pixel(5, 5);
        assert!((i32::from(px[0]) - 200).abs() < 6, "{px:?}");
    }

    #[test]
    fn exif_orientation_is_applied() {
        // A 2x1 JPEG with an EXIF APP1 segment saying "rotate 90 degrees clockwise" (6).
        let img = ImageBuffer::from_pixel(16, 8, Rgb([0u8, 0, 0]));
        let jpeg = encode(img, ImageFormat::Jpeg);
        let mut exif =
            b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
        let mut with_exif = jpeg[..2].to_vec();
        with_exif.extend_from_slice(&[0xff, 0xe1]);
        with_exif.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
        with_exif.append(&mut exif);
        with_exif.extend_from_slice(&jpeg[2..]);
        let rgb = decode_rgb_bytes(&with_exif, Path::new("r.jpg"), &LIMITS).unwrap();
        assert_eq!(rgb.dimensions(), (8, 16));
    }

    #[test]
    fn corrupt_truncated_and_non_images_are_errors_naming_the_file() {
        let img = ImageBuffer::from_pixel(32, 32, Rgb([1u8, 2, 3]));
        let png = encode(img.clone(), ImageFormat::Png);
        let jpeg = encode(img, ImageFormat::Jpeg);
        for (bytes, name) in [
            (&b"hello, not an image"[..], "text.jpg"),
            (&png[..png.len() / 2], "half.png"),
            (&jpeg[..40], "half.jpg"),
            (&b""[..], "empty.png"),
        ] {
            let err = decode_rgb_bytes(bytes, Path::new(name), &LIMITS).unwrap_err();
            assert!(err.to_string().starts_with(name), "{err}");
        }
        // Cut inside the scan data: the JPEG decoder alone would fill the rest with grey.
        let big = ImageBuffer::from_fn(64, 64, |x, y| Rgb([x as u8 * 4, y as u8 * 4, 9]));
        let jpeg = encode(big, ImageFormat::Jpeg);
        let cut = &jpeg[..jpeg.len() * 3 / 4];
        let err = decode_rgb_bytes(cut, Path::new("cut.jpg"), &LIMITS).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = decode_rgb("/nonexistent/x.jpg", &LIMITS).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }));
    }

    #[test]
    fn decompression_bombs_fail_cleanly() {
        // A valid PNG claiming 100,000 x 100,000 pixels, with almost no data.
        let big = ImageBuffer::from_pixel(1, 1, Rgb([0u8, 0, 0]));
        let mut png = encode(big, ImageFormat::Png);
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        assert_eq!(
            image_dimensions(&png, Path::new("bomb.png")).unwrap(),
            (100_000, 100_000)
        );
        let err = decode_rgb_bytes(&png, Path::new("bomb.png"), &LIMITS).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
        assert!(err.to_string().starts_with("bomb.png"), "{err}");
        // Within the pixel limits but over the allocation limit.
        let tight = DecodeLimits {
            max_alloc: 1 << 20,
            ..LIMITS
        };
        let img = ImageBuffer::from_pixel(1024, 1024, Rgb([0u8, 0, 0]));
        let ok = encode(img, ImageFormat::Png);
        assert!(decode_rgb_bytes(&ok, Path::new("big.png"), &tight).is_err());
        // Within the side limits but over the pixel limit.
        let few_pixels = DecodeLimits {
            max_pixels: 1000 * 1000,
            ..LIMITS
        };
        let err = decode_rgb_bytes(&ok, Path::new("big.png"), &few_pixels).unwrap_err();
        assert!(
            err.to_string()
                .contains("1024x1024 pixels, over the limit of 1000000 pixels"),
            "{err}"
        );
    }
}
