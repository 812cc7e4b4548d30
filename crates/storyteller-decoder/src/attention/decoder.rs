//! The Show, Attend and Tell caption decoder.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::module::linear;
use burn::tensor::{Device, Int, Tensor};

use crate::attention::{AttentionDecoderConfig, SoftAttention};
use crate::{DecoderError, LstmCell};

/// A soft-attention LSTM caption decoder in the style of Show, Attend and Tell (Xu et al.,
/// 2015), laid out as the widely used PyTorch tutorial's `DecoderWithAttention`.
///
/// Image features arrive as a grid of region vectors, flattened per image to
/// `[batch, regions·d_feature]` (the layout of a spatial feature cache row). Each region is
/// standardised, `a' = (a − feature_mean) · feature_scale` (identity until
/// [`set_feature_statistics`](Self::set_feature_statistics); an imported tutorial model
/// keeps the identity). Then:
///
/// ```text
/// h₀ = init_h·mean(a'),  c₀ = init_c·mean(a')                 (no tanh, as the tutorial)
/// per step t:
///   α, z = attention(a', h)                                   (softmax over the regions)
///   z = σ(f_beta·h) ⊙ z                                       (the gate on the context)
///   h, c = LSTM([embedding(w_t); z], (h, c))
///   logits = fc(dropout(h))
/// ```
///
/// Training adds the doubly stochastic regulariser `λ·Σ_r (1 − Σ_t α_tr)²` (see
/// [`AttentionDecoder::regulariser`]).
#[derive(Module, Debug)]
pub struct AttentionDecoder {
    /// Subtracted from every region feature `[d_feature]` (not trained).
    pub feature_mean: Param<Tensor<1>>,
    /// Multiplies centred region features `[d_feature]` (not trained).
    pub feature_scale: Param<Tensor<1>>,
    /// The attention MLP.
    pub attention: SoftAttention,
    /// Word embeddings `[vocab_size, d_embed]`.
    pub embedding: Embedding,
    /// The LSTM cell; its input is `[embedding; gated context]`, `d_embed + d_feature` wide.
    pub decode_step: LstmCell,
    /// Mean feature to initial hidden state, `d_feature → d_hidden`.
    pub init_h: Linear,
    /// Mean feature to initial cell state, `d_feature → d_hidden`.
    pub init_c: Linear,
    /// Hidden state to the context gate, `d_hidden → d_feature`.
    pub f_beta: Linear,
    /// Hidden state to vocabulary logits, `d_hidden → vocab_size`.
    pub fc: Linear,
    /// Dropout before `fc` (active on autodiff devices only).
    pub dropout: Dropout,
    /// Side of the feature grid (`regions = grid²`), a constant of the module.
    grid: usize,
    /// Weight of the doubly stochastic regulariser in training, a constant of the module.
    alpha_c: f64,
}

/// The recurrent state of a batch of rows, with each row's image: the regions and their
/// projection into attention space are computed once per image and reordered with the
/// rows by beam search, never recomputed.
#[derive(Debug, Clone)]
pub struct AttentionState {
    /// LSTM hidden state `[rows, d_hidden]`.
    pub hidden: Tensor<2>,
    /// LSTM cell state `[rows, d_hidden]`.
    pub cell: Tensor<2>,
    /// Standardised region features `[rows, regions, d_feature]`.
    pub regions: Tensor<3>,
    /// `encoder_att` of the regions `[rows, regions, d_attention]`.
    pub projected: Tensor<3>,
    /// The attention weights of the last step `[rows, regions]` (`None` before the first).
    pub alpha: Option<Tensor<2>>,
}

impl AttentionDecoder {
    pub(crate) fn new(config: &AttentionDecoderConfig, device: &Device) -> Self {
        let (f, h) = (config.d_feature, config.d_hidden);
        Self {
            feature_mean: Param::from_tensor(Tensor::zeros([f], device)).set_require_grad(false),
            feature_scale: Param::from_tensor(Tensor::ones([f], device)).set_require_grad(false),
            attention: SoftAttention::new(f, h, config.d_attention, device),
            embedding: EmbeddingConfig::new(config.vocab_size, config.d_embed).init(device),
            decode_step: LstmCell::new(config.d_embed + f, h, device),
            init_h: LinearConfig::new(f, h).init(device),
            init_c: LinearConfig::new(f, h).init(device),
            f_beta: LinearConfig::new(h, f).init(device),
            fc: LinearConfig::new(h, config.vocab_size).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
            grid: config.grid,
            alpha_c: config.alpha_c,
        }
    }

