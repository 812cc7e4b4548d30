//! Reading `REFS.json` (`{"id": ["ref", ...]}`) and `HYPS.json` (`{"id": "hyp"}`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use storyteller_metrics::Corpus;

/// What is wrong with a REFS/HYPS pair; every variant names the file and, where there is one, the image.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefsHypsError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("{path} is not valid JSON")]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        #[source]
        source: serde_json::Error,
    },
    /// The file is JSON, but not an object keyed by image id.
    #[error("{path}: expected a JSON object keyed by image id, found {found}")]
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// The JSON type found instead.
        found: &'static str,
    },
    /// A caption is not a string, or a reference entry is not a list.
    #[error("{path}: image {image_id:?}: expected {expected}, found {found}")]
    WrongType {
        /// The file.
        path: PathBuf,
        /// The image.
        image_id: String,
        /// What the format asks for.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// An image has an empty reference list.
    #[error("{path}: image {image_id:?} has no references")]
    NoReferences {
        /// The references file.
        path: PathBuf,
        /// The image.
        image_id: String,
    },
    /// A hypothesis has no references.
    #[error("{hyps}: image {image_id:?} has a hypothesis but no references in {refs}")]
    HypothesisWithoutReferences {
        /// The hypotheses file.
        hyps: PathBuf,
        /// The references file.
        refs: PathBuf,
        /// The image.
        image_id: String,
    },
    /// References without a hypothesis: pycocoevalcap refuses these too.
    #[error(
        "{refs}: image {image_id:?} has references but no hypothesis in {hyps} ({missing} such images)"
    )]
    ReferencesWithoutHypothesis {
        /// The references file.
        refs: PathBuf,
        /// The hypotheses file.
        hyps: PathBuf,
        /// The first such image.
        image_id: String,
        /// How many images lack a hypothesis.
        missing: usize,
    },
    /// An image id appears twice in one file (JSON parsers would silently keep the last).
    #[error("{path}: {detail}")]
    DuplicateId {
        /// The file.
        path: PathBuf,
        /// The id and where its second entry is.
        detail: String,
    },
    /// Both files are empty objects.
    #[error("{hyps}: no hypotheses to score")]
    Empty {
        /// The hypotheses file.
        hyps: PathBuf,
    },
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A JSON object whose keys must all differ.
struct UniqueKeys(Map<String, Value>);

impl<'de> serde::Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = UniqueKeys;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object keyed by image id")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueKeys, A::Error> {
                let mut out = Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value: Value = map.next_value()?;
                    if out.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "image id {key:?} appears twice"
                        )));
                    }
                    out.insert(key, value);
                }
                Ok(UniqueKeys(out))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

