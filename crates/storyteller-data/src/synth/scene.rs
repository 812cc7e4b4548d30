//! Scenes of the synthetic dataset: one to three coloured shapes on a plain
//! or textured background, and their rendering.

use image::{Rgb, RgbImage};

use crate::rng::Rng;

/// Shape kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShapeKind {
    /// A circle.
    Circle,
    /// An axis-aligned square.
    Square,
    /// An upward triangle.
    Triangle,
    /// A five-pointed star.
    Star,
    /// A square standing on a corner.
    Diamond,
}

impl ShapeKind {
    /// Every kind.
    pub const ALL: [ShapeKind; 5] = [
        ShapeKind::Circle,
        ShapeKind::Square,
        ShapeKind::Triangle,
        ShapeKind::Star,
        ShapeKind::Diamond,
    ];

    /// The word used in captions.
    pub fn word(self) -> &'static str {
        match self {
            ShapeKind::Circle => "circle",
            ShapeKind::Square => "square",
            ShapeKind::Triangle => "triangle",
            ShapeKind::Star => "star",
            ShapeKind::Diamond => "diamond",
        }
    }

    /// The kind a caption word names (`"circle"` → [`ShapeKind::Circle`]).
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.word() == word)
    }
}

/// The index into [`COLOURS`] of a colour word.
pub(crate) fn colour_index(word: &str) -> Option<usize> {
    COLOURS.iter().position(|(w, _)| *w == word)
}

/// The index into [`BACKGROUNDS`] of a tone word.
pub(crate) fn tone_index(word: &str) -> Option<usize> {
    BACKGROUNDS.iter().position(|(w, _)| *w == word)
}

/// Shape colours: (caption word, RGB).
pub const COLOURS: [(&str, [u8; 3]); 6] = [
    ("red", [220, 30, 30]),
    ("green", [30, 170, 50]),
    ("blue", [30, 70, 220]),
    ("yellow", [245, 215, 30]),
    ("purple", [140, 50, 180]),
    ("orange", [250, 135, 20]),
];

/// Background tones: (caption word, RGB).
pub const BACKGROUNDS: [(&str, [u8; 3]); 3] = [
    ("white", [235, 235, 230]),
    ("grey", [140, 140, 140]),
    ("black", [25, 25, 30]),
];

/// Background textures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Texture {
    /// One tone.
    Plain,
    /// Diagonal stripes.
    Striped,
    /// A checkerboard.
    Checkered,
}

impl Texture {
    /// The adjective used in captions (`None` for plain).
    pub fn word(self) -> Option<&'static str> {
        match self {
            Texture::Plain => None,
            Texture::Striped => Some("striped"),
            Texture::Checkered => Some("checkered"),
        }
    }

    /// Every texture.
    pub const ALL: [Texture; 3] = [Texture::Plain, Texture::Striped, Texture::Checkered];

    /// Its name: `"plain"`, `"striped"` or `"checkered"` (the word captions
    /// use, `"plain"` included).
    pub fn name(self) -> &'static str {
        self.word().unwrap_or("plain")
    }

    /// The texture a name stands for (the inverse of [`Texture::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Where a shape is: five cells of a 3x3 grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// Middle row, left column.
    Left,
    /// Middle row, right column.
    Right,
    /// Top row, middle column.
    Top,
    /// Bottom row, middle column.
    Bottom,
    /// The middle cell.
    Centre,
}

impl Position {
    /// Every position.
    pub const ALL: [Position; 5] = [
        Position::Left,
        Position::Right,
        Position::Top,
        Position::Bottom,
        Position::Centre,
    ];

    /// Grid cell (column, row).
    pub fn cell(self) -> (i32, i32) {
        match self {
            Position::Left => (0, 1),
            Position::Right => (2, 1),
            Position::Top => (1, 0),
            Position::Bottom => (1, 2),
            Position::Centre => (1, 1),
        }
    }

