//! `storyteller bench`: every decoder family trained on the same features with the same
//! seed, split and budget, then scored and timed on the test split (`docs/decoders.md`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use storyteller::bench::{BenchDecoder, BenchOptions, MeasureOptions, run_bench};
use storyteller::{EncoderRef, FeatureCache, Flickr30k};

use crate::commands::training_args::TrainingArgs;

/// Arguments of `storyteller bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The dataset directory (any Flickr30k layout).
    #[arg(long, value_name = "DIR")]
    dataset: PathBuf,
    /// Its feature cache: a grid (`extract --grid G`) for every decoder (Show and Tell reads
    /// the mean of the regions), or pooled (`extract`) for all but show-attend-tell.
    #[arg(long, value_name = "F.safetensors")]
    features: PathBuf,
    /// The decoders, comma-separated: show-tell (init-inject LSTM), show-tell-par
    /// (par-inject LSTM), show-attend-tell, transformer.
    #[arg(
        long,
        default_value = "show-tell,show-tell-par,show-attend-tell,transformer",
        value_parser = parse_decoders
    )]
    decoders: DecoderList,
    /// The output directory: models/<decoder>/, bench.md, bench.json, bench.png. Running
    /// again reuses every finished row and resumes an interrupted training.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The encoder weights the features were made with, recorded in the models so they can
    /// caption image files (a file, or a name as `extract --weights` takes). Without it the
    /// models are measured on the cached features only.
    #[arg(long, value_name = "W")]
    weights: Option<PathBuf>,
    #[command(flatten)]
    training: TrainingArgs,
    /// Also stop each decoder's training after the epoch that crosses this many seconds of
    /// training (its epochs' wall time, validation included).
    #[arg(long, value_name = "SECONDS")]
    time_budget: Option<f64>,
    /// Beam width of the beam-search columns.
    #[arg(long, default_value_t = 3)]
    beam_width: usize,
    /// Images per search call in the speed columns, comma-separated.
    #[arg(long, default_value = "1,128", value_parser = parse_batch_sizes)]
    batch_sizes: BatchSizes,
    /// Images decoded per timed run.
    #[arg(long, default_value_t = 128)]
    timed_images: usize,
    /// Timed runs per search and batch size (after one warm-up run).
    #[arg(long, default_value_t = 3)]
    timing_runs: usize,
    /// Longest caption, in tokens.
    #[arg(long, default_value_t = 20)]
    max_len: usize,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: crate::device::DeviceName,
    /// Print bench.json instead of the tables.
    #[arg(long)]
    json: bool,
}

/// `--decoders`.
#[derive(Debug, Clone)]
pub struct DecoderList(Vec<BenchDecoder>);

/// Parses `--decoders`.
fn parse_decoders(list: &str) -> Result<DecoderList, String> {
    BenchDecoder::parse_list(list)
        .map(DecoderList)
        .map_err(|e| e.to_string())
}

/// `--batch-sizes`.
#[derive(Debug, Clone)]
pub struct BatchSizes(Vec<usize>);

/// Parses `--batch-sizes`: positive numbers, comma-separated.
fn parse_batch_sizes(list: &str) -> Result<BatchSizes, String> {
    list.split(',')
        .map(|size| match size.trim().parse::<usize>() {
            Ok(size) if size > 0 => Ok(size),
            _ => Err(format!(
                "expected positive batch sizes separated by commas, not {size:?}"
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(BatchSizes)
}

/// Runs `storyteller bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let device = args.device.open()?;
    let dataset = Flickr30k::open(&args.dataset)?;
    let features = FeatureCache::open(&args.features)?;
    let encoder = match &args.weights {
        None => None,
        Some(weights) => {
            let weights = crate::weights::resolve(weights)?;
            let encoder = storyteller::Encoder::load(&weights, &device)?;
            Some(EncoderRef {
                hash: encoder.weights_hash().to_owned(),
                weights: std::fs::canonicalize(&weights).unwrap_or(weights),
            })
        }
    };
    let time_budget = args
        .time_budget
        .map(|seconds| {
            anyhow::ensure!(
                seconds.is_finite() && seconds > 0.0,
                "--time-budget must be a positive number of seconds, not {seconds}"
            );
            Ok(Duration::from_secs_f64(seconds))
        })
        .transpose()?;
    let options = BenchOptions {
        decoders: args.decoders.0.clone(),
        train: args.training.config(),
        time_budget,
        measure: MeasureOptions {
            beam_width: args.beam_width,
            max_len: args.max_len,
            batch_sizes: args.batch_sizes.0.clone(),
            timed_images: args.timed_images,
            timing_runs: args.timing_runs,
        },
        encoder,
        device,
        progress: !args.json,
    };
    let report = run_bench(&dataset, &features, &options, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    print!("{}", report.markdown());
    let reused: Vec<&str> = report
        .rows
        .iter()
        .filter(|row| row.reused)
        .map(|row| row.name.as_str())
        .collect();
    if !reused.is_empty() {
        println!(
            "\nreused (finished in an earlier run, not retrained): {}",
            reused.join(", ")
        );
    }
    println!(
        "\nwrote {0}/bench.md, {0}/bench.json and {0}/bench.png",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_bad_ones_say_what_is_expected() {
        assert_eq!(parse_batch_sizes("1, 128").unwrap().0, [1, 128]);
        for bad in ["", "0", "1,x", "-2"] {
            assert!(
                parse_batch_sizes(bad).unwrap_err().contains("positive"),
                "{bad}"
            );
        }
        assert_eq!(parse_decoders("transformer").unwrap().0.len(), 1);
        let err = parse_decoders("lstm").unwrap_err();
        assert!(err.contains("show-tell-par"), "{err}");
    }
}
