//! One optimisation step of the decoder: teacher forcing, masked cross-entropy, Adam.

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bytes, Int, Tensor};

use crate::CaptionDecoder;

/// Optimiser settings; serialised with the training config.
#[derive(Config, Debug, PartialEq)]
pub struct OptimizerConfig {
    /// Adam's β₁.
    #[config(default = 0.9)]
    pub beta_1: f32,
    /// Adam's β₂.
    #[config(default = 0.999)]
    pub beta_2: f32,
    /// Adam's ε (PyTorch's default).
    #[config(default = 1e-8)]
    pub epsilon: f32,
    /// Clip each parameter's gradient to this L2 norm (Burn clips per parameter tensor,
    /// not over all parameters as `torch.nn.utils.clip_grad_norm_` does); `None` disables it.
    #[config(default = "Some(5.0)")]
    pub clip_norm: Option<f32>,
}

/// A batch for teacher forcing: captions are `<start> w₁ … w_n <end>` padded with `<pad>`;
/// the input is every token but the last, the target every token but the first.
#[derive(Debug, Clone)]
pub struct CaptionBatch {
    /// Image features `[batch, d_feature]`.
    pub features: Tensor<2>,
    /// Input tokens `[batch, T]`.
    pub inputs: Tensor<2, Int>,
    /// Target tokens `[batch, T]`; `pad` positions carry no loss.
    pub targets: Tensor<2, Int>,
}

/// Mean cross-entropy over the positions whose target is not `pad`, as PyTorch's
/// `CrossEntropyLoss(ignore_index=pad)`.
///
/// # Shapes
/// - `logits`: `[batch, T, vocab_size]`
/// - `targets`: `[batch, T]`
/// - returns `[1]`
pub fn masked_cross_entropy(logits: Tensor<3>, targets: Tensor<2, Int>, pad: u32) -> Tensor<1> {
    let [batch, steps, vocab] = logits.dims();
    let rows = batch * steps;
    let targets = targets.reshape([rows, 1]);
    let log_probs = log_softmax(logits.reshape([rows, vocab]), 1).gather(1, targets.clone());
    let mask = targets.not_equal_elem(pad as i64).float();
    let count = mask.clone().sum().clamp_min(1.0);
    -(log_probs * mask).sum() / count
}

/// Adam over a decoder, with its state: the training step and what a checkpoint keeps.
pub struct TrainStep {
    optimizer: ModuleOptimizer,
    pad: u32,
}

impl TrainStep {
    /// A fresh optimiser.
    pub fn new(config: &OptimizerConfig, pad: u32) -> Self {
        let mut adam = AdamConfig::new()
            .with_beta_1(config.beta_1)
            .with_beta_2(config.beta_2)
            .with_epsilon(config.epsilon);
        if let Some(norm) = config.clip_norm {
            adam = adam.with_grad_clipping(Some(GradientClippingConfig::Norm(norm)));
        }
        Self {
            optimizer: adam.init(),
            pad,
        }
    }

    /// The teacher-forced loss of a batch, without updating anything (validation).
    pub fn loss(&self, decoder: &CaptionDecoder, batch: &CaptionBatch) -> Tensor<1> {
        let logits = decoder.forward(batch.features.clone(), batch.inputs.clone());
        masked_cross_entropy(logits, batch.targets.clone(), self.pad)
    }

    /// Forward, backward and one Adam update at learning rate `lr`.
    ///
    /// `decoder` must live on an autodiff device. Returns the updated decoder and the
    /// batch loss before the update (NaN or infinite when training diverged; the caller
    /// decides what to do).
    pub fn step(
        &mut self,
        decoder: CaptionDecoder,
        batch: &CaptionBatch,
        lr: f64,
    ) -> (CaptionDecoder, f32) {
        let loss = self.loss(&decoder, batch);
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &decoder);
        (self.optimizer.step(lr, decoder, grads), value)
    }

    /// Data-parallel step: each shard's loss and gradients are computed on the shard's
    /// device (where its tensors live) with a fork of `decoder`, the gradients are summed
    /// on the parameters' devices, and Adam updates once.
    ///
    /// Each shard's mean loss is weighted by its share of the non-`<pad>` targets, so the
    /// update equals the single-device step on the concatenated batch up to floating-point
    /// rounding. With one shard this is [`step`](Self::step).
    ///
    /// # Panics
    /// With no shard.
    pub fn step_sharded(
        &mut self,
        decoder: CaptionDecoder,
        shards: &[CaptionBatch],
        lr: f64,
    ) -> (CaptionDecoder, f32) {
        assert!(!shards.is_empty(), "step_sharded needs at least one shard");
        if shards.len() == 1 {
            return self.step(decoder, &shards[0], lr);
        }
        let tokens: Vec<f32> = shards
            .iter()
            .map(|s| {
                s.targets
                    .clone()
                    .not_equal_elem(self.pad as i64)
                    .int()
                    .sum()
                    .into_scalar::<i64>() as f32
            })
            .collect();
        let total = tokens.iter().sum::<f32>().max(1.0);
        let mut grads = MultiGradientsParams::default();
        let mut loss_sum = 0.0f32;
        for (shard, &count) in shards.iter().zip(&tokens) {
            let device = shard.features.device();
            let replica = decoder.clone().fork(&device);
            let loss = self.loss(&replica, shard) * (count / total);
            loss_sum += loss.clone().into_scalar::<f32>();
            grads.grads.push((
                GradientsParams::from_grads(loss.backward(), &replica),
                device,
            ));
        }
        (self.optimizer.step_multi(lr, decoder, grads), loss_sum)
    }

    /// The optimiser state (Adam moments and step counts) as bytes, for a checkpoint.
    ///
    /// # Errors
    /// Serialisation failure.
    pub fn state_bytes(&self) -> Result<Vec<u8>, burn::store::RecordError> {
        Ok(self.optimizer.into_bytes()?.to_vec())
    }

    /// Restores a state written by [`state_bytes`](Self::state_bytes).
    ///
    /// # Errors
    /// The bytes are not an optimiser record.
    pub fn load_state_bytes(self, bytes: Vec<u8>) -> Result<Self, burn::store::RecordError> {
        let optimizer = self.optimizer.from_bytes(Bytes::from_bytes_vec(bytes))?;
        Ok(Self {
            optimizer,
            pad: self.pad,
        })
    }
}

