//! One optimisation step of the decoder: teacher forcing, masked cross-entropy, Adam.

use burn::config::Config;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, MultiGradientsParams};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Bytes, Device, Int, Tensor};

use crate::{AttentionDecoder, CaptionDecoder, Decoder, TransformerDecoder};

mod parallel;

pub use parallel::GradientReduction;
use parallel::{Collective, run_concurrently, shard_gradients, target_shares};

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
    smoothed_cross_entropy(logits, targets, pad, 0.0)
}

/// [`masked_cross_entropy`] with label smoothing `ε`, as PyTorch's
/// `CrossEntropyLoss(ignore_index=pad, label_smoothing=ε)`: each position costs
/// `(1 − ε)·(−log p_target) + ε·mean over the vocabulary of (−log p)`.
///
/// # Shapes
/// - `logits`: `[batch, T, vocab_size]`
/// - `targets`: `[batch, T]`
/// - returns `[1]`
pub fn smoothed_cross_entropy(
    logits: Tensor<3>,
    targets: Tensor<2, Int>,
    pad: u32,
    label_smoothing: f64,
) -> Tensor<1> {
    let [batch, steps, vocab] = logits.dims();
    let rows = batch * steps;
    let targets = targets.reshape([rows, 1]);
    let log_probs = log_softmax(logits.reshape([rows, vocab]), 1);
    let mut per_position = log_probs.clone().gather(1, targets.clone());
    if label_smoothing > 0.0 {
        per_position =
            per_position * (1.0 - label_smoothing) + log_probs.mean_dim(1) * label_smoothing;
    }
    let mask = targets.not_equal_elem(pad as i64).float();
    let count = mask.clone().sum().clamp_min(1.0);
    -(per_position * mask).sum() / count
}

/// What a decoder is trained against: the padding token (no loss) and the label smoothing
/// of the cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// The `<pad>` token id: positions whose target it is carry no loss.
    pub pad: u32,
    /// Label smoothing ε of the cross-entropy, in `[0, 1)` (0: none).
    pub label_smoothing: f64,
}

impl Objective {
    /// Plain masked cross-entropy.
    pub fn new(pad: u32) -> Self {
        Self {
            pad,
            label_smoothing: 0.0,
        }
    }

    /// With label smoothing `ε`.
    #[must_use]
    pub fn with_label_smoothing(self, label_smoothing: f64) -> Self {
        Self {
            label_smoothing,
            ..self
        }
    }

    /// The cross-entropy of `logits` against `targets` under this objective.
    pub fn cross_entropy(&self, logits: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
        smoothed_cross_entropy(logits, targets, self.pad, self.label_smoothing)
    }
}

/// The training loss of a batch, in parts: the masked cross-entropy (a mean over the
/// non-`<pad>` targets) and a decoder's own regulariser (a mean over the images).
#[derive(Debug, Clone)]
pub struct DecoderLoss {
    /// Mean cross-entropy of the non-`<pad>` targets, `[1]`.
    pub cross_entropy: Tensor<1>,
    /// The regulariser, a mean over the batch's images, `[1]` (`None`: the decoder has none).
    pub regulariser: Option<Tensor<1>>,
}

impl DecoderLoss {
    /// Cross-entropy plus regulariser.
    pub fn total(self) -> Tensor<1> {
        match self.regulariser {
            Some(regulariser) => self.cross_entropy + regulariser,
            None => self.cross_entropy,
        }
    }
}

/// A decoder that trains by teacher forcing: what [`TrainStep`] needs of a model.
pub trait TeacherForcing: Module {
    /// The loss of a batch (forward only; the caller differentiates it).
    fn losses(&self, batch: &CaptionBatch, objective: Objective) -> DecoderLoss;
}

impl TeacherForcing for CaptionDecoder {
    fn losses(&self, batch: &CaptionBatch, objective: Objective) -> DecoderLoss {
        let logits = self.forward(batch.features.clone(), batch.inputs.clone());
        DecoderLoss {
            cross_entropy: objective.cross_entropy(logits, batch.targets.clone()),
            regulariser: None,
        }
    }
}

impl TeacherForcing for TransformerDecoder {
    fn losses(&self, batch: &CaptionBatch, objective: Objective) -> DecoderLoss {
        let logits = self.forward(batch.features.clone(), batch.inputs.clone());
        DecoderLoss {
            cross_entropy: objective.cross_entropy(logits, batch.targets.clone()),
            regulariser: None,
        }
    }
}

