//! Parsers for the three Flickr30k annotation layouts. Each turns a file into
//! images with raw captions, skipping bad lines with a counted [`Warning`].

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::warning::{Warning, WarningKind};
use crate::error::{DataError, Result};
use crate::split::Split;
use crate::tokenize;

/// One image as an annotation file describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawImage {
    /// File name (`1000092795.jpg`).
    pub name: String,
    /// Line where the image first appears, where the format has lines.
    pub line: Option<usize>,
    /// The split, when the file says (Karpathy JSON only).
    pub split: Option<Split>,
    /// Raw captions, in file order.
    pub captions: Vec<String>,
}

/// Collects warnings for one file.
pub(crate) struct Sink<'a> {
    pub path: &'a Path,
    pub warnings: &'a mut Vec<Warning>,
}

impl Sink<'_> {
    /// Puts the warnings added since `start` in line order.
    fn sort_from(&mut self, start: usize) {
        self.warnings[start..].sort_by_key(|w| w.line);
    }

    pub fn warn(&mut self, line: Option<usize>, kind: WarningKind, message: impl Into<String>) {
        self.warnings.push(Warning {
            path: self.path.to_owned(),
            line,
            kind,
            message: message.into(),
        });
    }
}

fn read_nonempty(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DataError::EmptyFile {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Splits into 1-based numbered UTF-8 lines; invalid lines become warnings.
fn utf8_lines<'b>(bytes: &'b [u8], sink: &mut Sink<'_>) -> Vec<(usize, &'b str)> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let mut out = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match std::str::from_utf8(line) {
            Ok(s) => out.push((i + 1, s)),
            Err(e) => sink.warn(
                Some(i + 1),
                WarningKind::NotUtf8,
                format!("line is not valid UTF-8 ({e}); skipped"),
            ),
        }
    }
    out
}

/// True for a plausible image file name: no directory part, an image extension.
fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.contains(['/', '\\'])
        && [".jpg", ".jpeg", ".png"]
            .iter()
            .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// Groups caption records by image, in first-appearance order, dropping
/// duplicate `(image, caption number)` pairs and empty captions.
struct Grouper {
    images: Vec<RawImage>,
    index: HashMap<String, usize>,
    seen: HashSet<(String, u32)>,
}

impl Grouper {
    fn new() -> Self {
        Self {
            images: Vec::new(),
            index: HashMap::new(),
            seen: HashSet::new(),
        }
    }

    fn add(
        &mut self,
        sink: &mut Sink<'_>,
        line: usize,
        image: &str,
        number: Option<u32>,
        caption: &str,
    ) {
        let image = image.trim();
        if image.is_empty() {
            sink.warn(
                Some(line),
                WarningKind::UnknownImage,
                "caption line names no image; skipped",
            );
            return;
        }
        if !is_image_name(image) {
            sink.warn(
                Some(line),
                WarningKind::UnknownImage,
                format!("{image:?} is not an image file name; skipped"),
            );
            return;
        }
        if let Some(n) = number
            && !self.seen.insert((image.to_owned(), n))
        {
            sink.warn(
                Some(line),
                WarningKind::DuplicateId,
                format!("duplicate caption id {image}#{n}; skipped"),
            );
            return;
        }
        if tokenize(caption).is_empty() {
            sink.warn(
                Some(line),
                WarningKind::EmptyCaption,
                format!("empty caption for {image}; skipped"),
            );
            return;
        }
        let slot = *self.index.entry(image.to_owned()).or_insert_with(|| {
            self.images.push(RawImage {
                name: image.to_owned(),
                line: Some(line),
                split: None,
                captions: Vec::new(),
            });
            self.images.len() - 1
        });
        self.images[slot].captions.push(caption.trim().to_owned());
    }
}

/// Reads the original token file: `1000092795.jpg#0<TAB>caption` per line.
pub(crate) fn read_token_file(path: &Path, sink: &mut Sink<'_>) -> Result<Vec<RawImage>> {
    let bytes = read_nonempty(path)?;
    let start = sink.warnings.len();
    let mut group = Grouper::new();
    for (line, text) in utf8_lines(&bytes, sink) {
        if text.trim().is_empty() {
            continue;
        }
        let Some((key, caption)) = text.split_once('\t') else {
            sink.warn(
                Some(line),
                WarningKind::MalformedLine,
                "no TAB between image#number and caption; skipped",
            );
            continue;
        };
        let (image, number) = match key.rsplit_once('#') {
            Some((image, n)) => match n.trim().parse::<u32>() {
                Ok(n) => (image, Some(n)),
                Err(_) => {
                    sink.warn(
                        Some(line),
                        WarningKind::MalformedLine,
                        format!("caption number {n:?} is not a number; skipped"),
                    );
                    continue;
                }
            },
            None => (key, None),
        };
        group.add(sink, line, image, number, caption);
    }
    sink.sort_from(start);
    Ok(group.images)
}

