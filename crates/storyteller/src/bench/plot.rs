//! `bench.png`: quality against decoding speed, one labelled point per decoder.
//!
//! CIDEr-D of greedy captions (vertical) against greedy captions per second at the largest
//! timed batch (horizontal, log scale), drawn through [`chart`](crate::chart) like
//! `training.png`.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::RGBColor;

use crate::bench::{BenchReport, SearchKind};
use crate::chart::{GRID, INK, Label, nice_axis, render_png, tick_decimals};
use crate::glyphs::{GLYPH_HEIGHT, text_width};

const WIDTH: u32 = 900;
const HEIGHT: u32 = 560;
/// Point colours, in row order (cycled).
const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];

/// Draws the chart of `report` and writes the PNG atomically. Rows without the speed at
/// the largest batch size are left out.
///
/// # Errors
/// A message when drawing or writing fails.
pub(crate) fn plot(path: &Path, report: &BenchReport) -> Result<(), String> {
    let batch = report
        .settings
        .measure
        .batch_sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(1);
    let points: Vec<(&str, f64, f64)> = report
        .rows
        .iter()
        .filter_map(|row| {
            let speed = row.speed(SearchKind::Greedy, batch)?.captions_per_second;
            let cider = row.greedy.scores.cider_d;
            (speed > 0.0 && speed.is_finite() && cider.is_finite()).then_some((
                row.name.as_str(),
                speed.log10(),
                cider,
            ))
        })
        .collect();
    render_png(path, (WIDTH, HEIGHT), |root, labels| {
        draw(root, &points, batch, labels).map_err(|e| e.to_string())
    })
}

/// The decades spanned by the log10 speeds, at least one.
fn decades(points: &[(&str, f64, f64)]) -> (i32, i32) {
    let low = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let high = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    if !low.is_finite() {
        return (0, 3);
    }
    let (low, high) = (low.floor() as i32, high.ceil() as i32);
    (low, high.max(low + 1))
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    points: &[(&str, f64, f64)],
    batch: usize,
    labels: &mut Vec<Label>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (low, high) = decades(points);
    let max_cider = points.iter().map(|p| p.2).fold(0.0, f64::max);
    let (y_step, y_max) = nice_axis(max_cider);
    let x_range = f64::from(low)..f64::from(high);
    let mut chart = ChartBuilder::on(root)
        .margin_top(50)
        .margin_bottom(50)
        .margin_left(70)
        .margin_right(30)
        .build_cartesian_2d(x_range.clone(), 0.0..y_max)?;
    let y_ticks: Vec<f64> = (0..)
        .map(|i| i as f64 * y_step)
        .take_while(|v| *v <= y_max + y_step * 1e-6)
        .collect();
    chart.draw_series(y_ticks.iter().map(|&y| {
        PathElement::new([(x_range.start, y), (x_range.end, y)], GRID.stroke_width(1))
    }))?;
    chart.draw_series((low..=high).map(|d| {
        PathElement::new(
            [(f64::from(d), 0.0), (f64::from(d), y_max)],
            GRID.stroke_width(1),
        )
    }))?;
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
    chart.draw_series(
        points
            .iter()
            .enumerate()
            .map(|(i, &(_, x, y))| Circle::new((x, y), 7, COLOURS[i % COLOURS.len()].filled())),
    )?;

    let decimals = tick_decimals(y_step);
    for &y in &y_ticks {
        let (px, py) = chart.backend_coord(&(x_range.start, y));
        let text = format!("{y:.decimals$}");
        labels.push(label(text.clone(), px - 6 - width(&text), py - 7, 2, INK));
    }
    for d in low..=high {
        let (px, py) = chart.backend_coord(&(f64::from(d), 0.0));
        let text = format!("{:.0}", 10f64.powi(d));
        labels.push(label(text.clone(), px - width(&text) / 2, py + 6, 2, INK));
    }
    let anchors: Vec<(i32, i32, i32)> = points
        .iter()
        .map(|&(name, x, y)| {
            let (px, py) = chart.backend_coord(&(x, y));
            (px, py, width(name))
        })
        .collect();
    for (i, ((name, _, _), (x, y))) in points.iter().zip(place_labels(&anchors)).enumerate() {
        labels.push(label(
            (*name).to_owned(),
            x,
            y,
            2,
            COLOURS[i % COLOURS.len()],
        ));
    }
    let (left, bottom) = chart.backend_coord(&(x_range.start, 0.0));
    let (right, top) = chart.backend_coord(&(x_range.end, y_max));
    let x_title = format!("greedy captions/s at batch {batch} (log scale)");
    labels.push(label(
        x_title.clone(),
        (left + right) / 2 - width(&x_title) / 2,
        bottom + 26,
        2,
        INK,
    ));
    let title = "CIDEr-D (greedy) against decoding speed";
    labels.push(Label {
        text: title.into(),
        x: (left + right) / 2 - text_width(title, 3) as i32 / 2,
        y: top - 40,
        scale: 3,
        colour: INK,
    });
    Ok(())
}

