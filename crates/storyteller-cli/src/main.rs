//! `storyteller`: the Neural Storyteller command line.

use clap::{Parser, Subcommand};

mod commands;
mod device;
mod refs_hyps;
mod serve;
mod weights;

/// Image captioning in pure Rust on Burn: a ResNet-50 encoder, an LSTM decoder, beam
/// search and captioning metrics that match pycocoevalcap.
#[derive(Debug, Parser)]
#[command(name = "storyteller", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score hypotheses against references: BLEU-1..4, precision, recall, F1, ROUGE-L, CIDEr-D.
    Score(commands::score::ScoreArgs),
    /// Write the synthetic shapes dataset in a Flickr30k layout.
    Synth(commands::synth::SynthArgs),
    /// Show what a dataset holds: images, captions, splits, skipped lines, vocabulary size.
    Dataset(commands::dataset::DatasetArgs),
    /// The main job on the CPU default: synthesise a dataset, extract features, train, evaluate, caption.
    Demo(commands::demo::DemoArgs),
    /// Encode a dataset's images (or any folder of images) into a feature cache.
    Extract(commands::extract::ExtractArgs),
    /// Feature caches: merge the shards of a sharded extraction.
    Features(commands::features::FeaturesArgs),
    /// Train a caption decoder on cached features; writes a model directory.
    Train(commands::train::TrainArgs),
    /// Import a decoder trained in PyTorch (the Show, Attend and Tell tutorial) as a model directory.
    Import(commands::import::ImportArgs),
    /// Caption image files with a trained model.
    Caption(commands::caption::CaptionArgs),
    /// Score a model on a dataset split with every metric, greedy and beam search.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Train every decoder family on the same features and compare quality, grounding, speed and memory.
    Bench(commands::bench::BenchArgs),
    /// torchvision's ResNet weights: fetch them into the cache, list them.
    Weights(commands::weights::WeightsArgs),
    /// The captioning web app and its JSON API (docs/serve.md).
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score(args) => commands::score::run(&args),
        Command::Synth(args) => commands::synth::run(&args),
        Command::Dataset(args) => commands::dataset::run(&args),
        Command::Demo(args) => commands::demo::run(&args),
        Command::Extract(args) => commands::extract::run(&args),
        Command::Features(args) => commands::features::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Import(args) => commands::import::run(&args),
        Command::Caption(args) => commands::caption::run(&args),
        Command::Evaluate(args) => commands::evaluate::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
        Command::Weights(args) => commands::weights::run(&args),
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
