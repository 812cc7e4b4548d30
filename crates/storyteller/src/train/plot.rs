//! `training.png`: loss and BLEU-4 curves of a run.

use std::path::Path;
use std::sync::OnceLock;

use plotters::prelude::*;

use crate::train::EpochMetrics;

/// Fonts tried for the labels, in order.
const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers a system font with plotters once; false when none is installed.
fn font_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONT_FILES.iter().any(|path| {
            let Ok(bytes) = std::fs::read(path) else {
                return false;
            };
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Draws training and validation loss (left) and validation BLEU-4 (right) per epoch.
///
/// # Errors
/// A message when no font is installed (Debian: `fonts-dejavu-core`) or drawing fails;
/// the caller warns and trains on.
pub fn plot(path: &Path, history: &[EpochMetrics]) -> Result<(), String> {
    if history.is_empty() {
        return Ok(());
    }
    if !font_available() {
        return Err(format!(
            "no font found for the plot (looked for {})",
            FONT_FILES.join(", ")
        ));
    }
    let root = BitMapBackend::new(path, (1000, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (left, right) = root.split_horizontally(500);
    let last = history.last().map_or(1, |m| m.epoch).max(2) as f64;
    let epochs = 1.0..last;

    let losses = history
        .iter()
        .flat_map(|m| [m.train_loss, m.val_loss])
        .filter(|v| v.is_finite());
    let max_loss = losses.fold(0.0_f64, f64::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .caption("loss", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(epochs.clone(), 0.0..max_loss)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| e.to_string())?;
    for (name, colour, value) in [
        (
            "train",
            BLUE,
            (|m: &EpochMetrics| m.train_loss) as fn(&EpochMetrics) -> f64,
        ),
        ("validation", RED, |m: &EpochMetrics| m.val_loss),
    ] {
        chart
            .draw_series(LineSeries::new(
                history.iter().map(|m| (m.epoch as f64, value(m))),
                colour.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;

    let max_bleu = history
        .iter()
        .map(|m| m.val_bleu4)
        .fold(0.0_f64, f64::max)
        .max(0.01)
        * 1.1;
    let mut chart = ChartBuilder::on(&right)
        .caption("validation BLEU-4 (greedy)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(epochs, 0.0..max_bleu)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            history.iter().map(|m| (m.epoch as f64, m.val_bleu4)),
            GREEN.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
