//! One decoder training step, captions/s: the `train_step` rows of `benches/torch_reference.py`
//! (vocab 8000, embed 256, hidden 512, 20 tokens, teacher forcing, Adam).

use anyhow::Result;
use burn::tensor::Device;
use serde_json::json;
use storyteller_decoder::CaptionDecoderConfig;
use storyteller_decoder::train::{CaptionBatch, OptimizerConfig, TrainStep};

use crate::data;
use crate::record::Recorder;
use crate::search_lstm::{D_FEATURE, MAX_LEN, VOCAB_SIZE};
use crate::timing::measure;

/// Times [`TrainStep::step`] (forward, masked cross-entropy, backward, gradient clipping,
/// Adam; the loss read back to the host each step) on the project's decoder. Unlike the
/// anchor it also applies the decoder's dropout and feature standardisation.
pub fn bench(
    device: &Device,
    batches: &[usize],
    (warm, reps): (usize, usize),
    rec: &mut Recorder,
) -> Result<()> {
    let device = device.clone().autodiff();
    for &batch in batches {
        let mut decoder = Some(
            CaptionDecoderConfig::new(VOCAB_SIZE)
                .with_d_feature(D_FEATURE)
                .init(&device)?
                .materialized(),
        );
        let mut step = TrainStep::new(&OptimizerConfig::new(), 0);
        let tokens = data::tokens([batch, MAX_LEN + 1], 1, VOCAB_SIZE, 13, &device);
        let input = CaptionBatch {
            features: data::normal([batch, D_FEATURE], 17, &device),
            inputs: tokens.clone().narrow(1, 0, MAX_LEN),
            targets: tokens.narrow(1, 1, MAX_LEN),
        };
        let mut loss = 0.0f32;
        let t = measure(warm, reps, || {
            let (next, value) = step.step(decoder.take().expect("decoder"), &input, 1e-4);
            decoder = Some(next);
            loss = value;
        });
        anyhow::ensure!(loss.is_finite(), "train step at batch {batch}: loss {loss}");
        rec.emit(json!({
            "part": "train_step", "batch": batch, "seq": MAX_LEN,
            "s_per_step": t.median_s, "captions_per_s": batch as f64 / t.median_s,
            "first_s": t.first_s, "warm_s": t.warm_s, "loss": loss,
        }))?;
    }
    Ok(())
}
