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
    /// Synthetic images to generate (default: the demo's tuned setting).
    #[arg(long)]
    images: Option<usize>,
    /// Maximum training epochs (default: the demo's tuned setting).
    #[arg(long)]
    epochs: Option<usize>,
    /// Side of the synthetic images in pixels (default: the demo's tuned setting).
    #[arg(long)]
    image_size: Option<u32>,
    /// The encoder's input crop in pixels (default: the demo's tuned setting).
    #[arg(long)]
    crop: Option<u32>,
    /// How the image feature enters the LSTM: init, par or both (default: the demo's
    /// tuned setting).
    #[arg(long, value_parser = crate::commands::train::parse_conditioning)]
    conditioning: Option<storyteller::Conditioning>,
    /// Skip the blind baseline (a second model trained on features shuffled across images,
    /// the yardstick of the grounding table).
    #[arg(long)]
    no_blind: bool,
    /// Encoder weights (torchvision .pth/.safetensors or .bpk, or the name `resnet50` /
    /// `resnet50-v2`, fetched into the cache); default: a seeded random ResNet-50.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Seed of everything.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: crate::device::DeviceName,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `storyteller demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    let device = args.device.open()?;
    let defaults = DemoConfig::default();
    let mut train = defaults.train.clone();
    if let Some(epochs) = args.epochs {
        train = train.with_epochs(epochs);
    }
    if let Some(conditioning) = args.conditioning {
        train = train.with_conditioning(conditioning);
    }
    let config = DemoConfig {
        images: args.images.unwrap_or(defaults.images),
        image_size: args.image_size.unwrap_or(defaults.image_size),
        crop: args.crop.unwrap_or(defaults.crop),
        seed: args.seed,
        weights: args
            .weights
            .as_deref()
            .map(crate::weights::resolve)
            .transpose()?,
        train,
        blind_baseline: !args.no_blind,
        progress: !args.json,
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
    if let Some((summary, blind)) = &report.blind {
        println!("blind baseline (features shuffled across images): {summary}");
        print!("{}", crate::commands::evaluate::table(blind));
    }
    for (name, real) in &report.evaluation.grounding {
        let blind = report
            .blind
            .as_ref()
            .and_then(|(_, b)| b.grounding.iter().find(|(n, _)| n == name));
        println!("\ngrounding, {name} (chance: the same captions on shuffled scenes)");
        match blind {
            Some((_, blind)) => print!("{}", real.compare_table("model", blind, "blind")),
            None => print!("{}", real.table()),
        }
    }
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
