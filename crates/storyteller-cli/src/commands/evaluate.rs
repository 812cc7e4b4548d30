//! `storyteller evaluate`: every metric of a model on a dataset split.

use std::path::PathBuf;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use storyteller::{Captioner, FeatureCache, Flickr30k, GreedySearch, Search, Split};

use crate::commands::search_args::SearchArgs;

/// Arguments of `storyteller evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The model directory.
    #[arg(long, value_name = "MODEL_DIR")]
    model: PathBuf,
    /// The dataset directory.
    #[arg(long, value_name = "DIR")]
    dataset: PathBuf,
    /// Split to score.
    #[arg(long, default_value = "test", value_parser = parse_split())]
    split: Split,
    /// Features of the dataset (skips the encoder when they match the model's).
    #[arg(long, value_name = "F.safetensors")]
    features: Option<PathBuf>,
    #[command(flatten)]
    search: SearchArgs,
    /// Write every image's captions and references here.
    #[arg(long, value_name = "FILE.json")]
    captions: Option<PathBuf>,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: crate::device::DeviceName,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `--split`: one of the listed names (shown by `--help`; anything else is a usage error).
fn parse_split() -> impl clap::builder::TypedValueParser<Value = Split> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Split::ALL.map(Split::name))
        .map(|name| Split::parse(&name).expect("a listed split name parses"))
}

/// Runs `storyteller evaluate`: greedy and beam search side by side.
pub fn run(args: &EvaluateArgs) -> anyhow::Result<()> {
    let split = args.split;
    let device = args.device.open()?;
    let captioner = Captioner::load(&args.model, &device)?;
    let dataset = Flickr30k::open(&args.dataset)?;
    let features = args.features.as_ref().map(FeatureCache::open).transpose()?;
    let beam = args.search.search(&captioner.config().beam, 1);
    let greedy = GreedySearch::new().with_max_len(args.search.max_len());
    let mut searches = vec![("greedy".to_owned(), Search::Greedy(greedy))];
    if let Search::Beam(b) = &beam {
        searches.push((format!("beam{}", b.width), beam.clone()));
    }
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images, eta {eta}")
            .expect("a valid progress template"),
    );
    let evaluation = storyteller::evaluate_with_progress(
        &captioner,
        &dataset,
        split,
        &searches,
        features.as_ref(),
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    if let Some(path) = &args.features
        && !evaluation.features_from_cache
    {
        eprintln!(
            "warning: {} was made with other encoder weights or preprocessing than the model's; \
             the images were encoded instead",
            path.display()
        );
    }
    for (id, reason) in &evaluation.skipped {
        eprintln!("warning: skipped {id}: {reason}");
    }
    if let Some(path) = &args.captions {
        std::fs::write(path, serde_json::to_string_pretty(&evaluation.per_image)?)?;
    }
    if args.json {
        let scores: serde_json::Map<String, serde_json::Value> = evaluation
            .scores
            .iter()
            .map(|(name, s)| (name.clone(), serde_json::to_value(s).unwrap()))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "split": evaluation.split, "images": evaluation.images, "scores": scores,
                "grounding": evaluation.grounding.iter()
                    .map(|(name, g)| (name.clone(), serde_json::to_value(g).unwrap()))
                    .collect::<serde_json::Map<_, _>>(),
            }))?
        );
    } else {
        print!("{}", table(&evaluation));
        print!("{}", grounding_tables(&evaluation));
    }
    Ok(())
}

/// The grounding table of each search (empty without scene truth).
pub fn grounding_tables(evaluation: &storyteller::Evaluation) -> String {
    evaluation
        .grounding
        .iter()
        .map(|(name, report)| {
            format!(
                "\ngrounding, {name} (chance: the same captions on shuffled scenes)\n{}",
                report.table()
            )
        })
        .collect()
}

/// Reads one metric out of a score set.
type Metric = fn(&storyteller::Scores) -> f64;

/// The scores of each search as columns.
pub fn table(evaluation: &storyteller::Evaluation) -> String {
    let mut out = format!(
        "{} split, {} images\n{:<12}",
        evaluation.split, evaluation.images, ""
    );
    for (name, _) in &evaluation.scores {
        out.push_str(&format!("{name:>10}"));
    }
    out.push('\n');
    let rows: [(&str, Metric); 9] = [
        ("BLEU-1", |s| s.bleu1),
        ("BLEU-2", |s| s.bleu2),
        ("BLEU-3", |s| s.bleu3),
        ("BLEU-4", |s| s.bleu4),
        ("precision", |s| s.precision),
        ("recall", |s| s.recall),
        ("F1", |s| s.f1),
        ("ROUGE-L", |s| s.rouge_l),
        ("CIDEr-D", |s| s.cider_d),
    ];
    for (label, value) in rows {
        out.push_str(&format!("{label:<12}"));
        for (_, scores) in &evaluation.scores {
            out.push_str(&format!("{:>10.4}", value(scores)));
        }
        out.push('\n');
    }
    out
}
