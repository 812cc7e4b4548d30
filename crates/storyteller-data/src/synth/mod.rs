//! The synthetic "shapes" dataset: a real Flickr30k-layout dataset on disk,
//! generated from a seed, whose captions can only be guessed by looking at
//! the images.

mod captions;
mod scene;
mod truth;

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;

pub use scene::{BACKGROUNDS, COLOURS, Position, Scene, Shape, ShapeKind, Texture};
pub(crate) use scene::{colour_index, tone_index};
pub use truth::{SCENES_FILE, SCENES_FORMAT, SCENES_GENERATOR, SceneTruth};

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::flickr30k::Layout;
use crate::rng::Rng;
use crate::split::SplitConfig;
use crate::tokenize;

/// Settings of [`generate`].
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Number of images (1 to 1,000,000).
    pub images: usize,
    /// Image width and height in pixels (16 to 4096).
    pub size: u32,
    /// The seed: the same seed gives the same files.
    pub seed: u64,
    /// The annotation layout to write.
    pub layout: Layout,
    /// Split sizes (written into the Karpathy JSON; the other layouts get the
    /// same split from the readers' deterministic split).
    pub split: SplitConfig,
    /// JPEG quality (1 to 100).
    pub jpeg_quality: u8,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            images: 1000,
            size: 128,
            seed: 0,
            layout: Layout::Karpathy,
            split: SplitConfig::default(),
            jpeg_quality: 90,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SynthReport {
    /// The dataset directory.
    pub dir: PathBuf,
    /// The layout.
    pub layout: Layout,
    /// The annotation file.
    pub annotations: PathBuf,
    /// The image folder.
    pub image_dir: PathBuf,
    /// The scene truth file ([`SCENES_FILE`]).
    pub scenes: PathBuf,
    /// Images written.
    pub images: usize,
    /// Captions written.
    pub captions: usize,
}

/// One generated image: file name, scene and captions.
#[derive(Debug, Clone)]
pub struct SynthImage {
    /// File name (`1000000000.jpg`, ...).
    pub name: String,
    /// What is in it.
    pub scene: Scene,
    /// Its five captions.
    pub captions: Vec<String>,
}

/// The `index`-th image of the dataset with seed `seed` (without pixels).
pub fn synth_image(seed: u64, index: usize) -> SynthImage {
    let mut rng = Rng::new(seed, index as u64);
    let scene = Scene::sample(&mut rng);
    let captions = captions::captions(&scene, &mut rng);
    SynthImage {
        name: format!("{}.jpg", 1_000_000_000 + index),
        scene,
        captions,
    }
}

/// The image folder a layout's synthetic dataset uses.
pub fn image_dir_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Kaggle => "Images",
        Layout::Karpathy | Layout::Token => "flickr30k_images",
    }
}

/// Writes the dataset into `dir` (created if needed): JPEG images in
/// `flickr30k_images/` (`Images/` for Kaggle), the scene truth file
/// [`SCENES_FILE`] (what every image shows, see [`SceneTruth`]) and the
/// layout's annotation file, both atomically and the annotations last. `progress` is called with the number
/// of images written so far (from several threads).
pub fn generate(
    dir: impl AsRef<Path>,
    config: &SynthConfig,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<SynthReport> {
    let dir = dir.as_ref();
    if !(1..=1_000_000).contains(&config.images) {
        return Err(DataError::InvalidConfig {
            reason: format!("--images must be 1 to 1000000, not {}", config.images),
        });
    }
    if !(16..=4096).contains(&config.size) {
        return Err(DataError::InvalidConfig {
            reason: format!("--size must be 16 to 4096 pixels, not {}", config.size),
        });
    }
    if !(1..=100).contains(&config.jpeg_quality) {
        return Err(DataError::InvalidConfig {
            reason: format!("JPEG quality must be 1 to 100, not {}", config.jpeg_quality),
        });
    }
    let image_dir = dir.join(image_dir_name(config.layout));
    fs::create_dir_all(&image_dir).map_err(|e| DataError::io(&image_dir, e))?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let images: Vec<SynthImage> = (0..config.images)
        .into_par_iter()
        .map(|i| {
            let item = synth_image(config.seed, i);
            let pixels = item.scene.render(config.size, config.seed ^ i as u64);
            let path = image_dir.join(&item.name);
            let mut bytes = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, config.jpeg_quality)
                .encode_image(&pixels)
                .map_err(|source| DataError::Image {
                    path: path.clone(),
                    source,
                })?;
            fs::write(&path, bytes).map_err(|e| DataError::io(&path, e))?;
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            Ok(item)
        })
        .collect::<Result<_>>()?;
    let truth = SceneTruth::new(
        config.seed,
        config.size,
        images
            .iter()
            .map(|im| (im.name.clone(), im.scene.clone()))
            .collect(),
    );
    truth.save(dir.join(SCENES_FILE))?;
    let annotations = dir.join(config.layout.file_name());
    let text = match config.layout {
        Layout::Karpathy => karpathy_json(&images, &config.split),
        Layout::Token => images
            .iter()
            .flat_map(|im| {
                im.captions
                    .iter()
                    .enumerate()
                    .map(move |(k, c)| format!("{}#{k}\t{c}\n", im.name))
            })
            .collect(),
        Layout::Kaggle => {
            let mut text = String::from("image_name| comment_number| comment\n");
            for im in &images {
                for (k, c) in im.captions.iter().enumerate() {
                    text.push_str(&format!("{}| {k}| {c}\n", im.name));
                }
            }
            text
        }
    };
    write_atomic(&annotations, |w| w.write_all(text.as_bytes()))?;
    Ok(SynthReport {
        scenes: dir.join(SCENES_FILE),
        dir: dir.to_owned(),
        layout: config.layout,
        annotations,
        image_dir,
        captions: images.iter().map(|i| i.captions.len()).sum(),
        images: images.len(),
    })
}

