//! Preprocessing parity with torchvision on scikit-image's sample photos.
//! Fixtures: crates/storyteller-data/scripts/make_fixtures.py.

mod common;

use safetensors::SafeTensors;
use storyteller_data::{DecodeLimits, PreprocessConfig, preprocess_file};

#[test]
fn preprocessing_matches_torchvision() {
    let Some(dir) = common::fixtures("preprocessing_matches_torchvision") else {
        return;
    };
    let bytes = std::fs::read(dir.join("preprocess_reference.safetensors")).unwrap();
    let reference = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = reference.names().into_iter().map(str::to_owned).collect();
    names.sort();
    assert!(names.len() >= 10, "{names:?}");
    let mut worst_mean: f64 = 0.0;
    for name in names {
        let (file, crop) = name.rsplit_once('@').unwrap();
        let crop: u32 = crop.parse().unwrap();
        let view = reference.tensor(&name).unwrap();
        assert_eq!(view.shape(), [3, crop as usize, crop as usize]);
        let expected: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let config = PreprocessConfig::imagenet(crop);
        let ours = preprocess_file(dir.join(file), &config, &DecodeLimits::default()).unwrap();
        assert_eq!(ours.len(), expected.len());
        let diffs: Vec<f64> = ours
            .iter()
            .zip(&expected)
            .map(|(a, b)| f64::from((a - b).abs()))
            .collect();
        let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
        let max = diffs.iter().copied().fold(0.0, f64::max);
        let exact = diffs.iter().filter(|d| **d < 1e-6).count() as f64 / diffs.len() as f64;
        println!(
            "{name:<28} mean |diff| {mean:.2e}  max {max:.2e}  identical {:.2}%",
            100.0 * exact
        );
        assert!(mean < 0.01, "{name}: mean abs diff {mean} >= 0.01");
        if file.ends_with(".png") {
            // Lossless input: only float rounding may differ.
            assert!(max < 1e-5, "{name}: max abs diff {max}");
        }
        worst_mean = worst_mean.max(mean);
    }
    println!("worst mean abs diff per value: {worst_mean:.2e} (bound 1e-2)");
}
