//! The word vocabulary: specials, min-count threshold, encode/decode, JSON files.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic::write_atomic;
use crate::error::{DataError, Result};
use crate::tokenize;

/// Padding token id.
pub const PAD: u32 = 0;
/// Start-of-caption token id.
pub const START: u32 = 1;
/// End-of-caption token id.
pub const END: u32 = 2;
/// Unknown-word token id.
pub const UNK: u32 = 3;
/// The special tokens, in id order.
pub const SPECIALS: [&str; 4] = ["<pad>", "<start>", "<end>", "<unk>"];
/// Default minimum count for a word to enter the vocabulary.
pub const DEFAULT_MIN_COUNT: usize = 5;

const FORMAT: &str = "storyteller-vocab";
const VERSION: u32 = 1;

/// A word vocabulary.
///
/// Ids 0..4 are `<pad> <start> <end> <unk>`. The other words are those seen at
/// least `min_count` times, ordered by count (most frequent first) and, for
/// equal counts, alphabetically (byte order), so the same captions always give
/// the same ids whatever order they were read in.
///
/// ```
/// use storyteller_data::Vocab;
/// let vocab = Vocab::from_captions(["A dog runs.", "a dog sits", "A cat"], 2);
/// assert_eq!(vocab.len(), 6); // 4 specials + "a" + "dog"
/// let ids = vocab.encode("a dog flies");
/// assert_eq!(ids, [4, 5, 3]);
/// assert_eq!(vocab.decode(&ids), "a dog <unk>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocab {
    words: Vec<String>,
    counts: Vec<u64>,
    index: HashMap<String, u32>,
    min_count: usize,
}

#[derive(Serialize, Deserialize)]
struct VocabFile {
    format: String,
    version: u32,
    min_count: usize,
    words: Vec<String>,
    #[serde(default)]
    counts: Vec<u64>,
}

impl Vocab {
    /// Builds a vocabulary from captions, tokenised with [`tokenize`].
    pub fn from_captions<S: AsRef<str>>(
        captions: impl IntoIterator<Item = S>,
        min_count: usize,
    ) -> Self {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for caption in captions {
            for token in tokenize(caption.as_ref()) {
                *counts.entry(token).or_default() += 1;
            }
        }
        Self::from_counts(counts, min_count)
    }

    /// Builds a vocabulary from already tokenised captions.
    pub fn from_tokens<'a, T: AsRef<str> + 'a>(
        captions: impl IntoIterator<Item = &'a [T]>,
        min_count: usize,
    ) -> Self {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for caption in captions {
            for token in caption {
                *counts.entry(token.as_ref().to_owned()).or_default() += 1;
            }
        }
        Self::from_counts(counts, min_count)
    }

