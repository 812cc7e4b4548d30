//! Parity with PyTorch: the network on fixed tensors (preprocessing bypassed) against
//! torchvision's outputs for the same seeded random weights, in f32 on the CPU.
//!
//! Measure: `max |ours - torch| / max |torch|` over every element of a case; the bound is
//! 1e-4. Each test prints its worst figure (`cargo test -- --nocapture`).

use burn::tensor::Device;
use storyteller_encoder::{Encoder, ResNetConfig, WeightFormat};
use storyteller_test_support::encoder_reference::{Reference, max_relative_error};
use storyteller_test_support::fixtures::encoder_fixture_dir as fixture_dir;

const TOLERANCE: f32 = 1e-4;

const CASES: [&str; 8] = [
    "b2_64",
    "b1_32",
    "b1_45x61",
    "b1_224",
    "photo_astronaut",
    "photo_chelsea",
    "photo_coffee",
    "photo_rocket",
];

#[test]
fn pth_network_matches_pytorch() {
    let Some(dir) = fixture_dir("pth_network_matches_pytorch") else {
        return;
    };
    let device = Device::flex();
    let reference = Reference::load(&dir);
    let mut net = ResNetConfig::resnet50().init(&device);
    let report = net.load_weights(dir.join("resnet50-random.pth")).unwrap();
    assert_eq!(report.format, WeightFormat::Pytorch);
    assert_eq!(report.applied, 265);
    assert_eq!(report.unused.len(), 2 + 53, "{:?}", report.unused);
    assert!(report.unused.contains(&"fc.weight".to_string()));
    assert!(report.unused.contains(&"fc.bias".to_string()));
    assert!(
        report
            .unused
            .iter()
            .all(|k| k.starts_with("fc.") || k.ends_with(".num_batches_tracked"))
    );
    assert_eq!(
        net.weights_hash().unwrap(),
        reference.metadata["weights_sha256"],
        "the hash must match the Python recomputation"
    );

    // Unfused network, 64 px: pooled vector and feature map.
    let x = reference.tensor::<4>("input_b2_64", &device);
    let err = max_relative_error(net.forward(x.clone()), reference.values("output_b2_64"));
    println!("unfused b2_64 forward: max relative error {err:.3e}");
    assert!(err <= TOLERANCE, "unfused forward: {err:e}");
    let map = net.forward_features(x);
    assert_eq!(map.dims(), [2, 2048, 2, 2]);
    let err = max_relative_error(map, reference.values("features_b2_64"));
    println!("unfused b2_64 forward_features: max relative error {err:.3e}");
    assert!(err <= TOLERANCE, "unfused forward_features: {err:e}");

    // Fused (BatchNorm folded) encoder on every case, photos included.
    let encoder = Encoder::from_network(net).unwrap();
    let mut worst = 0f32;
    for case in CASES {
        let x = reference.tensor::<4>(&format!("input_{case}"), &device);
        let err = max_relative_error(
            encoder.forward(x),
            reference.values(&format!("output_{case}")),
        );
        println!("fused {case}: max relative error {err:.3e}");
        assert!(err <= TOLERANCE, "fused {case}: {err:e}");
        worst = worst.max(err);
    }
    println!("worst fused max relative error: {worst:.3e}");
}

