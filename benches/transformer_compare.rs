//! Times the Transformer caption decoder: training steps and greedy / beam-3 search.
//!
//! Run by `benches/transformer_vs_torch.py`, which times the same decoder in PyTorch
//! (`nn.TransformerDecoder`, pre-norm, the layout of
//! `crates/storyteller-decoder/scripts/transformer_reference.py`) on the same shapes in the
//! same run, alternating, and prints the ratio:
//!
//! ```text
//! transformer-compare PART BATCHES RUNS     # PART: train, greedy or beam3; e.g. train 8,32 3
//! ```
//!
//! Prints one JSON line per batch size: `part`, `batch`, the median `s_per_batch` of `RUNS`
//! timed runs after one warm-up run, and `captions_per_s`. Shapes (the Python side uses the
//! same): 2048-d features on a 7x7 grid, d_model 512, 8 heads, 3 layers, feed-forward 2048,
//! 8,000 tokens, untied output, captions of 20 tokens, searches of 20 steps (`<end>` is made
//! unreachable so every search runs them all), dropout 0.1 in training, random weights.
//! The searches decode incrementally (`TransformerDecoder::step_logits`: per-layer key/value
//! caches of the tokens so far, the regions' keys and values computed once per image).

mod median;

use anyhow::{Context, Result, bail};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use median::median_seconds;
use serde_json::json;
use storyteller_decoder::TransformerDecoderConfig;
use storyteller_decoder::train::{CaptionBatch, OptimizerConfig, TrainStep};
use storyteller_search::{BeamSearch, GreedySearch, Search};

const D_FEATURE: usize = 2048;
const GRID: usize = 7;
const D_MODEL: usize = 512;
const N_HEADS: usize = 8;
const N_LAYERS: usize = 3;
const D_FF: usize = 2048;
const VOCAB: usize = 8000;
const STEPS: usize = 20;
const DROPOUT: f64 = 0.1;
const END: usize = 2;

fn config() -> TransformerDecoderConfig {
    TransformerDecoderConfig::new(VOCAB)
        .with_d_feature(D_FEATURE)
        .with_grid(GRID)
        .with_d_model(D_MODEL)
        .with_n_heads(N_HEADS)
        .with_n_layers(N_LAYERS)
        .with_d_ff(D_FF)
        .with_dropout(DROPOUT)
        .with_tied_output(false)
}

fn features(batch: usize, device: &Device) -> Tensor<2> {
    Tensor::random(
        [batch, GRID * GRID * D_FEATURE],
        Distribution::Normal(0.0, 1.0),
        device,
    )
}

fn tokens(batch: usize, device: &Device) -> Tensor<2, Int> {
    Tensor::random(
        [batch, STEPS],
        Distribution::Uniform(4.0, VOCAB as f64),
        device,
    )
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, part, batches, runs] = args.as_slice() else {
        bail!("usage: transformer-compare train|greedy|beam3 BATCHES RUNS   (e.g. train 8,32 3)");
    };
    let runs: usize = runs.parse().context("RUNS must be a number")?;
    let batches: Vec<usize> = batches
        .split(',')
        .map(|b| b.trim().parse().context("BATCHES: comma-separated numbers"))
        .collect::<Result<_>>()?;
    let device = Device::flex();
    device.seed(0);
    for batch in batches {
        let seconds = match part.as_str() {
            "train" => {
                // Dropout is active on an autodiff device.
                let device = device.clone().autodiff();
                let mut decoder = config().init(&device)?;
                let mut step = TrainStep::new(&OptimizerConfig::new().with_clip_norm(None), 0);
                let data = CaptionBatch {
                    features: features(batch, &device),
                    inputs: tokens(batch, &device),
                    targets: tokens(batch, &device),
                };
                median_seconds(runs, || {
                    let (next, _) =
                        step.step_sharded(decoder.clone(), std::slice::from_ref(&data), 1e-3);
                    // Wait for the step's last kernel: read one weight back.
                    let _ = next.output_bias.val().narrow(0, 0, 1).into_data();
                    decoder = next;
                    Ok(())
                })?
            }
            "greedy" | "beam3" => {
                let mut decoder = config().init(&device)?;
                let mut values = decoder
                    .output_bias
                    .val()
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()?;
                values[END] = -1e9;
                decoder.output_bias = Param::from_tensor(Tensor::from_data(
                    TensorData::new(values, [VOCAB]),
                    &device,
                ));
                let search: Search = if part == "greedy" {
                    GreedySearch::new().with_max_len(STEPS).into()
                } else {
                    BeamSearch::new().with_width(3).with_max_len(STEPS).into()
                };
                let input = features(batch, &device);
                median_seconds(runs, || {
                    let ranked = search.search(&decoder, input.clone())?;
                    anyhow::ensure!(ranked.iter().all(|r| r[0].tokens.len() == STEPS));
                    Ok(())
                })?
            }
            other => bail!("PART must be train, greedy or beam3, not {other:?}"),
        };
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
