//! `storyteller`: the Neural Storyteller command line.

use clap::{Parser, Subcommand};

mod commands;
mod refs_hyps;

/// Image captioning in pure Rust: score captions (and, as the project grows,
/// extract features, train, caption, evaluate and serve).
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
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Score(args) => commands::score::run(&args),
        Command::Synth(args) => commands::synth::run(&args),
        Command::Dataset(args) => commands::dataset::run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
