//! The Show-and-Tell caption decoder.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use crate::{CaptionDecoderConfig, Conditioning, LstmCell};

/// An LSTM caption decoder in the style of Show and Tell (Vinyals et al., 2015), as the
/// PyTorch reference workload (`benches/torch_reference.py`) builds it.
///
/// The image feature is standardised, `f' = (f − feature_mean) · feature_scale` (identity
/// until [`set_feature_statistics`](Self::set_feature_statistics) stores the training
/// set's statistics, which are saved with the weights and never trained), then initialises
/// the LSTM state, `h₀ = tanh(init_h·f')` and `c₀ = tanh(init_c·f')` (one `d_hidden`
/// slice per layer); word embeddings feed the
/// LSTM; a linear layer maps each hidden state to vocabulary logits. Dropout acts on the
/// standardised features, the embeddings, between layers and before the output layer, on
/// autodiff devices only.
///
/// With `d_whitened` set, the standardised feature is also projected onto its whitened
/// principal components ([`set_feature_whitening`](Self::set_feature_whitening)) before any
/// of that.
///
/// That is the seed's init-inject model ([`Conditioning::Init`]). With
/// [`Conditioning::Par`] the state starts at zero and the first layer's gates get
/// `feature_gates·f'` at every step (the feature concatenated to every input);
/// [`Conditioning::Both`] does both.
///
/// Field names are the PyTorch module's (`init_h`, `init_c`, `embed`, `lstm`, `out`), so
/// its state dict maps one to one (see [`load_pytorch`](crate::load_pytorch)).
#[derive(Module, Debug)]
pub struct CaptionDecoder {
    /// Subtracted from image features `[d_feature]` (not trained).
    pub feature_mean: Param<Tensor<1>>,
    /// Multiplies centred image features `[d_feature]` (not trained).
    pub feature_scale: Param<Tensor<1>>,
    /// Projects standardised features onto their whitened principal components,
    /// `[d_feature, d_whitened]` (not trained; present when the config has `d_whitened`).
    pub feature_whitening: Option<Param<Tensor<2>>>,
    /// Feature to initial hidden state, `d_feature → n_layers·d_hidden` (init-inject only).
    pub init_h: Option<Linear>,
    /// Feature to initial cell state, `d_feature → n_layers·d_hidden` (init-inject only).
    pub init_c: Option<Linear>,
    /// Feature to the first layer's gate pre-activations, `d_feature → 4·d_hidden`, added
    /// at every step (par-inject only; no bias, the LSTM has its own).
    pub feature_gates: Option<Linear>,
    /// Word embeddings `[vocab_size, d_embed]`.
    pub embed: Embedding,
    /// The LSTM layers, bottom first.
    pub lstm: Vec<LstmCell>,
    /// Hidden state to vocabulary logits, `d_hidden → vocab_size`.
    pub out: Linear,
    /// Dropout (active on autodiff devices only).
    pub dropout: Dropout,
}

/// The recurrent state of a batch of rows: per layer, hidden and cell `[rows, d_hidden]`,
/// and for par-inject the image's gate contribution.
#[derive(Debug, Clone)]
pub struct DecoderState {
    /// Hidden state of each layer, bottom first.
    pub hidden: Vec<Tensor<2>>,
    /// Cell state of each layer, bottom first.
    pub cell: Vec<Tensor<2>>,
    /// `feature_gates·f'` of each row, `[rows, 4·d_hidden]`, computed once per image and
    /// added to the first layer's gates at every step (`None` for init-inject).
    pub feature_gates: Option<Tensor<2>>,
}

impl CaptionDecoder {
    pub(crate) fn new(config: &CaptionDecoderConfig, device: &Device) -> Self {
        let d_state = config.d_hidden * config.n_layers;
        let init = config.conditioning.injects_init();
        let d_input = config.d_whitened.unwrap_or(config.d_feature);
        Self {
            feature_mean: Param::from_tensor(Tensor::zeros([config.d_feature], device))
                .set_require_grad(false),
            feature_scale: Param::from_tensor(Tensor::ones([config.d_feature], device))
                .set_require_grad(false),
            feature_whitening: config.d_whitened.map(|d| {
                let identity: Tensor<2> = Tensor::eye(config.d_feature, device);
                Param::from_tensor(identity.narrow(1, 0, d)).set_require_grad(false)
            }),
            init_h: init.then(|| LinearConfig::new(d_input, d_state).init(device)),
            init_c: init.then(|| LinearConfig::new(d_input, d_state).init(device)),
            feature_gates: config.conditioning.injects_every_step().then(|| {
                LinearConfig::new(d_input, 4 * config.d_hidden)
                    .with_bias(false)
                    .init(device)
            }),
            embed: EmbeddingConfig::new(config.vocab_size, config.d_embed).init(device),
            lstm: (0..config.n_layers)
                .map(|layer| {
                    let d_input = if layer == 0 {
                        config.d_embed
                    } else {
                        config.d_hidden
                    };
                    LstmCell::new(d_input, config.d_hidden, device)
                })
                .collect(),
            out: LinearConfig::new(config.d_hidden, config.vocab_size).init(device),
            dropout: DropoutConfig::new(config.dropout).init(),
        }
    }

