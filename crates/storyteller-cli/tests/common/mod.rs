//! Helpers the CLI's end-to-end tests share: run the binary, require success, write a
//! seeded random ResNet-50 (the stand-in for pretrained weights).
#![allow(dead_code)] // each test binary uses a part

use std::path::Path;
use std::process::{Command, Output};

use burn::tensor::Device;
use storyteller_encoder::ResNetConfig;

/// Runs `storyteller ARGS`.
pub fn storyteller(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storyteller"))
        .args(args)
        .output()
        .expect("the storyteller binary runs")
}

/// Runs `storyteller ARGS` and fails the test, showing stderr, unless it succeeds.
pub fn succeed(args: &[&str]) -> Output {
    let run = storyteller(args);
    assert!(
        run.status.success(),
        "storyteller {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

/// A path as a command-line argument.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes a ResNet-50 with weights drawn from `seed` to `out` (burnpack).
pub fn random_encoder(out: &Path, seed: u64) {
    let device = Device::flex();
    device.seed(seed);
    ResNetConfig::resnet50()
        .init(&device)
        .save_burnpack(out)
        .unwrap();
}
