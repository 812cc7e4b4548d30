//! The word map of the PyTorch Show, Attend and Tell tutorial: `{word: index}` JSON.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{DataError, Result};
use crate::vocab::{SPECIALS, Vocab};

/// A tutorial word map read into a [`Vocab`], with the row of the model's embedding and
/// output layers that holds each of its tokens.
///
/// The tutorial numbers its words from 1 in order of appearance and appends `<unk>`,
/// `<start>` and `<end>`, with `<pad>` = 0; a Neural Storyteller vocabulary puts the four
/// specials first and keeps the words in the map's index order.
#[derive(Debug, Clone)]
pub struct WordMap {
    /// The vocabulary: specials, then the words in the map's index order.
    pub vocab: Vocab,
    /// `file_row[id]`: the map's index of our token `id`.
    pub file_row: Vec<usize>,
}

impl WordMap {
    /// Reads `{word: index}` from `path`.
    ///
    /// # Errors
    /// Not JSON, not an object of non-negative integers, a special token missing, an
    /// index used twice, or indices that are not `0..n`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text, path)
    }

    /// Parses the JSON text; `path` only names the source in errors.
    ///
    /// # Errors
    /// As [`load`](Self::load).
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let invalid = |reason: String| DataError::InvalidWordMap {
            path: path.to_owned(),
            reason,
        };
        let map: HashMap<String, u64> = serde_json::from_str(text).map_err(|err| {
            invalid(format!(
                "not a word map ({{\"word\": index, ...}} with <pad>, <start>, <end>, <unk>): {err}"
            ))
        })?;
        for special in SPECIALS {
            if !map.contains_key(special) {
                return Err(invalid(format!("the word map has no {special:?}")));
            }
        }
        if map["<pad>"] != 0 {
            return Err(invalid(format!("<pad> is {}, not 0", map["<pad>"])));
        }
        let n = map.len();
        let mut by_index: Vec<Option<&str>> = vec![None; n];
        for (word, &index) in &map {
            let slot = usize::try_from(index)
                .ok()
                .and_then(|i| by_index.get_mut(i))
                .ok_or_else(|| {
                    invalid(format!(
                        "{word:?} has index {index}: the {n} entries must use 0..{n}"
                    ))
                })?;
            if let Some(other) = slot.replace(word) {
                return Err(invalid(format!(
                    "{word:?} and {other:?} share index {index}"
                )));
            }
            if word.is_empty() || word.chars().any(char::is_whitespace) {
                return Err(invalid(format!("{word:?} is not a single word")));
            }
        }
        let words: Vec<&str> = by_index
            .iter()
            .map(|w| w.expect("n distinct indices below n fill every slot"))
            .filter(|w| !SPECIALS.contains(w))
            .collect();
        let vocab = Vocab::from_words(words.iter().copied());
        let file_row = vocab.words().iter().map(|w| map[w] as usize).collect();
        Ok(Self { vocab, file_row })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WordMap> {
        WordMap::from_json(text, Path::new("WORDMAP.json"))
    }

    #[test]
    fn tutorial_order_becomes_specials_first() {
        let map = parse(
            r#"{"a": 1, "dog": 2, "runs": 3, "<unk>": 4, "<start>": 5, "<end>": 6, "<pad>": 0}"#,
        )
        .unwrap();
        assert_eq!(
            map.vocab.words(),
            ["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "runs"]
        );
        assert_eq!(map.file_row, [0, 5, 6, 4, 1, 2, 3]);
    }

    #[test]
    fn broken_maps_are_refused_with_the_reason() {
        let cases = [
            (r#"["a"]"#, "{\"word\": index"),
            (r#"{"a": 1, "<start>": 2, "<end>": 3, "<pad>": 0}"#, "<unk>"),
            (
                r#"{"a": 1, "<unk>": 2, "<start>": 3, "<end>": 4, "<pad>": 5, "b": 0}"#,
                "not 0",
            ),
            (
                r#"{"a": 1, "b": 1, "<unk>": 2, "<start>": 3, "<end>": 4, "<pad>": 0}"#,
                "share index",
            ),
            (
                r#"{"a": 9, "<unk>": 2, "<start>": 3, "<end>": 4, "<pad>": 0}"#,
                "must use 0..5",
            ),
            (
                r#"{"a b": 1, "<unk>": 2, "<start>": 3, "<end>": 4, "<pad>": 0}"#,
                "single word",
            ),
        ];
        for (text, reason) in cases {
            let err = parse(text).unwrap_err().to_string();
            assert!(
                err.contains(reason) && err.contains("WORDMAP.json"),
                "{text}: {err}"
            );
        }
    }
}