/// The inference copy of a decoder trained on an autodiff device.
pub fn inference_copy(decoder: &CaptionDecoder) -> CaptionDecoder {
    decoder.valid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaptionDecoderConfig;
    use burn::tensor::{Device, TensorData};

    fn batch(device: &Device) -> CaptionBatch {
        // Two images, two different captions: feature 0 -> "5 6", feature 1 -> "7 8 9".
        let features =
            Tensor::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2]), device);
        let inputs = Tensor::from_data(
            TensorData::new(vec![1i64, 5, 6, 0, 1, 7, 8, 9], [2, 4]),
            device,
        );
        let targets = Tensor::from_data(
            TensorData::new(vec![5i64, 6, 2, 0, 7, 8, 9, 2], [2, 4]),
            device,
        );
        CaptionBatch {
            features,
            inputs,
            targets,
        }
    }

    /// A decoder small enough to train in milliseconds, without dropout.
    fn tiny_config() -> CaptionDecoderConfig {
        CaptionDecoderConfig::new(10)
            .with_d_feature(2)
            .with_d_embed(8)
            .with_d_hidden(16)
            .with_dropout(0.0)
    }

    #[test]
    fn sharded_step_equals_the_single_device_step() {
        let device = Device::flex().autodiff();
        let config = tiny_config();
        let decoder = config
            .init(&device)
            .unwrap()
            .set_feature_statistics(&[0.5, 0.5], &[0.5, 2.0]);
        let whole = batch(&device);
        let shard = |rows: std::ops::Range<usize>| CaptionBatch {
            features: whole.features.clone().slice([rows.clone()]),
            inputs: whole.inputs.clone().slice([rows.clone()]),
            targets: whole.targets.clone().slice([rows]),
        };
        let shards = [shard(0..1), shard(1..2)];
        // Shards padded to their own length, as a trainer builds them: drop the trailing pad column of row 0.
        let shards = [
            CaptionBatch {
                features: shards[0].features.clone(),
                inputs: shards[0].inputs.clone().slice([0..1, 0..3]),
                targets: shards[0].targets.clone().slice([0..1, 0..3]),
            },
            shards[1].clone(),
        ];
        let (mut single, mut sharded) = (decoder.clone(), decoder);
        let (mut a, mut b) = (
            TrainStep::new(&OptimizerConfig::new(), 0),
            TrainStep::new(&OptimizerConfig::new(), 0),
        );
        for _ in 0..3 {
            let (next, loss_a) = a.step(single, &whole, 1e-2);
            single = next;
            let (next, loss_b) = b.step_sharded(sharded, &shards, 1e-2);
            sharded = next;
            assert!((loss_a - loss_b).abs() < 1e-5, "{loss_a} vs {loss_b}");
        }
        let values = |d: &crate::CaptionDecoder| {
            d.lstm[0]
                .weight_hh
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let worst = values(&single)
            .iter()
            .zip(values(&sharded))
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "sharded training drifted by {worst}");
    }

    #[test]
    fn masked_loss_ignores_padding() {
        let device = Device::flex();
        // Uniform logits: every unmasked position costs ln(vocab), whatever the padding.
        let logits = Tensor::<3>::zeros([1, 3, 10], &device);
        let targets = Tensor::from_data(TensorData::new(vec![4i64, 0, 0], [1, 3]), &device);
        let loss = masked_cross_entropy(logits, targets, 0).into_scalar::<f32>();
        assert!((loss - 10f32.ln()).abs() < 1e-6, "{loss}");
    }

    #[test]
    fn training_overfits_a_tiny_batch_and_the_state_round_trips() {
        let device = Device::flex().autodiff();
        let config = tiny_config();
        let mut decoder = config.init(&device).unwrap();
        let batch = batch(&device);
        let mut step = TrainStep::new(&OptimizerConfig::new(), 0);
        let (mut first, mut last) = (f32::NAN, f32::NAN);
        for i in 0..150 {
            let (next, loss) = step.step(decoder, &batch, 1e-2);
            decoder = next;
            if i == 0 {
                first = loss;
            }
            last = loss;
        }
        assert!(last < 0.1 * first, "loss went from {first} to {last}");

        // Resuming from saved weights and optimiser state continues exactly as if uninterrupted.
        let dir = tempfile::tempdir().unwrap();
        let weights = dir.path().join("decoder.bpk");
        std::fs::write(&weights, decoder.to_bytes().unwrap()).unwrap();
        let state = step.state_bytes().unwrap();
        let mut resumed = crate::CaptionDecoder::load(&weights, &config, &device).unwrap();
        let mut resumed_step = TrainStep::new(&OptimizerConfig::new(), 0)
            .load_state_bytes(state)
            .unwrap();
        for _ in 0..5 {
            decoder = step.step(decoder, &batch, 1e-2).0;
            resumed = resumed_step.step(resumed, &batch, 1e-2).0;
        }
        let values =
            |d: &crate::CaptionDecoder| d.out.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let (a, b) = (values(&decoder), values(&resumed));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-6,
            "resumed training diverged from the uninterrupted run by {worst}"
        );
    }
}