/// Reads the Kaggle CSV: header `image_name| comment_number| comment`, then
/// `1000092795.jpg| 0| caption`. The known broken row with the second `|`
/// missing (`2199200615.jpg| 4 A dog ...`) is recovered with a warning.
pub(crate) fn read_kaggle_csv(path: &Path, sink: &mut Sink<'_>) -> Result<Vec<RawImage>> {
    let bytes = read_nonempty(path)?;
    let start = sink.warnings.len();
    let mut group = Grouper::new();
    for (line, text) in utf8_lines(&bytes, sink) {
        if text.trim().is_empty() {
            continue;
        }
        if line == 1 && text.trim_start().starts_with("image_name") {
            continue;
        }
        let fields: Vec<&str> = text.splitn(3, '|').collect();
        match fields.as_slice() {
            [image, number, caption] => match number.trim().parse::<u32>() {
                Ok(n) => group.add(sink, line, image, Some(n), caption),
                Err(_) => sink.warn(
                    Some(line),
                    WarningKind::MalformedLine,
                    format!(
                        "comment_number {:?} is not a number; skipped",
                        number.trim()
                    ),
                ),
            },
            [image, rest] => {
                let rest = rest.trim_start();
                let digits =
                    rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                let (number, caption) = rest.split_at(digits);
                match number.parse::<u32>() {
                    Ok(n) if caption.starts_with(char::is_whitespace) => {
                        sink.warn(
                            Some(line),
                            WarningKind::RecoveredRow,
                            format!(
                                "missing '|' between comment_number and comment; read as {}#{n}",
                                image.trim()
                            ),
                        );
                        group.add(sink, line, image, Some(n), caption);
                    }
                    _ => sink.warn(
                        Some(line),
                        WarningKind::MalformedLine,
                        "only 2 of 3 '|'-separated fields and no comment number; skipped",
                    ),
                }
            }
            _ => sink.warn(
                Some(line),
                WarningKind::MalformedLine,
                "no '|' separator; skipped",
            ),
        }
    }
    sink.sort_from(start);
    Ok(group.images)
}

#[derive(Deserialize)]
struct KarpathyFile {
    images: Vec<KarpathyImage>,
}

#[derive(Deserialize)]
struct KarpathyImage {
    filename: String,
    #[serde(default)]
    split: Option<String>,
    #[serde(default)]
    sentences: Vec<KarpathySentence>,
}

#[derive(Deserialize)]
struct KarpathySentence {
    #[serde(default)]
    raw: Option<String>,
    #[serde(default)]
    tokens: Option<Vec<String>>,
}

