//! `storyteller demo`: synthesise, extract, train, evaluate and caption, on the CPU default.

use std::path::PathBuf;

use clap::Args;
use storyteller::demo::{DemoConfig, run_demo};

/// Arguments of `storyteller demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the dataset, features, model and evaluation.
    #[arg(long, default_value = "storyteller-demo")]
    out: PathBuf,
    /// Synthetic images to generate.
    #[arg(long, default_value_t = 400)]
    images: usize,
    /// Maximum training epochs.
    #[arg(long, default_value_t = 25)]
    epochs: usize,
    /// Encoder weights (torchvision .pth/.safetensors or .bpk); default: a seeded random ResNet-50.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of everything.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `storyteller demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let device = crate::device::parse(&args.device)?;
    let defaults = DemoConfig::default();
    let config = DemoConfig {
        images: args.images,
        seed: args.seed,
        weights: args.weights.clone(),
        train: defaults.train.clone().with_epochs(args.epochs),
        progress: !args.json,
        ..defaults
    };
    let report = run_demo(&args.out, &config, &device)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let features = if report.extracted > 0 {
        format!(
            "{} features at {:.1} images/s",
            report.extracted, report.extract_images_per_second
        )
    } else {
        "features reused from an earlier run".to_owned()
    };
    println!(
        "\n{} images in {}; {features}",
        report.images,
        report.out.display()
    );
    println!("training: {}", report.train);
    print!("{}", crate::commands::evaluate::table(&report.evaluation));
    println!("sample captions (beam 3):");
    for (id, caption) in &report.samples {
        let references = report
            .evaluation
            .per_image
            .iter()
            .find(|i| &i.image_id == id)
            .map(|i| i.references[0].clone());
        println!("  {id}: {}", caption.text);
        if let Some(reference) = references {
            println!("  {:width$}  reference: {reference}", "", width = id.len());
        }
    }
    println!(
        "model: {}  (try: storyteller caption --model {} IMAGE)",
        report.out.join("model").display(),
        report.out.join("model").display()
    );
    Ok(())
}
