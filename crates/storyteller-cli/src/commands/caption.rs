//! `storyteller caption`: captions for image files.

use std::path::PathBuf;

use clap::Args;
use storyteller::Captioner;

use crate::commands::search_args::SearchArgs;

/// Arguments of `storyteller caption`.
#[derive(Debug, Args)]
pub struct CaptionArgs {
    /// The model directory (`storyteller train`).
    #[arg(long, value_name = "MODEL_DIR")]
    model: PathBuf,
    /// Images to caption.
    #[arg(required = true, value_name = "IMAGE")]
    images: Vec<PathBuf>,
    #[command(flatten)]
    search: SearchArgs,
    /// Show the N best captions of each image (beam search).
    #[arg(long, default_value_t = 1, value_name = "N")]
    n_best: usize,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: crate::device::DeviceName,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `storyteller caption`; a file that cannot be read is reported and the others go on.
pub fn run(args: &CaptionArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.n_best >= 1, "--n-best must be at least 1");
    let device = args.device.open()?;
    let captioner = Captioner::load(&args.model, &device)?;
    let search = args.search.search(&captioner.config().beam, args.n_best);
    let captioner = captioner.with_search(search.clone())?;
    let mut results = Vec::new();
    let mut failures = 0;
    for path in &args.images {
        let ranked = storyteller::decode_image(path).and_then(|image| {
            Ok(captioner
                .ranked(std::slice::from_ref(&image), &search)?
                .remove(0))
        });
        match ranked {
            Ok(ranked) => {
                if !args.json {
                    println!("{}", path.display());
                    for caption in &ranked {
                        println!("  {:8.3}  {}", caption.score, caption.text);
                    }
                }
                results.push(
                    serde_json::json!({ "image": path.to_string_lossy(), "captions": ranked }),
                );
            }
            Err(err) => {
                failures += 1;
                eprintln!("error: {err}");
                results.push(
                    serde_json::json!({ "image": path.to_string_lossy(), "error": err.to_string() }),
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    }
    anyhow::ensure!(
        failures == 0,
        "{failures} of {} images could not be captioned",
        args.images.len()
    );
    Ok(())
}
