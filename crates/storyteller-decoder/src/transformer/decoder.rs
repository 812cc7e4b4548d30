//! The Transformer caption decoder.

use burn::module::{Module, Param};
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig,
    Linear, LinearConfig,
};
use burn::tensor::module::linear;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::DecoderError;
use crate::transformer::{KeyValue, TransformerDecoderConfig, TransformerLayer};

/// A pre-norm Transformer caption decoder over a grid of image regions.
///
/// Image features arrive as a grid of region vectors flattened per image,
/// `[batch, regions·d_feature]` (a spatial feature cache row; a pooled row is a 1x1 grid).
/// Each region is standardised, `a' = (a − feature_mean) · feature_scale` (identity until
/// [`set_feature_statistics`](Self::set_feature_statistics) and on import). Then:
///
/// ```text
/// memory = feature_proj(a') + region_embedding            [regions, d_model] per image
/// x_t    = √d_model · embedding(w_t) + sinusoid(t)        (t from 0)
/// x      = layers(x, memory)                              (causal self-attention)
/// logits = norm(x)·W_out + b_out                          (W_out = embeddingᵀ when tied)
/// ```
///
/// `sinusoid(t)[2i] = sin(t / 10000^(2i/d_model))`, `sinusoid(t)[2i+1] = cos(…)`, so
/// captions of any length are scored. The layers are [`TransformerLayer`]s; the module's
/// layout is that of PyTorch's `nn.TransformerDecoder` (see [`load_pytorch_transformer`]
/// for the key map).
///
/// [`load_pytorch_transformer`]: crate::transformer::load_pytorch_transformer
#[derive(Module, Debug)]
pub struct TransformerDecoder {
    /// Subtracted from every region feature `[d_feature]` (not trained).
    pub feature_mean: Param<Tensor<1>>,
    /// Multiplies centred region features `[d_feature]` (not trained).
    pub feature_scale: Param<Tensor<1>>,
    /// Region features to the model width, `d_feature → d_model`.
    pub feature_proj: Linear,
    /// A learned vector per region, where on the grid it lies `[regions, d_model]`.
    pub region_embedding: Param<Tensor<2>>,
    /// Token embeddings `[vocab_size, d_model]`.
    pub embedding: Embedding,
    /// The decoder layers.
    pub layers: Vec<TransformerLayer>,
    /// The final layer norm (pre-norm layers leave the residual stream unnormalised).
    pub norm: LayerNorm,
    /// The output projection `[d_model, vocab_size]`; `None` when tied to the embedding.
    pub output_weight: Option<Param<Tensor<2>>>,
    /// The output bias `[vocab_size]`.
    pub output_bias: Param<Tensor<1>>,
    /// Dropout on the embedded tokens (training only).
    pub dropout: Dropout,
    /// Side of the feature grid, a constant of the module.
    grid: usize,
}

/// The incremental decoding state of a batch of rows: each layer's keys and values of the
/// image regions (computed once per image) and of the tokens fed so far, so that a step
/// costs one token's work. Beam search reorders both with the rows.
#[derive(Debug, Clone)]
pub struct TransformerState {
    /// Per layer, the cross-attention keys and values `[rows, heads, regions, d_head]`.
    pub memory: Vec<KeyValue>,
    /// Per layer, the self-attention keys and values of the tokens fed so far
    /// `[rows, heads, position, d_head]` (empty before the first step).
    pub cache: Vec<KeyValue>,
    /// Number of tokens fed so far: the position of the next one.
    pub position: usize,
}

impl TransformerState {
    /// A state whose row `i` is row `rows[i]` of this one.
    ///
    /// # Shapes
    /// - `rows`: `[new_rows]`
    pub fn select_rows(self, rows: Tensor<1, Int>) -> Self {
        let select = |kvs: Vec<KeyValue>| {
            kvs.into_iter()
                .map(|kv| kv.select_rows(rows.clone()))
                .collect()
        };
        Self {
            memory: select(self.memory),
            cache: select(self.cache),
            position: self.position,
        }
    }
}

