//! `storyteller train`: a decoder from cached features.

use std::path::PathBuf;

use clap::Args;

use crate::commands::training_args::TrainingArgs;
use crate::device::{Backend, DeviceList, DeviceName};
use storyteller::Conditioning;
use storyteller::model_dir::reference_path;
use storyteller::train::{GradientReduction, TrainOptions, train};
use storyteller::{DecoderKind, EncoderRef, FeatureCache, Flickr30k};

/// Arguments of `storyteller train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The dataset directory (any Flickr30k layout).
    #[arg(long, value_name = "DIR")]
    dataset: PathBuf,
    /// Its feature cache (`storyteller extract`).
    #[arg(long, value_name = "F.safetensors")]
    features: PathBuf,
    /// The encoder weights the features were made with (recorded in the model so it can
    /// caption images): a file, or a name as `extract --weights` takes.
    #[arg(long, value_name = "W")]
    weights: PathBuf,
    /// The model directory to write.
    #[arg(long, value_name = "MODEL_DIR")]
    out: PathBuf,
    #[command(flatten)]
    training: TrainingArgs,
    /// The decoder: show-tell (an LSTM started from the pooled feature; features from
    /// `extract`), show-attend-tell (soft attention over a grid of regions; features from
    /// `extract --grid G`) or transformer (cross-attention over the grid, or the pooled
    /// feature).
    #[arg(long, default_value = "show-tell", value_parser = parse_kind)]
    decoder: DecoderKind,
    /// How the image feature enters the LSTM: init (it sets the initial state: the seed's
    /// Show-and-Tell model), par (it enters every step) or both.
    #[arg(long, default_value = "both", value_parser = parse_conditioning)]
    conditioning: Conditioning,
    /// Train the blind baseline: features shuffled across images every epoch, so the model
    /// cannot see the image (compare its scores and grounding with a real model's).
    #[arg(long)]
    blind: bool,
    /// Continue from the checkpoint in MODEL_DIR.
    #[arg(long)]
    resume: bool,
    /// Replace the model already in MODEL_DIR (refused without this flag). The old model
    /// stays usable until the new run's first epoch publishes its replacement.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Stop after this epoch (resume later with --resume).
    #[arg(long, value_name = "EPOCH")]
    stop_after: Option<usize>,
    /// Backend: cpu, wgpu or cuda[:N]; a comma-separated list (cuda:0,cuda:1) trains
    /// data-parallel, splitting every batch across the devices.
    #[arg(long, default_value = "cpu")]
    device: DeviceList,
    /// How data-parallel workers combine gradients: auto (all-reduce between distinct CUDA
    /// devices, gather otherwise), gather (sum on the first device) or all-reduce (Burn's
    /// NCCL collective; CUDA only).
    #[arg(long, default_value = "auto", value_parser = parse_reduce)]
    reduce: ReduceChoice,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// `--reduce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceChoice {
    /// All-reduce between distinct CUDA devices, gather otherwise.
    Auto,
    /// Always gather.
    Gather,
    /// Always all-reduce.
    AllReduce,
}

/// Parses `--reduce`.
pub fn parse_reduce(value: &str) -> Result<ReduceChoice, String> {
    match value {
        "auto" => Ok(ReduceChoice::Auto),
        "gather" => Ok(ReduceChoice::Gather),
        "all-reduce" => Ok(ReduceChoice::AllReduce),
        other => Err(format!(
            "expected auto, gather or all-reduce, not {other:?}"
        )),
    }
}

