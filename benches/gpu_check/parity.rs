//! Parity of the device under test with the CPU: the same weights and inputs on Flex and on
//! the device, compared at the tolerances of the CPU parity tests.
//!
//! - `encoder`: a random ResNet-50 (BatchNorm folded) built on the CPU and moved to the
//!   device; features of two seeded images; `max |ours - cpu| / max |cpu|` <= 1e-4, as
//!   `crates/storyteller-encoder/tests/parity.rs` asks of PyTorch.
//! - `decoder_reference`: the PyTorch reference decoder of
//!   `crates/storyteller-decoder/tests/data` (compiled in); teacher-forced logits within 1e-5
//!   of PyTorch's, greedy and beam-3 hypotheses identical (tokens, finished flags; log-probs
//!   within 1e-4), as `crates/storyteller-decoder/tests/pytorch_parity.rs` asks on the CPU.
//! - `decoder_anchor_size`: a random decoder of the anchor's size (vocab 8000, hidden 512)
//!   built on the CPU; teacher-forced logits `max |ours - cpu| / max |cpu|` <= 1e-4, and how
//!   many greedy and beam-3 captions come out identical (reported, not judged: with random
//!   weights the best two words are often closer than TF32 rounding).

use anyhow::{Context, Result};
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde_json::{Value, json};
use storyteller_decoder::{CaptionDecoder, CaptionDecoderConfig, load_pytorch};
use storyteller_encoder::{Encoder, ResNetConfig};
use storyteller_search::{BeamSearch, GreedySearch, Hypothesis};

use crate::data;
use crate::record::Recorder;
use crate::search_lstm::{D_FEATURE, VOCAB_SIZE};
use storyteller_test_support::max_abs_difference;

const REFERENCE_JSON: &str =
    include_str!("../../crates/storyteller-decoder/tests/data/decoder_reference.json");
const REFERENCE_WEIGHTS: &[u8] =
    include_bytes!("../../crates/storyteller-decoder/tests/data/decoder_reference.safetensors");

/// Runs every check on `device`, recording each; returns whether all passed.
pub fn run(device: &Device, image_size: usize, rec: &mut Recorder) -> Result<bool> {
    let cpu = Device::flex();
    let mut pass = encoder(&cpu, device, image_size, rec)?;
    pass &= decoder_reference(device, rec)?;
    pass &= decoder_anchor_size(&cpu, device, rec)?;
    Ok(pass)
}

/// A tensor's values as f32 (any float dtype), read back to the host.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// `(max |a - b|, max |a - b| / max |b|)`; a NaN or infinity in `ours` counts as infinitely
/// far (a plain `f32::max` fold would skip NaN and pass garbage).
pub fn errors(ours: &[f32], reference: &[f32]) -> (f32, f32) {
    let diff = max_abs_difference(ours, reference);
    let scale = reference.iter().map(|b| b.abs()).fold(0f32, f32::max);
    (diff, diff / scale.max(f32::MIN_POSITIVE))
}

fn encoder(cpu: &Device, device: &Device, size: usize, rec: &mut Recorder) -> Result<bool> {
    let fused = Encoder::from_network(ResNetConfig::resnet50().init(cpu))?
        .network()
        .clone();
    let x = data::normal([2, 3, size, size], 3, cpu);
    let expected = values(fused.forward(x.clone()));
    let on_device = fused.to_device(device);
    let ours = values(on_device.forward(x.to_device(device)));
    let (max_abs, max_rel) = errors(&ours, &expected);
    let pass = max_rel <= 1e-4;
    rec.emit(json!({
        "part": "parity", "check": "encoder", "batch": 2, "size": size,
        "max_abs": max_abs, "max_rel": max_rel, "tolerance_rel": 1e-4, "pass": pass,
    }))?;
    Ok(pass)
}

fn floats(v: &Value) -> Result<Vec<f32>> {
    v.as_array()
        .context("expected an array")?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32).context("expected a number"))
        .collect()
}

fn size_of(v: &Value, key: &str) -> Result<usize> {
    v[key]
        .as_u64()
        .map(|x| x as usize)
        .with_context(|| format!("sizes.{key}"))
}

