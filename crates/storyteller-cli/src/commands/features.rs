//! `storyteller features merge`: combine the shard caches of `extract --shard I/N`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use storyteller::merge_shards;

/// Arguments of `storyteller features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    command: FeaturesCommand,
}

#[derive(Debug, Subcommand)]
enum FeaturesCommand {
    /// Merge every shard of a sharded extraction into one feature cache (refusing shards of
    /// other encoder weights, preprocessing or image lists, duplicates and missing shards).
    Merge(MergeArgs),
}

/// Arguments of `storyteller features merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard caches (`extract --shard I/N --out ...`), in any order.
    #[arg(required = true, value_name = "SHARD")]
    shards: Vec<PathBuf>,
    /// The merged cache to write.
    #[arg(long, value_name = "F.safetensors")]
    out: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `storyteller features`.
pub fn run(args: &FeaturesArgs) -> anyhow::Result<()> {
    match &args.command {
        FeaturesCommand::Merge(merge) => run_merge(merge),
    }
}

fn run_merge(args: &MergeArgs) -> anyhow::Result<()> {
    let summary = merge_shards(&args.shards, &args.out)?;
    if args.json {
        let json = serde_json::json!({
            "out": args.out,
            "shards": summary.shards,
            "rows": summary.rows,
            "images": summary.images,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!(
            "{}: {} rows from {} shards, {} images listed (an image that could not be decoded has no row)",
            args.out.display(),
            summary.rows,
            summary.shards,
            summary.images
        );
    }
    Ok(())
}
