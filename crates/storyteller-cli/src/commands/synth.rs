//! `storyteller synth`: write the synthetic shapes dataset.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use storyteller_data::{Layout, SynthConfig, generate};

/// Arguments of `storyteller synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Directory to write the dataset into (created if needed).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of images (each gets five captions).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    images: u64,
    /// Annotation layout: Karpathy JSON, original token file or Kaggle CSV.
    #[arg(long, value_enum, default_value_t = LayoutArg::Karpathy)]
    layout: LayoutArg,
    /// Image width and height in pixels.
    #[arg(long, value_name = "PX", default_value_t = 128, value_parser = clap::value_parser!(u32).range(16..=4096))]
    size: u32,
    /// Seed: the same seed writes the same files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

/// Layout on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LayoutArg {
    Karpathy,
    Token,
    Kaggle,
}

/// Runs `storyteller synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let layout = match args.layout {
        LayoutArg::Karpathy => Layout::Karpathy,
        LayoutArg::Token => Layout::Token,
        LayoutArg::Kaggle => Layout::Kaggle,
    };
    let config = SynthConfig {
        images: usize::try_from(args.images)?,
        size: args.size,
        seed: args.seed,
        layout,
        ..SynthConfig::default()
    };
    let bar = ProgressBar::new(args.images);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images {elapsed} (eta {eta})")
            .expect("the template is valid"),
    );
    let report = generate(&args.out, &config, &|_| bar.inc(1))
        .with_context(|| format!("writing the synthetic dataset into {}", args.out.display()))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "wrote {} images and {} captions ({} layout) to {}\n  annotations: {}\n  images:      {}\n  scenes:      {} (scene truth for the grounding metrics)",
            report.images,
            report.captions,
            report.layout,
            report.dir.display(),
            report.annotations.display(),
            report.image_dir.display(),
            report.scenes.display()
        );
    }
    Ok(())
}
