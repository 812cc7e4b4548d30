//! `storyteller import`: a model directory from a decoder trained in PyTorch.

use std::path::PathBuf;

use clap::Args;
use storyteller::model_dir::reference_path;
use storyteller::{EncoderRef, PreprocessConfig, TutorialImportOptions, import_tutorial};

/// Arguments of `storyteller import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The decoder's state_dict from the PyTorch Show, Attend and Tell tutorial
    /// (`DecoderWithAttention`), as `.pth` or `.safetensors`. The tutorial's checkpoint
    /// pickles whole modules; export the state_dict first (docs/attention.md).
    #[arg(long, value_name = "FILE")]
    state_dict: PathBuf,
    /// The tutorial's word map (`WORDMAP_*.json`, `{word: index}`).
    #[arg(long, value_name = "FILE")]
    word_map: PathBuf,
    /// Side of the feature grid the decoder was trained on (the tutorial pools to 14x14).
    #[arg(long, default_value_t = 14)]
    grid: usize,
    /// The encoder weights it was trained with (torchvision ResNet-50/101/152 `.pth`,
    /// `.safetensors`, `.bpk`, or a name as `extract --weights` takes; the tutorial uses
    /// ResNet-101).
    #[arg(long, value_name = "W")]
    weights: PathBuf,
    /// Image side the encoder sees (the tutorial resizes to 256x256); images are resized
    /// on the shorter side and centre-cropped to this.
    #[arg(long, default_value_t = 256)]
    image_size: u32,
    /// The model directory to write.
    #[arg(long, value_name = "MODEL_DIR")]
    out: PathBuf,
    /// Replace a model already in MODEL_DIR.
    #[arg(long)]
    overwrite: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `storyteller import`.
pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let device = storyteller::Device::default();
    let weights = crate::weights::resolve(&args.weights)?;
    let encoder = storyteller::Encoder::load(&weights, &device)?;
    let preprocess = PreprocessConfig {
        resize: args.image_size,
        ..PreprocessConfig::imagenet(args.image_size)
    };
    let summary = import_tutorial(
        &TutorialImportOptions {
            state_dict: &args.state_dict,
            word_map: &args.word_map,
            grid: args.grid,
            encoder: EncoderRef {
                weights: reference_path(&weights, &args.out),
                hash: encoder.weights_hash().to_owned(),
            },
            encoder_width: encoder.d_feature(),
            preprocess,
            out_dir: &args.out,
            overwrite: args.overwrite,
        },
        &device,
    )?;
    let config = &summary.config;
    if args.json {
        let json = serde_json::json!({
            "model": args.out.to_string_lossy(),
            "vocab_size": summary.vocab_size,
            "grid": config.grid,
            "d_feature": config.d_feature,
            "d_embed": config.d_embed,
            "d_attention": config.d_attention,
            "d_hidden": config.d_hidden,
            "unused_keys": summary.unused,
        });
        println!("{json}");
    } else {
        println!(
            "imported a show-attend-tell decoder into {}: {} tokens, {}x{} grid of {}-d regions, \
             embedding {}, attention {}, LSTM {}",
            args.out.display(),
            summary.vocab_size,
            config.grid,
            config.grid,
            config.d_feature,
            config.d_embed,
            config.d_attention,
            config.d_hidden
        );
        if !summary.unused.is_empty() {
            eprintln!(
                "warning: {} keys of {} are not decoder weights and were ignored: {}",
                summary.unused.len(),
                args.state_dict.display(),
                summary.unused.join(", ")
            );
        }
    }
    Ok(())
}
