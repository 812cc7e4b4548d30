//! The wgpu backend against PyTorch, on whatever Vulkan/Metal/DX12 adapter the machine has —
//! in CI, Mesa's lavapipe (Vulkan on the CPU, `mesa-vulkan-drivers`, installed by the test
//! command), so that a wgpu regression fails CI:
//!
//! - the ResNet-50 encoder, loaded from the torchvision-format fixture straight onto the
//!   device (weights import, hashing and BatchNorm folding run there too), on 64 px images;
//! - the caption decoder's teacher-forced logits, greedy and beam-3 search, against the
//!   PyTorch reference of `crates/storyteller-decoder/tests/data`.
//!
//! And the fused operations' kernels against their composites on the same device: the LSTM
//! cell forward (1e-5) and backward (1e-4), greedy search's best token (tokens equal,
//! log-probabilities 1e-5).
//!
//! The same tolerances as the CPU tests: lavapipe computes in true f32. The first forward
//! of each is slow (every kernel is compiled by Mesa's LLVM on first use).
//!
//! Without an adapter the tests print why and skip, unless `STORYTELLER_REQUIRE_FIXTURES=1`
//! (as `scripts/test.sh` sets), which makes that a failure.

use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use storyteller_decoder::fused_cell;
use storyteller_encoder::Encoder;
use storyteller_search::best_token;
use storyteller_test_support::compare::max_abs_difference;
use storyteller_test_support::decoder_reference;
use storyteller_test_support::encoder_reference::{Reference, max_relative_error};
use storyteller_test_support::fixtures::encoder_fixture_dir as fixture_dir;

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

#[test]
fn decoder_and_search_on_wgpu_match_pytorch() {
    let Some(device) = wgpu_device("decoder_and_search_on_wgpu_match_pytorch") else {
        return;
    };
    let r = decoder_reference::Reference::load(&decoder_reference::data_dir(), &device);
    let start = Instant::now();
    let worst = r.logit_error();
    println!(
        "teacher-forced logits on wgpu: largest difference from PyTorch {worst:e} ({:.1} s)",
        start.elapsed().as_secs_f64()
    );
    assert!(worst <= 1e-5, "largest logit difference {worst}");

    let start = Instant::now();
    r.check_greedy_and_beam3();
    println!(
        "greedy + beam-3 on wgpu: {:.1} s",
        start.elapsed().as_secs_f64()
    );
}

fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn fused_lstm_cell_on_wgpu_matches_its_composite() {
    let Some(device) = wgpu_device("fused_lstm_cell_on_wgpu_matches_its_composite") else {
        return;
    };
    assert!(fused_cell::has_fused_cell(&device));
    let (rows, d_hidden) = (6, 37);
    let normal = Distribution::Normal(0.0, 3.0);
    // Strided inputs, as the teacher-forced loop and the state narrowing hand them over.
    let inputs = |device: &Device| {
        let x = Tensor::<2>::random([rows, 4 * d_hidden + 5], normal, device).narrow(
            1,
            3,
            4 * d_hidden,
        );
        let r = Tensor::<2>::random([4 * d_hidden, rows], normal, device).transpose();
        let c =
            Tensor::<2>::random([rows, 2 * d_hidden], normal, device).narrow(1, d_hidden, d_hidden);
        (x, r, c)
    };
    let (x, r, c) = inputs(&device);
    let (hidden, cell) = fused_cell::lstm_cell(x.clone(), r.clone(), c.clone());
    let fused = values(Tensor::cat(vec![hidden, cell], 1));
    let reference = values(fused_cell::lstm_cell_composite(
        x.clone(),
        r.clone(),
        c.clone(),
    ));
    let forward = max_abs_difference(&fused, &reference);
    assert!(forward <= 1e-5, "forward: {forward}");

    // Gradients through two steps, so that the cell state's gradient arrives both directly
    // and through the hidden state.
    let train = device.clone().autodiff();
    let weights = Tensor::<2>::random([rows, 2 * d_hidden], Distribution::Normal(0.0, 1.0), &train);
    let gradients = |fused: bool| {
        let tracked = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), &train).require_grad();
        let (x, r, c) = (tracked(&x), tracked(&r), tracked(&c));
        let state = if fused {
            let (hidden, cell) = fused_cell::lstm_cell(x.clone(), r.clone(), c.clone());
            Tensor::cat(vec![hidden, cell], 1)
        } else {
            fused_cell::lstm_cell_composite(x.clone(), r.clone(), c.clone())
        };
        let next = fused_cell::lstm_cell_composite(
            x.clone() * 0.5,
            r.clone() * -0.25,
            state.clone().narrow(1, d_hidden, d_hidden),
        );
        let loss = (state * weights.clone()).sum() + next.sum();
        let grads = loss.backward();
        [x, r, c].map(|t| values(t.grad(&grads).expect("tracked")))
    };
    let (fused, reference) = (gradients(true), gradients(false));
    for (name, (ours, theirs)) in ["input gates", "recurrent gates", "cell"]
        .iter()
        .zip(fused.iter().zip(&reference))
    {
        let difference = max_abs_difference(ours, theirs);
        assert!(difference <= 1e-4, "{name} gradient: {difference}");
        assert!(
            ours.iter().any(|g| *g != 0.0),
            "{name}: an all-zero gradient"
        );
    }
}

#[test]
fn fused_best_token_on_wgpu_matches_its_composite() {
    let Some(device) = wgpu_device("fused_best_token_on_wgpu_matches_its_composite") else {
        return;
    };
    assert!(best_token::has_fused_best_token(&device));
    // Vocabularies below, at and above the cube's 256 threads, not multiples of it.
    for vocab in [5, 256, 8003] {
        let rows = 9;
        let mut logits: Vec<f32> = (0..rows * vocab)
            .map(|i| ((i * 7919 % 1009) as f32 / 1009.0 - 0.5) * 30.0)
            .collect();
        // A tie (the first index wins), a row whose best token is the last column, a row of
        // -inf but one column.
        logits[vocab + vocab / 3] = 40.0;
        logits[vocab + vocab - 1] = 40.0;
        logits[3 * vocab - 1] = 50.0;
        for v in &mut logits[4 * vocab..5 * vocab] {
            *v = f32::NEG_INFINITY;
        }
        logits[4 * vocab + vocab / 2] = 1.0;
        let data = TensorData::new(logits, [rows, vocab]);
        let (best, token) = best_token::best_token(Tensor::<2>::from_data(data.clone(), &device));
        let (want_best, want_token) =
            best_token::best_token_composite(Tensor::<2>::from_data(data, &Device::flex()));
        let tokens =
            |t: Tensor<1, Int>| t.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
        let (token, want_token) = (tokens(token), tokens(want_token));
        assert_eq!(token, want_token, "vocab {vocab}");
        assert_eq!(
            token[1],
            (vocab / 3) as i64,
            "vocab {vocab}: ties go to the first index"
        );
        assert_eq!(token[2], (vocab - 1) as i64);
        assert_eq!(token[4], (vocab / 2) as i64);
        let difference = max_abs_difference(&values(best), &values(want_best));
        assert!(
            difference <= 1e-5,
            "vocab {vocab}: log-probabilities differ by {difference}"
        );
    }
}