fn read_object(path: &Path) -> Result<Map<String, Value>, RefsHypsError> {
    let text = std::fs::read_to_string(path).map_err(|source| RefsHypsError::Read {
        path: path.to_owned(),
        source,
    })?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(_)) => serde_json::from_str::<UniqueKeys>(&text)
            .map(|unique| unique.0)
            .map_err(|err| RefsHypsError::DuplicateId {
                path: path.to_owned(),
                detail: err.to_string(),
            }),
        Ok(other) => Err(RefsHypsError::NotAnObject {
            path: path.to_owned(),
            found: json_type(&other),
        }),
        Err(source) => Err(RefsHypsError::Json {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads both files, checks them and returns a corpus in the project tokenizer's tokens,
/// one sample per image, in the references file's key order.
pub fn load_corpus(refs_path: &Path, hyps_path: &Path) -> Result<Corpus, RefsHypsError> {
    let refs = read_object(refs_path)?;
    let hyps = read_object(hyps_path)?;
    let wrong = |path: &Path, id: &str, expected, value: &Value| RefsHypsError::WrongType {
        path: path.to_owned(),
        image_id: id.to_owned(),
        expected,
        found: json_type(value),
    };

    if let Some(id) = hyps.keys().find(|id| !refs.contains_key(*id)) {
        return Err(RefsHypsError::HypothesisWithoutReferences {
            hyps: hyps_path.to_owned(),
            refs: refs_path.to_owned(),
            image_id: id.clone(),
        });
    }
    let missing: Vec<&String> = refs.keys().filter(|id| !hyps.contains_key(*id)).collect();
    if let Some(first) = missing.first() {
        return Err(RefsHypsError::ReferencesWithoutHypothesis {
            refs: refs_path.to_owned(),
            hyps: hyps_path.to_owned(),
            image_id: (*first).clone(),
            missing: missing.len(),
        });
    }
    if hyps.is_empty() {
        return Err(RefsHypsError::Empty {
            hyps: hyps_path.to_owned(),
        });
    }

    let mut samples = Vec::with_capacity(refs.len());
    for (id, references) in &refs {
        let Value::Array(list) = references else {
            return Err(wrong(
                refs_path,
                id,
                "a list of reference strings",
                references,
            ));
        };
        if list.is_empty() {
            return Err(RefsHypsError::NoReferences {
                path: refs_path.to_owned(),
                image_id: id.clone(),
            });
        }
        let references = list
            .iter()
            .map(|r| {
                r.as_str()
                    .ok_or_else(|| wrong(refs_path, id, "a reference string", r))
            })
            .collect::<Result<Vec<&str>, _>>()?;
        let hypothesis = &hyps[id];
        let hypothesis = hypothesis
            .as_str()
            .ok_or_else(|| wrong(hyps_path, id, "a hypothesis string", hypothesis))?;
        samples.push((hypothesis, references));
    }
    Ok(Corpus::from_captions(samples).expect("every image was checked to have references"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(refs: &str, hyps: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let (r, h) = (dir.path().join("refs.json"), dir.path().join("hyps.json"));
        std::fs::write(&r, refs).unwrap();
        std::fs::write(&h, hyps).unwrap();
        (dir, r, h)
    }

    fn load(refs: &str, hyps: &str) -> Result<Corpus, RefsHypsError> {
        let (_dir, r, h) = pair(refs, hyps);
        load_corpus(&r, &h)
    }

    #[test]
    fn an_image_id_twice_is_an_error_naming_it() {
        let err = load(
            r#"{"1": ["a dog"], "2": ["a cat"], "1": ["a bird"]}"#,
            r#"{"1": "a dog", "2": "a cat"}"#,
        )
        .unwrap_err();
        assert!(matches!(err, RefsHypsError::DuplicateId { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("refs.json") && text.contains(r#""1" appears twice"#),
            "{text}"
        );
        let err = load(r#"{"1": ["a dog"]}"#, r#"{"1": "a dog", "1": "a cat"}"#).unwrap_err();
        assert!(err.to_string().contains("hyps.json"), "{err}");
    }

    #[test]
    fn a_valid_pair_loads_in_reference_order() {
        let corpus = load(
            r#"{"1": ["A dog.", "a cat"], "2": ["x"]}"#,
            r#"{"2": "x", "1": "A dog"}"#,
        )
        .unwrap();
        assert_eq!(corpus.len(), 2);
        assert_eq!(corpus.samples()[0].references().len(), 2);
    }

    #[test]
    fn an_empty_hypothesis_is_legal() {
        assert!(load(r#"{"1": ["a dog"]}"#, r#"{"1": ""}"#).is_ok());
    }

    #[test]
    fn unreadable_json_names_the_file() {
        let err = load(r#"{"1": ["a"]"#, r#"{"1": "a"}"#).unwrap_err();
        assert!(matches!(err, RefsHypsError::Json { .. }));
        assert!(err.to_string().contains("refs.json"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_file() {
        let err =
            load_corpus(Path::new("/nonexistent/refs.json"), Path::new("h.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/refs.json"), "{err}");
    }

    #[test]
    fn a_hypothesis_without_references_names_the_image() {
        let err = load(r#"{"1": ["a"]}"#, r#"{"1": "a", "7": "b"}"#).unwrap_err();
        assert!(
            matches!(err, RefsHypsError::HypothesisWithoutReferences { ref image_id, .. } if image_id == "7")
        );
    }

    #[test]
    fn zero_references_names_the_image() {
        let err = load(r#"{"1": []}"#, r#"{"1": "a"}"#).unwrap_err();
        assert!(matches!(err, RefsHypsError::NoReferences { ref image_id, .. } if image_id == "1"));
    }

    #[test]
    fn non_string_captions_name_file_and_image() {
        let err = load(r#"{"1": ["a", 3]}"#, r#"{"1": "a"}"#).unwrap_err();
        assert!(err.to_string().contains("refs.json: image \"1\""), "{err}");
        let err = load(r#"{"1": ["a"]}"#, r#"{"1": ["a"]}"#).unwrap_err();
        assert!(err.to_string().contains("hyps.json: image \"1\""), "{err}");
        let err = load(r#"{"1": "a"}"#, r#"{"1": "a"}"#).unwrap_err();
        assert!(matches!(err, RefsHypsError::WrongType { .. }));
        let err = load(r#"[]"#, r#"{"1": "a"}"#).unwrap_err();
        assert!(matches!(
            err,
            RefsHypsError::NotAnObject {
                found: "an array",
                ..
            }
        ));
    }

    #[test]
    fn references_without_a_hypothesis_are_counted() {
        let err = load(r#"{"1": ["a"], "2": ["b"], "3": ["c"]}"#, r#"{"1": "a"}"#).unwrap_err();
        assert!(matches!(
            err,
            RefsHypsError::ReferencesWithoutHypothesis { missing: 2, .. }
        ));
    }
}
