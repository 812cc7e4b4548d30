//! Flickr30k in its three real layouts, auto-detected: Karpathy's split JSON,
//! the original token file and the Kaggle CSV.

mod annotations;
mod dataset;
mod summary;
mod warning;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use dataset::{CaptionItem, CaptionPairs, Flickr30kSplit};
pub use summary::{DatasetSummary, SplitCounts};
pub use warning::{Warning, WarningKind};

use crate::error::{DataError, Result};
use crate::split::{Split, SplitConfig};
use crate::tokenize;
use annotations::{RawImage, Sink};

/// Karpathy's split file name.
pub const KARPATHY_FILE: &str = "dataset_flickr30k.json";
/// The original token file name.
pub const TOKEN_FILE: &str = "results_20130124.token";
/// The Kaggle CSV file name.
pub const KAGGLE_FILE: &str = "results.csv";
/// Image folder names, in the order they are looked for.
pub const IMAGE_DIRS: [&str; 3] = [
    "flickr30k_images/flickr30k_images",
    "flickr30k_images",
    "Images",
];

/// Which annotation layout a dataset uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Karpathy's `dataset_flickr30k.json`, with splits.
    Karpathy,
    /// The original `results_20130124.token` (`image.jpg#n<TAB>caption`).
    Token,
    /// The Kaggle `results.csv` (`image_name| comment_number| comment`).
    Kaggle,
}

impl Layout {
    /// All layouts, in detection order (Karpathy first: it carries splits).
    pub const ALL: [Layout; 3] = [Layout::Karpathy, Layout::Token, Layout::Kaggle];

    /// The annotation file name of the layout.
    pub fn file_name(self) -> &'static str {
        match self {
            Layout::Karpathy => KARPATHY_FILE,
            Layout::Token => TOKEN_FILE,
            Layout::Kaggle => KAGGLE_FILE,
        }
    }

    /// The lowercase name (`karpathy`, `token`, `kaggle`).
    pub fn name(self) -> &'static str {
        match self {
            Layout::Karpathy => "karpathy",
            Layout::Token => "token",
            Layout::Kaggle => "kaggle",
        }
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "karpathy" => Ok(Layout::Karpathy),
            "token" => Ok(Layout::Token),
            "kaggle" => Ok(Layout::Kaggle),
            _ => Err(format!("unknown layout {s:?} (karpathy, token or kaggle)")),
        }
    }
}

/// A caption: the raw text and its tokens (by [`tokenize`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Caption {
    /// The caption as written in the annotation file (trimmed).
    pub raw: String,
    /// The project tokenizer's tokens.
    pub tokens: Vec<String>,
}

impl Caption {
    /// Tokenises a raw caption.
    pub fn new(raw: impl Into<String>) -> Self {
        let raw = raw.into();
        let tokens = tokenize(&raw);
        Self { raw, tokens }
    }
}

/// One image with its captions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageItem {
    /// The image id: its file name (`1000092795.jpg`), the key in feature caches.
    pub id: String,
    /// Path of the image file.
    pub path: PathBuf,
    /// Its captions (usually five).
    pub captions: Vec<Caption>,
    /// Its split.
    pub split: Split,
}

/// Options for [`Flickr30k::open_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOptions {
    /// Split sizes for layouts without splits.
    pub split: SplitConfig,
    /// Check that every image file exists (skip, with a warning, those that do not).
    pub check_images: bool,
    /// Turn the first warning into an error instead of skipping.
    pub strict: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            split: SplitConfig::default(),
            check_images: true,
            strict: false,
        }
    }
}

/// Where a dataset's files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// The layout.
    pub layout: Layout,
    /// The annotation file.
    pub annotations: PathBuf,
    /// The image folder.
    pub image_dir: PathBuf,
}

