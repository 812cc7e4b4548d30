//! The wgpu backend against PyTorch, on whatever Vulkan/Metal/DX12 adapter the machine has —
//! in CI, Mesa's lavapipe (Vulkan on the CPU, `mesa-vulkan-drivers`, installed by the test
//! command), so that a wgpu regression fails CI:
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

use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::Device;
use storyteller_encoder::Encoder;
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
