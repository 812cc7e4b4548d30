//! The attention decoder against the PyTorch reference (`scripts/attention_reference.py`, the
//! tutorial's `DecoderWithAttention` layout): weights imported from `.safetensors` and `.pth`
//! through the tutorial's word map, teacher-forced logits and attention weights within 1e-5,
//! the training loss with the doubly stochastic regulariser, greedy and beam-3 outputs
//! identical.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;
use storyteller_decoder::attention::{AttentionDecoder, load_tutorial};
use storyteller_search::{BeamSearch, GreedySearch};
use storyteller_test_support::compare::max_abs_difference as worst;

/// Our vocabulary puts `<pad>`, `<start>`, `<end>`, `<unk>` first, then the tutorial's words
/// in its index order.
const SPECIALS: [&str; 4] = ["<pad>", "<start>", "<end>", "<unk>"];

struct Reference {
    json: Value,
    /// Our token id → the tutorial's.
    file_row: Vec<usize>,
    /// Our token id → word.
    words: Vec<String>,
    features: Tensor<2>,
    inputs: Tensor<2, Int>,
    targets: Tensor<2, Int>,
    device: Device,
}

fn data_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/data")
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn reference() -> Reference {
    let device = Device::flex();
    let text = std::fs::read_to_string(data_dir().join("attention_reference.json")).unwrap();
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
    Reference {
        file_row,
        words,
        features,
        inputs,
        targets,
        json,
        device,
    }
}

impl Reference {
    fn import(&self, file: &str, reorder: bool) -> AttentionDecoder {
        let rows = reorder.then_some(self.file_row.as_slice());
        let import = load_tutorial(data_dir().join(file), 2, rows, &self.device).unwrap();
        assert!(import.unused.is_empty(), "unused keys {:?}", import.unused);
        let sizes = &self.json["sizes"];
        let size = |key: &str| sizes[key].as_u64().unwrap() as usize;
        let config = &import.config;
        assert_eq!(
            [
                config.vocab_size,
                config.d_embed,
                config.d_attention,
                config.d_hidden,
                config.d_feature,
                config.regions()
            ],
            [
                size("vocab_size"),
                size("d_embed"),
                size("d_attention"),
                size("d_hidden"),
                size("d_feature"),
                size("regions")
            ]
        );
        import.decoder
    }

    /// PyTorch's logits with the vocabulary axis in our order.
    fn expected_logits(&self) -> Vec<f32> {
        let data = floats(&self.json["logits"]["data"]);
        let v = self.file_row.len();
        data.chunks(v)
            .flat_map(|row| self.file_row.iter().map(|&r| row[r]).collect::<Vec<_>>())
            .collect()
    }

    fn words_of(&self, ids: &[u32]) -> Vec<String> {
        ids.iter()
            .map(|&i| self.words[i as usize].clone())
            .collect()
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn teacher_forced_logits_and_attention_match_within_1e_5() {
    let r = reference();
    let decoder = r.import("attention_reference.safetensors", true);
    let (logits, alphas) = decoder.forward_with_attention(r.features.clone(), r.inputs.clone());
    let logit_error = worst(&values(logits), &r.expected_logits());
    let alpha_error = worst(&values(alphas), &floats(&r.json["alphas"]["data"]));
    println!("largest differences from PyTorch: logits {logit_error:e}, attention {alpha_error:e}");
    assert!(logit_error <= 1e-5, "logits differ by {logit_error}");
    assert!(
        alpha_error <= 1e-5,
        "attention weights differ by {alpha_error}"
    );
}

/// A `.pth` state dict (what `torch.save(decoder.state_dict())` writes) imports the same
/// weights; without the word map the vocabulary keeps the file's order.
#[test]
fn the_pth_file_imports_the_same_weights() {
    let r = reference();
    let decoder = r.import("attention_reference.pth", false);
    let logits = values(decoder.forward(r.features.clone(), tokens_in_file_order(&r)));
    let error = worst(&logits, &floats(&r.json["logits"]["data"]));
    assert!(error <= 1e-5, "logits differ by {error}");
}

fn tokens_in_file_order(r: &Reference) -> Tensor<2, Int> {
    let [n, t] = r.inputs.dims();
    let ours: Vec<i64> = r
        .inputs
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap();
    let file: Vec<i64> = ours
        .iter()
        .map(|&i| r.file_row[i as usize] as i64)
        .collect();
    Tensor::from_data(TensorData::new(file, [n, t]), &r.device)
}

#[test]
fn greedy_and_beam3_match_pytorch_exactly() {
    let r = reference();
    let decoder = r.import("attention_reference.safetensors", true);
    let greedy = GreedySearch::new()
        .with_max_len(10)
        .search(&decoder, r.features.clone())
        .unwrap();
    let beam = BeamSearch::new()
        .with_width(3)
        .with_max_len(10)
        .with_length_penalty(0.0)
        .with_n_best(3)
        .search(&decoder, r.features.clone())
        .unwrap();
    for (name, ours, expected) in [
        ("greedy", greedy, &r.json["greedy"]),
        ("beam3", beam, &r.json["beam3"]),
    ] {
        for (image, (hyps, reference)) in ours.iter().zip(expected.as_array().unwrap()).enumerate()
        {
            let reference = reference.as_array().unwrap();
            assert_eq!(hyps.len(), reference.len(), "{name} image {image}");
            for (hyp, want) in hyps.iter().zip(reference) {
                let words: Vec<String> = serde_json::from_value(want["words"].clone()).unwrap();
                assert_eq!(r.words_of(&hyp.tokens), words, "{name} image {image}");
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

#[cfg(feature = "train")]
#[test]
fn training_loss_with_the_regulariser_matches() {
    use storyteller_decoder::train::{CaptionBatch, TeacherForcing};
    let r = reference();
    let decoder = r.import("attention_reference.safetensors", true);
    let batch = CaptionBatch {
        features: r.features.clone(),
        inputs: r.inputs.clone(),
        targets: r.targets.clone(),
    };
    let losses = decoder.losses(&batch, 0);
    let loss = &r.json["loss"];
    let expect = |key: &str| loss[key].as_f64().unwrap() as f32;
    let cross_entropy = values(losses.cross_entropy.clone())[0];
    let regulariser = values(losses.regulariser.clone().unwrap())[0];
    let total = values(losses.total())[0];
    assert!(
        (cross_entropy - expect("cross_entropy")).abs() < 1e-5,
        "{cross_entropy}"
    );
    assert!(
        (regulariser - expect("regulariser")).abs() < 1e-4,
        "{regulariser}"
    );
    assert!((total - expect("total")).abs() < 1e-4, "{total}");
}

#[test]
fn a_word_map_of_another_size_is_refused() {
    let r = reference();
    let rows: Vec<usize> = r.file_row[..20].to_vec();
    let err = load_tutorial(
        data_dir().join("attention_reference.safetensors"),
        2,
        Some(&rows),
        &r.device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("word map"), "{err}");
}

#[test]
fn a_missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    let bytes = std::fs::read(data_dir().join("attention_reference.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .filter(|(name, _)| name != "f_beta.bias")
        .collect();
    safetensors::serialize_to_file(kept, None, &path).unwrap();
    let err = load_tutorial(&path, 2, None, &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("f_beta.bias"), "{err}");
}
