//! `storyteller dataset`: what a Flickr30k-layout dataset holds.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use storyteller_data::{DEFAULT_MIN_COUNT, DatasetSummary, Flickr30k, LoadOptions};

/// Arguments of `storyteller dataset`.
#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Dataset directory (Karpathy JSON, token file or Kaggle CSV, with
    /// `flickr30k_images/` or `Images/`).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Print the summary as JSON (every skipped line with file, line and reason).
    #[arg(long)]
    json: bool,
    /// Minimum count for a word to enter the vocabulary.
    #[arg(long, default_value_t = DEFAULT_MIN_COUNT)]
    min_count: usize,
    /// Fail on the first bad line instead of skipping it with a warning.
    #[arg(long)]
    strict: bool,
}

/// Runs `storyteller dataset`.
pub fn run(args: &DatasetArgs) -> anyhow::Result<()> {
    let options = LoadOptions {
        strict: args.strict,
        ..LoadOptions::default()
    };
    let data = Flickr30k::open_with(&args.dir, &options)
        .with_context(|| format!("reading the dataset in {}", args.dir.display()))?;
    let summary = data.summary(args.min_count);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print!("{}", table(&summary));
    }
    Ok(())
}

fn table(s: &DatasetSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "dataset      {}", s.root.display());
    let _ = writeln!(
        out,
        "layout       {} ({})",
        s.layout,
        s.annotations.display()
    );
    let _ = writeln!(out, "images dir   {}", s.image_dir.display());
    let _ = writeln!(out, "images       {}", s.images);
    let _ = writeln!(out, "captions     {}", s.captions);
    for (split, c) in &s.splits {
        let _ = writeln!(
            out,
            "  {split:<10} {:>7} images {:>8} captions",
            c.images, c.captions
        );
    }
    let _ = writeln!(
        out,
        "vocabulary   {} words at min count {} (train split, 4 specials included)",
        s.vocab_size, s.min_count
    );
    let _ = writeln!(out, "skipped      {}", s.skipped.len());
    for (kind, n) in &s.skipped_by_kind {
        let _ = writeln!(out, "  {kind:<16} {n}");
    }
    for w in s.skipped.iter().take(20) {
        let _ = writeln!(out, "  warning: {w}");
    }
    if s.skipped.len() > 20 {
        let _ = writeln!(out, "  ... {} more (see --json)", s.skipped.len() - 20);
    }
    out
}
