//! Greedy and beam search against a reference written in PyTorch, on the same random LSTM.
//!
//! The fixture `tests/data/beam_reference.json` (weights, features, expected hypotheses) is
//! written by `scripts/beam_reference.py`; `scripts/fixtures.d/50-search.sh` regenerates it
//! and fails if it drifted.

mod common;

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::tensor::Tensor;
use common::{LstmDecoder, device};
use serde_json::Value;
use storyteller_search::{BeamSearch, GreedySearch, Search};

const TOLERANCE: f32 = 1e-4;

fn fixture() -> Result<Option<Value>> {
    let path = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("tests/data/beam_reference.json");
    if !path.exists() {
        let message = format!(
            "fixture {} is missing: run crates/storyteller-search/scripts/beam_reference.py",
            path.display()
        );
        if std::env::var("STORYTELLER_REQUIRE_FIXTURES").as_deref() == Ok("1") {
            anyhow::bail!(message);
        }
        eprintln!("SKIPPED: {message}");
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?,
    ))
}

fn floats(value: &Value) -> Vec<f32> {
    value["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|v| v.as_f64().expect("number") as f32)
        .collect()
}

fn shape(value: &Value) -> Vec<usize> {
    value["shape"]
        .as_array()
        .expect("shape array")
        .iter()
        .map(|v| v.as_u64().expect("dim") as usize)
        .collect()
}

/// The case's search; greedy cases also through the fixed-shape loop (finished mask read
/// every 3 steps).
fn searches_of(case: &Value) -> Vec<Search> {
    let max_len = case["max_len"].as_u64().unwrap() as usize;
    match case["search"].as_str().unwrap() {
        "greedy" => vec![
            GreedySearch::new().with_max_len(max_len).into(),
            GreedySearch::new()
                .with_max_len(max_len)
                .with_sync_every(Some(3))
                .into(),
        ],
        _ => vec![
            BeamSearch::new()
                .with_width(case["width"].as_u64().unwrap() as usize)
                .with_max_len(max_len)
                .with_length_penalty(case["length_penalty"].as_f64().unwrap() as f32)
                .with_n_best(case["n_best"].as_u64().unwrap() as usize)
                .into(),
        ],
    }
}

#[test]
fn matches_the_pytorch_reference() -> Result<()> {
    let Some(fixture) = fixture()? else {
        return Ok(());
    };
    let weights = &fixture["weights"];
    let decoder = LstmDecoder::from_torch(|name| (floats(&weights[name]), shape(&weights[name])));
    let [images, d_feature] = shape(&fixture["features"])[..] else {
        anyhow::bail!("features must be 2-D");
    };
    let features = Tensor::<1>::from_data(floats(&fixture["features"]).as_slice(), &device())
        .reshape([images, d_feature]);

    let cases = fixture["cases"].as_array().context("cases")?;
    let mut compared = 0;
    for (case, search) in cases
        .iter()
        .flat_map(|case| searches_of(case).into_iter().map(move |s| (case, s)))
    {
        let got = search.search(&decoder, features.clone())?;
        let expected = case["results"].as_array().context("results")?;
        assert_eq!(got.len(), expected.len());
        for (image, (got, expected)) in got.iter().zip(expected).enumerate() {
            let expected = expected.as_array().unwrap();
            assert_eq!(got.len(), expected.len(), "{case:?} image {image}");
            for (g, e) in got.iter().zip(expected) {
                let tokens: Vec<u32> = e["tokens"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_u64().unwrap() as u32)
                    .collect();
                let context = format!("{} image {image}: got {g:?}, expected {e}", case["search"]);
                assert_eq!(g.tokens, tokens, "{context}");
                assert_eq!(g.finished, e["finished"].as_bool().unwrap(), "{context}");
                let log_prob = e["log_prob"].as_f64().unwrap() as f32;
                let score = e["score"].as_f64().unwrap() as f32;
                assert!((g.log_prob - log_prob).abs() < TOLERANCE, "{context}");
                assert!((g.score - score).abs() < TOLERANCE, "{context}");
                compared += 1;
            }
        }
    }
    assert!(compared > 50, "compared only {compared} hypotheses");
    Ok(())
}
