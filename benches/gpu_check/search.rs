//! Greedy and beam-3 decoding from image features, captions/s: the `greedy` and `beam3`
//! rows of `benches/torch_reference.py`, with its decoder ([`anchor_decoder`], 20 tokens, no early stop).

use anyhow::Result;
use burn::tensor::Device;
use serde_json::json;
use storyteller_search::{BeamSearch, GreedySearch, Search};

use crate::data;
use crate::record::Recorder;
use crate::search_lstm::{D_FEATURE, MAX_LEN, anchor_decoder};
use crate::timing::measure;

/// Times each search from device-resident features to hypotheses on the host.
pub fn bench(
    device: &Device,
    batches: &[usize],
    (warm, reps): (usize, usize),
    rec: &mut Recorder,
) -> Result<()> {
    let decoder = anchor_decoder(device);
    let searches: [(&str, Search); 2] = [
        ("greedy", GreedySearch::new().with_max_len(MAX_LEN).into()),
        (
            "beam3",
            BeamSearch::new().with_width(3).with_max_len(MAX_LEN).into(),
        ),
    ];
    for &batch in batches {
        let features = data::normal([batch, D_FEATURE], 11, device);
        for (name, search) in &searches {
            let mut result = Ok(());
            let t = measure(warm, reps, || {
                if let Err(err) = search.search(&decoder, features.clone()) {
                    result = Err(err);
                }
            });
            result?;
            rec.emit(json!({
                "part": name, "batch": batch, "max_len": MAX_LEN,
                "s_per_batch": t.median_s, "captions_per_s": batch as f64 / t.median_s,
                "first_s": t.first_s, "warm_s": t.warm_s,
            }))?;
        }
    }
    Ok(())
}