    /// Stores the per-dimension mean and standard deviation of the training regions'
    /// features (dimensions with a deviation below 1e-6 are only centred).
    ///
    /// # Panics
    /// When `mean` or `std` is not `d_feature` long.
    pub fn set_feature_statistics(mut self, mean: &[f32], std: &[f32]) -> Self {
        let device = self.feature_mean.device();
        (self.feature_mean, self.feature_scale) =
            crate::weights::standardisation(mean, std, self.d_feature(), &device);
        self
    }

    /// Draws every lazily initialised parameter now, in module order (see
    /// [`CaptionDecoder::materialized`](crate::CaptionDecoder::materialized)).
    pub fn materialized(self) -> Self {
        crate::weights::materialize(self)
    }

    /// The weights in Burn's record format (burnpack).
    ///
    /// # Errors
    /// [`DecoderError::Record`] (with an empty path) when serialisation fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecoderError> {
        crate::weights::record_bytes(self)
    }

    /// A decoder of `config` with the weights of a burnpack file written by
    /// [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// The config is invalid, or the file is unreadable or does not fit the config.
    pub fn load(
        path: impl AsRef<std::path::Path>,
        config: &AttentionDecoderConfig,
        device: &Device,
    ) -> Result<Self, DecoderError> {
        crate::weights::load_record(config.init(device)?, path.as_ref())
    }

    /// Number of tokens the decoder scores.
    pub fn vocab_size(&self) -> usize {
        self.fc.weight.dims()[1]
    }

    /// Width of one region's feature.
    pub fn d_feature(&self) -> usize {
        self.feature_mean.dims()[0]
    }

    /// Side of the feature grid.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// Weight λ of the doubly stochastic regulariser in training.
    pub fn alpha_c(&self) -> f64 {
        self.alpha_c
    }

    /// Regions per image, `grid²`.
    pub fn regions(&self) -> usize {
        self.grid * self.grid
    }

    /// Width of the word embeddings.
    pub fn d_embed(&self) -> usize {
        self.embedding.weight.dims()[1]
    }

    /// Flattened rows to standardised regions.
    ///
    /// # Panics
    /// When a row is not `regions · d_feature` wide.
    fn standardised_regions(&self, features: Tensor<2>) -> Tensor<3> {
        crate::weights::standardised_regions(
            features,
            &self.feature_mean,
            &self.feature_scale,
            self.grid,
            "an attention decoder",
        )
    }

    /// The state before the first token.
    ///
    /// # Shapes
    /// - `features`: `[batch, regions·d_feature]`
    pub fn init_state(&self, features: Tensor<2>) -> AttentionState {
        let regions = self.standardised_regions(features);
        let [batch, _, d] = regions.dims();
        let mean = regions.clone().mean_dim(1).reshape([batch, d]);
        AttentionState {
            hidden: self.init_h.forward(mean.clone()),
            cell: self.init_c.forward(mean),
            projected: self.attention.project_regions(regions.clone()),
            regions,
            alpha: None,
        }
    }

    /// One LSTM step from precomputed embedding gates (`x·W_ih[..d_embed] + b_ih + b_hh`).
    fn advance(&self, embedding_gates: Tensor<2>, state: AttentionState) -> AttentionState {
        let AttentionState {
            hidden,
            cell,
            regions,
            projected,
            ..
        } = state;
        let (context, alpha) =
            self.attention
                .attend(regions.clone(), projected.clone(), hidden.clone());
        let gate = sigmoid(self.f_beta.forward(hidden.clone()));
        let context_weights =
            self.decode_step
                .weight_ih
                .val()
                .narrow(0, self.d_embed(), self.d_feature());
        let gates = embedding_gates + (gate * context).matmul(context_weights);
        let (hidden, cell) = self.decode_step.step_gates(gates, hidden, cell);
        AttentionState {
            hidden,
            cell,
            regions,
            projected,
            alpha: Some(alpha),
        }
    }

    /// `embedding·W_ih[..d_embed] + b_ih + b_hh` for any number of leading dimensions.
    fn embedding_gates<const D: usize>(&self, embedded: Tensor<D>) -> Tensor<D> {
        let weight = self
            .decode_step
            .weight_ih
            .val()
            .narrow(0, 0, self.d_embed());
        linear(embedded, weight, Some(self.decode_step.gate_bias()))
    }

    /// Teacher-forced logits of every position: the training and validation forward.
    ///
    /// # Shapes
    /// - `features`: `[batch, regions·d_feature]`
    /// - `tokens`: `[batch, T]`
    /// - returns `[batch, T, vocab_size]`: position t scores token t+1.
    pub fn forward(&self, features: Tensor<2>, tokens: Tensor<2, Int>) -> Tensor<3> {
        self.forward_with_attention(features, tokens).0
    }

    /// Teacher-forced logits and the attention weights of every step.
    ///
    /// # Shapes
    /// - `features`: `[batch, regions·d_feature]`
    /// - `tokens`: `[batch, T]`
    /// - returns logits `[batch, T, vocab_size]` and weights `[batch, T, regions]` (row t:
    ///   where the decoder looked while scoring token t+1).
    pub fn forward_with_attention(
        &self,
        features: Tensor<2>,
        tokens: Tensor<2, Int>,
    ) -> (Tensor<3>, Tensor<3>) {
        let [batch, steps] = tokens.dims();
        let gates = self.embedding_gates(self.embedding.forward(tokens));
        let d_gates = gates.dims()[2];
        let mut state = self.init_state(features);
        let mut hidden = Vec::with_capacity(steps);
        let mut alphas = Vec::with_capacity(steps);
        for t in 0..steps {
            let step_gates = gates.clone().narrow(1, t, 1).reshape([batch, d_gates]);
            state = self.advance(step_gates, state);
            hidden.push(state.hidden.clone());
            alphas.push(state.alpha.clone().expect("set by advance"));
        }
        let hidden = Tensor::stack(hidden, 1);
        (
            self.fc.forward(self.dropout.forward(hidden)),
            Tensor::stack(alphas, 1),
        )
    }

    /// One decoding step: logits of the next token, and the new state (whose `alpha` is
    /// where this step looked).
    ///
    /// # Shapes
    /// - `tokens`: `[rows]`
    /// - returns `[rows, vocab_size]`
    pub fn step_logits(
        &self,
        tokens: Tensor<1, Int>,
        state: AttentionState,
    ) -> (Tensor<2>, AttentionState) {
        let [rows] = tokens.dims();
        let embedded = self.embedding.forward(tokens.unsqueeze_dim(1));
        let d_embed = embedded.dims()[2];
        let gates = self.embedding_gates(embedded.reshape([rows, d_embed]));
        let state = self.advance(gates, state);
        let logits = self.fc.forward(self.dropout.forward(state.hidden.clone()));
        (logits, state)
    }

    /// The doubly stochastic attention regulariser, `λ · mean over images of
    /// Σ_regions (1 − Σ_steps α)²`, summing only the steps whose target is not `<pad>`:
    /// it pushes the decoder to look at every region about once over a caption.
    ///
    /// # Shapes
    /// - `alphas`: `[batch, T, regions]` ([`forward_with_attention`](Self::forward_with_attention))
    /// - `targets`: `[batch, T]`
    /// - returns `[1]`
    pub fn regulariser(
        &self,
        alphas: Tensor<3>,
        targets: Tensor<2, Int>,
        pad: u32,
        alpha_c: f64,
    ) -> Tensor<1> {
        let [batch, _, _] = alphas.dims();
        let mask = targets
            .not_equal_elem(pad as i64)
            .float()
            .unsqueeze_dim::<3>(2);
        let attended = (alphas * mask).sum_dim(1);
        let missing = attended.neg() + 1.0;
        (missing.clone() * missing).sum() * (alpha_c / batch.max(1) as f64)
    }
}

