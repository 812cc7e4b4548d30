//! PyTorch's reference decoder (`storyteller-decoder/tests/data`, made by
//! `scripts/decoder_reference.py`) loaded onto any device, and the checks the parity tests
//! make with it: teacher-forced logits, greedy and beam-3 hypotheses.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::Value;
use storyteller_decoder::{
    CaptionDecoder, CaptionDecoderConfig, Decoder, SearchDecoder, load_pytorch,
};
use storyteller_search::{BeamSearch, GreedySearch, Hypothesis, StepDecoder};

use crate::compare::max_abs_difference;

/// `tests/data` of `storyteller-decoder`, from the manifest directory of the running test's
/// crate (the decoder crate, or `benches/` beside it in the workspace). Read at run time: `env!` would keep
/// the directory of whichever checkout last compiled the test in a shared target directory.
pub fn data_dir() -> PathBuf {
    let manifest_dir =
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let here = Path::new(&manifest_dir).join("tests/data");
    if here.join("decoder_reference.json").exists() {
        return here;
    }
    Path::new(&manifest_dir).join("../crates/storyteller-decoder/tests/data")
}

/// The reference: its JSON (sizes, inputs, PyTorch's outputs), the imported decoder, the
/// image features and the teacher-forcing tokens, on `device`.
pub struct Reference {
    /// `decoder_reference.json`: sizes, inputs and PyTorch's outputs.
    pub json: Value,
    /// The decoder's sizes.
    pub config: CaptionDecoderConfig,
    /// PyTorch's weights, imported.
    pub decoder: CaptionDecoder,
    /// The image features, `[batch, d_feature]`.
    pub features: Tensor<2>,
    /// The teacher-forcing tokens, `[batch, steps]`.
    pub tokens: Tensor<2, Int>,
}

impl Reference {
    /// Reads the reference from `dir` onto `device`.
    ///
    /// # Panics
    /// When a file is missing or malformed, or the import leaves a key unused.
    pub fn load(dir: &Path, device: &Device) -> Self {
        let text = std::fs::read_to_string(dir.join("decoder_reference.json")).unwrap();
        let json: Value = serde_json::from_str(&text).unwrap();
        let size = |key: &str| usize_of(&json["sizes"][key]);
        let config = CaptionDecoderConfig::new(size("vocab_size"))
            .with_d_feature(size("d_feature"))
            .with_d_embed(size("d_embed"))
            .with_d_hidden(size("d_hidden"));
        let import =
            load_pytorch(dir.join("decoder_reference.safetensors"), &config, device).unwrap();
        assert!(import.unused.is_empty(), "unused keys {:?}", import.unused);
        let shape: Vec<usize> = serde_json::from_value(json["features"]["shape"].clone()).unwrap();
        let features = Tensor::from_data(
            TensorData::new(floats(&json["features"]["data"]), [shape[0], shape[1]]),
            device,
        );
        let tokens: Vec<Vec<i64>> = serde_json::from_value(json["tokens"].clone()).unwrap();
        let (batch, steps) = (tokens.len(), tokens[0].len());
        let tokens = Tensor::from_data(TensorData::new(tokens.concat(), [batch, steps]), device);
        Self {
            json,
            config,
            decoder: import.decoder,
            features,
            tokens,
        }
    }

    /// The largest `|ours - PyTorch|` of the teacher-forced logits (NaN counts as infinite).
    pub fn logit_error(&self) -> f32 {
        let logits: Vec<f32> = self
            .decoder
            .forward(self.features.clone(), self.tokens.clone())
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        max_abs_difference(&logits, &floats(&self.json["logits"]["data"]))
    }
}

impl Reference {
    /// Asserts that greedy and beam-3 search (10 tokens, 3 best) give PyTorch's hypotheses,
    /// searching the decoder as it is and as the captioner prepares it ([`SearchDecoder`]:
    /// the embedding folded into the input gates).
    pub fn check_greedy_and_beam3(&self) {
        let prepared = SearchDecoder::new(Decoder::ShowTell(self.decoder.clone()));
        self.check_searches(&self.decoder, "plain");
        self.check_searches(&prepared, "prepared");
    }

    fn check_searches(&self, decoder: &impl StepDecoder, which: &str) {
        let greedy = GreedySearch::new()
            .with_max_len(10)
            .search(decoder, self.features.clone())
            .unwrap();
        check_search(&self.json["greedy"], &greedy, &format!("greedy, {which}"));
        let beam = BeamSearch::new()
            .with_width(3)
            .with_max_len(10)
            .with_n_best(3)
            .search(decoder, self.features.clone())
            .unwrap();
        check_search(&self.json["beam3"], &beam, &format!("beam3, {which}"));
    }
}

/// A JSON list of numbers as f32 values.
///
/// # Panics
/// When `v` is not a list of numbers.
pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// A JSON number as a `usize`.
///
/// # Panics
/// When `v` is not a non-negative integer.
pub fn usize_of(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

/// Asserts that `actual` has PyTorch's hypotheses: the same tokens and finished flags, and
/// log-probabilities within 1e-4.
///
/// # Panics
/// When they differ.
pub fn check_search(expected: &Value, actual: &[Vec<Hypothesis>], name: &str) {
    let expected = expected.as_array().unwrap();
    assert_eq!(expected.len(), actual.len());
    for (image, (e, a)) in expected.iter().zip(actual).enumerate() {
        let e = e.as_array().unwrap();
        assert_eq!(
            e.len(),
            a.len(),
            "{name} image {image}: number of hypotheses"
        );
        for (eh, ah) in e.iter().zip(a) {
            let tokens: Vec<u32> = serde_json::from_value(eh["tokens"].clone()).unwrap();
            assert_eq!(tokens, ah.tokens, "{name} image {image}: tokens");
            assert_eq!(
                eh["finished"].as_bool().unwrap(),
                ah.finished,
                "{name} image {image}: finished"
            );
            let lp = eh["log_prob"].as_f64().unwrap() as f32;
            assert!(
                (lp - ah.log_prob).abs() < 1e-4,
                "{name} image {image}: log_prob {lp} vs {}",
                ah.log_prob
            );
        }
    }
}
