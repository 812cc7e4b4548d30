//! Train a small decoder on cached features and write a model directory.
//!
//! cargo run --release -p storyteller-examples --example train -- DATASET_DIR FEATURES.safetensors WEIGHTS MODEL_DIR

use burn::tensor::Device;
use storyteller::train::{TrainConfig, TrainOptions, train};
use storyteller::{EncoderRef, FeatureCache, Flickr30k};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dataset, features, weights, out] = args.as_slice() else {
        anyhow::bail!("usage: train DATASET_DIR FEATURES.safetensors WEIGHTS MODEL_DIR");
    };
    let device = Device::default();
    let dataset = Flickr30k::open(dataset)?;
    let features = FeatureCache::open(features)?;
    // The hash of the weights must match the one the features were made with.
    let hash = storyteller::Encoder::load(weights, &device)?
        .weights_hash()
        .to_owned();
    let config = TrainConfig::new()
        .with_epochs(10)
        .with_d_embed(128)
        .with_d_hidden(256)
        .with_min_count(2);
    let summary = train(
        &config,
        TrainOptions {
            dataset: &dataset,
            features: &features,
            encoder: EncoderRef {
                weights: std::fs::canonicalize(weights)?,
                hash,
            },
            out_dir: out.as_ref(),
            resume: false,
            // This example replaces whatever model OUT already holds.
            overwrite: true,
            data_parallel: Vec::new(),
            reduction: Default::default(),
            stop_after: None,
            progress: true,
        },
        &device,
    )?;
    println!("{summary}");
    Ok(())
}