/// Sinusoidal position encodings of positions `start..start + count`, `[count, d]`
/// (computed in f64).
pub fn sinusoid(start: usize, count: usize, d: usize, device: &Device) -> Tensor<2> {
    let mut values = Vec::with_capacity(count * d);
    for t in start..start + count {
        for i in 0..d {
            let pair = (i / 2) as f64;
            let angle = t as f64 / 10000f64.powf(2.0 * pair / d as f64);
            values.push(if i % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Tensor::from_data(TensorData::new(values, [count, d]), device)
}

/// The causal mask as an additive bias `[steps, steps]`: 0 where a position may look
/// (itself and earlier), −∞ above the diagonal.
fn causal_bias(steps: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..steps * steps)
        .map(|i| {
            if i % steps > i / steps {
                f32::NEG_INFINITY
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [steps, steps]), device)
}

impl TransformerDecoder {
    pub(crate) fn new(config: &TransformerDecoderConfig, device: &Device) -> Self {
        let (f, d, v) = (config.d_feature, config.d_model, config.vocab_size);
        let bound = 1.0 / (d as f64).sqrt();
        let output_init = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        Self {
            feature_mean: Param::from_tensor(Tensor::zeros([f], device)).set_require_grad(false),
            feature_scale: Param::from_tensor(Tensor::ones([f], device)).set_require_grad(false),
            feature_proj: LinearConfig::new(f, d).init(device),
            region_embedding: Initializer::Normal {
                mean: 0.0,
                std: 1.0,
            }
            .init([config.regions(), d], device),
            // Unit variance after the √d_model scale, like the sinusoid it is added to.
            embedding: EmbeddingConfig::new(v, d)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: bound,
                })
                .init(device),
            layers: (0..config.n_layers)
                .map(|_| {
                    TransformerLayer::new(d, config.n_heads, config.d_ff, config.dropout, device)
                })
                .collect(),
            norm: LayerNormConfig::new(d).init(device),
            output_weight: (!config.tied_output).then(|| output_init.init([d, v], device)),
            output_bias: output_init.init([v], device),
            dropout: DropoutConfig::new(config.dropout).init(),
            grid: config.grid,
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
        config: &TransformerDecoderConfig,
        device: &Device,
    ) -> Result<Self, DecoderError> {
        crate::weights::load_record(config.init(device)?, path.as_ref())
    }

    /// Number of tokens the decoder scores.
    pub fn vocab_size(&self) -> usize {
        self.output_bias.dims()[0]
    }

    /// Width of one region's feature.
    pub fn d_feature(&self) -> usize {
        self.feature_mean.dims()[0]
    }

    /// Width of the model.
    pub fn d_model(&self) -> usize {
        self.norm.gamma.dims()[0]
    }

    /// Side of the feature grid.
    pub fn grid(&self) -> usize {
        self.grid
    }

    /// Regions per image, `grid²`.
    pub fn regions(&self) -> usize {
        self.grid * self.grid
    }

    /// Each layer's cross-attention keys and values of the images' regions.
    fn memory(&self, features: Tensor<2>) -> Vec<KeyValue> {
        let regions = crate::weights::standardised_regions(
            features,
            &self.feature_mean,
            &self.feature_scale,
            self.grid,
            "a Transformer decoder",
        );
        let memory =
            self.feature_proj.forward(regions) + self.region_embedding.val().unsqueeze::<3>();
        self.layers
            .iter()
            .map(|layer| layer.multihead_attn.key_value(memory.clone()))
            .collect()
    }

    /// Scaled token embeddings plus the positions from `start`, `[batch, T, d_model]`.
    fn embed(&self, tokens: Tensor<2, Int>, start: usize) -> Tensor<3> {
        let [_, steps] = tokens.dims();
        let d = self.d_model();
        let device = self.output_bias.device();
        let x = self.embedding.forward(tokens).mul_scalar((d as f64).sqrt())
            + sinusoid(start, steps, d, &device).unsqueeze::<3>();
        self.dropout.forward(x)
    }

    /// Vocabulary logits of the final layer's output.
    fn logits(&self, x: Tensor<3>) -> Tensor<3> {
        let x = self.norm.forward(x);
        let weight = match &self.output_weight {
            Some(weight) => weight.val(),
            None => self.embedding.weight.val().transpose(),
        };
        linear(x, weight, Some(self.output_bias.val()))
    }

    /// Teacher-forced logits of every position (causal: position t sees tokens 0..=t): the
    /// training and validation forward.
    ///
    /// # Shapes
    /// - `features`: `[batch, regions·d_feature]`
    /// - `tokens`: `[batch, T]`
    /// - returns `[batch, T, vocab_size]`: position t scores token t+1.
    pub fn forward(&self, features: Tensor<2>, tokens: Tensor<2, Int>) -> Tensor<3> {
        let [_, steps] = tokens.dims();
        let memory = self.memory(features);
        let bias = causal_bias(steps, &self.output_bias.device());
        let mut x = self.embed(tokens, 0);
        for (layer, memory) in self.layers.iter().zip(&memory) {
            x = layer.forward(x, memory, bias.clone());
        }
        self.logits(x)
    }

    /// The state before the first token: the regions' keys and values, no tokens.
    ///
    /// # Shapes
    /// - `features`: `[batch, regions·d_feature]`
    pub fn init_state(&self, features: Tensor<2>) -> TransformerState {
        TransformerState {
            memory: self.memory(features),
            cache: Vec::new(),
            position: 0,
        }
    }

    /// One decoding step: logits of the next token and the state with this token's keys
    /// and values appended (one token's work, whatever the prefix length).
    ///
    /// # Shapes
    /// - `tokens`: `[rows]`
    /// - returns `[rows, vocab_size]`
    pub fn step_logits(
        &self,
        tokens: Tensor<1, Int>,
        state: TransformerState,
    ) -> (Tensor<2>, TransformerState) {
        let [rows] = tokens.dims();
        let TransformerState {
            memory,
            cache,
            position,
        } = state;
        let mut cache = cache.into_iter().map(Some).collect::<Vec<_>>();
        cache.resize(self.layers.len(), None);
        let mut x = self.embed(tokens.unsqueeze_dim(1), position);
        let mut next = Vec::with_capacity(self.layers.len());
        for ((layer, memory), cache) in self.layers.iter().zip(&memory).zip(cache) {
            let (out, kv) = layer.step(x, memory, cache);
            x = out;
            next.push(kv);
        }
        let logits = self.logits(x).reshape([rows, self.vocab_size()]);
        (
            logits,
            TransformerState {
                memory,
                cache: next,
                position: position + 1,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use storyteller_test_support::compare::max_abs_difference as worst;

    fn config() -> TransformerDecoderConfig {
        TransformerDecoderConfig::new(12)
            .with_d_feature(6)
            .with_grid(2)
            .with_d_model(8)
            .with_n_heads(2)
            .with_n_layers(2)
            .with_d_ff(12)
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

    /// Incremental decoding with key/value caches gives the full causal forward's logits,
    /// untied and tied, and a reordered cache continues as the reordered rows would.
    #[test]
    fn cached_steps_equal_full_recomputation() {
        let device = Device::flex();
        for tied in [false, true] {
            let decoder = config()
                .with_tied_output(tied)
                .init(&device)
                .unwrap()
                .materialized()
                .set_feature_statistics(&[0.1; 6], &[0.5, 1.0, 2.0, 1.0, 1.0, 0.0]);
            let (features, tokens) = inputs(&device);
            let forced = values(decoder.forward(features.clone(), tokens.clone()));
            let mut state = decoder.init_state(features.clone());
            let mut stepped = vec![0.0; forced.len()];
            for t in 0..4 {
                let column = tokens.clone().narrow(1, t, 1).reshape([3]);
                let (logits, next) = decoder.step_logits(column, state);
                for (b, row) in values(logits).chunks(12).enumerate() {
                    stepped[(b * 4 + t) * 12..][..12].copy_from_slice(row);
                }
                state = next;
            }
            assert_eq!(state.position, 4);
            assert_eq!(state.cache[0].key.dims(), [3, 2, 4, 4]);
            assert!(worst(&forced, &stepped) < 1e-5, "tied {tied}");

            // Rows reordered after two steps (2, 0, 0) continue as those rows' prefixes do.
            let rows =
                || Tensor::<1, Int>::from_data(TensorData::new(vec![2i64, 0, 0], [3]), &device);
            let mut state = decoder.init_state(features.clone());
            for t in 0..2 {
                let column = tokens.clone().narrow(1, t, 1).reshape([3]);
                state = decoder.step_logits(column, state).1;
            }
            let state = state.select_rows(rows());
            let column = tokens
                .clone()
                .select(0, rows())
                .narrow(1, 2, 1)
                .reshape([3]);
            let (logits, _) = decoder.step_logits(column, state);
            let full = decoder.forward(
                features.clone().select(0, rows()),
                tokens.clone().select(0, rows()).narrow(1, 0, 3),
            );
            let expected = values(full.narrow(1, 2, 1).reshape([3, 12]));
            assert!(worst(&values(logits), &expected) < 1e-5);
        }
    }

    #[test]
    fn records_round_trip() {
        let device = Device::flex();
        let decoder = config().init(&device).unwrap().materialized();
        let (features, tokens) = inputs(&device);
        let expected = values(decoder.forward(features.clone(), tokens.clone()));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decoder.bpk");
        std::fs::write(&path, decoder.to_bytes().unwrap()).unwrap();
        let loaded = TransformerDecoder::load(&path, &config(), &device).unwrap();
        assert!(worst(&expected, &values(loaded.forward(features, tokens))) < 1e-6);
        let tied = TransformerDecoder::load(&path, &config().with_tied_output(true), &device);
        assert!(
            tied.is_err(),
            "a tied config must not load untied weights silently"
        );
    }

    #[test]
    fn parameters_count_every_weight() {
        let device = Device::flex();
        for tied in [false, true] {
            let config = config().with_tied_output(tied);
            let decoder = config.init(&device).unwrap();
            assert_eq!(
                decoder.num_params() as u64,
                config.parameters(),
                "tied {tied}"
            );
        }
    }

    #[test]
    fn bad_configs_are_refused() {
        let device = Device::flex();
        assert!(config().with_n_heads(3).init(&device).is_err());
        assert!(
            config()
                .with_d_model(6)
                .with_n_heads(6)
                .init(&device)
                .is_ok()
        );
        assert!(
            config()
                .with_d_model(9)
                .with_n_heads(1)
                .init(&device)
                .is_err()
        );
        assert!(config().with_n_layers(0).init(&device).is_err());
    }

    #[test]
    #[should_panic(expected = "rows of 24 values, not 12")]
    fn features_of_another_grid_are_refused() {
        let device = Device::flex();
        let decoder = config().init(&device).unwrap();
        let _ = decoder.init_state(Tensor::zeros([1, 12], &device));
    }
}
