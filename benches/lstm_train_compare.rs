//! Times one training step of the Show-and-Tell LSTM decoder (the seed's init-inject model).
//!
//! Run by `benches/lstm_train_vs_torch.py`, which times the same step in PyTorch on the same
//! shapes in the same run, alternating, and prints the ratio:
//!
//! ```text
//! lstm-train-compare train BATCHES RUNS     # e.g. train 32,128 3
//! ```
//!
//! Prints one JSON line per batch size: `part`, `batch`, the median `s_per_batch` of `RUNS`
//! timed runs after one warm-up run, and `captions_per_s`. Shapes (the Python side uses the
//! same): 2048-d features, 256-d embedding, 512-d LSTM, 8,000 tokens, captions of 20 tokens,
//! dropout 0.5, Adam at 1e-3 without gradient clipping, random weights and tokens.

mod median;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::Distribution;
use median::median_seconds;
use serde_json::json;
use storyteller_decoder::train::{CaptionBatch, OptimizerConfig, TrainStep};
use storyteller_decoder::{CaptionDecoderConfig, Conditioning};

const D_FEATURE: usize = 2048;
const D_EMBED: usize = 256;
const D_HIDDEN: usize = 512;
const VOCAB: usize = 8000;
const STEPS: usize = 20;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, part, batches, runs] = args.as_slice() else {
        bail!("usage: lstm-train-compare train BATCHES RUNS   (e.g. train 32,128 3)");
    };
    if part != "train" {
        bail!("PART must be train, not {part:?}");
    }
    let runs: usize = runs.parse().context("RUNS must be a number")?;
    let device = Device::flex().autodiff();
    device.seed(0);
    for batch in batches.split(',') {
        let batch: usize = batch
            .trim()
            .parse()
            .context("BATCHES: comma-separated numbers")?;
        let mut decoder = CaptionDecoderConfig::new(VOCAB)
            .with_d_feature(D_FEATURE)
            .with_d_embed(D_EMBED)
            .with_d_hidden(D_HIDDEN)
            .with_dropout(0.5)
            .with_conditioning(Conditioning::Init)
            .with_d_whitened(None)
            .init(&device)?;
        let mut step = TrainStep::new(&OptimizerConfig::new().with_clip_norm(None), 0);
        let tokens = || {
            Tensor::<2, Int>::random(
                [batch, STEPS],
                Distribution::Uniform(4.0, VOCAB as f64),
                &device,
            )
        };
        let data = CaptionBatch {
            features: Tensor::random([batch, D_FEATURE], Distribution::Normal(0.0, 1.0), &device),
            inputs: tokens(),
            targets: tokens(),
        };
        let seconds = median_seconds(runs, || {
            let (next, loss) = step.step(decoder.clone(), &data, 1e-3);
            anyhow::ensure!(loss.is_finite(), "the loss diverged");
            decoder = next;
            Ok(())
        })?;
        println!(
            "{}",
            json!({
                "part": part,
                "batch": batch,
                "s_per_batch": seconds,
                "captions_per_s": batch as f64 / seconds,
            })
        );
    }
    Ok(())
}
