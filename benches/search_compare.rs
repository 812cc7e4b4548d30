//! Times our greedy and beam-3 search on the anchor's decoder shapes.
//!
//! Run by `benches/search_vs_torch.py`, which times the PyTorch anchor's `greedy` and `beam`
//! on the same shapes in the same run and prints the ratio:
//!
//! ```text
//! search-compare BATCHES RUNS      # e.g. search-compare 1,32,1024 3
//! ```
//!
//! Prints one JSON line per measurement: `part` (`greedy` or `beam3`), `batch`, the median
//! `s_per_batch` of `RUNS` timed runs after one warm-up run, and `captions_per_s`. Every
//! caption runs all 20 steps, as in the anchor.

mod median;
mod search_lstm;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use burn::tensor::Distribution;
use median::median_seconds;
use search_lstm::{D_FEATURE, MAX_LEN, anchor_decoder};
use serde_json::json;
use storyteller_search::{BeamSearch, GreedySearch, Search};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, batches, runs] = args.as_slice() else {
        bail!("usage: search-compare BATCHES RUNS   (e.g. 1,32,1024 3)");
    };
    let runs: usize = runs.parse().context("RUNS must be a number")?;
    let device = Device::flex();
    let decoder = anchor_decoder(&device);
    let searches: [(&str, Search); 2] = [
        ("greedy", GreedySearch::new().with_max_len(MAX_LEN).into()),
        (
            "beam3",
            BeamSearch::new().with_width(3).with_max_len(MAX_LEN).into(),
        ),
    ];
    for batch in batches.split(',') {
        let batch: usize = batch
            .trim()
            .parse()
            .context("BATCHES: comma-separated numbers")?;
        let features =
            Tensor::<2>::random([batch, D_FEATURE], Distribution::Normal(0.0, 1.0), &device);
        for (part, search) in &searches {
            let mut steps = 0;
            let seconds = median_seconds(runs, || {
                let captions = search.search(&decoder, features.clone())?;
                steps = captions[0][0].len();
                Ok(())
            })?;
            println!(
                "{}",
                json!({
                    "part": part,
                    "batch": batch,
                    "max_len": MAX_LEN,
                    "tokens": steps,
                    "s_per_batch": seconds,
                    "captions_per_s": batch as f64 / seconds,
                })
            );
        }
    }
    Ok(())
}
