//! `training.png`: the loss curves and the validation scores of a run.
//!
//! Drawn through [`chart`](crate::chart): plotters for the lines, the built-in bitmap font
//! for the labels, so no font needs to be installed.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::RGBColor;

use crate::chart::{GRID, INK, Label, nice_axis, render_png, tick_decimals};
use crate::glyphs::{GLYPH_HEIGHT, text_width};
use crate::train::EpochMetrics;

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 420;
const PANEL: u32 = WIDTH / 2;
const TEAL: RGBColor = RGBColor(0, 140, 120);
const ORANGE: RGBColor = RGBColor(220, 120, 0);

/// A named line of (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// One panel: a title and its lines.
struct Panel<'a> {
    title: &'a str,
    series: Vec<Series<'a>>,
}

/// Draws training and validation loss (left) and validation CIDEr-D and BLEU-4 (right) per
/// epoch, and writes the PNG atomically.
///
/// # Errors
/// A message when drawing or writing fails; the caller warns and trains on.
pub fn plot(path: &Path, history: &[EpochMetrics]) -> Result<(), String> {
    if history.is_empty() {
        return Ok(());
    }
    let points = |value: fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        history
            .iter()
            .map(|m| (m.epoch as f64, value(m)))
            .filter(|(_, v)| v.is_finite())
            .collect()
    };
    let panels = [
        Panel {
            title: "loss",
            series: vec![
                ("train", BLUE, points(|m| m.train_loss)),
                ("validation", RED, points(|m| m.val_loss)),
            ],
        },
        Panel {
            title: "validation (greedy)",
            series: vec![
                ("CIDEr-D", TEAL, points(|m| m.val_cider_d)),
                ("BLEU-4", ORANGE, points(|m| m.val_bleu4)),
            ],
        },
    ];
    let last_epoch = history.last().map_or(1, |m| m.epoch).max(2);

    render_png(path, (WIDTH, HEIGHT), |root, labels| {
        let (left, right) = root.split_horizontally(PANEL);
        for (area, panel) in [left, right].iter().zip(&panels) {
            draw_panel(area, panel, last_epoch, labels).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Draws one panel's grid, axes and lines, and queues its labels.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel<'_>,
    last_epoch: usize,
    labels: &mut Vec<Label>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let max = panel
        .series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let (y_step, y_max) = nice_axis(max);
    let x_range = 1.0..last_epoch as f64;
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(40)
        .margin_left(60)
        .margin_right(15)
        .build_cartesian_2d(x_range.clone(), 0.0..y_max)?;
    let x_step = (last_epoch as f64 / 10.0).ceil().max(1.0);

    let y_ticks: Vec<f64> = (0..)
        .map(|i| i as f64 * y_step)
        .take_while(|v| *v <= y_max + y_step * 1e-6)
        .collect();
    let x_ticks: Vec<f64> = (0..)
        .map(|i| 1.0 + i as f64 * x_step)
        .take_while(|v| *v <= last_epoch as f64)
        .collect();
    chart.draw_series(y_ticks.iter().map(|&y| {
        PathElement::new([(x_range.start, y), (x_range.end, y)], GRID.stroke_width(1))
    }))?;
    chart.draw_series(
        x_ticks
            .iter()
            .map(|&x| PathElement::new([(x, 0.0), (x, y_max)], GRID.stroke_width(1))),
    )?;
    chart.draw_series([
        PathElement::new(
            [(x_range.start, 0.0), (x_range.end, 0.0)],
            INK.stroke_width(1),
        ),
        PathElement::new(
            [(x_range.start, 0.0), (x_range.start, y_max)],
            INK.stroke_width(1),
        ),
    ])?;
    for (_, colour, points) in &panel.series {
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            colour.stroke_width(2),
        ))?;
    }

    let decimals = tick_decimals(y_step);
    for &y in &y_ticks {
        let (px, py) = chart.backend_coord(&(x_range.start, y));
        let text = format!("{y:.decimals$}");
        labels.push(Label {
            x: px - 6 - text_width(&text, 2) as i32,
            y: py - GLYPH_HEIGHT as i32,
            text,
            scale: 2,
            colour: INK,
        });
    }
    for &x in &x_ticks {
        let (px, py) = chart.backend_coord(&(x, 0.0));
        let text = format!("{x:.0}");
        labels.push(Label {
            x: px - text_width(&text, 2) as i32 / 2,
            y: py + 6,
            text,
            scale: 2,
            colour: INK,
        });
    }
    let (left, bottom) = chart.backend_coord(&(x_range.start, 0.0));
    let (right, top) = chart.backend_coord(&(x_range.end, y_max));
    labels.push(Label {
        text: "epoch".into(),
        x: (left + right) / 2 - text_width("epoch", 2) as i32 / 2,
        y: bottom + 22,
        scale: 2,
        colour: INK,
    });
    labels.push(Label {
        text: panel.title.into(),
        x: (left + right) / 2 - text_width(panel.title, 3) as i32 / 2,
        y: top - 32,
        scale: 3,
        colour: INK,
    });
    // The legend, top right inside the plot: a coloured bar and the name per series.
    let mut y = top + 8;
    for (name, colour, _) in &panel.series {
        let x = right - 12 - text_width(name, 2) as i32;
        labels.push(Label {
            text: "--".into(),
            x: x - 28,
            y,
            scale: 2,
            colour: *colour,
        });
        labels.push(Label {
            text: (*name).into(),
            x,
            y,
            scale: 2,
            colour: INK,
        });
        y += 2 * GLYPH_HEIGHT as i32 + 6;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: usize, train_loss: f64, val_loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            learning_rate: 1e-3,
            train_loss,
            val_loss,
            val_bleu4: 0.05 * epoch as f64,
            val_cider_d: 0.2 * epoch as f64,
            val_distinct: 0.5,
            seconds: 1.0,
            captions_per_second: 100.0,
        }
    }

    #[test]
    fn the_plot_is_drawn_without_any_font_installed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("training.png");
        let history: Vec<_> = (1..=12)
            .map(|e| metrics(e, 4.0 / e as f64, 4.2 / e as f64))
            .collect();
        plot(&path, &history).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        let count = |colour: RGBColor| {
            image
                .pixels()
                .filter(|p| p.0 == [colour.0, colour.1, colour.2])
                .count()
        };
        // Every series is drawn, and the labels are (ink pixels beyond the two axes).
        for colour in [BLUE, RED, TEAL, ORANGE] {
            assert!(count(colour) > 100, "{colour:?}: {}", count(colour));
        }
        assert!(count(INK) > 3000, "{}", count(INK));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }
}
