//! Counted warnings: lines or entries a reader skipped or repaired.

use std::path::PathBuf;

use serde::Serialize;

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningKind {
    /// An annotated image has no file in the image folder; the image is skipped.
    MissingImage,
    /// A caption is empty (or has no word); the caption is skipped.
    EmptyCaption,
    /// A caption line names no image, or something that is not an image file name.
    UnknownImage,
    /// An image or caption id appears twice; the later one is skipped.
    DuplicateId,
    /// A line is not valid UTF-8; it is skipped.
    NotUtf8,
    /// The Kaggle CSV row with a missing separator; the caption was recovered.
    RecoveredRow,
    /// A line that does not have the layout's fields; it is skipped.
    MalformedLine,
    /// A Karpathy entry with an unknown split name; the image is skipped.
    UnknownSplit,
}

impl WarningKind {
    /// The snake_case name used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            WarningKind::MissingImage => "missing_image",
            WarningKind::EmptyCaption => "empty_caption",
            WarningKind::UnknownImage => "unknown_image",
            WarningKind::DuplicateId => "duplicate_id",
            WarningKind::NotUtf8 => "not_utf8",
            WarningKind::RecoveredRow => "recovered_row",
            WarningKind::MalformedLine => "malformed_line",
            WarningKind::UnknownSplit => "unknown_split",
        }
    }
}

/// A line or entry a reader skipped or repaired, with the file and line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The annotation file (or, for a missing image, the annotation file that names it).
    pub path: PathBuf,
    /// 1-based line number, where the format has lines.
    pub line: Option<usize>,
    /// What kind of problem it is.
    pub kind: WarningKind,
    /// A human-readable description.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.path.display(), self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}
