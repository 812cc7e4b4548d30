//! Benchmark your own decoder next to a trained model, with the code `storyteller bench`
//! measures its rows with (`storyteller::bench::measure_decoder`).
//!
//! The decoder here is a blind reference: it ignores the image and always writes the
//! training split's most common caption. Any `StepDecoder` works the same way.
//!
//! cargo run --release -p storyteller-examples --example bench_own_decoder -- DATASET_DIR FEATURES.safetensors MODEL_DIR
//!
//! FEATURES must be what MODEL_DIR reads: pooled (`storyteller extract`) for Show and Tell, the
//! model's grid (`extract --grid G`) for the attention and Transformer decoders.

use std::collections::HashMap;

use burn::tensor::{Device, Int, Tensor, TensorData};
use storyteller::bench::{BenchRow, MeasureOptions, ParameterCount, SearchKind, TestSet};
use storyteller::model_dir::ModelFiles;
use storyteller::{DecoderKind, FeatureCache, Flickr30k, SearchDecoder, Split, StepDecoder, Vocab};

/// Writes the same caption for every image, whatever the features.
struct MostCommonCaption {
    /// The caption's token ids, then `<end>`.
    tokens: Vec<u32>,
    vocab_size: usize,
    device: Device,
}

impl MostCommonCaption {
    /// The most common caption of the training split (the first one seen, on ties).
    fn of(dataset: &Flickr30k, vocab: &Vocab, device: &Device) -> Self {
        let train = dataset.split(Split::Train);
        let mut counts: HashMap<Vec<String>, (usize, usize)> = HashMap::new();
        for (order, caption) in train
            .images()
            .iter()
            .flat_map(|image| &image.captions)
            .enumerate()
        {
            counts.entry(caption.tokens.clone()).or_insert((0, order)).0 += 1;
        }
        let (caption, _) = counts
            .into_iter()
            .max_by_key(|(_, (count, order))| (*count, std::cmp::Reverse(*order)))
            .unwrap_or_default();
        let mut tokens = vocab.encode_tokens(&caption);
        tokens.push(vocab.id("<end>").expect("every vocabulary has <end>"));
        Self {
            tokens,
            vocab_size: vocab.len(),
            device: device.clone(),
        }
    }
}

impl StepDecoder for MostCommonCaption {
    /// The step, and the number of rows.
    type State = (usize, usize);

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn init_state(&self, features: Tensor<2>) -> (usize, usize) {
        (0, features.dims()[0])
    }

    fn step(
        &self,
        _tokens: Tensor<1, Int>,
        (step, rows): (usize, usize),
    ) -> (Tensor<2>, (usize, usize)) {
        // Almost all the probability on the caption's next word, a little on every other.
        let next = self.tokens[step.min(self.tokens.len() - 1)] as usize;
        let other = 1e-6f32;
        let mut log_probs = vec![other.ln(); rows * self.vocab_size];
        for row in 0..rows {
            log_probs[row * self.vocab_size + next] =
                (1.0 - other * (self.vocab_size - 1) as f32).ln();
        }
        let log_probs = TensorData::new(log_probs, [rows, self.vocab_size]);
        (Tensor::from_data(log_probs, &self.device), (step + 1, rows))
    }

    fn reorder_state(&self, (step, _): (usize, usize), rows: Tensor<1, Int>) -> (usize, usize) {
        (step, rows.dims()[0])
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dataset, features, model] = args.as_slice() else {
        anyhow::bail!("usage: bench_own_decoder DATASET_DIR FEATURES.safetensors MODEL_DIR");
    };
    let device = Device::default();
    let dataset = Flickr30k::open(dataset)?;
    let features = FeatureCache::open(features)?;
    let model = ModelFiles::load(std::path::Path::new(model), &device)?;
    let grid = model.decoder.grid();
    anyhow::ensure!(
        features.regions() == grid * grid,
        "the model reads a {grid}x{grid} grid, {} holds {} regions per image",
        features.path().display(),
        features.regions()
    );
    // The test images' cached features on the device, their references and scenes.
    let test = TestSet::from_cache(&dataset, Split::Test, &features, &device)?;
    let options = MeasureOptions {
        timed_images: 64,
        ..MeasureOptions::default()
    };

    // Searched as the captioner searches it (Show and Tell through its gate table).
    let searched = SearchDecoder::new(model.decoder.clone());
    let mut trained =
        storyteller::bench::measure_decoder("trained", &searched, &model.vocab, &test, &options)?;
    trained.kind = DecoderKind::of(&model.config.decoder).name().to_owned();
    trained.parameters = Some(ParameterCount::of(&model.decoder));
    let blind = MostCommonCaption::of(&dataset, &model.vocab, &device);
    let mut reference = storyteller::bench::measure_decoder(
        "most-common-caption",
        &blind,
        &model.vocab,
        &test,
        &options,
    )?;
    reference.kind = "custom (blind)".to_owned();

    println!(
        "{} test images; greedy search; speeds at batch 128",
        test.len()
    );
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10} {:>12}",
        "decoder", "BLEU-4", "CIDEr-D", "ROUGE-L", "distinct", "captions/s"
    );
    for row in [&trained, &reference] {
        print_row(row);
    }
    Ok(())
}

fn print_row(row: &BenchRow) {
    let scores = &row.greedy.scores;
    let distinct = row.greedy.grounding.as_ref().map_or("-".to_owned(), |g| {
        format!("{:.0}%", 100.0 * g.distinct_share)
    });
    let speed = row
        .speed(SearchKind::Greedy, 128)
        .map_or(0.0, |s| s.captions_per_second);
    println!(
        "{:<22} {:>8.4} {:>8.4} {:>8.4} {:>10} {:>12.0}",
        row.name, scores.bleu4, scores.cider_d, scores.rouge_l, distinct, speed
    );
}