fn karpathy_json(images: &[SynthImage], split: &SplitConfig) -> String {
    let names: Vec<&str> = images.iter().map(|i| i.name.as_str()).collect();
    let splits = split.assign(&names);
    let mut sentid = 0;
    let entries: Vec<serde_json::Value> = images
        .iter()
        .zip(splits)
        .enumerate()
        .map(|(imgid, (im, split))| {
            let sentences: Vec<serde_json::Value> = im
                .captions
                .iter()
                .map(|raw| {
                    sentid += 1;
                    json!({"tokens": tokenize(raw), "raw": raw, "imgid": imgid, "sentid": sentid - 1})
                })
                .collect();
            let first = sentid - sentences.len();
            json!({
                "filename": im.name,
                "filepath": "flickr30k_images",
                "imgid": imgid,
                "split": split.name(),
                "sentids": (first..sentid).collect::<Vec<_>>(),
                "sentences": sentences,
            })
        })
        .collect();
    let doc = json!({"dataset": "synthetic-shapes", "images": entries});
    serde_json::to_string(&doc).expect("JSON values always serialise") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flickr30k::Flickr30k;
    use crate::split::Split;

    fn small(layout: Layout, seed: u64) -> SynthConfig {
        SynthConfig {
            images: 12,
            size: 48,
            seed,
            layout,
            ..SynthConfig::default()
        }
    }

    #[test]
    fn every_layout_reads_back_with_the_same_content_and_splits() {
        let mut seen: Vec<Vec<(String, Vec<String>, Split)>> = Vec::new();
        for layout in Layout::ALL {
            let dir = tempfile::tempdir().unwrap();
            let report = generate(dir.path(), &small(layout, 5), &|_| {}).unwrap();
            assert_eq!((report.images, report.captions), (12, 60));
            let data = Flickr30k::open(dir.path()).unwrap();
            assert_eq!(data.layout(), layout);
            assert!(data.warnings().is_empty(), "{:?}", data.warnings());
            seen.push(
                data.images()
                    .iter()
                    .map(|i| {
                        (
                            i.id.clone(),
                            i.captions.iter().map(|c| c.raw.clone()).collect(),
                            i.split,
                        )
                    })
                    .collect(),
            );
            let img = image::open(&data.images()[0].path).unwrap();
            assert_eq!((img.width(), img.height()), (48, 48));
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[1], seen[2]);
        assert_eq!(seen[0].iter().filter(|s| s.2 == Split::Test).count(), 1);
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_data() {
        let read = |seed| {
            let dir = tempfile::tempdir().unwrap();
            generate(dir.path(), &small(Layout::Token, seed), &|_| {}).unwrap();
            let ann = fs::read(dir.path().join(Layout::Token.file_name())).unwrap();
            let img = fs::read(dir.path().join("flickr30k_images/1000000003.jpg")).unwrap();
            (ann, img)
        };
        assert_eq!(read(1), read(1));
        assert_ne!(read(1).0, read(2).0);
    }

    #[test]
    fn scene_truth_is_written_and_matches_synth_image() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &small(Layout::Kaggle, 4), &|_| {}).unwrap();
        let truth = SceneTruth::load(dir.path()).unwrap().expect("scenes.json");
        assert_eq!((truth.len(), truth.seed(), truth.image_size()), (12, 4, 48));
        let data = Flickr30k::open(dir.path()).unwrap();
        for (i, item) in data.images().iter().enumerate() {
            let expected = synth_image(4, i);
            assert_eq!(item.id, expected.name);
            let scene = truth.get(&item.id).expect("every image has a scene");
            assert_eq!(scene.background, expected.scene.background);
            assert_eq!(scene.texture, expected.scene.texture);
            assert_eq!(scene.shapes.len(), expected.scene.shapes.len());
            for (a, b) in scene.shapes.iter().zip(&expected.scene.shapes) {
                assert_eq!(
                    (a.kind, a.colour, a.large, a.position),
                    (b.kind, b.colour, b.large, b.position)
                );
                // Centre and radius are stored to 0.01 px.
                let (((ax, ay), ar), ((bx, by), br)) = (a.geometry(48), b.geometry(48));
                for d in [ax - bx, ay - by, ar - br] {
                    assert!(d.abs() <= 0.0051, "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn bad_configs_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        for config in [
            SynthConfig {
                images: 0,
                ..small(Layout::Token, 0)
            },
            SynthConfig {
                size: 2,
                ..small(Layout::Token, 0)
            },
            SynthConfig {
                jpeg_quality: 0,
                ..small(Layout::Token, 0)
            },
        ] {
            assert!(matches!(
                generate(dir.path(), &config, &|_| {}),
                Err(DataError::InvalidConfig { .. })
            ));
        }
    }
}
