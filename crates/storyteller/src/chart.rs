//! What the crate's charts share (`training.png`, `bench.png`): plotters draws the lines and
//! points into a pixel buffer, then the labels are written over it with the built-in bitmap
//! font of [`glyphs`](crate::glyphs), so no font needs to be installed, and the PNG is
//! written atomically.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::RGBColor;

use crate::glyphs::draw_text;

/// Light grey of the grid lines.
pub(crate) const GRID: RGBColor = RGBColor(225, 225, 225);
/// The axes' and labels' ink.
pub(crate) const INK: RGBColor = RGBColor(40, 40, 40);

/// A label to write once plotters is done: text, top-left corner, scale, colour.
pub(crate) struct Label {
    pub text: String,
    pub x: i32,
    pub y: i32,
    pub scale: u32,
    pub colour: RGBColor,
}

/// The drawing area of a chart's pixel buffer.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Draws a white `width`×`height` chart with `draw` (which queues its labels), writes the
/// labels over it and saves the PNG atomically at `path`.
///
/// # Errors
/// A message when drawing or writing fails.
pub(crate) fn render_png(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area<'_>, &mut Vec<Label>) -> Result<(), String>,
) -> Result<(), String> {
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    let mut labels = Vec::new();
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        draw(&root, &mut labels)?;
        root.present().map_err(|e| e.to_string())?;
    }
    for label in &labels {
        let RGBColor(r, g, b) = label.colour;
        draw_text(&label.text, label.x, label.y, label.scale, |x, y| {
            if (0..width as i32).contains(&x) && (0..height as i32).contains(&y) {
                let at = ((y as u32 * width + x as u32) * 3) as usize;
                pixels[at..at + 3].copy_from_slice(&[r, g, b]);
            }
        });
    }
    let image = image::RgbImage::from_raw(width, height, pixels).ok_or("pixel buffer size")?;
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| e.to_string())?;
    storyteller_data::write_atomic(path, |w| w.write_all(&png)).map_err(|e| e.to_string())
}

/// A tick step of 1, 2 or 5 × 10^k giving about five ticks, and the axis top (a multiple of
/// it) above `max`.
pub(crate) fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max * 1.05
    } else {
        1.0
    };
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    (step, (max / step).ceil() * step)
}

/// Decimals that show a tick step of `step` exactly (0 for 1 and above).
pub(crate) fn tick_decimals(step: f64) -> usize {
    if step >= 1.0 {
        0
    } else {
        (-step.log10()).ceil() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_round() {
        assert_eq!(nice_axis(4.3), (1.0, 5.0));
        let (step, top) = nice_axis(0.37);
        assert!(
            (step - 0.1).abs() < 1e-12 && (top - 0.4).abs() < 1e-12,
            "{step} {top}"
        );
        assert_eq!(nice_axis(0.0), (0.2, 1.0));
        assert_eq!(nice_axis(f64::NAN), (0.2, 1.0));
        assert_eq!((tick_decimals(2.0), tick_decimals(0.2)), (0, 1));
        assert_eq!(tick_decimals(0.05), 2);
    }
}