    /// Builds a vocabulary from word counts. Words spelled like a special
    /// token are dropped (they would be ambiguous).
    pub fn from_counts(counts: HashMap<String, u64>, min_count: usize) -> Self {
        let mut kept: Vec<(String, u64)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= min_count as u64 && !SPECIALS.contains(&w.as_str()))
            .collect();
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut words: Vec<String> = SPECIALS.iter().map(|s| (*s).to_owned()).collect();
        let mut all_counts = vec![0; SPECIALS.len()];
        for (w, c) in kept {
            words.push(w);
            all_counts.push(c);
        }
        Self::from_parts(words, all_counts, min_count)
    }

    /// A vocabulary of the given words in the given order after the four specials (an
    /// imported model's word list). Duplicates and words spelled like a special token are
    /// dropped; counts are unknown (0) and `min_count` is 1.
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Self {
        let mut all: Vec<String> = SPECIALS.iter().map(|s| (*s).to_owned()).collect();
        let mut seen: std::collections::HashSet<&str> = SPECIALS.into_iter().collect();
        for word in words {
            if seen.insert(word) {
                all.push(word.to_owned());
            }
        }
        let counts = vec![0; all.len()];
        Self::from_parts(all, counts, 1)
    }

    fn from_parts(words: Vec<String>, counts: Vec<u64>, min_count: usize) -> Self {
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i as u32))
            .collect();
        Self {
            words,
            counts,
            index,
            min_count,
        }
    }

    /// Number of entries, specials included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always false: the specials are always there.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The minimum count the vocabulary was built with.
    pub fn min_count(&self) -> usize {
        self.min_count
    }

    /// The id of a word, if it is in the vocabulary.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The word of an id, if the id is in range.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// How often a word was seen when the vocabulary was built (0 for specials
    /// and unknown words).
    pub fn count(&self, word: &str) -> u64 {
        self.id(word).map_or(0, |i| self.counts[i as usize])
    }

    /// All entries in id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Tokenises and encodes a caption; unknown words become [`UNK`]. No
    /// `<start>`/`<end>` are added.
    pub fn encode(&self, caption: &str) -> Vec<u32> {
        self.encode_tokens(&tokenize(caption))
    }

    /// Encodes tokens; unknown words become [`UNK`].
    pub fn encode_tokens<T: AsRef<str>>(&self, tokens: &[T]) -> Vec<u32> {
        tokens
            .iter()
            .map(|t| self.id(t.as_ref()).unwrap_or(UNK))
            .collect()
    }

    /// Encodes a caption as `<start> words... <end>`, the decoder's training target.
    pub fn encode_with_bounds(&self, caption: &str) -> Vec<u32> {
        let mut ids = vec![START];
        ids.extend(self.encode(caption));
        ids.push(END);
        ids
    }

    /// Decodes ids to words: stops at the first `<end>`, skips `<start>` and
    /// `<pad>`, writes `<unk>` for unknown and out-of-range ids.
    pub fn decode_tokens(&self, ids: &[u32]) -> Vec<&str> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            match id {
                END => break,
                PAD | START => {}
                _ => out.push(self.word(id).unwrap_or(SPECIALS[UNK as usize])),
            }
        }
        out
    }

    /// Decodes ids to a space-separated caption (see [`Vocab::decode_tokens`]).
    pub fn decode(&self, ids: &[u32]) -> String {
        self.decode_tokens(ids).join(" ")
    }

    /// Serialises to the JSON format (`{"format": "storyteller-vocab", "version": 1, ...}`).
    pub fn to_json(&self) -> String {
        let file = VocabFile {
            format: FORMAT.into(),
            version: VERSION,
            min_count: self.min_count,
            words: self.words.clone(),
            counts: self.counts.clone(),
        };
        serde_json::to_string_pretty(&file).expect("a vocabulary always serialises")
    }

    /// Parses the JSON format; `path` only names the source in errors.
    pub fn from_json(json: &str, path: &Path) -> Result<Self> {
        let invalid = |reason: String| DataError::InvalidVocab {
            path: path.to_owned(),
            reason,
        };
        if json.trim().is_empty() {
            return Err(DataError::EmptyFile {
                path: path.to_owned(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|source| DataError::Json {
                path: path.to_owned(),
                source,
            })?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(invalid(format!("format is {other:?}, not {FORMAT:?}"))),
            None => return Err(invalid(format!("no \"format\": {FORMAT:?} tag"))),
        }
        let file: VocabFile = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if file.version != VERSION {
            return Err(invalid(format!("unsupported version {}", file.version)));
        }
        if file.words.len() < SPECIALS.len()
            || file.words[..SPECIALS.len()] != SPECIALS.map(String::from)
        {
            return Err(invalid(format!("the first entries must be {SPECIALS:?}")));
        }
        let counts = if file.counts.is_empty() {
            vec![0; file.words.len()]
        } else if file.counts.len() == file.words.len() {
            file.counts
        } else {
            return Err(invalid(format!(
                "{} words but {} counts",
                file.words.len(),
                file.counts.len()
            )));
        };
        let vocab = Self::from_parts(file.words, counts, file.min_count);
        if vocab.index.len() != vocab.words.len() {
            let mut seen = std::collections::HashSet::new();
            let dup = vocab.words.iter().find(|w| !seen.insert(*w));
            return Err(invalid(format!("duplicate word {dup:?}")));
        }
        if let Some(w) = vocab.words.iter().find(|w| w.is_empty()) {
            return Err(invalid(format!("empty word {w:?}")));
        }
        Ok(vocab)
    }

    /// Writes the vocabulary as JSON, atomically.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let json = self.to_json();
        write_atomic(path.as_ref(), |w| w.write_all(json.as_bytes()))
    }

    /// Reads a vocabulary written by [`Vocab::save`]. A foreign or corrupt
    /// file is an error.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let json = String::from_utf8(bytes).map_err(|e| DataError::InvalidVocab {
            path: path.to_owned(),
            reason: format!("not UTF-8 ({e})"),
        })?;
        Self::from_json(&json, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specials_come_first_and_order_is_count_then_alphabet() {
        let vocab = Vocab::from_captions(["b b a a c c c d", "zebra"], 1);
        assert_eq!(
            vocab.words(),
            [
                "<pad>", "<start>", "<end>", "<unk>", "c", "a", "b", "d", "zebra"
            ]
        );
        assert_eq!(vocab.count("c"), 3);
        assert_eq!(vocab.id("<end>"), Some(END));
    }

    #[test]
    fn order_does_not_depend_on_input_order() {
        let a = Vocab::from_captions(["x y z", "y z", "q"], 1);
        let b = Vocab::from_captions(["q", "z y", "z x y"], 1);
        assert_eq!(a, b);
    }

    #[test]
    fn min_count_filters_and_default_is_five() {
        let caps = ["dog"; 5]
            .iter()
            .chain(["cat"; 4].iter())
            .collect::<Vec<_>>();
        let vocab = Vocab::from_captions(caps, DEFAULT_MIN_COUNT);
        assert_eq!(vocab.id("dog"), Some(4));
        assert_eq!(vocab.id("cat"), None);
        assert_eq!(vocab.encode("cat"), [UNK]);
    }

    #[test]
    fn encode_uses_the_project_tokenizer_and_decode_stops_at_end() {
        let vocab = Vocab::from_captions(["a dog's t-shirt"], 1);
        let ids = vocab.encode_with_bounds("A DOG'S T-shirt!");
        assert_eq!(ids.first(), Some(&START));
        assert_eq!(ids.last(), Some(&END));
        assert_eq!(vocab.decode(&ids), "a dogs tshirt");
        assert_eq!(vocab.decode(&[START, 4, END, 5, PAD]), "a");
        assert_eq!(vocab.decode(&[4, 999]), "a <unk>");
    }

    #[test]
    fn words_spelled_like_specials_are_dropped() {
        let mut counts = HashMap::new();
        counts.insert("<unk>".to_owned(), 9);
        counts.insert("ok".to_owned(), 9);
        let vocab = Vocab::from_counts(counts, 1);
        assert_eq!(vocab.len(), 5);
    }

    #[test]
    fn save_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vocab.json");
        let vocab = Vocab::from_captions(["one two two three three three"], 1);
        vocab.save(&path).unwrap();
        assert_eq!(Vocab::load(&path).unwrap(), vocab);
    }

    #[test]
    fn foreign_and_corrupt_files_are_errors() {
        let p = Path::new("v.json");
        let cases = [
            ("", "empty"),
            ("{not json", "invalid JSON"),
            ("{\"a\": 1}", "format"),
            ("[\"<pad>\"]", "format"),
            ("{\"format\": \"other\"}", "format"),
            (
                "{\"format\":\"storyteller-vocab\",\"version\":9,\"min_count\":1,\"words\":[]}",
                "version",
            ),
            (
                "{\"format\":\"storyteller-vocab\",\"version\":1,\"min_count\":1,\"words\":[\"a\"]}",
                "first entries",
            ),
            (
                "{\"format\":\"storyteller-vocab\",\"version\":1,\"min_count\":1,\
                 \"words\":[\"<pad>\",\"<start>\",\"<end>\",\"<unk>\",\"a\",\"a\"]}",
                "duplicate",
            ),
            (
                "{\"format\":\"storyteller-vocab\",\"version\":1,\"min_count\":1,\
                 \"words\":[\"<pad>\",\"<start>\",\"<end>\",\"<unk>\"],\"counts\":[1]}",
                "counts",
            ),
        ];
        for (json, want) in cases {
            let err = Vocab::from_json(json, p).unwrap_err().to_string();
            assert!(err.contains(want), "{json:?}: {err}");
            assert!(err.starts_with("v.json"), "{err}");
        }
    }
}
