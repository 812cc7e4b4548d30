//! `storyteller extract`: encode a dataset's images (or any folder of images) into a
//! feature cache.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use storyteller::{Encoder, ExtractOptions, Flickr30k, PreprocessConfig, Shard, extract_features};

/// File extensions `--images` picks up (case-insensitive).
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Arguments of `storyteller extract`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("input").required(true).args(["dataset", "images"])))]
pub struct ExtractArgs {
    /// A dataset directory (any Flickr30k layout); every image it lists is encoded.
    #[arg(long, value_name = "DIR")]
    dataset: Option<PathBuf>,
    /// Any folder of images (.jpg, .jpeg, .png, searched recursively); the id of an
    /// image is its path relative to DIR.
    #[arg(long, value_name = "DIR")]
    images: Option<PathBuf>,
    /// Encoder weights: torchvision ResNet-50 `.pth` or `.safetensors`, a Burn `.bpk`, or the
    /// name `resnet50` / `resnet50-v2` (fetched into the cache, see `storyteller weights`).
    #[arg(long, value_name = "W")]
    weights: PathBuf,
    /// The feature cache to write (resumed when it exists and was made with the same
    /// weights and preprocessing).
    #[arg(long, value_name = "F.safetensors")]
    out: PathBuf,
    /// Images per encoder forward.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Centre-crop size; images are resized to `size * 256 / 224` first (torchvision's
    /// ImageNet transform at 224).
    #[arg(long, default_value_t = 224)]
    image_size: u32,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: crate::device::DeviceName,
    /// Encode only shard I of N (0 <= I < N) into a shard cache; run every shard (one
    /// process per GPU or machine) and combine them with `storyteller features merge`. An
    /// image's shard depends on its id only, so adding images moves none.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    /// Print the summary as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
}

/// Every image file under `dir`, sorted, with its path relative to `dir` as id.
fn image_files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .with_context(|| format!("{}: cannot list the folder", current.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("{}: cannot list the folder", current.display()))?
                .path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                let id = path
                    .strip_prefix(dir)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                found.push((id, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Runs `storyteller extract`.
pub fn run(args: &ExtractArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        args.image_size >= 32,
        "--image-size {} is too small: ResNet-50 needs at least 32 px",
        args.image_size
    );
    let device = args.device.open()?;
    let images = match (&args.dataset, &args.images) {
        (Some(dir), _) => Flickr30k::open(dir)?
            .images()
            .iter()
            .map(|i| (i.id.clone(), i.path.clone()))
            .collect(),
        (None, Some(dir)) => image_files(dir)?,
        (None, None) => unreachable!("clap requires --dataset or --images"),
    };
    anyhow::ensure!(!images.is_empty(), "no images to encode");
    let encoder = Encoder::load(&crate::weights::resolve(&args.weights)?, &device)?;
    let preprocess = PreprocessConfig::imagenet(args.image_size);
    let options = ExtractOptions {
        batch_size: args.batch_size,
        shard: args.shard,
        ..ExtractOptions::default()
    };

    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(images.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, {per_sec}, eta {eta} {msg}")
            .expect("a valid progress template"),
    );
    let summary = extract_features(
        &encoder,
        &images,
        &preprocess,
        &args.out,
        &options,
        &device,
        &mut |summary, todo| {
            bar.set_length((summary.already_cached + todo) as u64);
            bar.set_position(
                (summary.already_cached + summary.extracted + summary.failed.len()) as u64,
            );
            if !summary.failed.is_empty() {
                bar.set_message(format!("({} unreadable)", summary.failed.len()));
            }
        },
    )?;
    bar.finish_and_clear();

    for (path, reason) in &summary.failed {
        eprintln!("warning: skipped {}: {reason}", path.display());
    }
    if args.json {
        let json = serde_json::json!({
            "out": args.out,
            "shard": args.shard.map(|s| s.to_string()),
            "encoder": encoder.weights_hash(),
            "preprocess": preprocess,
            "extracted": summary.extracted,
            "already_cached": summary.already_cached,
            "skipped": summary.failed.len(),
            "rows": summary.rows,
            "seconds": summary.seconds,
            "images_per_second": summary.images_per_second(),
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        let shard = args
            .shard
            .map_or(String::new(), |s| format!(" (shard {s})"));
        println!(
            "{}{shard}: {} rows ({} encoded now at {:.1} images/s, {} already cached, {} unreadable skipped); encoder {}",
            args.out.display(),
            summary.rows,
            summary.extracted,
            summary.images_per_second(),
            summary.already_cached,
            summary.failed.len(),
            encoder.weights_hash(),
        );
    }
    Ok(())
}
