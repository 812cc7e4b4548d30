//! The scene truth file (`scenes.json`): what is in every image of a
//! synthetic dataset, in words, so that captions can be checked against the
//! images they describe (see [`crate::grounding()`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::scene::{
    BACKGROUNDS, COLOURS, Position, Scene, Shape, ShapeKind, Texture, colour_index, tone_index,
};
use crate::atomic::write_atomic;
use crate::error::{DataError, Result};

/// The file name of the scene truth file in a synthetic dataset directory.
pub const SCENES_FILE: &str = "scenes.json";

/// The `format` value of the current scene truth file version.
pub const SCENES_FORMAT: &str = "storyteller-scenes/1";

/// The `generator` value [`crate::generate`] writes.
pub const SCENES_GENERATOR: &str = "synthetic-shapes";

/// The scenes of a synthetic dataset, by image id (the image's file name, as
/// [`crate::ImageItem::id`]), in file order.
///
/// Read from and written to `scenes.json` (format `storyteller-scenes/1`,
/// described in `docs/data.md`). The file stores each shape's centre and
/// radius in pixels rounded to 0.01; reading converts them back to the
/// scene's jitter and scale, so a scene read back equals the generated one in
/// every word (kind, colour, size, position, background) and in geometry to
/// within the rounding.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneTruth {
    generator: String,
    seed: u64,
    image_size: u32,
    images: Vec<(String, Scene)>,
    index: HashMap<String, usize>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    format: String,
    generator: String,
    seed: u64,
    image_size: u32,
    images: Vec<ImageDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageDoc {
    image_id: String,
    background: BackgroundDoc,
    shapes: Vec<ShapeDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackgroundDoc {
    tone: String,
    texture: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapeDoc {
    kind: String,
    colour: String,
    size: String,
    position: String,
    centre: [f64; 2],
    radius: f64,
}

/// Rounds pixels to 0.01.
fn round2(x: f32) -> f64 {
    (f64::from(x) * 100.0).round() / 100.0
}

/// `"a", "b" and "c"` for error messages.
fn one_of<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words
        .into_iter()
        .map(|w| format!("\"{w}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SceneTruth {
    /// Scenes of images `size` x `size` pixels generated with `seed`, as
    /// `(image id, scene)` pairs; the generator is `synthetic-shapes`. An id
    /// given twice keeps its first scene for [`SceneTruth::get`].
    pub fn new(seed: u64, image_size: u32, images: Vec<(String, Scene)>) -> Self {
        let mut index = HashMap::with_capacity(images.len());
        for (i, (id, _)) in images.iter().enumerate() {
            index.entry(id.clone()).or_insert(i);
        }
        Self {
            generator: SCENES_GENERATOR.to_owned(),
            seed,
            image_size,
            images,
            index,
        }
    }

    /// Reads `DIR/scenes.json`; `Ok(None)` when the dataset has none (a real
    /// Flickr30k dataset, or one generated before the file existed).
    pub fn load(dataset_dir: impl AsRef<Path>) -> Result<Option<Self>> {
        let path = dataset_dir.as_ref().join(SCENES_FILE);
        match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DataError::io(&path, e)),
            Ok(_) => Self::read(&path).map(Some),
        }
    }

    /// Reads a scene truth file. A file that is not JSON, has another
    /// `format`, misses a field, or names an unknown colour, kind, size,
    /// position, tone or texture is an error naming the file and the entry.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(DataError::EmptyFile {
                path: path.to_owned(),
            });
        }
        // Check the format before the shape of the rest, so that a future
        // version is reported as such rather than as a missing field.
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|source| DataError::Json {
                path: path.to_owned(),
                source,
            })?;
        let invalid = |reason: String| DataError::InvalidScenes {
            path: path.to_owned(),
            reason,
        };
        match value.get("format").and_then(|f| f.as_str()) {
            Some(SCENES_FORMAT) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "format is \"{other}\", this version reads \"{SCENES_FORMAT}\""
                )));
            }
            None => return Err(invalid("no \"format\" string".into())),
        }
        let doc: FileDoc = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        Self::from_doc(doc).map_err(invalid)
    }

    fn from_doc(doc: FileDoc) -> std::result::Result<Self, String> {
        if doc.image_size == 0 {
            return Err("image_size is 0".into());
        }
        let cell = f64::from(doc.image_size) / 3.0;
        let mut images = Vec::with_capacity(doc.images.len());
        let mut seen = HashMap::new();
        for (i, im) in doc.images.into_iter().enumerate() {
            let at = |field: &str| format!("images[{i}] ({}): {field}", im.image_id);
            if let Some(first) = seen.insert(im.image_id.clone(), i) {
                return Err(format!(
                    "images[{i}]: image_id \"{}\" already used by images[{first}]",
                    im.image_id
                ));
            }
            let background = tone_index(&im.background.tone).ok_or_else(|| {
                format!(
                    "{}: unknown tone \"{}\" (expected {})",
                    at("background.tone"),
                    im.background.tone,
                    one_of(BACKGROUNDS.iter().map(|b| b.0))
                )
            })?;
            let texture = Texture::from_name(&im.background.texture).ok_or_else(|| {
                format!(
                    "{}: unknown texture \"{}\" (expected {})",
                    at("background.texture"),
                    im.background.texture,
                    one_of(Texture::ALL.map(Texture::name))
                )
            })?;
            let mut shapes = Vec::with_capacity(im.shapes.len());
            for (j, sh) in im.shapes.iter().enumerate() {
                let field = |name: &str| at(&format!("shapes[{j}].{name}"));
                let kind = ShapeKind::from_word(&sh.kind).ok_or_else(|| {
                    format!(
                        "{}: unknown kind \"{}\" (expected {})",
                        field("kind"),
                        sh.kind,
                        one_of(ShapeKind::ALL.map(ShapeKind::word))
                    )
                })?;
                let colour = colour_index(&sh.colour).ok_or_else(|| {
                    format!(
                        "{}: unknown colour \"{}\" (expected {})",
                        field("colour"),
                        sh.colour,
                        one_of(COLOURS.iter().map(|c| c.0))
                    )
                })?;
                let large = match sh.size.as_str() {
                    "large" => true,
                    "small" => false,
                    other => {
                        return Err(format!(
                            "{}: unknown size \"{other}\" (expected \"large\", \"small\")",
                            field("size")
                        ));
                    }
                };
                let position = Position::from_word(&sh.position).ok_or_else(|| {
                    format!(
                        "{}: unknown position \"{}\" (expected {})",
                        field("position"),
                        sh.position,
                        one_of(Position::ALL.map(Position::word))
                    )
                })?;
                let numbers = [sh.centre[0], sh.centre[1], sh.radius];
                if numbers.iter().any(|x| !x.is_finite()) || sh.radius <= 0.0 {
                    return Err(format!(
                        "{}: centre and radius must be finite and the radius positive",
                        field("centre")
                    ));
                }
                let (col, row) = position.cell();
                let jitter = (
                    (sh.centre[0] / cell - f64::from(col) - 0.5) as f32,
                    (sh.centre[1] / cell - f64::from(row) - 0.5) as f32,
                );
                let scale = (sh.radius / (cell * f64::from(Shape::radius_factor(large)))) as f32;
                shapes.push(Shape {
                    kind,
                    colour,
                    large,
                    position,
                    jitter,
                    scale,
                });
            }
            images.push((
                im.image_id,
                Scene {
                    background,
                    texture,
                    shapes,
                },
            ));
        }
        let mut truth = Self::new(doc.seed, doc.image_size, images);
        truth.generator = doc.generator;
        Ok(truth)
    }

    fn to_doc(&self) -> FileDoc {
        FileDoc {
            format: SCENES_FORMAT.to_owned(),
            generator: self.generator.clone(),
            seed: self.seed,
            image_size: self.image_size,
            images: self
                .images
                .iter()
                .map(|(id, scene)| ImageDoc {
                    image_id: id.clone(),
                    background: BackgroundDoc {
                        tone: BACKGROUNDS[scene.background].0.to_owned(),
                        texture: scene.texture.name().to_owned(),
                    },
                    shapes: scene
                        .shapes
                        .iter()
                        .map(|sh| {
                            let ((x, y), r) = sh.geometry(self.image_size);
                            ShapeDoc {
                                kind: sh.kind.word().to_owned(),
                                colour: sh.colour_word().to_owned(),
                                size: sh.size_word().to_owned(),
                                position: sh.position.word().to_owned(),
                                centre: [round2(x), round2(y)],
                                radius: round2(r),
                            }
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// The file's JSON text (one image per line, newline-terminated).
    pub fn to_json(&self) -> String {
        let doc = self.to_doc();
        #[derive(Serialize)]
        struct Head<'a> {
            format: &'a str,
            generator: &'a str,
            seed: u64,
            image_size: u32,
        }
        let head = serde_json::to_string(&Head {
            format: &doc.format,
            generator: &doc.generator,
            seed: doc.seed,
            image_size: doc.image_size,
        })
        .expect("plain structs always serialise");
        let mut out = String::with_capacity(128 + 256 * doc.images.len());
        // `{"format":...,"image_size":N` then `,"images":[` one image a line.
        out.push_str(&head[..head.len() - 1]);
        out.push_str(",\"images\":[");
        for (i, im) in doc.images.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&serde_json::to_string(im).expect("plain structs always serialise"));
        }
        out.push_str("\n]}\n");
        out
    }

    /// Writes the file atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let text = self.to_json();
        write_atomic(path.as_ref(), |w| w.write_all(text.as_bytes()))
    }

    /// The scene of an image, by id (file name, `1000000000.jpg`).
    pub fn get(&self, image_id: &str) -> Option<&Scene> {
        self.index.get(image_id).map(|&i| &self.images[i].1)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// `(image id, scene)` in file order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Scene)> {
        self.images.iter().map(|(id, s)| (id.as_str(), s))
    }

    /// The generator's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Image width and height in pixels.
    pub fn image_size(&self) -> u32 {
        self.image_size
    }

    /// The generator named in the file (`synthetic-shapes`).
    pub fn generator(&self) -> &str {
        &self.generator
    }

    /// The path of the truth file of a dataset directory.
    pub fn path_in(dataset_dir: impl AsRef<Path>) -> PathBuf {
        dataset_dir.as_ref().join(SCENES_FILE)
    }
}

impl<'a> IntoIterator for &'a SceneTruth {
    type Item = (&'a str, &'a Scene);
    type IntoIter = Box<dyn Iterator<Item = (&'a str, &'a Scene)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::synth_image;

    fn sample(n: usize, size: u32) -> SceneTruth {
        let images = (0..n)
            .map(|i| {
                let im = synth_image(9, i);
                (im.name, im.scene)
            })
            .collect();
        SceneTruth::new(9, size, images)
    }

    fn same_words(a: &Scene, b: &Scene, size: u32) {
        assert_eq!((a.background, a.texture), (b.background, b.texture));
        assert_eq!(a.shapes.len(), b.shapes.len());
        for (x, y) in a.shapes.iter().zip(&b.shapes) {
            assert_eq!(
                (x.kind, x.colour, x.large, x.position),
                (y.kind, y.colour, y.large, y.position)
            );
            // Centre and radius are stored to 0.01 px.
            let (((ax, ay), ar), ((bx, by), br)) = (x.geometry(size), y.geometry(size));
            for d in [ax - bx, ay - by, ar - br] {
                assert!(d.abs() <= 0.0051, "{x:?} {y:?}");
            }
        }
    }

    #[test]
    fn round_trip_keeps_every_word_and_the_geometry() {
        let dir = tempfile::tempdir().unwrap();
        let truth = sample(200, 128);
        truth.save(dir.path().join(SCENES_FILE)).unwrap();
        let back = SceneTruth::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.len(), 200);
        assert_eq!((back.seed(), back.image_size()), (9, 128));
        assert_eq!(back.generator(), "synthetic-shapes");
        for ((id, a), (id2, b)) in truth.iter().zip(&back) {
            assert_eq!(id, id2);
            same_words(a, b, 128);
            assert_eq!(back.get(id), Some(b));
        }
        // Saving what was read gives the same bytes: rounding is idempotent.
        assert_eq!(back.to_json(), truth.to_json());
        assert!(back.get("nope.jpg").is_none());
    }

    #[test]
    fn file_is_documented_json() {
        let truth = sample(2, 96);
        let v: serde_json::Value = serde_json::from_str(&truth.to_json()).unwrap();
        assert_eq!(v["format"], "storyteller-scenes/1");
        assert_eq!(v["image_size"], 96);
        let shape = &v["images"][0]["shapes"][0];
        let scene = &truth.iter().next().unwrap().1;
        assert_eq!(shape["kind"], scene.shapes[0].kind.word());
        let ((x, _), r) = scene.shapes[0].geometry(96);
        assert!((shape["centre"][0].as_f64().unwrap() - f64::from(x)).abs() <= 0.005 + 1e-9);
        assert!((shape["radius"].as_f64().unwrap() - f64::from(r)).abs() <= 0.005 + 1e-9);
        assert_eq!(v["images"][0]["image_id"], "1000000000.jpg");
    }

    #[test]
    fn missing_file_is_none_and_bad_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(SceneTruth::load(dir.path()).unwrap().is_none());
        let path = dir.path().join(SCENES_FILE);
        let good = sample(1, 64).to_json();
        let cases = [
            ("{", "invalid JSON"),
            ("   ", "empty"),
            ("[]", "no \"format\""),
            (
                &good.replace("storyteller-scenes/1", "storyteller-scenes/2"),
                "storyteller-scenes/2",
            ),
            (
                &good.replace("\"kind\":\"", "\"kind\":\"blob"),
                "unknown kind",
            ),
            (&good.replace("\"tone\":\"", "\"tone\":\"x"), "unknown tone"),
            (&good.replace("\"size\":\"", "\"size\":\"x"), "unknown size"),
            (
                &good.replace("\"colour\":\"", "\"colour\":\"x"),
                "unknown colour",
            ),
            (
                &good.replace("\"position\":\"", "\"position\":\"x"),
                "unknown position",
            ),
            (
                &good.replace("\"texture\":\"", "\"texture\":\"x"),
                "unknown texture",
            ),
            (&good.replace("\"radius\"", "\"radios\""), "radios"),
            (
                &good.replace("\"image_size\":64", "\"image_size\":0"),
                "image_size is 0",
            ),
        ];
        for (text, needle) in cases {
            std::fs::write(&path, text).unwrap();
            let err = SceneTruth::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(SCENES_FILE), "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let twice = sample(1, 64);
        let (id, scene) = twice.iter().next().unwrap();
        let twice = SceneTruth::new(1, 64, vec![(id.into(), scene.clone()); 2]);
        std::fs::write(&path, twice.to_json()).unwrap();
        let err = SceneTruth::read(&path).unwrap_err().to_string();
        assert!(err.contains("already used"), "{err}");
    }
}