/// Finds the annotation file and image folder of a dataset directory.
/// Annotation files are looked for in `dir` and in `dir/flickr30k_images/`
/// (where Kaggle puts `results.csv`), Karpathy's JSON first; images in
/// [`IMAGE_DIRS`], else `dir` itself.
pub fn detect(dir: &Path) -> Result<Detected> {
    if !dir.is_dir() {
        return Err(DataError::io(
            dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    let found = Layout::ALL.iter().find_map(|&layout| {
        [
            dir.join(layout.file_name()),
            dir.join("flickr30k_images").join(layout.file_name()),
        ]
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| (layout, p))
    });
    let Some((layout, annotations)) = found else {
        return Err(DataError::NoAnnotations {
            dir: dir.to_owned(),
        });
    };
    let image_dir = IMAGE_DIRS
        .iter()
        .map(|d| dir.join(d))
        .find(|d| d.is_dir())
        .unwrap_or_else(|| dir.to_owned());
    Ok(Detected {
        layout,
        annotations,
        image_dir,
    })
}

/// A Flickr30k-style dataset: images, captions, splits, and the warnings
/// about what was skipped while reading it.
///
/// ```no_run
/// use storyteller_data::{Flickr30k, Split};
/// let data = Flickr30k::open("data/flickr30k")?;
/// for w in data.warnings() { eprintln!("warning: {w}"); }
/// let train = data.split(Split::Train);
/// # Ok::<(), storyteller_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Flickr30k {
    root: PathBuf,
    detected: Detected,
    images: Vec<ImageItem>,
    index: std::collections::HashMap<String, usize>,
    warnings: Vec<Warning>,
}

impl Flickr30k {
    /// Opens a dataset directory with the default [`LoadOptions`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, &LoadOptions::default())
    }

    /// Opens a dataset directory: detects the layout, reads the annotations,
    /// checks the image files and assigns splits.
    pub fn open_with(dir: impl AsRef<Path>, options: &LoadOptions) -> Result<Self> {
        let root = dir.as_ref().to_owned();
        let detected = detect(&root)?;
        let mut warnings = Vec::new();
        let path = detected.annotations.clone();
        let mut sink = Sink {
            path: &path,
            warnings: &mut warnings,
        };
        let raw = match detected.layout {
            Layout::Karpathy => annotations::read_karpathy(&path, &mut sink)?,
            Layout::Token => annotations::read_token_file(&path, &mut sink)?,
            Layout::Kaggle => annotations::read_kaggle_csv(&path, &mut sink)?,
        };
        let raw: Vec<RawImage> = raw
            .into_iter()
            .filter(|image| {
                if !options.check_images || detected.image_dir.join(&image.name).is_file() {
                    return true;
                }
                sink.warn(
                    image.line,
                    WarningKind::MissingImage,
                    format!(
                        "image file {} is missing; image skipped",
                        detected.image_dir.join(&image.name).display()
                    ),
                );
                false
            })
            .collect();
        if options.strict
            && let Some(w) = warnings.first()
        {
            return Err(DataError::InvalidLine {
                path: w.path.clone(),
                line: w.line.unwrap_or(0),
                reason: w.message.clone(),
            });
        }
        if raw.is_empty() {
            return Err(DataError::NoImages { path });
        }
        let names: Vec<&str> = raw.iter().map(|r| r.name.as_str()).collect();
        let assigned = options.split.assign(&names);
        let images = raw
            .into_iter()
            .zip(assigned)
            .map(|(r, fallback)| ImageItem {
                path: detected.image_dir.join(&r.name),
                split: r.split.unwrap_or(fallback),
                captions: r.captions.into_iter().map(Caption::new).collect(),
                id: r.name,
            })
            .collect();
        let images: Vec<ImageItem> = images;
        let index = images
            .iter()
            .enumerate()
            .map(|(i, image)| (image.id.clone(), i))
            .collect();
        Ok(Self {
            root,
            detected,
            images,
            index,
            warnings,
        })
    }

    /// The dataset directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The layout that was detected.
    pub fn layout(&self) -> Layout {
        self.detected.layout
    }

    /// Annotation file, image folder and layout.
    pub fn detected(&self) -> &Detected {
        &self.detected
    }

    /// Every image, in annotation-file order.
    pub fn images(&self) -> &[ImageItem] {
        &self.images
    }

    /// What was skipped or repaired while reading.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The images of one split, as a Burn [`Dataset`](burn_dataset::Dataset).
    pub fn split(&self, split: Split) -> Flickr30kSplit {
        Flickr30kSplit::new(
            split,
            self.images
                .iter()
                .filter(|i| i.split == split)
                .cloned()
                .collect(),
        )
    }

    /// Looks an image up by id.
    pub fn image(&self, id: &str) -> Option<&ImageItem> {
        self.index.get(id).map(|&i| &self.images[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn dataset(layout: Layout, annotations: &str, images: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let image_dir = dir.path().join(if layout == Layout::Kaggle {
            "Images"
        } else {
            "flickr30k_images"
        });
        fs::create_dir_all(&image_dir).unwrap();
        for name in images {
            fs::write(image_dir.join(name), b"not decoded here").unwrap();
        }
        fs::write(dir.path().join(layout.file_name()), annotations).unwrap();
        dir
    }

    #[test]
    fn each_layout_is_detected_and_read() {
        let cases = [
            (Layout::Token, "1.jpg#0\tA dog.\n2.jpg#0\tA cat.\n3.jpg#0\tA cow.\n".to_owned()),
            (
                Layout::Kaggle,
                "image_name| comment_number| comment\n1.jpg| 0| A dog.\n2.jpg| 0| A cat.\n3.jpg| 0| A cow.\n".to_owned(),
            ),
            (
                Layout::Karpathy,
                r#"{"images":[{"filename":"1.jpg","split":"train","sentences":[{"raw":"A dog."}]},
                {"filename":"2.jpg","split":"val","sentences":[{"raw":"A cat."}]},
                {"filename":"3.jpg","split":"test","sentences":[{"raw":"A cow."}]}]}"#
                    .to_owned(),
            ),
        ];
        for (layout, text) in cases {
            let dir = dataset(layout, &text, &["1.jpg", "2.jpg", "3.jpg"]);
            let data = Flickr30k::open(dir.path()).unwrap();
            assert_eq!(data.layout(), layout);
            assert_eq!(data.images().len(), 3);
            assert_eq!(data.images()[0].captions[0].tokens, ["a", "dog"]);
            assert!(data.images()[0].path.is_file());
            for split in Split::ALL {
                assert_eq!(data.split(split).images().len(), 1, "{layout} {split}");
            }
            assert!(data.warnings().is_empty());
            assert_eq!(data.image("2.jpg").unwrap().captions[0].raw, "A cat.");
            assert!(data.image("9.jpg").is_none());
        }
    }

    #[test]
    fn kaggle_nested_layout_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("flickr30k_images/flickr30k_images");
        fs::create_dir_all(&inner).unwrap();
        fs::write(inner.join("1.jpg"), b"x").unwrap();
        fs::write(
            dir.path().join("flickr30k_images/results.csv"),
            "image_name| comment_number| comment\n1.jpg| 0| A dog.\n",
        )
        .unwrap();
        let data = Flickr30k::open(dir.path()).unwrap();
        assert_eq!(data.layout(), Layout::Kaggle);
        assert_eq!(data.images()[0].path, inner.join("1.jpg"));
    }

    #[test]
    fn missing_images_are_counted_and_strict_mode_fails() {
        let dir = dataset(
            Layout::Token,
            "1.jpg#0\tA dog.\n2.jpg#0\tA cat.\n",
            &["1.jpg"],
        );
        let data = Flickr30k::open(dir.path()).unwrap();
        assert_eq!(data.images().len(), 1);
        assert_eq!(data.warnings().len(), 1);
        assert_eq!(data.warnings()[0].kind, WarningKind::MissingImage);
        assert_eq!(data.warnings()[0].line, Some(2));
        let strict = LoadOptions {
            strict: true,
            ..LoadOptions::default()
        };
        let err = Flickr30k::open_with(dir.path(), &strict)
            .unwrap_err()
            .to_string();
        assert!(err.contains("results_20130124.token:2:"), "{err}");
        assert!(err.contains("2.jpg"), "{err}");
    }

    #[test]
    fn no_annotations_no_images_and_empty_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            Flickr30k::open(dir.path()),
            Err(DataError::NoAnnotations { .. })
        ));
        let dir = dataset(Layout::Token, "", &[]);
        assert!(matches!(
            Flickr30k::open(dir.path()),
            Err(DataError::EmptyFile { .. })
        ));
        let dir = dataset(Layout::Token, "1.jpg#0\tA dog.\n", &[]);
        assert!(matches!(
            Flickr30k::open(dir.path()),
            Err(DataError::NoImages { .. })
        ));
        assert!(Flickr30k::open(dir.path().join("nope")).is_err());
    }
}
