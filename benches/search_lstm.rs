//! The decoder of `benches/torch_reference.py` as a [`StepDecoder`], for the search
//! benchmarks: image feature -> `tanh(Linear)` initial hidden and cell state, embedding, one
//! LSTM cell (PyTorch's stacked `i, f, g, o` gates), output Linear, log-softmax. Random
//! weights (speed does not depend on them), initialised like PyTorch's defaults.

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{log_softmax, sigmoid};
use storyteller_search::StepDecoder;

/// Vocabulary size of the anchor.
pub const VOCAB_SIZE: usize = 8000;
/// Embedding width of the anchor.
pub const D_EMBED: usize = 256;
/// LSTM hidden width of the anchor.
pub const D_HIDDEN: usize = 512;
/// Image feature width of the anchor (ResNet-50 without fc).
pub const D_FEATURE: usize = 2048;
/// Tokens per caption in the anchor.
pub const MAX_LEN: usize = 20;

/// The anchor's decoder with weights stored transposed (`[d_input, d_output]`) for `matmul`.
pub struct AnchorDecoder {
    init_h_w: Tensor<2>,
    init_h_b: Tensor<2>,
    init_c_w: Tensor<2>,
    init_c_b: Tensor<2>,
    embed: Tensor<2>,
    w_ih: Tensor<2>,
    w_hh: Tensor<2>,
    bias: Tensor<2>,
    out_w: Tensor<2>,
    out_b: Tensor<2>,
}

fn uniform(shape: [usize; 2], fan_in: usize, device: &Device) -> Tensor<2> {
    let k = 1.0 / (fan_in as f64).sqrt();
    Tensor::random(shape, Distribution::Uniform(-k, k), device)
}

impl AnchorDecoder {
    /// Random weights. The `<end>` logit (token 2) is pushed down by 1e4 so that, like the
    /// anchor's fixed 20-step loops, every caption runs all [`MAX_LEN`] steps.
    pub fn new(device: &Device) -> Self {
        let h4 = 4 * D_HIDDEN;
        let mut out_b = vec![0.0f32; VOCAB_SIZE];
        out_b[2] = -1e4;
        Self {
            init_h_w: uniform([D_FEATURE, D_HIDDEN], D_FEATURE, device),
            init_h_b: uniform([1, D_HIDDEN], D_FEATURE, device),
            init_c_w: uniform([D_FEATURE, D_HIDDEN], D_FEATURE, device),
            init_c_b: uniform([1, D_HIDDEN], D_FEATURE, device),
            embed: Tensor::random(
                [VOCAB_SIZE, D_EMBED],
                Distribution::Normal(0.0, 1.0),
                device,
            ),
            w_ih: uniform([D_EMBED, h4], D_HIDDEN, device),
            w_hh: uniform([D_HIDDEN, h4], D_HIDDEN, device),
            bias: uniform([1, h4], D_HIDDEN, device),
            out_w: uniform([D_HIDDEN, VOCAB_SIZE], D_HIDDEN, device),
            out_b: uniform([1, VOCAB_SIZE], D_HIDDEN, device)
                + Tensor::<1>::from_data(out_b.as_slice(), device).reshape([1, VOCAB_SIZE]),
        }
    }
}

impl StepDecoder for AnchorDecoder {
    type State = (Tensor<2>, Tensor<2>);

    fn vocab_size(&self) -> usize {
        VOCAB_SIZE
    }

    fn init_state(&self, features: Tensor<2>) -> Self::State {
        let h = (features.clone().matmul(self.init_h_w.clone()) + self.init_h_b.clone()).tanh();
        let c = (features.matmul(self.init_c_w.clone()) + self.init_c_b.clone()).tanh();
        (h, c)
    }

    fn step(&self, tokens: Tensor<1, Int>, (h, c): Self::State) -> (Tensor<2>, Self::State) {
        let x = self.embed.clone().select(0, tokens);
        let gates = x.matmul(self.w_ih.clone()) + h.matmul(self.w_hh.clone()) + self.bias.clone();
        // One sigmoid over the four gates (fewer kernel launches than three), as the decoder does.
        let g = gates.clone().narrow(1, 2 * D_HIDDEN, D_HIDDEN).tanh();
        let [i, f, _, o]: [Tensor<2>; 4] = sigmoid(gates).chunk(4, 1).try_into().expect("4 gates");
        let c = f * c + i * g;
        let h = o * c.clone().tanh();
        let logits = h.clone().matmul(self.out_w.clone()) + self.out_b.clone();
        (log_softmax(logits, 1), (h, c))
    }

    fn reorder_state(&self, (h, c): Self::State, rows: Tensor<1, Int>) -> Self::State {
        (h.select(0, rows.clone()), c.select(0, rows))
    }
}