/// Top-left corners for names of the given widths beside their points `(x, y, width)`:
/// right of the point (left of it near the right edge), moved up or down a line at a time
/// until the name overlaps none placed before it.
fn place_labels(anchors: &[(i32, i32, i32)]) -> Vec<(i32, i32)> {
    let height = 2 * GLYPH_HEIGHT as i32;
    let line = height + 4;
    let mut placed: Vec<(i32, i32, i32)> = Vec::new();
    anchors
        .iter()
        .map(|&(px, py, text_width)| {
            let x = if px + 12 + text_width < WIDTH as i32 - 4 {
                px + 12
            } else {
                px - 12 - text_width
            };
            let free = |y: i32| {
                (0..=HEIGHT as i32 - height).contains(&y)
                    && placed.iter().all(|&(ox, oy, ow)| {
                        // A glyph's width apart sideways, touching vertically.
                        x + text_width + 12 <= ox
                            || ox + ow + 12 <= x
                            || y + height <= oy
                            || oy + height <= y
                    })
            };
            let centred = py - height / 2;
            let y = (0..12)
                .flat_map(|k| [centred - k * line, centred + k * line])
                .find(|&y| free(y))
                .unwrap_or(centred);
            placed.push((x, y, text_width));
            (x, y)
        })
        .collect()
}

fn label(text: String, x: i32, y: i32, scale: u32, colour: RGBColor) -> Label {
    Label {
        text,
        x,
        y,
        scale,
        colour,
    }
}

/// Width of `text` at scale 2.
fn width(text: &str) -> i32 {
    text_width(text, 2) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::sample_report;

    #[test]
    fn one_point_per_decoder_is_drawn_without_any_font_installed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.png");
        let report = sample_report();
        plot(&path, &report).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        let count =
            |RGBColor(r, g, b): RGBColor| image.pixels().filter(|p| p.0 == [r, g, b]).count();
        // Each row's point (a disc of radius 7) and name in its own colour.
        for colour in &COLOURS[..report.rows.len()] {
            assert!(count(*colour) > 150, "{colour:?}: {}", count(*colour));
        }
        assert!(count(INK) > 2000, "{}", count(INK));
        assert_eq!(decades(&[("a", 1.6, 0.0), ("b", 3.7, 0.0)]), (1, 4));
        assert_eq!(decades(&[("a", 2.0, 0.0)]), (2, 3));
        // Names of points on top of each other are stacked, not overprinted.
        let places = place_labels(&[(100, 300, 80), (104, 300, 80), (100, 302, 40)]);
        let mut rows: Vec<i32> = places.iter().map(|p| p.1).collect();
        rows.sort();
        rows.dedup();
        assert_eq!(rows.len(), 3, "{places:?}");
    }
}
