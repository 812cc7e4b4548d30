//! The wgpu backend against PyTorch, on whatever Vulkan/Metal/DX12 adapter the machine has —
//! in CI, Mesa's lavapipe (Vulkan on the CPU, `mesa-vulkan-drivers`, installed by `.ci/run`),
//! so that a wgpu regression fails CI:
//!
//! - the ResNet-50 encoder, loaded from the torchvision-format fixture straight onto the
//!   device (weights import, hashing and BatchNorm folding run there too), on 64 px images;
//! - the caption decoder's teacher-forced logits, greedy and beam-3 search, against the
//!   PyTorch reference of `crates/storyteller-decoder/tests/data`.
//!
//! The same tolerances as the CPU tests: lavapipe computes in true f32. The first forward
//! of each is slow (every kernel is compiled by Mesa's LLVM on first use).
//!
//! Without an adapter the tests print why and skip, unless `STORYTELLER_REQUIRE_FIXTURES=1`
//! (as `scripts/test.sh` sets), which makes that a failure.

#[path = "../../crates/storyteller-encoder/tests/common/mod.rs"]
mod encoder_fixture;

use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use encoder_fixture::{Reference, fixture_dir, max_relative_error};
use serde_json::Value;
use storyteller_decoder::{CaptionDecoderConfig, load_pytorch};
use storyteller_encoder::Encoder;
use storyteller_search::{BeamSearch, GreedySearch, Hypothesis};

/// The wgpu device, acquired once per process; `None` (after a visible message) when the
/// machine has no adapter and skipping is allowed.
fn wgpu_device(test: &str) -> Option<Device> {
    static DEVICE: OnceLock<Result<Device, String>> = OnceLock::new();
    let device = DEVICE.get_or_init(|| {
        let device = Device::wgpu_options()
            .init()
            .map_err(|err| err.to_string())?;
        if let Some(id) = device.identity() {
            println!("wgpu adapter: {} ({})", id.name, id.fingerprint);
        }
        Ok(device)
    });
    match device {
        Ok(device) => Some(device.clone()),
        Err(err) => {
            let message = format!(
                "SKIPPED {test}: no wgpu adapter ({err}); on Debian install \
                 mesa-vulkan-drivers for lavapipe"
            );
            if std::env::var("STORYTELLER_REQUIRE_FIXTURES").as_deref() == Ok("1") {
                panic!("{message}, and STORYTELLER_REQUIRE_FIXTURES=1");
            }
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "{message}");
            None
        }
    }
}

#[test]
fn encoder_on_wgpu_matches_pytorch() {
    let Some(dir) = fixture_dir("encoder_on_wgpu_matches_pytorch") else {
        return;
    };
    let Some(device) = wgpu_device("encoder_on_wgpu_matches_pytorch") else {
        return;
    };
    let reference = Reference::load(&dir);
    let start = Instant::now();
    let encoder = Encoder::load(dir.join("resnet50-random.safetensors"), &device).unwrap();
    assert_eq!(encoder.weights_hash(), reference.metadata["weights_sha256"]);
    println!(
        "load + hash + fold on wgpu: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let x = reference.tensor::<4>("input_b2_64", &device);
    for run in ["first", "second"] {
        let start = Instant::now();
        let err = max_relative_error(encoder.forward(x.clone()), reference.values("output_b2_64"));
        println!(
            "{run} forward, b2_64: max relative error {err:.3e} in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        assert!(err <= 1e-4, "wgpu encoder: max relative error {err:e}");
    }
}

const DECODER_DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../crates/storyteller-decoder/tests/data"
);

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn check_search(expected: &Value, actual: &[Vec<Hypothesis>], name: &str) {
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
                "{name} image {image}"
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

#[test]
fn decoder_and_search_on_wgpu_match_pytorch() {
    let Some(device) = wgpu_device("decoder_and_search_on_wgpu_match_pytorch") else {
        return;
    };
    let text = std::fs::read_to_string(format!("{DECODER_DATA}/decoder_reference.json")).unwrap();
    let r: Value = serde_json::from_str(&text).unwrap();
    let size = |key: &str| r["sizes"][key].as_u64().unwrap() as usize;
    let config = CaptionDecoderConfig::new(size("vocab_size"))
        .with_d_feature(size("d_feature"))
        .with_d_embed(size("d_embed"))
        .with_d_hidden(size("d_hidden"));
    let decoder = load_pytorch(
        format!("{DECODER_DATA}/decoder_reference.safetensors"),
        &config,
        &device,
    )
    .unwrap()
    .decoder;
    let shape: Vec<usize> = serde_json::from_value(r["features"]["shape"].clone()).unwrap();
    let features = Tensor::<2>::from_data(
        TensorData::new(floats(&r["features"]["data"]), [shape[0], shape[1]]),
        &device,
    );
    let tokens: Vec<Vec<i64>> = serde_json::from_value(r["tokens"].clone()).unwrap();
    let (batch, steps) = (tokens.len(), tokens[0].len());
    let tokens =
        Tensor::<2, Int>::from_data(TensorData::new(tokens.concat(), [batch, steps]), &device);

    let start = Instant::now();
    let logits: Vec<f32> = decoder
        .forward(features.clone(), tokens)
        .into_data()
        .try_into_vec()
        .unwrap();
    let expected = floats(&r["logits"]["data"]);
    assert_eq!(logits.len(), expected.len());
    let worst = logits
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "teacher-forced logits on wgpu: largest difference from PyTorch {worst:e} ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    assert!(worst <= 1e-5, "largest logit difference {worst}");

    let start = Instant::now();
    let greedy = GreedySearch::new()
        .with_max_len(10)
        .search(&decoder, features.clone())
        .unwrap();
    check_search(&r["greedy"], &greedy, "greedy");
    let beam = BeamSearch::new()
        .with_width(3)
        .with_max_len(10)
        .with_n_best(3)
        .search(&decoder, features)
        .unwrap();
    check_search(&r["beam3"], &beam, "beam3");
    println!(
        "greedy + beam-3 on wgpu: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}