    /// Its one-word name: `"left"`, `"right"`, `"top"`, `"bottom"`, `"centre"`.
    pub fn word(self) -> &'static str {
        match self {
            Position::Left => "left",
            Position::Right => "right",
            Position::Top => "top",
            Position::Bottom => "bottom",
            Position::Centre => "centre",
        }
    }

    /// The position a one-word name stands for (the inverse of [`Position::word`]).
    pub fn from_word(word: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.word() == word)
    }

    /// The phrase used in captions ("on the left", "in the centre").
    pub fn phrase(self) -> &'static str {
        match self {
            Position::Left => "on the left",
            Position::Right => "on the right",
            Position::Top => "at the top",
            Position::Bottom => "at the bottom",
            Position::Centre => "in the centre",
        }
    }

    /// How `self` lies relative to `other` ("to the left of", "above", ...).
    pub fn relation_to(self, other: Position) -> &'static str {
        let (ax, ay) = self.cell();
        let (bx, by) = other.cell();
        if ax < bx {
            "to the left of"
        } else if ax > bx {
            "to the right of"
        } else if ay < by {
            "above"
        } else {
            "below"
        }
    }
}

/// One shape of a scene.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// Its kind.
    pub kind: ShapeKind,
    /// Index into [`COLOURS`].
    pub colour: usize,
    /// Large (true) or small.
    pub large: bool,
    /// Its grid cell.
    pub position: Position,
    /// Centre offset from the cell centre, in cell units.
    pub jitter: (f32, f32),
    /// Radius scale around the nominal size.
    pub scale: f32,
}

impl Shape {
    /// The colour word.
    pub fn colour_word(&self) -> &'static str {
        COLOURS[self.colour].0
    }

    /// The size word.
    pub fn size_word(&self) -> &'static str {
        if self.large { "large" } else { "small" }
    }

    /// Where it is drawn in a `size` x `size` image: centre `(x, y)` and
    /// nominal radius, in pixels (the numbers [`Scene::render`] uses).
    pub fn geometry(&self, size: u32) -> ((f32, f32), f32) {
        self.geometry_in_cell(size as f32 / 3.0)
    }

    fn geometry_in_cell(&self, cell: f32) -> ((f32, f32), f32) {
        let (col, row) = self.position.cell();
        let cx = (col as f32 + 0.5 + self.jitter.0) * cell;
        let cy = (row as f32 + 0.5 + self.jitter.1) * cell;
        (
            (cx, cy),
            cell * self.scale * Self::radius_factor(self.large),
        )
    }

    /// Nominal radius in cell units before `scale`.
    pub(crate) fn radius_factor(large: bool) -> f32 {
        if large { 0.46 } else { 0.26 }
    }
}

/// A scene: background and shapes (at distinct positions, distinct colours).
#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    /// Index into [`BACKGROUNDS`].
    pub background: usize,
    /// The background texture.
    pub texture: Texture,
    /// One to three shapes.
    pub shapes: Vec<Shape>,
}

impl Scene {
    /// Draws a random scene.
    pub(crate) fn sample(rng: &mut Rng) -> Self {
        let count = 1 + rng.below(3);
        let mut positions = Position::ALL;
        rng.shuffle(&mut positions);
        let mut colours: Vec<usize> = (0..COLOURS.len()).collect();
        rng.shuffle(&mut colours);
        let shapes = (0..count)
            .map(|i| Shape {
                kind: *rng.pick(&ShapeKind::ALL),
                colour: colours[i],
                large: rng.below(2) == 1,
                position: positions[i],
                jitter: (rng.range(-0.08, 0.08), rng.range(-0.08, 0.08)),
                scale: rng.range(0.92, 1.08),
            })
            .collect();
        let texture = *rng.pick(&[Texture::Plain, Texture::Striped, Texture::Checkered]);
        Scene {
            background: rng.below(BACKGROUNDS.len()),
            texture,
            shapes,
        }
    }

