//! Score a model on a dataset's test split with greedy and beam-3 search.
//!
//! cargo run --release -p storyteller-examples --example evaluate -- MODEL_DIR DATASET_DIR [FEATURES.safetensors]

use burn::tensor::Device;
use storyteller::{
    BeamSearch, Captioner, FeatureCache, Flickr30k, GreedySearch, Search, Split, evaluate,
};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model, dataset) = match args.as_slice() {
        [model, dataset, ..] => (model, dataset),
        _ => anyhow::bail!("usage: evaluate MODEL_DIR DATASET_DIR [FEATURES.safetensors]"),
    };
    let device = Device::default();
    let captioner = Captioner::load(model, &device)?;
    let dataset = Flickr30k::open(dataset)?;
    let features = args.get(2).map(FeatureCache::open).transpose()?;
    let searches = [
        ("greedy".to_owned(), Search::Greedy(GreedySearch::new())),
        (
            "beam3".to_owned(),
            Search::Beam(BeamSearch::new().with_width(3)),
        ),
    ];
    let evaluation = evaluate(
        &captioner,
        &dataset,
        Split::Test,
        &searches,
        features.as_ref(),
    )?;
    for (name, scores) in &evaluation.scores {
        println!(
            "{name:>7}: BLEU-4 {:.4}  CIDEr-D {:.4}  ROUGE-L {:.4}  F1 {:.4}",
            scores.bleu4, scores.cider_d, scores.rouge_l, scores.f1
        );
    }
    Ok(())
}