/// Hypotheses equal to the reference's: tokens and flags exactly, log-probs within 1e-4.
fn same_hypotheses(expected: &Value, actual: &[Vec<Hypothesis>]) -> Result<bool> {
    let expected = expected.as_array().context("hypotheses")?;
    if expected.len() != actual.len() {
        return Ok(false);
    }
    for (e, a) in expected.iter().zip(actual) {
        let e = e.as_array().context("hypotheses of an image")?;
        if e.len() != a.len() {
            return Ok(false);
        }
        for (eh, ah) in e.iter().zip(a) {
            let tokens: Vec<u32> = serde_json::from_value(eh["tokens"].clone())?;
            let log_prob = eh["log_prob"].as_f64().context("log_prob")? as f32;
            if tokens != ah.tokens
                || eh["finished"].as_bool() != Some(ah.finished)
                || (log_prob - ah.log_prob).abs() >= 1e-4
            {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn decoder_reference(device: &Device, rec: &mut Recorder) -> Result<bool> {
    let r: Value = serde_json::from_str(REFERENCE_JSON)?;
    let sizes = &r["sizes"];
    let config = CaptionDecoderConfig::new(size_of(sizes, "vocab_size")?)
        .with_d_feature(size_of(sizes, "d_feature")?)
        .with_d_embed(size_of(sizes, "d_embed")?)
        .with_d_hidden(size_of(sizes, "d_hidden")?);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("decoder_reference.safetensors");
    std::fs::write(&path, REFERENCE_WEIGHTS)?;
    let decoder = load_pytorch(&path, &config, device)?.decoder;
    let shape: Vec<usize> = serde_json::from_value(r["features"]["shape"].clone())?;
    let features = Tensor::<2>::from_data(
        TensorData::new(floats(&r["features"]["data"])?, [shape[0], shape[1]]),
        device,
    );
    let tokens: Vec<Vec<i64>> = serde_json::from_value(r["tokens"].clone())?;
    let (batch, steps) = (tokens.len(), tokens[0].len());
    let tokens =
        Tensor::<2, Int>::from_data(TensorData::new(tokens.concat(), [batch, steps]), device);
    let logits = values(decoder.forward(features.clone(), tokens));
    let (max_abs, max_rel) = errors(&logits, &floats(&r["logits"]["data"])?);
    let logits_pass = max_abs <= 1e-5;
    let greedy = GreedySearch::new()
        .with_max_len(10)
        .search(&decoder, features.clone())?;
    let beam = BeamSearch::new()
        .with_width(3)
        .with_max_len(10)
        .with_n_best(3)
        .search(&decoder, features)?;
    let greedy_same = same_hypotheses(&r["greedy"], &greedy)?;
    let beam_same = same_hypotheses(&r["beam3"], &beam)?;
    rec.emit(json!({
        "part": "parity", "check": "decoder_reference", "against": "pytorch",
        "max_abs": max_abs, "max_rel": max_rel, "tolerance_abs": 1e-5,
        "greedy_identical": greedy_same, "beam3_identical": beam_same,
        "pass": logits_pass && greedy_same && beam_same,
    }))?;
    Ok(logits_pass && greedy_same && beam_same)
}

/// Number of images whose best hypothesis has the same tokens in both lists.
fn agreeing(a: &[Vec<Hypothesis>], b: &[Vec<Hypothesis>]) -> usize {
    a.iter()
        .zip(b)
        .filter(|(a, b)| a[0].tokens == b[0].tokens)
        .count()
}

fn decoder_anchor_size(cpu: &Device, device: &Device, rec: &mut Recorder) -> Result<bool> {
    let decoder: CaptionDecoder = CaptionDecoderConfig::new(VOCAB_SIZE)
        .with_d_feature(D_FEATURE)
        .init(cpu)?
        .materialized();
    let on_device = decoder.clone().to_device(device);
    let (batch, steps, images) = (4, 20, 8);
    let features = data::normal([batch, D_FEATURE], 5, cpu);
    let tokens = data::tokens([batch, steps], 1, VOCAB_SIZE, 9, cpu);
    let expected = values(decoder.forward(features.clone(), tokens.clone()));
    let ours = values(on_device.forward(features.to_device(device), tokens.to_device(device)));
    let (max_abs, max_rel) = errors(&ours, &expected);
    let pass = max_rel <= 1e-4;

    let features = data::normal([images, D_FEATURE], 21, cpu);
    let mut identical = serde_json::Map::new();
    for (name, width) in [("greedy", 1), ("beam3", 3)] {
        // Width 1 is greedy search (the search crate tests that they agree).
        let search = BeamSearch::new().with_width(width).with_max_len(20);
        let cpu_hyps = search.search(&decoder, features.clone())?;
        let dev_hyps = search.search(&on_device, features.clone().to_device(device))?;
        identical.insert(name.into(), json!(agreeing(&cpu_hyps, &dev_hyps)));
    }
    rec.emit(json!({
        "part": "parity", "check": "decoder_anchor_size", "batch": batch, "steps": steps,
        "max_abs": max_abs, "max_rel": max_rel, "tolerance_rel": 1e-4, "pass": pass,
        "identical_of": images, "identical": identical,
    }))?;
    Ok(pass)
}