/// Cross-entropy plus the doubly stochastic attention regulariser with the `alpha_c` the
/// decoder was built with.
impl TeacherForcing for AttentionDecoder {
    fn losses(&self, batch: &CaptionBatch, objective: Objective) -> DecoderLoss {
        let (logits, alphas) =
            self.forward_with_attention(batch.features.clone(), batch.inputs.clone());
        let alpha_c = self.alpha_c();
        DecoderLoss {
            cross_entropy: objective.cross_entropy(logits, batch.targets.clone()),
            regulariser: (alpha_c > 0.0)
                .then(|| self.regulariser(alphas, batch.targets.clone(), objective.pad, alpha_c)),
        }
    }
}

impl TeacherForcing for Decoder {
    fn losses(&self, batch: &CaptionBatch, objective: Objective) -> DecoderLoss {
        match self {
            Decoder::ShowTell(d) => d.losses(batch, objective),
            Decoder::ShowAttendTell(d) => d.losses(batch, objective),
            Decoder::Transformer(d) => d.losses(batch, objective),
        }
    }
}

/// Adam over a decoder, with its state: the training step and what a checkpoint keeps.
pub struct TrainStep {
    optimizer: ModuleOptimizer,
    objective: Objective,
    collective: Option<Collective>,
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
            objective: Objective::new(pad),
            collective: None,
        }
    }

    /// Trains with label smoothing `ε` on the cross-entropy (0: none).
    #[must_use]
    pub fn with_label_smoothing(mut self, label_smoothing: f64) -> Self {
        self.objective = self.objective.with_label_smoothing(label_smoothing);
        self
    }

    /// What the step trains against.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// Combines the gradients of [`step_sharded`](Self::step_sharded) with `reduction`
    /// over `devices` (the shards' devices, in shard order). [`GradientReduction::AllReduce`]
    /// starts Burn's communication server here; it stops when this step is dropped.
    #[must_use]
    pub fn with_reduction(mut self, reduction: GradientReduction, devices: &[Device]) -> Self {
        self.collective = match reduction {
            GradientReduction::AllReduce if devices.len() > 1 => Some(Collective::start(devices)),
            _ => None,
        };
        self
    }

    /// The gradient reduction in use.
    pub fn reduction(&self) -> GradientReduction {
        match self.collective {
            Some(_) => GradientReduction::AllReduce,
            None => GradientReduction::Gather,
        }
    }

    /// The teacher-forced loss of a batch, without updating anything (validation).
    pub fn loss<M: TeacherForcing>(&self, decoder: &M, batch: &CaptionBatch) -> Tensor<1> {
        decoder.losses(batch, self.objective).total()
    }

    /// Forward, backward and one Adam update at learning rate `lr`.
    ///
    /// `decoder` must live on an autodiff device. Returns the updated decoder and the
    /// batch loss before the update (NaN or infinite when training diverged; the caller
    /// decides what to do).
    pub fn step<M: TeacherForcing>(
        &mut self,
        decoder: M,
        batch: &CaptionBatch,
        lr: f64,
    ) -> (M, f32) {
        let loss = self.loss(&decoder, batch);
        let value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &decoder);
        (self.optimizer.step(lr, decoder, grads), value)
    }

    /// Data-parallel step: one worker thread per shard forks `decoder` onto the shard's
    /// device (where its tensors live) and computes the shard's loss and gradients there,
    /// all workers at once; the gradients are combined (see [`GradientReduction`]) and Adam
    /// updates once.
    ///
    /// Each shard's mean cross-entropy is weighted by its share of the non-`<pad>` targets
    /// (and its regulariser by its share of the images), so the
    /// update equals the single-device step on the concatenated batch up to floating-point
    /// rounding. Nothing is read back to the host: the returned loss (the batch's, on the
    /// first shard's device, before the update; NaN or infinite when training diverged)
    /// is read when the caller wants it.
    ///
    /// # Panics
    /// With no shard, or when a worker panics.
    pub fn step_sharded<M: TeacherForcing>(
        &mut self,
        decoder: M,
        shards: &[CaptionBatch],
        lr: f64,
    ) -> (M, Tensor<1>) {
        assert!(!shards.is_empty(), "step_sharded needs at least one shard");
        let main = shards[0].features.device();
        if shards.len() == 1 {
            let loss = self.loss(&decoder, &shards[0]);
            let value = loss.clone().inner();
            let grads = GradientsParams::from_grads(loss.backward(), &decoder);
            return (self.optimizer.step(lr, decoder, grads), value);
        }
        let (objective, collective) = (self.objective, self.collective.as_ref());
        let images: usize = shards.iter().map(|s| s.features.dims()[0]).sum();
        let jobs: Vec<_> = shards
            .iter()
            .zip(target_shares(shards, objective.pad))
            .map(|(shard, share)| {
                let replica = decoder.clone();
                let image_share = shard.features.dims()[0] as f64 / images.max(1) as f64;
                move || shard_gradients(replica, shard, share, image_share, objective, collective)
            })
            .collect();
        let results = run_concurrently(jobs);
        let loss = results
            .iter()
            .map(|r| r.loss.clone().to_device(&main))
            .reduce(|a, b| a + b)
            .expect("at least two shards");
        let decoder = if collective.is_some() {
            // Every worker holds the sum; the first one's is on the model's device.
            let first = results.into_iter().next().expect("at least two shards");
            self.optimizer.step(lr, decoder, first.grads)
        } else {
            let mut grads = MultiGradientsParams::default();
            grads.grads = results.into_iter().map(|r| (r.grads, r.device)).collect();
            self.optimizer.step_multi(lr, decoder, grads)
        };
        (decoder, loss)
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
            objective: self.objective,
            collective: self.collective,
        })
    }
}

