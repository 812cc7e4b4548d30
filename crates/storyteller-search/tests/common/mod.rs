//! Decoders for the integration tests: a hand-written log-probability table and a plain LSTM
//! cell in the layout of `torch.nn.LSTMCell`.
#![allow(dead_code)] // each test binary uses a different part

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, sigmoid};
use storyteller_search::StepDecoder;

pub const END: u32 = 2;

pub fn device() -> Device {
    Device::flex()
}

/// Reads an `Int` tensor back to the host.
pub fn ints(t: Tensor<1, Int>) -> Vec<usize> {
    t.into_data().iter::<i64>().map(|v| v as usize).collect()
}

/// Next-token log-probabilities as a function of (image, generated prefix), written by hand.
///
/// The image of each row is `features[row, 0]` (so searching images one at a time sees the
/// same tables as searching them together). The state is the host-side list of
/// (image, prefix) per row; the table is consulted on the host and uploaded every step.
pub struct TableDecoder<F: Fn(usize, &[u32]) -> Vec<f32>> {
    pub vocab_size: usize,
    pub log_probs: F,
}

impl<F: Fn(usize, &[u32]) -> Vec<f32>> StepDecoder for TableDecoder<F> {
    /// Per row: image, generated prefix, whether `<start>` was fed already.
    type State = Vec<(usize, Vec<u32>, bool)>;

    fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    fn init_state(&self, features: Tensor<2>) -> Self::State {
        let [batch, d] = features.dims();
        let data: Vec<f32> = features.into_data().iter::<f32>().collect();
        (0..batch)
            .map(|row| (data[row * d] as usize, Vec::new(), false))
            .collect()
    }

    fn step(&self, tokens: Tensor<1, Int>, state: Self::State) -> (Tensor<2>, Self::State) {
        let tokens = ints(tokens);
        assert_eq!(tokens.len(), state.len(), "one token per row");
        let mut table = Vec::with_capacity(state.len() * self.vocab_size);
        let mut next = Vec::with_capacity(state.len());
        for ((image, mut prefix, started), token) in state.into_iter().zip(tokens) {
            // The first token fed is <start>: it is not part of the prefix.
            if started {
                prefix.push(token as u32);
            }
            let row = (self.log_probs)(image, &prefix);
            assert_eq!(row.len(), self.vocab_size);
            table.extend(row);
            next.push((image, prefix, true));
        }
        let rows = next.len();
        let log_probs =
            Tensor::<1>::from_data(table.as_slice(), &device()).reshape([rows, self.vocab_size]);
        (log_probs, next)
    }

    fn reorder_state(&self, state: Self::State, rows: Tensor<1, Int>) -> Self::State {
        ints(rows).into_iter().map(|r| state[r].clone()).collect()
    }
}

/// Natural logs of a probability row.
pub fn ln(row: &[f32]) -> Vec<f32> {
    row.iter().map(|p| p.ln()).collect()
}

