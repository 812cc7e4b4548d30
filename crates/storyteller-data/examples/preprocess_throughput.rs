//! Times our decode + preprocess (torchvision's ImageNet eval transform) on a
//! folder of images.
//!
//! Run by `benches/preprocess_vs_torchvision.py`, which times PIL +
//! torchvision on the same files in the same run:
//!
//! ```text
//! cargo run --release -p storyteller-data --example preprocess_throughput -- DIR RUNS [CROP]
//! ```
//!
//! Prints one JSON object: images, and the median images/s of `RUNS` runs on
//! one thread and on all of rayon's threads (decode from disk, resize, crop,
//! normalise to CHW f32; files read in sorted name order).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use storyteller_data::{DecodeLimits, PreprocessConfig, decode_rgb, preprocess_batch};

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        bail!("usage: preprocess_throughput DIR RUNS [CROP]");
    }
    let runs: usize = args[2].parse().context("RUNS")?;
    let crop: u32 = args.get(3).map_or(Ok(224), |c| c.parse()).context("CROP")?;
    let mut paths: Vec<_> = std::fs::read_dir(&args[1])
        .with_context(|| format!("reading {}", args[1]))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg" || e == "png"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        bail!("no .jpg or .png in {}", args[1]);
    }
    let config = PreprocessConfig::imagenet(crop);
    let limits = DecodeLimits::default();
    let time = |threads: usize| -> Result<f64> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()?;
        let mut rates = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let start = Instant::now();
            let batch = pool.install(|| preprocess_batch(&paths, &config, &limits))?;
            let seconds = start.elapsed().as_secs_f64();
            if !batch.failed.is_empty() {
                bail!("{} files failed: {}", batch.failed.len(), batch.failed[0].1);
            }
            std::hint::black_box(&batch.data);
            rates.push(paths.len() as f64 / seconds);
        }
        Ok(median(rates))
    };
    let decode_only = {
        let mut rates = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let start = Instant::now();
            for p in &paths {
                std::hint::black_box(decode_rgb(p, &limits)?);
            }
            rates.push(paths.len() as f64 / start.elapsed().as_secs_f64());
        }
        median(rates)
    };
    let all = rayon::current_num_threads();
    let one = time(1)?;
    let many = time(all)?;
    println!(
        "{}",
        json!({"images": paths.len(), "crop": crop, "threads": all,
               "images_per_s_1_thread": one,
               "decode_only_images_per_s_1_thread": decode_only, "images_per_s_all_threads": many})
    );
    Ok(())
}
