//! `storyteller train`: a decoder from cached features.

use std::path::PathBuf;

use clap::Args;

use crate::device::{Backend, DeviceList, DeviceName};
use storyteller::Conditioning;
use storyteller::model_dir::reference_path;
use storyteller::train::{GradientReduction, Selection, TrainConfig, TrainOptions, train};
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
    /// Maximum epochs.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Captions per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Initial learning rate (Adam).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Halve the learning rate every N epochs (0: never).
    #[arg(long, default_value_t = 5)]
    lr_decay_every: usize,
    /// Early stopping: epochs without a better validation score (the `--selection` metric).
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Seed of initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Minimum word count for the vocabulary.
    #[arg(long, default_value_t = 5)]
    min_count: usize,
    /// The decoder: show-tell (an LSTM started from the pooled feature; features from
    /// `extract`) or show-attend-tell (soft attention over a grid of regions; features from
    /// `extract --grid G`).
    #[arg(long, default_value = "show-tell", value_parser = parse_kind)]
    decoder: DecoderKind,
    /// Attention MLP width (show-attend-tell).
    #[arg(long, default_value_t = 512)]
    d_attention: usize,
    /// Weight of the doubly stochastic attention regulariser (show-attend-tell; 0 turns it
    /// off).
    #[arg(long, default_value_t = 1.0)]
    alpha_c: f64,
    /// Embedding width.
    #[arg(long, default_value_t = 256)]
    d_embed: usize,
    /// LSTM width.
    #[arg(long, default_value_t = 512)]
    d_hidden: usize,
    /// LSTM layers.
    #[arg(long, default_value_t = 1)]
    layers: usize,
    /// Dropout probability.
    #[arg(long, default_value_t = 0.5)]
    dropout: f64,
    /// Validate on at most this many images.
    #[arg(long)]
    val_images: Option<usize>,
    /// How the image feature enters the LSTM: init (it sets the initial state: the seed's
    /// Show-and-Tell model), par (it enters every step) or both.
    #[arg(long, default_value = "both", value_parser = parse_conditioning)]
    conditioning: Conditioning,
    /// The validation score that picks the best epoch: cider-d, bleu4 or val-loss.
    #[arg(long, default_value = "cider-d", value_parser = parse_selection)]
    selection: Selection,
    /// PCA-whiten the features to this many dimensions before the decoder (0: only
    /// standardise each dimension, as the seed's model did).
    #[arg(long, default_value_t = 256)]
    whiten: usize,
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
    DecoderKind::parse(value)
        .ok_or_else(|| format!("expected show-tell or show-attend-tell, not {value:?}"))
}

/// Parses `--selection`.
pub fn parse_selection(value: &str) -> Result<Selection, String> {
    Selection::parse(value)
        .ok_or_else(|| format!("expected cider-d, bleu4 or val-loss, not {value:?}"))
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
    let config = TrainConfig::new()
        .with_epochs(args.epochs)
        .with_batch_size(args.batch_size)
        .with_learning_rate(args.lr)
        .with_lr_decay_every(args.lr_decay_every)
        .with_patience(args.patience)
        .with_seed(args.seed)
        .with_min_count(args.min_count)
        .with_kind(args.decoder)
        .with_d_attention(args.d_attention)
        .with_alpha_c(args.alpha_c)
        .with_d_embed(args.d_embed)
        .with_d_hidden(args.d_hidden)
        .with_n_layers(args.layers)
        .with_dropout(args.dropout)
        .with_val_images(args.val_images)
        .with_conditioning(args.conditioning)
        .with_selection(args.selection)
        .with_blind(args.blind)
        .with_d_whitened((args.whiten > 0).then_some(args.whiten));
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
