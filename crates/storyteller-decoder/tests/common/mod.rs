//! A PyTorch reference fixture whose vocabulary is a word map (`scripts/*_reference.py`):
//! its inputs under our token ids, and comparisons of our outputs with its own.

#![allow(dead_code)] // each parity test uses its own part

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;
use storyteller_search::{BeamSearch, GreedySearch, StepDecoder};

/// Our vocabulary puts `<pad>`, `<start>`, `<end>`, `<unk>` first, then the word map's words
/// in its index order.
const SPECIALS: [&str; 4] = ["<pad>", "<start>", "<end>", "<unk>"];

/// A reference's JSON, with its batch in our token ids.
pub struct Reference {
    pub json: Value,
    /// Our token id → the file's.
    pub file_row: Vec<usize>,
    /// Our token id → word.
    pub words: Vec<String>,
    /// `[images, regions·d_feature]`.
    pub features: Tensor<2>,
    pub inputs: Tensor<2, Int>,
    pub targets: Tensor<2, Int>,
    pub device: Device,
}

pub fn data_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/data")
}

pub fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

impl Reference {
    /// Reads `tests/data/<name>.json`.
    pub fn load(name: &str) -> Self {
        let device = Device::flex();
        let text = std::fs::read_to_string(data_dir().join(format!("{name}.json"))).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        let word_map: BTreeMap<String, usize> =
            serde_json::from_value(json["word_map"].clone()).unwrap();
        let mut by_index: Vec<(&String, &usize)> = word_map
            .iter()
            .filter(|(w, _)| !SPECIALS.contains(&w.as_str()))
            .collect();
        by_index.sort_by_key(|(_, i)| **i);
        let words: Vec<String> = SPECIALS
            .iter()
            .map(|s| s.to_string())
            .chain(by_index.iter().map(|(w, _)| (*w).clone()))
            .collect();
        let file_row: Vec<usize> = words.iter().map(|w| word_map[w]).collect();
        let ours: BTreeMap<&str, i64> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i as i64))
            .collect();
        let tokens = |key: &str| {
            let rows: Vec<Vec<String>> = serde_json::from_value(json[key].clone()).unwrap();
            let (n, t) = (rows.len(), rows[0].len());
            let ids: Vec<i64> = rows.iter().flatten().map(|w| ours[w.as_str()]).collect();
            Tensor::<2, Int>::from_data(TensorData::new(ids, [n, t]), &device)
        };
        let shape: Vec<usize> = serde_json::from_value(json["features"]["shape"].clone()).unwrap();
        let features = Tensor::from_data(
            TensorData::new(
                floats(&json["features"]["data"]),
                [shape[0], shape[1] * shape[2]],
            ),
            &device,
        );
        let (inputs, targets) = (tokens("inputs"), tokens("targets"));
        drop(ours);
        Self {
            file_row,
            words,
            features,
            inputs,
            targets,
            json,
            device,
        }
    }

    /// A size from the JSON's `sizes`.
    pub fn size(&self, key: &str) -> usize {
        self.json["sizes"][key].as_u64().unwrap() as usize
    }

    /// PyTorch's logits with the vocabulary axis in our order.
    pub fn expected_logits(&self) -> Vec<f32> {
        let data = floats(&self.json["logits"]["data"]);
        let v = self.file_row.len();
        data.chunks(v)
            .flat_map(|row| self.file_row.iter().map(|&r| row[r]).collect::<Vec<_>>())
            .collect()
    }

    /// The batch's inputs in the file's token ids.
    pub fn inputs_in_file_order(&self) -> Tensor<2, Int> {
        let [n, t] = self.inputs.dims();
        let ours: Vec<i64> = self
            .inputs
            .clone()
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        let file: Vec<i64> = ours
            .iter()
            .map(|&i| self.file_row[i as usize] as i64)
            .collect();
        Tensor::from_data(TensorData::new(file, [n, t]), &self.device)
    }

    fn words_of(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| self.words[i as usize].clone())
            .collect()
    }

    /// Greedy (10 tokens) and beam-3 (10 tokens, no length penalty, 3 best) search of
    /// `decoder` give PyTorch's words, finished flags and log-probabilities (within 1e-4).
    pub fn assert_searches_match<D: StepDecoder>(&self, decoder: &D) {
        let greedy = GreedySearch::new()
            .with_max_len(10)
            .search(decoder, self.features.clone())
            .unwrap();
        let beam = BeamSearch::new()
            .with_width(3)
            .with_max_len(10)
            .with_length_penalty(0.0)
            .with_n_best(3)
            .search(decoder, self.features.clone())
            .unwrap();
        for (name, ours, expected) in [
            ("greedy", greedy, &self.json["greedy"]),
            ("beam3", beam, &self.json["beam3"]),
        ] {
            for (image, (hyps, reference)) in
                ours.iter().zip(expected.as_array().unwrap()).enumerate()
            {
                let reference = reference.as_array().unwrap();
                assert_eq!(hyps.len(), reference.len(), "{name} image {image}");
                for (hyp, want) in hyps.iter().zip(reference) {
                    let words: Vec<String> = serde_json::from_value(want["words"].clone()).unwrap();
                    assert_eq!(self.words_of(&hyp.tokens), words, "{name} image {image}");
                    assert_eq!(hyp.finished, want["finished"].as_bool().unwrap());
                    let log_prob = want["log_prob"].as_f64().unwrap() as f32;
                    assert!(
                        (hyp.log_prob - log_prob).abs() < 1e-4,
                        "{name} image {image}: log-prob {} vs {log_prob}",
                        hyp.log_prob
                    );
                }
            }
        }
    }
}

/// A copy of the safetensors file `source` without tensor `key`, written to `dest`.
pub fn without_tensor(source: &str, key: &str, dest: &std::path::Path) {
    let bytes = std::fs::read(data_dir().join(source)).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != key)
        .collect();
    safetensors::serialize_to_file(kept, None, dest).unwrap();
}