/// A deterministic pseudo-random log-softmax row for (image, prefix), for property tests.
pub fn pseudo_random_row(seed: u64, image: usize, prefix: &[u32], vocab: usize) -> Vec<f32> {
    let mut h = seed ^ 0x9E37_79B9_7F4A_7C15 ^ (image as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    for &t in prefix {
        h = (h ^ u64::from(t) ^ 0xFF).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 29;
    }
    let logits: Vec<f64> = (0..vocab)
        .map(|v| {
            let mut x = h ^ (v as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
            x ^= x >> 32;
            x = x.wrapping_mul(0xD6E8_FEB8_6659_FD93);
            x ^= x >> 32;
            (x % 10_000) as f64 / 10_000.0 * 4.0
        })
        .collect();
    let lse = logits.iter().map(|l| l.exp()).sum::<f64>().ln();
    logits.iter().map(|l| (l - lse) as f32).collect()
}

/// Show-and-Tell style decoder: `h0, c0 = tanh(Linear(features))`, embedding, one LSTM cell
/// with PyTorch's stacked `i, f, g, o` gate layout, output Linear and log-softmax.
pub struct LstmDecoder {
    pub init_h_w: Tensor<2>, // [d_feature, d_hidden] (transposed torch weight)
    pub init_h_b: Tensor<2>, // [1, d_hidden]
    pub init_c_w: Tensor<2>,
    pub init_c_b: Tensor<2>,
    pub embed: Tensor<2>, // [vocab_size, d_embed]
    pub w_ih: Tensor<2>,  // [d_embed, 4 * d_hidden]
    pub w_hh: Tensor<2>,  // [d_hidden, 4 * d_hidden]
    pub b_ih: Tensor<2>,  // [1, 4 * d_hidden]
    pub b_hh: Tensor<2>,
    pub out_w: Tensor<2>, // [d_hidden, vocab_size]
    pub out_b: Tensor<2>, // [1, vocab_size]
}

impl LstmDecoder {
    /// Builds it from PyTorch-layout weights (`Linear.weight` is `[out, in]`).
    pub fn from_torch(get: impl Fn(&str) -> (Vec<f32>, Vec<usize>)) -> Self {
        let d = device();
        let matrix = |name: &str| {
            let (data, shape) = get(name);
            Tensor::<1>::from_data(data.as_slice(), &d).reshape([shape[0], shape[1]])
        };
        let row = |name: &str| {
            let (data, shape) = get(name);
            Tensor::<1>::from_data(data.as_slice(), &d).reshape([1, shape[0]])
        };
        Self {
            init_h_w: matrix("init_h.weight").transpose(),
            init_h_b: row("init_h.bias"),
            init_c_w: matrix("init_c.weight").transpose(),
            init_c_b: row("init_c.bias"),
            embed: matrix("embed.weight"),
            w_ih: matrix("cell.weight_ih").transpose(),
            w_hh: matrix("cell.weight_hh").transpose(),
            b_ih: row("cell.bias_ih"),
            b_hh: row("cell.bias_hh"),
            out_w: matrix("out.weight").transpose(),
            out_b: row("out.bias"),
        }
    }

    /// Seeded uniform random weights in `[-scale, scale]`.
    pub fn random(
        seed: u64,
        d_feature: usize,
        d_embed: usize,
        d_hidden: usize,
        vocab: usize,
    ) -> Self {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        let mut matrix = |rows: usize, cols: usize, scale: f32| {
            let data: Vec<f32> = (0..rows * cols).map(|_| next() * scale).collect();
            Tensor::<1>::from_data(data.as_slice(), &device()).reshape([rows, cols])
        };
        let h4 = 4 * d_hidden;
        Self {
            init_h_w: matrix(d_feature, d_hidden, 0.5),
            init_h_b: matrix(1, d_hidden, 0.1),
            init_c_w: matrix(d_feature, d_hidden, 0.5),
            init_c_b: matrix(1, d_hidden, 0.1),
            embed: matrix(vocab, d_embed, 1.0),
            w_ih: matrix(d_embed, h4, 0.8),
            w_hh: matrix(d_hidden, h4, 0.8),
            b_ih: matrix(1, h4, 0.1),
            b_hh: matrix(1, h4, 0.1),
            out_w: matrix(d_hidden, vocab, 1.5),
            out_b: matrix(1, vocab, 0.3),
        }
    }
}

impl StepDecoder for LstmDecoder {
    type State = (Tensor<2>, Tensor<2>);

    fn vocab_size(&self) -> usize {
        self.out_w.dims()[1]
    }

    fn init_state(&self, features: Tensor<2>) -> Self::State {
        let h = (features.clone().matmul(self.init_h_w.clone()) + self.init_h_b.clone()).tanh();
        let c = (features.matmul(self.init_c_w.clone()) + self.init_c_b.clone()).tanh();
        (h, c)
    }

    fn step(&self, tokens: Tensor<1, Int>, (h, c): Self::State) -> (Tensor<2>, Self::State) {
        let x = self.embed.clone().select(0, tokens);
        let gates = x.matmul(self.w_ih.clone())
            + self.b_ih.clone()
            + (h.matmul(self.w_hh.clone()) + self.b_hh.clone());
        let [i, f, g, o]: [Tensor<2>; 4] = gates.chunk(4, 1).try_into().expect("4 gates");
        let c = sigmoid(f) * c + sigmoid(i) * g.tanh();
        let h = sigmoid(o) * c.clone().tanh();
        let logits = h.clone().matmul(self.out_w.clone()) + self.out_b.clone();
        (log_softmax(logits, 1), (h, c))
    }

    fn reorder_state(&self, (h, c): Self::State, rows: Tensor<1, Int>) -> Self::State {
        (h.select(0, rows.clone()), c.select(0, rows))
    }
}

/// `[batch, d]` features whose first column is the image id (for [`TableDecoder`]).
pub fn image_ids(ids: &[usize], d: usize) -> Tensor<2> {
    let data: Vec<f32> = ids
        .iter()
        .flat_map(|&id| std::iter::once(id as f32).chain(std::iter::repeat_n(0.0, d - 1)))
        .collect();
    Tensor::<1>::from_data(data.as_slice(), &device()).reshape([ids.len(), d])
}