    /// Renders the scene at `size` x `size` pixels, 2x2 supersampled.
    pub fn render(&self, size: u32, noise_seed: u64) -> RgbImage {
        let s = size as f32;
        let cell = s / 3.0;
        let base = BACKGROUNDS[self.background].1;
        let alt = base.map(|c| if c > 128 { c - 45 } else { c + 45 });
        let period = (s / 8.0).max(2.0);
        let mut rng = Rng::new(noise_seed, 0x006e_6f69_7365);
        let mut img = RgbImage::new(size, size);
        for (x, y, px) in img.enumerate_pixels_mut() {
            let mut acc = [0f32; 3];
            for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let (fx, fy) = (x as f32 + sx, y as f32 + sy);
                let colour = self
                    .shapes
                    .iter()
                    .rev()
                    .find(|sh| contains(sh, cell, fx, fy))
                    .map(|sh| COLOURS[sh.colour].1)
                    .unwrap_or_else(|| {
                        let band = match self.texture {
                            Texture::Plain => 0,
                            Texture::Striped => ((fx + fy) / period) as i64,
                            Texture::Checkered => (fx / period) as i64 + (fy / period) as i64,
                        };
                        if band % 2 == 0 { base } else { alt }
                    });
                for (a, c) in acc.iter_mut().zip(colour) {
                    *a += f32::from(c) / 4.0;
                }
            }
            let noise = rng.range(-6.0, 6.0);
            *px = Rgb(acc.map(|a| (a + noise).round().clamp(0.0, 255.0) as u8));
        }
        img
    }
}

/// Whether the point `(x, y)` (pixels) lies inside the shape.
fn contains(shape: &Shape, cell: f32, x: f32, y: f32) -> bool {
    let ((cx, cy), r) = shape.geometry_in_cell(cell);
    let (dx, dy) = (x - cx, y - cy);
    match shape.kind {
        ShapeKind::Circle => dx * dx + dy * dy <= r * r,
        ShapeKind::Square => dx.abs() <= 0.8 * r && dy.abs() <= 0.8 * r,
        ShapeKind::Diamond => dx.abs() / (0.8 * r) + dy.abs() / r <= 1.0,
        ShapeKind::Triangle => {
            let pts = [(0.0, -r), (0.9 * r, 0.65 * r), (-0.9 * r, 0.65 * r)];
            in_polygon(&pts, dx, dy)
        }
        ShapeKind::Star => {
            let pts: Vec<(f32, f32)> = (0..10)
                .map(|i| {
                    let radius = if i % 2 == 0 { r } else { 0.42 * r };
                    let angle =
                        -std::f32::consts::FRAC_PI_2 + i as f32 * std::f32::consts::PI / 5.0;
                    (radius * angle.cos(), radius * angle.sin())
                })
                .collect();
            in_polygon(&pts, dx, dy)
        }
    }
}

/// Even-odd point-in-polygon test.
fn in_polygon(pts: &[(f32, f32)], x: f32, y: f32) -> bool {
    let mut inside = false;
    let mut j = pts.len() - 1;
    for i in 0..pts.len() {
        let (xi, yi) = pts[i];
        let (xj, yj) = pts[j];
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_drawn_where_the_scene_says() {
        let scene = Scene {
            background: 2,
            texture: Texture::Plain,
            shapes: vec![Shape {
                kind: ShapeKind::Star,
                colour: 0,
                large: true,
                position: Position::Left,
                jitter: (0.0, 0.0),
                scale: 1.0,
            }],
        };
        let img = scene.render(96, 1);
        let centre = img.get_pixel(16, 48);
        assert!(centre[0] > 190 && centre[1] < 60, "{centre:?}");
        let right = img.get_pixel(80, 48);
        assert!(right[0] < 60, "{right:?}");
    }

    #[test]
    fn relations_follow_the_grid() {
        assert_eq!(
            Position::Left.relation_to(Position::Right),
            "to the left of"
        );
        assert_eq!(Position::Top.relation_to(Position::Centre), "above");
        assert_eq!(Position::Bottom.relation_to(Position::Centre), "below");
        assert_eq!(
            Position::Right.relation_to(Position::Top),
            "to the right of"
        );
    }

    #[test]
    fn sampled_scenes_have_distinct_positions_and_colours() {
        let mut rng = Rng::new(3, 0);
        for _ in 0..200 {
            let s = Scene::sample(&mut rng);
            assert!((1..=3).contains(&s.shapes.len()));
            for (i, a) in s.shapes.iter().enumerate() {
                for b in &s.shapes[i + 1..] {
                    assert_ne!(a.position, b.position);
                    assert_ne!(a.colour, b.colour);
                }
            }
        }
    }
}