#[test]
fn safetensors_and_burnpack_give_the_same_network() {
    let Some(dir) = fixture_dir("safetensors_and_burnpack_give_the_same_network") else {
        return;
    };
    let device = Device::flex();
    let reference = Reference::load(&dir);
    let encoder = Encoder::load(dir.join("resnet50-random.safetensors"), &device).unwrap();
    let report = encoder.report().unwrap();
    assert_eq!(report.format, WeightFormat::Safetensors);
    assert_eq!(report.unused.len(), 2 + 53);
    assert_eq!(encoder.weights_hash(), reference.metadata["weights_sha256"]);
    let x = reference.tensor::<4>("input_b2_64", &device);
    let err = max_relative_error(encoder.forward(x.clone()), reference.values("output_b2_64"));
    println!("safetensors fused b2_64: max relative error {err:.3e}");
    assert!(err <= TOLERANCE, "{err:e}");

    // Burn's own format: save the unfused network, reload, same hash and outputs.
    let mut net = ResNetConfig::resnet50().init(&device);
    net.load_weights(dir.join("resnet50-random.safetensors"))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let record = tmp.path().join("resnet50.bpk");
    net.save_burnpack(&record).unwrap();
    let reloaded = Encoder::load(&record, &device).unwrap();
    assert_eq!(reloaded.report().unwrap().format, WeightFormat::Burnpack);
    assert!(reloaded.report().unwrap().unused.is_empty());
    assert_eq!(reloaded.weights_hash(), encoder.weights_hash());
    let err = max_relative_error(reloaded.forward(x), reference.values("output_b2_64"));
    assert!(err <= TOLERANCE, "{err:e}");
}

#[test]
fn grid_features_match_pytorch_adaptive_pooling() {
    let Some(dir) = fixture_dir("grid_features_match_pytorch_adaptive_pooling") else {
        return;
    };
    let device = Device::flex();
    let reference = Reference::load(&dir);
    let encoder = Encoder::load(dir.join("resnet50-random.pth"), &device).unwrap();
    assert_eq!(encoder.name(), "ResNet-50");
    // Exact division (2 of 2), uneven bins (3 of 2 and 3 of 7), 7 of 7 as the tutorial's.
    for (case, grid) in [("b2_64", 2), ("b2_64", 3), ("b1_224", 7), ("b1_224", 3)] {
        let input = reference.tensor::<4>(&format!("input_{case}"), &device);
        let ours = encoder.forward_grid(input, grid);
        let [_, regions, width] = ours.dims();
        assert_eq!((regions, width), (grid * grid, 2048));
        let err = max_relative_error(ours, reference.values(&format!("grid{grid}_{case}")));
        println!("grid {grid} of {case}: relative error {err:.2e}");
        assert!(err <= TOLERANCE, "grid {grid} of {case}: {err}");
    }
}

#[test]
fn resnet101_and_resnet152_match_pytorch() {
    let Some(dir) = fixture_dir("resnet101_and_resnet152_match_pytorch") else {
        return;
    };
    let device = Device::flex();
    for (arch, name) in [("resnet101", "ResNet-101"), ("resnet152", "ResNet-152")] {
        let reference = Reference::load_file(&dir.join(format!("{arch}-reference.safetensors")));
        let encoder = Encoder::load(dir.join(format!("{arch}-random.pth")), &device).unwrap();
        assert_eq!(encoder.name(), name);
        assert_eq!(
            encoder.weights_hash(),
            reference.metadata["weights_sha256"],
            "{arch}: the hash Python recomputes"
        );
        let input = reference.tensor::<4>("input_b2_64", &device);
        let err = max_relative_error(
            encoder.forward(input.clone()),
            reference.values("output_b2_64"),
        );
        println!("{arch}: pooled relative error {err:.2e}");
        assert!(err <= TOLERANCE, "{arch} pooled: {err}");
        let err = max_relative_error(
            encoder.forward_grid(input, 2),
            reference.values("grid2_b2_64"),
        );
        println!("{arch}: grid 2 relative error {err:.2e}");
        assert!(err <= TOLERANCE, "{arch} grid: {err}");
    }
    // A ResNet-50 network still refuses a deeper file rather than taking its first blocks.
    let mut net = ResNetConfig::resnet50().init(&device);
    let err = net
        .load_weights(dir.join("resnet101-random.pth"))
        .unwrap_err();
    assert!(
        matches!(&err, storyteller_encoder::EncoderError::UnexpectedTensors { key, .. } if key.starts_with("layer3.")),
        "{err}"
    );
}