/// The gradient reduction for the `--device` list `names`.
fn reduction(choice: ReduceChoice, names: &[DeviceName]) -> anyhow::Result<GradientReduction> {
    let distinct: std::collections::BTreeSet<String> =
        names.iter().map(|n| n.to_string()).collect();
    let all_cuda = names.iter().all(|n| n.backend() == Backend::Cuda);
    let collective = all_cuda && distinct.len() == names.len() && names.len() > 1;
    match choice {
        ReduceChoice::Gather => Ok(GradientReduction::Gather),
        ReduceChoice::Auto if collective => Ok(GradientReduction::AllReduce),
        ReduceChoice::Auto => Ok(GradientReduction::Gather),
        ReduceChoice::AllReduce => {
            anyhow::ensure!(
                collective,
                "--reduce all-reduce needs two or more distinct CUDA devices (Burn 0.22.1 has \
                 collectives only on CUDA), not --device {}",
                names
                    .iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            Ok(GradientReduction::AllReduce)
        }
    }
}

/// Parses `--conditioning`.
pub fn parse_conditioning(value: &str) -> Result<Conditioning, String> {
    Conditioning::parse(value).ok_or_else(|| format!("expected init, par or both, not {value:?}"))
}

/// Parses `--decoder`.
pub fn parse_kind(value: &str) -> Result<DecoderKind, String> {
    DecoderKind::parse(value).ok_or_else(|| {
        format!("expected show-tell, show-attend-tell or transformer, not {value:?}")
    })
}

/// Runs `storyteller train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let names = &args.device.0;
    let reduction = reduction(args.reduce, names)?;
    let mut devices = names
        .iter()
        .map(DeviceName::open)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let device = devices.remove(0);
    let dataset = Flickr30k::open(&args.dataset)?;
    let features = FeatureCache::open(&args.features)?;
    let weights = crate::weights::resolve(&args.weights)?;
    let encoder = storyteller::Encoder::load(&weights, &device)?;
    let config = args
        .training
        .config()
        .with_kind(args.decoder)
        .with_conditioning(args.conditioning)
        .with_blind(args.blind);
    let summary = train(
        &config,
        TrainOptions {
            dataset: &dataset,
            features: &features,
            encoder: EncoderRef {
                weights: reference_path(&weights, &args.out),
                hash: encoder.weights_hash().to_owned(),
            },
            out_dir: &args.out,
            resume: args.resume,
            overwrite: args.overwrite,
            data_parallel: devices,
            reduction,
            stop_after: args.stop_after,
            progress: !args.json,
        },
        &device,
    )?;
    for warning in &summary.warnings {
        eprintln!("warning: {warning}");
    }
    if args.json {
        let json = serde_json::json!({
            "epochs": summary.epochs,
            "best_epoch": summary.best_epoch,
            "best_val_bleu4": summary.best_bleu4,
            "selection": summary.selection.name(),
            "best_score": summary.best_score,
            "stopped_early": summary.stopped_early,
            "history": summary.history,
            "model": args.out,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{summary}; model in {}", args.out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `kind[:index]` names, without the compiled-backend check.
    fn names(list: &[&str]) -> Vec<DeviceName> {
        list.iter()
            .map(|name| {
                let (kind, index) = match name.split_once(':') {
                    Some((kind, index)) => (kind, Some(index.parse().unwrap())),
                    None => (*name, None),
                };
                let backend = match kind {
                    "cpu" => Backend::Cpu,
                    "wgpu" => Backend::Wgpu,
                    _ => Backend::Cuda,
                };
                DeviceName::unchecked(backend, index)
            })
            .collect()
    }

    #[test]
    fn auto_all_reduces_only_between_distinct_cuda_devices() {
        let auto = |list: &[&str]| reduction(ReduceChoice::Auto, &names(list)).unwrap();
        assert_eq!(auto(&["cuda:0", "cuda:1"]), GradientReduction::AllReduce);
        assert_eq!(auto(&["cuda:0"]), GradientReduction::Gather);
        assert_eq!(auto(&["cuda:0", "cuda:0"]), GradientReduction::Gather);
        assert_eq!(auto(&["cpu", "cpu"]), GradientReduction::Gather);
        assert_eq!(auto(&["wgpu:0", "wgpu:1"]), GradientReduction::Gather);
        assert_eq!(
            reduction(ReduceChoice::Gather, &names(&["cuda:0", "cuda:1"])).unwrap(),
            GradientReduction::Gather
        );
        let err = reduction(ReduceChoice::AllReduce, &names(&["cpu", "cpu"])).unwrap_err();
        assert!(err.to_string().contains("CUDA"), "{err}");
        assert!(parse_reduce("nccl").is_err());
    }
}
