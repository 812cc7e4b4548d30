//! Encode every image of a dataset into a feature cache with a ResNet-50.
//!
//! cargo run --release -p storyteller-examples --example extract_features -- DATASET_DIR WEIGHTS OUT.safetensors

use burn::tensor::Device;
use storyteller::{Encoder, ExtractOptions, Flickr30k, PreprocessConfig, extract_features};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dataset, weights, out] = args.as_slice() else {
        anyhow::bail!("usage: extract_features DATASET_DIR WEIGHTS OUT.safetensors");
    };
    let device = Device::default();
    let dataset = Flickr30k::open(dataset)?;
    let encoder = Encoder::load(weights, &device)?;
    let images: Vec<_> = dataset
        .images()
        .iter()
        .map(|i| (i.id.clone(), i.path.clone()))
        .collect();
    let summary = extract_features(
        &encoder,
        &images,
        &PreprocessConfig::default(),
        out.as_ref(),
        &ExtractOptions::default(),
        &device,
        &mut |done, todo| eprint!("\r{} / {todo}", done.extracted + done.failed.len()),
    )?;
    eprintln!();
    println!(
        "{} images encoded ({:.1}/s), {} already cached, {} unreadable; {} rows in {out}",
        summary.extracted,
        summary.images_per_second(),
        summary.already_cached,
        summary.failed.len(),
        summary.rows
    );
    Ok(())
}
