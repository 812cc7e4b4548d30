//! `storyteller import`: a model directory from a decoder trained in PyTorch.

use std::path::PathBuf;

use clap::Args;
use storyteller::model_dir::reference_path;
use storyteller::{
    DecoderKind, EncoderRef, ImportOptions, PreprocessConfig, PytorchDecoder, import_pytorch,
};

/// Arguments of `storyteller import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The decoder's state_dict as `.pth` or `.safetensors`: the PyTorch Show, Attend and
    /// Tell tutorial's `DecoderWithAttention`, or an `nn.TransformerDecoder` captioner
    /// (docs/decoders.md). A checkpoint that pickles whole modules must be exported as a
    /// state_dict first (docs/attention.md).
    #[arg(long, value_name = "FILE")]
    state_dict: PathBuf,
    /// The word map (`{word: index}` with `<pad>`, `<start>`, `<end>`, `<unk>`; the
    /// tutorial's `WORDMAP_*.json`).
    #[arg(long, value_name = "FILE")]
    word_map: PathBuf,
    /// The decoder in the file: show-attend-tell (the tutorial's) or transformer.
    #[arg(long, default_value = "show-attend-tell", value_parser = parse_imported_kind)]
    decoder: DecoderKind,
    /// Side of the feature grid the decoder was trained on (show-attend-tell; the tutorial
    /// pools to 14x14; a transformer's grid is read from its region embedding).
    #[arg(long, default_value_t = 14)]
    grid: usize,
    /// Attention heads per layer (transformer; not stored in the weights).
    #[arg(long, default_value_t = 8)]
    heads: usize,
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

/// Parses `--decoder`: the kinds a PyTorch file can hold.
fn parse_imported_kind(value: &str) -> Result<DecoderKind, String> {
    match DecoderKind::parse(value) {
        Some(kind @ (DecoderKind::ShowAttendTell | DecoderKind::Transformer)) => Ok(kind),
        _ => Err(format!(
            "expected show-attend-tell or transformer, not {value:?} (a show-tell decoder \
             imports with `storyteller weights`, see docs/weights.md)"
        )),
    }
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
    let decoder = match args.decoder {
        DecoderKind::Transformer => PytorchDecoder::Transformer {
            n_heads: args.heads,
        },
        _ => PytorchDecoder::ShowAttendTell { grid: args.grid },
    };
    let summary = import_pytorch(
        &ImportOptions {
            state_dict: &args.state_dict,
            word_map: &args.word_map,
            decoder,
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
    // The decoder's sizes, flat: {"kind": ..., "vocab_size": ..., "d_hidden": ...}.
    let mut sizes = serde_json::to_value(&summary.config)?;
    let fields = sizes
        .get_mut("decoder")
        .and_then(|d| d.as_object_mut())
        .map(std::mem::take)
        .unwrap_or_default();
    if args.json {
        let mut json = serde_json::json!({
            "model": args.out.to_string_lossy(),
            "kind": summary.config.kind(),
            "unused_keys": summary.unused,
        });
        json.as_object_mut().expect("an object").extend(fields);
        println!("{json}");
    } else {
        let described: Vec<String> = fields
            .iter()
            .filter(|(_, v)| v.is_number() || v.is_boolean())
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "imported a {} decoder into {}: {}",
            summary.config.kind(),
            args.out.display(),
            described.join(", ")
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
