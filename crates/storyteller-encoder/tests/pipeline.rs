//! Full pipeline against PyTorch: image file -> storyteller-data's decoding and
//! torchvision-identical preprocessing -> encoder, compared with torchvision's
//! `Resize(256), CenterCrop(224), ToTensor, Normalize` + ResNet-50 on the same PNG files.
//!
//! Measures: the preprocessed tensor, `max |ours - torch|` (absolute, in normalised
//! units; storyteller-data's preprocessing is bit-exact on PNG, its stated tolerance
//! is 1e-5 here), and the features, `max |ours - torch| / max |torch|` <= 1e-4.

use burn::tensor::{Device, Tensor, TensorData};
use storyteller_data::{DecodeLimits, PreprocessConfig, preprocess_file};
use storyteller_encoder::Encoder;
use storyteller_test_support::encoder_reference::{Reference, max_relative_error};
use storyteller_test_support::fixtures::encoder_fixture_dir as fixture_dir;
use storyteller_test_support::max_abs_difference;

const PHOTOS: [&str; 4] = ["astronaut", "chelsea", "coffee", "rocket"];

#[test]
fn image_files_to_features_match_torchvision() {
    let Some(dir) = fixture_dir("image_files_to_features_match_torchvision") else {
        return;
    };
    let device = Device::flex();
    let reference = Reference::load(&dir);
    let encoder = Encoder::load(dir.join("resnet50-random.pth"), &device).unwrap();
    let config = PreprocessConfig::imagenet(224);
    let mut worst_pixels = 0f32;
    let mut worst_features = 0f32;
    for photo in PHOTOS {
        let path = dir.join(format!("photo_{photo}.png"));
        let pixels = preprocess_file(&path, &config, &DecodeLimits::default()).unwrap();
        let torch_pixels = reference.values(&format!("input_photo_{photo}"));
        assert_eq!(pixels.len(), torch_pixels.len());
        let pixel_err = max_abs_difference(&pixels, torch_pixels);
        let x = Tensor::<4>::from_data(TensorData::new(pixels, [1, 3, 224, 224]), &device);
        let err = max_relative_error(
            encoder.forward(x),
            reference.values(&format!("output_photo_{photo}")),
        );
        println!(
            "{photo}: preprocessing max abs error {pixel_err:.3e}, features max relative error {err:.3e}"
        );
        assert!(
            pixel_err <= 1e-5,
            "{photo}: preprocessing differs by {pixel_err:e}"
        );
        assert!(err <= 1e-4, "{photo}: features differ by {err:e}");
        worst_pixels = worst_pixels.max(pixel_err);
        worst_features = worst_features.max(err);
    }
    println!("worst: preprocessing {worst_pixels:.3e}, features {worst_features:.3e}");
}
