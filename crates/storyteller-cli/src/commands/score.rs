//! `storyteller score`: metrics for a REFS.json / HYPS.json pair.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use storyteller_metrics::bleu::{BleuFlavour, Smoothing};
use storyteller_metrics::{Scores, evaluate};

use crate::refs_hyps::load_corpus;

/// Arguments of `storyteller score`.
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// References: `{"image_id": ["ref 1", "ref 2", ...]}`.
    #[arg(long, value_name = "REFS.json")]
    refs: PathBuf,
    /// Hypotheses: `{"image_id": "hypothesis"}`, one per image that has references.
    #[arg(long, value_name = "HYPS.json")]
    hyps: PathBuf,
    /// Print the scores as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// BLEU implementation: pycocoevalcap's (`coco`) or NLTK's `corpus_bleu` (`nltk`).
    #[arg(long, value_enum, default_value_t = Flavour::Coco)]
    bleu: Flavour,
    /// NLTK smoothing method 0-7 (only with `--bleu nltk`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=7))]
    smoothing: u8,
}

/// BLEU flavour on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Flavour {
    Coco,
    Nltk,
}

/// Runs `storyteller score`.
pub fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    let corpus = load_corpus(&args.refs, &args.hyps)?;
    let flavour = match args.bleu {
        Flavour::Coco => BleuFlavour::Coco,
        Flavour::Nltk => BleuFlavour::Nltk(
            Smoothing::nltk_method(args.smoothing).expect("clap limits --smoothing to 0..=7"),
        ),
    };
    let scores = evaluate(&corpus, flavour)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&scores)?);
    } else {
        print!("{}", table(&scores));
    }
    Ok(())
}

fn table(s: &Scores) -> String {
    let flavour = match s.bleu_flavour {
        BleuFlavour::Coco => "pycocoevalcap".to_owned(),
        BleuFlavour::Nltk(smoothing) => format!("NLTK, {smoothing:?}"),
    };
    let rows = [
        ("BLEU-1", s.bleu1),
        ("BLEU-2", s.bleu2),
        ("BLEU-3", s.bleu3),
        ("BLEU-4", s.bleu4),
        ("precision", s.precision),
        ("recall", s.recall),
        ("F1", s.f1),
        ("micro precision", s.micro_precision),
        ("micro recall", s.micro_recall),
        ("micro F1", s.micro_f1),
        ("ROUGE-L", s.rouge_l),
        ("CIDEr-D", s.cider_d),
    ];
    let mut out = format!("{} images, BLEU as {flavour}\n", s.images);
    for (name, value) in rows {
        out.push_str(&format!("{name:<16} {value:>8.4}\n"));
    }
    out
}