    /// Stores the per-dimension mean and standard deviation of the training features, so
    /// every feature is standardised before it initialises the state (a deep network's
    /// pooled features share a large common component; standardising keeps `tanh` out of
    /// saturation). Dimensions with a standard deviation below 1e-6 are only centred.
    ///
    /// # Panics
    /// When `mean` or `std` is not `d_feature` long.
    pub fn set_feature_statistics(mut self, mean: &[f32], std: &[f32]) -> Self {
        let device = self.feature_mean.device();
        (self.feature_mean, self.feature_scale) =
            crate::weights::standardisation(mean, std, self.d_feature(), &device);
        self
    }

    /// Stores the whitening projection `[d_feature, d_whitened]` (row-major), applied to the
    /// standardised feature: `f'' = f'·W`. With the principal directions of the training
    /// features as columns, each divided by the square root of its variance, the decoder
    /// sees decorrelated unit-variance inputs. A random or frozen encoder's pooled features
    /// are strongly correlated (one large common component); whitened, the differences
    /// between images are what the first layer sees, and it learns them in far fewer steps.
    ///
    /// # Panics
    /// When the decoder has no whitening (`d_whitened` is `None`) or `matrix` is not
    /// `d_feature · d_whitened` long.
    pub fn set_feature_whitening(mut self, matrix: &[f32]) -> Self {
        let current = self
            .feature_whitening
            .as_ref()
            .expect("the decoder config has no d_whitened");
        let [d_feature, d_whitened] = current.dims();
        assert_eq!(
            matrix.len(),
            d_feature * d_whitened,
            "the whitening matrix must be [{d_feature}, {d_whitened}]"
        );
        let device = self.feature_mean.device();
        self.feature_whitening = Some(
            Param::from_tensor(Tensor::from_data(
                burn::tensor::TensorData::new(matrix.to_vec(), [d_feature, d_whitened]),
                &device,
            ))
            .set_require_grad(false),
        );
        self
    }

    /// Draws every lazily initialised parameter now, in module order.
    ///
    /// Burn initialises parameters on first use; without this, the order of the random
    /// draws (and so the weights a seed gives) would depend on which code touches the
    /// parameters first: a forward pass, a fork to another device, a save.
    pub fn materialized(self) -> Self {
        crate::weights::materialize(self)
    }

    /// Number of tokens the decoder scores.
    pub fn vocab_size(&self) -> usize {
        self.out.weight.dims()[1]
    }

    /// Width of the image features it takes.
    pub fn d_feature(&self) -> usize {
        self.feature_mean.dims()[0]
    }

    /// How the image feature enters the decoder (read off the parameters present).
    pub fn conditioning(&self) -> Conditioning {
        match (self.init_h.is_some(), self.feature_gates.is_some()) {
            (true, true) => Conditioning::Both,
            (false, true) => Conditioning::Par,
            _ => Conditioning::Init,
        }
    }

