//! Pillow's antialiased bilinear resize, bit for bit.
//!
//! torchvision's `Resize(..., antialias=True)` on a PIL image calls
//! `PIL.Image.resize(size, BILINEAR)`, which is Pillow's `ImagingResample`
//! (`src/libImaging/Resample.c`): a separable triangle filter whose support
//! is scaled by the downscale factor, coefficients quantised to 22-bit fixed
//! point, a horizontal pass over the needed rows and then a vertical pass,
//! each rounding to `u8`. This is a port of that code path for RGB images.

use image::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Filter taps for one output axis: for each output index, the first input
/// index and its fixed-point weights.
struct Taps {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for the box `[0, in_size)`.
fn taps(in_size: usize, out_size: usize) -> Taps {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = 1.0 * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's (int) cast truncates toward zero; negative values clamp to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = bilinear((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter().enumerate().take(n) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let scaled = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (-0.5 + scaled) as i32
            } else {
                (0.5 + scaled) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Taps {
        ksize,
        bounds,
        weights,
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// Resizes an RGB image to `width` x `height` exactly as Pillow's
/// `Image.resize((width, height), Image.BILINEAR)` does (antialiased when
/// shrinking).
///
/// # Panics
///
/// If `width` or `height` is zero.
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    assert!(width > 0 && height > 0, "resize to an empty image");
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    let (out_w, out_h) = (width as usize, height as usize);
    if (in_w, in_h) == (out_w, out_h) {
        return src.clone();
    }
    let horizontal = taps(in_w, out_w);
    let vertical = taps(in_h, out_h);
    let half = 1i32 << (PRECISION_BITS - 1);

    // Horizontal pass over the rows the vertical pass needs.
    let first_row = vertical.bounds[0].0;
    let last_row = vertical.bounds[out_h - 1].0 + vertical.bounds[out_h - 1].1;
    let (tmp, tmp_w, row_offset) = if in_w != out_w {
        let rows = last_row - first_row;
        let mut tmp = vec![0u8; rows * out_w * 3];
        let data = src.as_raw();
        for y in 0..rows {
            let row = &data[(y + first_row) * in_w * 3..][..in_w * 3];
            let out_row = &mut tmp[y * out_w * 3..][..out_w * 3];
            for (xx, out) in out_row.chunks_exact_mut(3).enumerate() {
                let (xmin, n) = horizontal.bounds[xx];
                let k = &horizontal.weights[xx * horizontal.ksize..][..n];
                let mut ss = [half; 3];
                for (p, &w) in row[xmin * 3..(xmin + n) * 3].chunks_exact(3).zip(k) {
                    ss[0] += i32::from(p[0]) * w;
                    ss[1] += i32::from(p[1]) * w;
                    ss[2] += i32::from(p[2]) * w;
                }
                out[0] = clip8(ss[0]);
                out[1] = clip8(ss[1]);
                out[2] = clip8(ss[2]);
            }
        }
        (tmp, out_w, first_row)
    } else {
        (src.as_raw().clone(), in_w, 0)
    };
    if in_h == out_h {
        return RgbImage::from_raw(width, height, tmp)
            .expect("the horizontal pass keeps every row when the height is unchanged");
    }

    // Vertical pass, a whole output row at a time (contiguous, vectorisable);
    // integer sums do not depend on the order of the terms.
    let row_len = tmp_w * 3;
    let mut out = vec![0u8; row_len * out_h];
    let mut acc = vec![0i32; row_len];
    for (yy, out_row) in out.chunks_exact_mut(row_len).enumerate() {
        let (ymin, n) = vertical.bounds[yy];
        let ymin = ymin - row_offset;
        let k = &vertical.weights[yy * vertical.ksize..][..n];
        acc.fill(half);
        for (y, &w) in k.iter().enumerate() {
            let src = &tmp[(y + ymin) * row_len..][..row_len];
            for (a, &p) in acc.iter_mut().zip(src) {
                *a += i32::from(p) * w;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    RgbImage::from_raw(width, height, out).expect("buffer has width*height*3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn constant_images_stay_constant() {
        let img = RgbImage::from_pixel(37, 23, Rgb([10, 200, 255]));
        for (w, h) in [(5, 3), (37, 10), (12, 23), (80, 50)] {
            let out = resize_bilinear(&img, w, h);
            assert_eq!(out.dimensions(), (w, h));
            assert!(out.pixels().all(|p| *p == Rgb([10, 200, 255])));
        }
    }

    fn row(values: &[u8]) -> RgbImage {
        let mut img = RgbImage::new(values.len() as u32, 1);
        for (x, &v) in values.iter().enumerate() {
            img.put_pixel(x as u32, 0, Rgb([v, v, v]));
        }
        img
    }

    fn values(img: &RgbImage) -> Vec<u8> {
        img.pixels().map(|p| p[0]).collect()
    }

    #[test]
    fn matches_pillow_on_small_rows() {
        // Values from Pillow 13: Image.frombytes("L", ...).resize(..., Image.BILINEAR).
        assert_eq!(
            values(&resize_bilinear(&row(&[0, 100, 200, 50]), 2, 1)),
            [71, 121]
        );
        let five = row(&[0, 100, 200, 50, 7]);
        assert_eq!(values(&resize_bilinear(&five, 3, 1)), [43, 144, 25]);
        assert_eq!(
            values(&resize_bilinear(&five, 9, 1)),
            [0, 33, 89, 144, 200, 117, 45, 21, 7]
        );
    }
}