/// The inference copy of a decoder trained on an autodiff device.
pub fn inference_copy<M: Module>(decoder: &M) -> M {
    decoder.valid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaptionDecoderConfig;
    use burn::tensor::TensorData;

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
            let loss_b = loss_b.into_scalar::<f32>();
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

    /// The attention decoder's regulariser is a mean over images: shards weigh it by their
    /// share of the images (and the cross-entropy by their share of the targets), so two
    /// shards of unequal caption lengths update as the whole batch does.
    #[test]
    fn sharded_attention_step_equals_the_single_device_step() {
        let device = Device::flex().autodiff();
        let config = crate::AttentionDecoderConfig::new(10)
            .with_d_feature(3)
            .with_grid(2)
            .with_d_embed(4)
            .with_d_attention(5)
            .with_d_hidden(6)
            .with_dropout(0.0)
            .with_alpha_c(0.5);
        let decoder = config.init(&device).unwrap().materialized();
        let values: Vec<f32> = (0..36)
            .map(|i| ((i * 7) % 11) as f32 / 11.0 - 0.4)
            .collect();
        let features = Tensor::<2>::from_data(TensorData::new(values, [3, 12]), &device);
        let tokens = |v: Vec<i64>, n: usize, t: usize| {
            Tensor::<2, Int>::from_data(TensorData::new(v, [n, t]), &device)
        };
        let whole = CaptionBatch {
            features: features.clone(),
            inputs: tokens(vec![1, 5, 6, 0, 1, 7, 8, 9, 1, 4, 0, 0], 3, 4),
            targets: tokens(vec![5, 6, 2, 0, 7, 8, 9, 2, 4, 2, 0, 0], 3, 4),
        };
        let shards = [
            CaptionBatch {
                features: features.clone().narrow(0, 0, 1),
                inputs: tokens(vec![1, 5, 6], 1, 3),
                targets: tokens(vec![5, 6, 2], 1, 3),
            },
            CaptionBatch {
                features: features.narrow(0, 1, 2),
                inputs: tokens(vec![1, 7, 8, 9, 1, 4, 0, 0], 2, 4),
                targets: tokens(vec![7, 8, 9, 2, 4, 2, 0, 0], 2, 4),
            },
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
            let loss_b = loss_b.into_scalar::<f32>();
            assert!((loss_a - loss_b).abs() < 1e-5, "{loss_a} vs {loss_b}");
        }
        let values = |d: &crate::AttentionDecoder| {
            d.attention
                .encoder_att
                .weight
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let worst = storyteller_test_support::compare::max_abs_difference(
            &values(&sharded),
            &values(&single),
        );
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