    /// The state before the first token.
    ///
    /// # Shapes
    /// - `features`: `[batch, d_feature]`
    /// - `hidden` and `cell` of the returned state: `[batch, d_hidden]` per layer;
    ///   `feature_gates`: `[batch, 4·d_hidden]`
    pub fn init_state(&self, features: Tensor<2>) -> DecoderState {
        let [batch, _] = features.dims();
        let mean = self.feature_mean.val().detach().unsqueeze::<2>();
        let scale = self.feature_scale.val().detach().unsqueeze::<2>();
        let mut features = (features - mean) * scale;
        if let Some(whitening) = &self.feature_whitening {
            features = features.matmul(whitening.val().detach());
        }
        let features = self.dropout.forward(features);
        let feature_gates = self
            .feature_gates
            .as_ref()
            .map(|linear| linear.forward(features.clone()));
        let (hidden, cell) = match (&self.init_h, &self.init_c) {
            (Some(init_h), Some(init_c)) => {
                let hidden = init_h.forward(features.clone()).tanh();
                let cell = init_c.forward(features).tanh();
                (self.split_layers(hidden), self.split_layers(cell))
            }
            _ => {
                let device = features.device();
                let zeros = || {
                    self.lstm
                        .iter()
                        .map(|layer| Tensor::zeros([batch, layer.d_hidden()], &device))
                        .collect::<Vec<_>>()
                };
                (zeros(), zeros())
            }
        };
        DecoderState {
            hidden,
            cell,
            feature_gates,
        }
    }

    /// Splits `[batch, n_layers·d_hidden]` into one `[batch, d_hidden]` slice per layer.
    fn split_layers(&self, state: Tensor<2>) -> Vec<Tensor<2>> {
        let mut start = 0;
        self.lstm
            .iter()
            .map(|layer| {
                let d = layer.d_hidden();
                let slice = state.clone().narrow(1, start, d);
                start += d;
                slice
            })
            .collect()
    }

    /// Teacher-forced logits of every position: the training and validation forward.
    ///
    /// # Arguments
    /// - `features`: image features.
    /// - `tokens`: the input tokens of each caption (`<start> w₁ … w_{T−1}`).
    ///
    /// # Shapes
    /// - `features`: `[batch, d_feature]`
    /// - `tokens`: `[batch, T]`
    /// - returns `[batch, T, vocab_size]`: position t scores token t+1.
    pub fn forward(&self, features: Tensor<2>, tokens: Tensor<2, Int>) -> Tensor<3> {
        let state = self.init_state(features);
        let feature_gates = state.feature_gates;
        let mut x = self.dropout.forward(self.embed.forward(tokens));
        let layers = self.lstm.len();
        for (l, (layer, (hidden, cell))) in self
            .lstm
            .iter()
            .zip(state.hidden.into_iter().zip(state.cell))
            .enumerate()
        {
            let mut gates = layer.input_gates(x);
            if let (0, Some(image)) = (l, &feature_gates) {
                gates = gates + image.clone().unsqueeze_dim::<3>(1);
            }
            // All time steps as one operation (per step one product and the fused cell;
            // backward, one weight-gradient product for the whole sequence).
            x = crate::fused_cell::lstm_sequence(gates, layer.weight_hh.val(), hidden, cell);
            if l + 1 < layers {
                x = self.dropout.forward(x);
            }
        }
        self.out.forward(self.dropout.forward(x))
    }

    /// One decoding step: logits of the next token.
    ///
    /// # Shapes
    /// - `tokens`: `[rows]`
    /// - returns `[rows, vocab_size]` and the advanced state.
    pub fn step_logits(
        &self,
        tokens: Tensor<1, Int>,
        state: DecoderState,
    ) -> (Tensor<2>, DecoderState) {
        let [rows] = tokens.dims();
        let embedded = self.embed.forward(tokens.unsqueeze_dim(1));
        let d_embed = embedded.dims()[2];
        let x = self.dropout.forward(embedded.reshape([rows, d_embed]));
        self.step_from_input_gates(self.lstm[0].input_gates(x), state)
    }

    /// One decoding step from the first layer's input gates of the fed tokens,
    /// `embed(w)·W_ih + b_ih + b_hh` (from the embedding, or gathered from a [`GateTable`](crate::GateTable)).
    ///
    /// # Shapes
    /// - `first_gates`: `[rows, 4·d_hidden]`
    /// - returns `[rows, vocab_size]` and the advanced state.
    pub(crate) fn step_from_input_gates(
        &self,
        first_gates: Tensor<2>,
        state: DecoderState,
    ) -> (Tensor<2>, DecoderState) {
        let mut next = DecoderState {
            hidden: Vec::with_capacity(self.lstm.len()),
            cell: Vec::new(),
            feature_gates: state.feature_gates.clone(),
        };
        // The gates fed to each layer: the given ones for the first, then each layer's
        // input gates from the hidden state of the layer below.
        let mut layer_gates = Some(first_gates);
        for (l, (layer, (hidden, cell))) in self
            .lstm
            .iter()
            .zip(state.hidden.into_iter().zip(state.cell))
            .enumerate()
        {
            let mut gates = layer_gates
                .take()
                .expect("set for every layer by the one below");
            if let (0, Some(image)) = (l, &state.feature_gates) {
                gates = gates + image.clone();
            }
            let (hidden, cell) = layer.step_gates(gates, hidden, cell);
            layer_gates = self
                .lstm
                .get(l + 1)
                .map(|above| above.input_gates(hidden.clone()));
            next.hidden.push(hidden);
            next.cell.push(cell);
        }
        let top = next.hidden.last().cloned().expect("a decoder has a layer");
        (self.out.forward(self.dropout.forward(top)), next)
    }
}

