//! `storyteller weights`: torchvision's ResNet weights, listed and fetched into the cache.

use clap::{Args, Subcommand};

use crate::weights::{KNOWN, base_url, cache_dir, fetch, lookup};

/// Arguments of `storyteller weights`.
#[derive(Debug, Args)]
pub struct WeightsArgs {
    #[command(subcommand)]
    command: WeightsCommand,
}

#[derive(Debug, Subcommand)]
enum WeightsCommand {
    /// Download torchvision's ImageNet weights into the cache (resuming an interrupted
    /// download, verifying the SHA-256 prefix in the file name) and print the path.
    Fetch(FetchArgs),
    /// The known weights files, and which are in the cache.
    List,
}

/// Arguments of `storyteller weights fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Which network.
    #[arg(value_parser = ["resnet50", "resnet101", "resnet152"])]
    model: String,
    /// torchvision's IMAGENET1K_V2 weights (the 2021 recipe) instead of V1.
    #[arg(long)]
    v2: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `storyteller weights`.
pub fn run(args: &WeightsArgs) -> anyhow::Result<()> {
    match &args.command {
        WeightsCommand::Fetch(fetch_args) => run_fetch(fetch_args),
        WeightsCommand::List => {
            let dir = cache_dir()?;
            println!("cache: {}", dir.display());
            for weights in &KNOWN {
                let cached = if dir.join(weights.file).exists() {
                    "cached"
                } else {
                    ""
                };
                println!(
                    "{:<14} {:<24} {:<34} {cached}",
                    weights.name, weights.file, weights.torchvision
                );
            }
            Ok(())
        }
    }
}

fn run_fetch(args: &FetchArgs) -> anyhow::Result<()> {
    let weights = lookup(&args.model, args.v2).expect("the parser allows known models only");
    let dir = cache_dir()?;
    let fetched = fetch(weights, &base_url(), &dir, !args.json)?;
    if args.json {
        let json = serde_json::json!({
            "name": weights.name,
            "file": weights.file,
            "torchvision": weights.torchvision,
            "path": fetched.path(),
            "downloaded": matches!(fetched, crate::weights::Fetched::Downloaded { .. }),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{}", fetched.path().display());
    }
    Ok(())
}
