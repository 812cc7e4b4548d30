//! Times our greedy and beam-3 search on the anchor's decoder shapes.
//!
//! Run by `benches/search_vs_torch.py`, which times the PyTorch anchor's `greedy` and `beam`
//! on the same shapes, alternating with this binary in one run, and prints the ratio:
//!
//! ```text
//! search-compare PART BATCHES RUNS      # e.g. search-compare greedy 1,32,1024 3
//! ```
//!
//! `PART` is `greedy` or `beam3` (or `all`). Prints one JSON line per measurement: `part`,
//! `batch`, the median `s_per_batch` of `RUNS` timed runs after one warm-up run, and
//! `captions_per_s`. Every caption runs all 20 steps, as in the anchor. The decoder is the
//! library's Show-and-Tell decoder prepared as the captioner prepares it
//! ([`storyteller_decoder::SearchDecoder`]).

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
    let [_, part, batches, runs] = args.as_slice() else {
        bail!(
            "usage: search-compare PART BATCHES RUNS   (e.g. greedy 1,32,1024 3; PART: greedy, beam3 or all)"
        );
    };
    let runs: usize = runs.parse().context("RUNS must be a number")?;
    let device = Device::flex();
    let decoder = anchor_decoder(&device);
    let all: [(&str, Search); 2] = [
        ("greedy", GreedySearch::new().with_max_len(MAX_LEN).into()),
        (
            "beam3",
            BeamSearch::new().with_width(3).with_max_len(MAX_LEN).into(),
        ),
    ];
    let searches: Vec<_> = all
        .into_iter()
        .filter(|(name, _)| part == "all" || part == name)
        .collect();
    if searches.is_empty() {
        bail!("unknown PART {part:?}: greedy, beam3 or all");
    }
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