impl DecoderState {
    /// A state whose row `i` is row `rows[i]` of this one.
    ///
    /// # Shapes
    /// - `rows`: `[new_rows]`
    pub fn select_rows(self, rows: Tensor<1, Int>) -> Self {
        let pick = |tensors: Vec<Tensor<2>>| {
            tensors
                .into_iter()
                .map(|t| t.select(0, rows.clone()))
                .collect()
        };
        Self {
            hidden: pick(self.hidden),
            cell: pick(self.cell),
            feature_gates: self.feature_gates.map(|t| t.select(0, rows)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn config(conditioning: Conditioning, d_whitened: Option<usize>) -> CaptionDecoderConfig {
        CaptionDecoderConfig::new(12)
            .with_d_feature(10)
            .with_d_embed(6)
            .with_d_hidden(8)
            .with_n_layers(2)
            .with_conditioning(conditioning)
            .with_d_whitened(d_whitened)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Decoding step by step gives the teacher-forced logits, for every conditioning, with
    /// and without whitening; and the weights round-trip through the record format.
    #[test]
    fn steps_match_teacher_forcing_and_records_round_trip() {
        let device = Device::flex();
        for conditioning in Conditioning::ALL {
            for d_whitened in [None, Some(4)] {
                let config = config(conditioning, d_whitened);
                let mut decoder = config.init(&device).unwrap().materialized();
                if d_whitened.is_some() {
                    let matrix: Vec<f32> = (0..40).map(|i| ((i * 7) % 11) as f32 / 11.0).collect();
                    decoder = decoder.set_feature_whitening(&matrix);
                }
                assert_eq!(decoder.conditioning(), conditioning);
                let features = Tensor::<2>::random([3, 10], Distribution::Default, &device);
                let tokens = Tensor::<2, Int>::from_data(
                    TensorData::new(vec![1i64, 5, 6, 7, 1, 8, 9, 4, 1, 4, 4, 11], [3, 4]),
                    &device,
                );
                let forced = values(decoder.forward(features.clone(), tokens.clone()));
                let mut state = decoder.init_state(features.clone());
                let mut stepped = vec![0.0f32; forced.len()];
                for t in 0..4 {
                    let column = tokens.clone().narrow(1, t, 1).reshape([3]);
                    let (logits, next) = decoder.step_logits(column, state);
                    state = next;
                    for (b, row) in values(logits).chunks(12).enumerate() {
                        stepped[(b * 4 + t) * 12..(b * 4 + t + 1) * 12].copy_from_slice(row);
                    }
                }
                let worst = forced
                    .iter()
                    .zip(&stepped)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(worst < 1e-5, "{conditioning} {d_whitened:?}: {worst}");

                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("decoder.bpk");
                std::fs::write(&path, decoder.to_bytes().unwrap()).unwrap();
                let loaded = CaptionDecoder::load(&path, &config, &device).unwrap();
                let again = values(loaded.forward(features, tokens));
                let drift = forced
                    .iter()
                    .zip(&again)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, f32::max);
                assert!(
                    drift < 1e-6,
                    "{conditioning} {d_whitened:?}: reloaded drift {drift}"
                );
            }
        }
    }

    #[test]
    fn par_inject_starts_from_zero_and_init_inject_has_no_feature_gates() {
        let device = Device::flex();
        let par = config(Conditioning::Par, None).init(&device).unwrap();
        assert!(par.init_h.is_none() && par.feature_gates.is_some());
        let state = par.init_state(Tensor::ones([2, 10], &device));
        assert_eq!(values(state.hidden[0].clone()), vec![0.0; 16]);
        let init = config(Conditioning::Init, None).init(&device).unwrap();
        assert!(init.init_h.is_some() && init.feature_gates.is_none());
        assert!(
            init.init_state(Tensor::ones([2, 10], &device))
                .feature_gates
                .is_none()
        );
    }
}
