//! Pictures of where an attention decoder looked: one overlay per word, and a contact sheet
//! of the whole caption.

use image::{Rgb, RgbImage, imageops};
use storyteller_data::PreprocessConfig;

use crate::captioner::AttentionMaps;
use crate::glyphs::{GLYPH_HEIGHT, draw_text, text_width};

/// Side of each square tile, in pixels.
pub const TILE: u32 = 224;
/// Height of the label strip under each tile of a contact sheet.
const LABEL: u32 = 22;
/// Tiles per row of a contact sheet.
const COLUMNS: u32 = 5;

/// The square the encoder saw: the image resized on its shorter side to
/// `preprocess.resize` and centre-cropped to `preprocess.crop`, shown at [`TILE`] pixels.
pub fn encoder_view(image: &RgbImage, preprocess: &PreprocessConfig) -> RgbImage {
    let (width, height) = image.dimensions();
    let shorter = width.min(height).max(1);
    let scale = f64::from(preprocess.resize) / f64::from(shorter);
    let side = ((f64::from(preprocess.crop) / scale).round() as u32).clamp(1, shorter);
    let left = (width - side) / 2;
    let top = (height - side) / 2;
    let square = imageops::crop_imm(image, left, top, side, side).to_image();
    imageops::resize(&square, TILE, TILE, imageops::FilterType::Triangle)
}

/// `view` with `weights` (`grid²` values, row-major) drawn over it: the map is upsampled
/// bilinearly (each weight at its cell's centre), scaled so its largest value is 1, and
/// the picture darkened where the decoder did not look and tinted red where it did.
///
/// # Panics
/// When `weights` does not hold `grid²` values.
pub fn overlay(view: &RgbImage, weights: &[f32], grid: usize) -> RgbImage {
    assert_eq!(weights.len(), grid * grid, "one weight per grid cell");
    let peak = weights.iter().copied().fold(f32::MIN_POSITIVE, f32::max);
    let (width, height) = view.dimensions();
    let sample = |x: f32, y: f32| {
        // Continuous cell coordinates, clamped to the cell centres at the borders.
        let gx = (x * grid as f32 - 0.5).clamp(0.0, (grid - 1) as f32);
        let gy = (y * grid as f32 - 0.5).clamp(0.0, (grid - 1) as f32);
        let (x0, y0) = (gx.floor() as usize, gy.floor() as usize);
        let (x1, y1) = ((x0 + 1).min(grid - 1), (y0 + 1).min(grid - 1));
        let (fx, fy) = (gx - x0 as f32, gy - y0 as f32);
        let at = |cx: usize, cy: usize| weights[cy * grid + cx];
        let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
        let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
        (top * (1.0 - fy) + bottom * fy) / peak
    };
    let mut out = view.clone();
    for (x, y, pixel) in out.enumerate_pixels_mut() {
        let a = sample(
            (x as f32 + 0.5) / width as f32,
            (y as f32 + 0.5) / height as f32,
        )
        .clamp(0.0, 1.0);
        let Rgb([r, g, b]) = *pixel;
        let shade = 0.25 + 0.75 * a;
        let tint = |c: u8, boost: f32| (f32::from(c) * shade + boost).clamp(0.0, 255.0) as u8;
        *pixel = Rgb([tint(r, 90.0 * a), tint(g, 0.0), tint(b, 0.0)]);
    }
    out
}

/// One overlay per word of `words`.
///
/// # Panics
/// When `maps` holds fewer rows than `words`.
pub fn word_overlays(view: &RgbImage, words: &[String], maps: &AttentionMaps) -> Vec<RgbImage> {
    assert!(maps.weights.len() >= words.len(), "one map per word");
    words
        .iter()
        .zip(&maps.weights)
        .map(|(_, weights)| overlay(view, weights, maps.grid))
        .collect()
}

/// The caption on one sheet: the encoder's view first, then each word's overlay, each
/// tile labelled, [`COLUMNS`] tiles per row.
pub fn contact_sheet(view: &RgbImage, words: &[String], maps: &AttentionMaps) -> RgbImage {
    let mut tiles: Vec<(RgbImage, String)> = vec![(view.clone(), "image".to_owned())];
    tiles.extend(
        word_overlays(view, words, maps)
            .into_iter()
            .zip(words.iter().cloned()),
    );
    let count = tiles.len() as u32;
    let columns = count.min(COLUMNS);
    let rows = count.div_ceil(columns);
    let mut sheet =
        RgbImage::from_pixel(columns * TILE, rows * (TILE + LABEL), Rgb([255, 255, 255]));
    for (i, (tile, label)) in tiles.iter().enumerate() {
        let (column, row) = (i as u32 % columns, i as u32 / columns);
        let (x, y) = (column * TILE, row * (TILE + LABEL));
        imageops::replace(&mut sheet, tile, i64::from(x), i64::from(y));
        let scale = 2;
        let text_x = x + TILE.saturating_sub(text_width(label, scale)) / 2;
        let text_y = y + TILE + (LABEL - GLYPH_HEIGHT * scale) / 2;
        let (sheet_width, sheet_height) = sheet.dimensions();
        draw_text(label, text_x as i32, text_y as i32, scale, |px, py| {
            if (0..sheet_width as i32).contains(&px) && (0..sheet_height as i32).contains(&py) {
                sheet.put_pixel(px as u32, py as u32, Rgb([20, 20, 20]));
            }
        });
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps() -> AttentionMaps {
        // Word 0 looks at the top-left cell, word 1 at the bottom-right.
        AttentionMaps {
            grid: 2,
            weights: vec![vec![0.97, 0.01, 0.01, 0.01], vec![0.01, 0.01, 0.01, 0.97]],
        }
    }

    #[test]
    fn overlays_are_bright_where_the_decoder_looked() {
        let view = RgbImage::from_pixel(TILE, TILE, Rgb([120, 120, 120]));
        let words = ["red".to_owned(), "circle".to_owned()];
        let overlays = word_overlays(&view, &words, &maps());
        let brightness = |img: &RgbImage, x: u32, y: u32| img.get_pixel(x, y).0[0];
        assert!(brightness(&overlays[0], 20, 20) > brightness(&overlays[0], 200, 200) + 60);
        assert!(brightness(&overlays[1], 200, 200) > brightness(&overlays[1], 20, 20) + 60);
        let sheet = contact_sheet(&view, &words, &maps());
        assert_eq!(sheet.dimensions(), (3 * TILE, TILE + LABEL));
        // Each label is drawn in dark pixels under its tile.
        for column in 0..3 {
            let dark = (column * TILE..(column + 1) * TILE)
                .flat_map(|x| (TILE..TILE + LABEL).map(move |y| (x, y)))
                .filter(|&(x, y)| sheet.get_pixel(x, y).0[0] < 50)
                .count();
            assert!(dark > 20, "tile {column} has no label");
        }
    }

    #[test]
    fn the_view_is_the_encoders_centre_crop() {
        // A wide image, left third red: the centre crop of a 256/224 preprocess drops it.
        let mut image = RgbImage::from_pixel(300, 100, Rgb([0, 0, 255]));
        for x in 0..100 {
            for y in 0..100 {
                image.put_pixel(x, y, Rgb([255, 0, 0]));
            }
        }
        let view = encoder_view(&image, &PreprocessConfig::imagenet(224));
        assert_eq!(view.dimensions(), (TILE, TILE));
        assert!(view.pixels().all(|p| p.0[0] < 10), "red left third in view");
    }
}