impl AttentionState {
    /// A state whose row `i` is row `rows[i]` of this one.
    ///
    /// # Shapes
    /// - `rows`: `[new_rows]`
    pub fn select_rows(self, rows: Tensor<1, Int>) -> Self {
        Self {
            hidden: self.hidden.select(0, rows.clone()),
            cell: self.cell.select(0, rows.clone()),
            regions: self.regions.select(0, rows.clone()),
            projected: self.projected.select(0, rows.clone()),
            alpha: self.alpha.map(|alpha| alpha.select(0, rows)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};
    use storyteller_test_support::compare::max_abs_difference as worst;

    fn config() -> AttentionDecoderConfig {
        AttentionDecoderConfig::new(12)
            .with_d_feature(6)
            .with_grid(2)
            .with_d_embed(5)
            .with_d_attention(7)
            .with_d_hidden(8)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn inputs(device: &Device) -> (Tensor<2>, Tensor<2, Int>) {
        let features = Tensor::<2>::random([3, 24], Distribution::Default, device);
        let tokens = Tensor::<2, Int>::from_data(
            TensorData::new(vec![1i64, 5, 6, 7, 1, 8, 9, 0, 1, 4, 0, 0], [3, 4]),
            device,
        );
        (features, tokens)
    }

    /// Decoding step by step gives the teacher-forced logits and attention weights; the
    /// weights sum to 1 over the regions; the record round-trips.
    #[test]
    fn steps_match_teacher_forcing_and_records_round_trip() {
        let device = Device::flex();
        let decoder = config()
            .init(&device)
            .unwrap()
            .materialized()
            .set_feature_statistics(&[0.1; 6], &[0.5, 1.0, 2.0, 1.0, 1.0, 0.0]);
        let (features, tokens) = inputs(&device);
        let (forced, alphas) = decoder.forward_with_attention(features.clone(), tokens.clone());
        let (forced, alphas) = (values(forced), values(alphas));
        for row in alphas.chunks(4) {
            let sum: f32 = row.iter().sum();
            assert!((sum - 1.0).abs() < 1e-5, "weights sum to {sum}");
        }
        let mut state = decoder.init_state(features.clone());
        let (mut stepped, mut stepped_alphas) = (vec![0.0; forced.len()], vec![0.0; alphas.len()]);
        for t in 0..4 {
            let column = tokens.clone().narrow(1, t, 1).reshape([3]);
            let (logits, next) = decoder.step_logits(column, state);
            for (b, row) in values(logits).chunks(12).enumerate() {
                stepped[(b * 4 + t) * 12..][..12].copy_from_slice(row);
            }
            for (b, row) in values(next.alpha.clone().unwrap()).chunks(4).enumerate() {
                stepped_alphas[(b * 4 + t) * 4..][..4].copy_from_slice(row);
            }
            state = next;
        }
        assert!(worst(&forced, &stepped) < 1e-5);
        assert!(worst(&alphas, &stepped_alphas) < 1e-6);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decoder.bpk");
        std::fs::write(&path, decoder.to_bytes().unwrap()).unwrap();
        let loaded = AttentionDecoder::load(&path, &config(), &device).unwrap();
        assert_eq!(loaded.grid(), 2);
        let again = values(loaded.forward(features, tokens));
        assert!(worst(&forced, &again) < 1e-6);
    }

    /// The regulariser by hand: two images, two regions, three steps (the last padded for
    /// the second image).
    #[test]
    fn regulariser_sums_regions_over_unpadded_steps() {
        let device = Device::flex();
        let decoder = config().with_grid(1).init(&device).unwrap();
        let alphas = Tensor::<3>::from_data(
            TensorData::new(
                vec![
                    0.5f32, 0.5, 0.5, 0.5, 1.0, 0.0, 0.2, 0.8, 0.4, 0.6, 0.9, 0.1,
                ],
                [2, 3, 2],
            ),
            &device,
        );
        let targets = Tensor::<2, Int>::from_data(
            TensorData::new(vec![4i64, 5, 2, 6, 2, 0], [2, 3]),
            &device,
        );
        let value = values(decoder.regulariser(alphas, targets, 0, 2.0))[0];
        // Image 0 attends [2.0, 1.0]: (1-2)² + 0² = 1. Image 1 (steps 0-1): [0.6, 1.4]:
        // 0.16 + 0.16 = 0.32. λ = 2, mean over the images: 2 · 1.32 / 2.
        assert!((value - 1.32).abs() < 1e-5, "{value}");
    }

    #[test]
    #[should_panic(expected = "rows of 24 values, not 12")]
    fn features_of_another_grid_are_refused() {
        let device = Device::flex();
        let decoder = config().init(&device).unwrap();
        let _ = decoder.init_state(Tensor::zeros([1, 12], &device));
    }
}
