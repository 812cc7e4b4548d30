//! `storyteller caption`: captions for image files.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use storyteller::attention_view::{contact_sheet, encoder_view, word_overlays};
use storyteller::{Caption, Captioner, PreprocessConfig, RgbImage};

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
    /// Write where an attention model looked into DIR: for each image a folder with one
    /// PNG per word of its best caption (the encoder's view with the word's attention map
    /// over it) and `sheet.png`, the whole caption on one contact sheet. With --json, the
    /// weights are in the output too.
    #[arg(long, value_name = "DIR")]
    attention: Option<PathBuf>,
}

/// Runs `storyteller caption`; a file that cannot be read is reported and the others go on.
pub fn run(args: &CaptionArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.n_best >= 1, "--n-best must be at least 1");
    let device = args.device.open()?;
    let captioner = Captioner::load(&args.model, &device)?;
    let search = args.search.search(&captioner.config().beam, args.n_best);
    let captioner = captioner.with_search(search.clone())?;
    if let Some(dir) = &args.attention {
        anyhow::ensure!(
            matches!(captioner.decoder(), storyteller::Decoder::ShowAttendTell(_)),
            "--attention needs an attention model; {} holds a {} decoder",
            args.model.display(),
            captioner.config().kind()
        );
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut results = Vec::new();
    let mut failures = 0;
    for path in &args.images {
        let ranked = storyteller::decode_image(path).and_then(|image| {
            let images = std::slice::from_ref(&image);
            let ranked = match args.attention {
                Some(_) => captioner.ranked_with_attention(images, &search)?,
                None => captioner.ranked(images, &search)?,
            };
            Ok((image, ranked.into_iter().next().unwrap_or_default()))
        });
        match ranked {
            Ok((image, ranked)) => {
                if let (Some(dir), Some(best)) = (&args.attention, ranked.first()) {
                    let folder = dir.join(format!("{:02}-{}", results.len(), file_stem(path)));
                    write_attention(&folder, &image, best, captioner.preprocess())?;
                    if !args.json {
                        eprintln!("attention maps: {}", folder.display());
                    }
                }
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

/// A file name's stem as a folder name: path separators and control characters replaced.
fn file_stem(path: &std::path::Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_control() || c == '/' || c == '\\' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// One PNG per word of `caption` (`01-red.png`, ...) and `sheet.png` into `folder`.
fn write_attention(
    folder: &std::path::Path,
    image: &RgbImage,
    caption: &Caption,
    preprocess: &PreprocessConfig,
) -> anyhow::Result<()> {
    let maps = caption
        .attention
        .as_ref()
        .context("the caption has no attention weights")?;
    std::fs::create_dir_all(folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let view = encoder_view(image, preprocess);
    let save = |name: String, picture: &RgbImage| {
        let path = folder.join(name);
        picture
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))
    };
    for (i, (word, overlay)) in caption
        .tokens
        .iter()
        .zip(word_overlays(&view, &caption.tokens, maps))
        .enumerate()
    {
        let safe: String = word
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '_' })
            .collect();
        save(format!("{:02}-{safe}.png", i + 1), &overlay)?;
    }
    save(
        "sheet.png".to_owned(),
        &contact_sheet(&view, &caption.tokens, maps),
    )
}