/// Reads Karpathy's `dataset_flickr30k.json` (`images[].filename`, `split`,
/// `sentences[].raw` — or `tokens` joined when `raw` is absent).
pub(crate) fn read_karpathy(path: &Path, sink: &mut Sink<'_>) -> Result<Vec<RawImage>> {
    let bytes = read_nonempty(path)?;
    let file: KarpathyFile = serde_json::from_slice(&bytes).map_err(|source| DataError::Json {
        path: path.to_owned(),
        source,
    })?;
    let mut seen = HashSet::new();
    let mut images = Vec::with_capacity(file.images.len());
    for (i, image) in file.images.into_iter().enumerate() {
        let at = format!("images[{i}] ({})", image.filename);
        if !is_image_name(&image.filename) {
            sink.warn(
                None,
                WarningKind::UnknownImage,
                format!(
                    "images[{i}]: {:?} is not an image file name; skipped",
                    image.filename
                ),
            );
            continue;
        }
        if !seen.insert(image.filename.clone()) {
            sink.warn(
                None,
                WarningKind::DuplicateId,
                format!("{at}: duplicate filename; skipped"),
            );
            continue;
        }
        let split = match image.split.as_deref().map(Split::parse) {
            Some(Some(split)) => split,
            other => {
                let name = if other.is_some() {
                    image.split.as_deref().unwrap_or("")
                } else {
                    "(none)"
                };
                sink.warn(
                    None,
                    WarningKind::UnknownSplit,
                    format!("{at}: unknown split {name:?}; skipped"),
                );
                continue;
            }
        };
        let mut captions = Vec::with_capacity(image.sentences.len());
        for (j, sentence) in image.sentences.into_iter().enumerate() {
            let raw = match (sentence.raw, sentence.tokens) {
                (Some(raw), _) if !raw.trim().is_empty() => raw,
                (_, Some(tokens)) => tokens.join(" "),
                (raw, None) => raw.unwrap_or_default(),
            };
            if tokenize(&raw).is_empty() {
                sink.warn(
                    None,
                    WarningKind::EmptyCaption,
                    format!("{at}: sentences[{j}] is empty; skipped"),
                );
                continue;
            }
            captions.push(raw.trim().to_owned());
        }
        if captions.is_empty() {
            sink.warn(
                None,
                WarningKind::EmptyCaption,
                format!("{at}: no caption; image skipped"),
            );
            continue;
        }
        images.push(RawImage {
            name: image.filename,
            line: None,
            split: Some(split),
            captions,
        });
    }
    Ok(images)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(
        reader: fn(&Path, &mut Sink<'_>) -> Result<Vec<RawImage>>,
        content: &[u8],
    ) -> (Result<Vec<RawImage>>, Vec<Warning>) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content).unwrap();
        let mut warnings = Vec::new();
        let mut sink = Sink {
            path: file.path(),
            warnings: &mut warnings,
        };
        let images = reader(file.path(), &mut sink);
        (images, warnings)
    }

    fn kinds(w: &[Warning]) -> Vec<(Option<usize>, WarningKind)> {
        w.iter().map(|w| (w.line, w.kind)).collect()
    }

    #[test]
    fn token_file_groups_captions_by_image() {
        let (images, w) = parse(
            read_token_file,
            b"1.jpg#0\tA dog .\n1.jpg#1\tA brown dog .\r\n2.jpg#0\tA cat .\n",
        );
        let images = images.unwrap();
        assert!(w.is_empty());
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].captions, ["A dog .", "A brown dog ."]);
        assert_eq!(images[1].line, Some(3));
    }

    #[test]
    fn token_file_bad_lines_are_counted_warnings() {
        let (images, w) = parse(
            read_token_file,
            b"1.jpg#0\tA dog .\n1.jpg#0\tA dup .\nno tab here\n#3\tno image\nreadme.txt#0\tx\n2.jpg#0\t  ...\n3.jpg#0\tcaf\xe9\n4.jpg#x\tbad number\n",
        );
        assert_eq!(images.unwrap().len(), 1);
        assert_eq!(
            kinds(&w),
            [
                (Some(2), WarningKind::DuplicateId),
                (Some(3), WarningKind::MalformedLine),
                (Some(4), WarningKind::UnknownImage),
                (Some(5), WarningKind::UnknownImage),
                (Some(6), WarningKind::EmptyCaption),
                (Some(7), WarningKind::NotUtf8),
                (Some(8), WarningKind::MalformedLine),
            ]
        );
        assert!(w[5].to_string().contains(":7: "), "{}", w[5]);
    }

    #[test]
    fn empty_files_are_errors() {
        for reader in [read_token_file, read_kaggle_csv, read_karpathy] {
            let (r, _) = parse(reader, b"  \n");
            assert!(matches!(r, Err(DataError::EmptyFile { .. })));
        }
    }

    #[test]
    fn kaggle_broken_row_is_recovered() {
        let (images, w) = parse(
            read_kaggle_csv,
            b"image_name| comment_number| comment\n\
              2199200615.jpg| 3| A dog on grass .\n\
              2199200615.jpg| 4   A dog runs across the grass .\n\
              5.jpg| x| bad\n\
              just text\n\
              6.jpg| no number here\n",
        );
        let images = images.unwrap();
        assert_eq!(
            images[0].captions,
            ["A dog on grass .", "A dog runs across the grass ."]
        );
        assert_eq!(
            kinds(&w),
            [
                (Some(3), WarningKind::RecoveredRow),
                (Some(4), WarningKind::MalformedLine),
                (Some(5), WarningKind::MalformedLine),
                (Some(6), WarningKind::MalformedLine),
            ]
        );
    }

    #[test]
    fn karpathy_reads_splits_and_skips_bad_entries() {
        let json = br#"{"dataset": "flickr30k", "images": [
            {"filename": "1.jpg", "split": "restval", "sentences": [{"raw": "A dog.", "tokens": ["a", "dog"]}]},
            {"filename": "2.jpg", "split": "test", "sentences": [{"tokens": ["a", "cat"]}, {"raw": ""}]},
            {"filename": "2.jpg", "split": "test", "sentences": [{"raw": "again"}]},
            {"filename": "3.jpg", "split": "holdout", "sentences": [{"raw": "x"}]},
            {"filename": "4.jpg", "split": "val", "sentences": []}
        ]}"#;
        let (images, w) = parse(read_karpathy, json);
        let images = images.unwrap();
        assert_eq!(images.len(), 2);
        assert_eq!(images[0].split, Some(Split::Train));
        assert_eq!(images[1].captions, ["a cat"]);
        let k: Vec<_> = w.iter().map(|w| w.kind).collect();
        assert_eq!(
            k,
            [
                WarningKind::EmptyCaption,
                WarningKind::DuplicateId,
                WarningKind::UnknownSplit,
                WarningKind::EmptyCaption
            ]
        );
    }

    #[test]
    fn karpathy_non_utf8_or_bad_json_is_an_error_with_position() {
        let (r, _) = parse(
            read_karpathy,
            b"{\"images\": [{\"filename\": \"\xff.jpg\"}]}",
        );
        let err = r.unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");
        let (r, _) = parse(read_karpathy, b"{\"images\": 3}");
        assert!(matches!(r, Err(DataError::Json { .. })));
    }
}
