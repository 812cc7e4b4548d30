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
    /// Encoder weights: torchvision ResNet-50, -101 or -152 `.pth` or `.safetensors` (the depth
    /// is read from the file), a Burn `.bpk`, or a name: `resnet50`, `resnet101`, `resnet152`,
    /// each with `-v2` (fetched into the cache, see `storyteller weights`).
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
    /// Spatial features for attention decoders: the last feature map pooled to a G x G
    /// grid (G*G rows of 2048 per image; 7 at 224 px as in Show, Attend and Tell) instead
    /// of the pooled vector.
    #[arg(long, value_name = "G", value_parser = clap::value_parser!(u16).range(1..=64))]
    grid: Option<u16>,
    /// Store 16-bit floats (half the disk; Flickr30k at 7x7 is about 6.4 GB instead of 12.8).
    #[arg(long)]
    f16: bool,
    /// Print the summary as JSON (and no progress bar).
    #[arg(long)]
    json: bool,
}

/// Every image file under `dir`, sorted, with its path relative to `dir` as id.
///
/// Symbolic links to folders are followed, each folder once (a link back to a folder
/// already listed, such as a loop, is skipped with a warning). A name that is not valid
/// UTF-8 keeps its invalid bytes as `\xNN` escapes in the id, so no two files share one.
fn image_files(dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut found = Vec::new();
    let mut visited = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(current) = stack.pop() {
        let real = std::fs::canonicalize(&current)
            .with_context(|| format!("{}: cannot resolve the folder", current.display()))?;
        if !visited.insert(real.clone()) {
            eprintln!(
                "warning: skipped {}: it leads to {}, which is already listed (a symbolic link loop or a second link)",
                current.display(),
                real.display()
            );
            continue;
        }
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
                let id = image_id(path.strip_prefix(dir).unwrap_or(&path));
                found.push((id, path));
            }
        }
    }
    found.sort();
    if let Some(pair) = found.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        anyhow::bail!(
            "{} and {} would both have the id {:?}; rename one",
            pair[0].1.display(),
            pair[1].1.display(),
            pair[0].0
        );
    }
    Ok(found)
}

/// The id of an image: its relative path with `/` separators; bytes that are not UTF-8
/// become `\xNN` escapes.
fn image_id(relative: &Path) -> String {
    #[cfg(unix)]
    let text = {
        use std::os::unix::ffi::OsStrExt;
        let mut text = String::new();
        for chunk in relative.as_os_str().as_bytes().utf8_chunks() {
            text.push_str(chunk.valid());
            for byte in chunk.invalid() {
                text.push_str(&format!("\\x{byte:02x}"));
            }
        }
        text
    };
    #[cfg(not(unix))]
    let text = relative.to_string_lossy().into_owned();
    text.replace(std::path::MAIN_SEPARATOR, "/")
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
        grid: args.grid.map(usize::from),
        storage: if args.f16 {
            storyteller::Storage::F16
        } else {
            storyteller::Storage::F32
        },
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
    if let Some(first) = summary.recomputed.first() {
        eprintln!(
            "note: encoded {} cached image(s) again because their files changed since they were \
             encoded (first: {first:?})",
            summary.recomputed.len()
        );
    }
    if args.json {
        let json = serde_json::json!({
            "out": args.out,
            "shard": args.shard.map(|s| s.to_string()),
            "encoder": encoder.weights_hash(),
            "preprocess": preprocess,
            "grid": args.grid,
            "storage": if args.f16 { "f16" } else { "f32" },
            "extracted": summary.extracted,
            "already_cached": summary.already_cached,
            "recomputed": summary.recomputed,
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
            "{}{shard}: {} rows ({} encoded now at {:.1} images/s, {} of them changed since \
             cached, {} already cached, {} unreadable skipped); encoder {}",
            args.out.display(),
            summary.rows,
            summary.extracted,
            summary.images_per_second(),
            summary.recomputed.len(),
            summary.already_cached,
            summary.failed.len(),
            encoder.weights_hash(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_link_loops_are_listed_once() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("photos");
        touch(&root.join("a.jpg"));
        touch(&root.join("sub/b.png"));
        std::os::unix::fs::symlink(&root, root.join("sub/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("sub"), root.join("again")).unwrap();
        let ids: Vec<String> = image_files(&root)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // `sub` is listed once, either directly or through `again`.
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(ids.contains(&"a.jpg".to_owned()), "{ids:?}");
        assert!(ids.iter().any(|id| id.ends_with("/b.png")), "{ids:?}");
    }

    #[cfg(unix)]
    #[test]
    fn names_that_are_not_utf8_get_distinct_ids() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for name in [&b"caf\xe9.jpg"[..], b"caf\xe8.jpg", b"caf\xc3\xa9.jpg"] {
            touch(&root.join(std::ffi::OsStr::from_bytes(name)));
        }
        let ids: Vec<String> = image_files(root)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["caf\\xe8.jpg", "caf\\xe9.jpg", "café.jpg"]);
    }

    #[test]
    fn ids_use_forward_slashes() {
        let relative: PathBuf = ["a", "b", "c.jpg"].iter().collect();
        assert_eq!(image_id(&relative), "a/b/c.jpg");
    }
}
