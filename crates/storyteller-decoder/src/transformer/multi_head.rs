//! Multi-head scaled dot-product attention with PyTorch's `nn.MultiheadAttention` layout.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor};

/// Multi-head attention whose query, key and value projections are one `d_model → 3·d_model`
/// layer (`in_proj`, columns q | k | v, as PyTorch's `in_proj_weight` stacks its rows), followed
/// by `out_proj`.
///
/// Keys and values are kept split by head, `[batch, heads, positions, d_head]`: the layout
/// of the incremental decoder's caches.
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    /// Query, key and value projections, `d_model → 3·d_model`.
    pub in_proj: Linear,
    /// Output projection, `d_model → d_model`.
    pub out_proj: Linear,
    /// Dropout on the attention weights (training only).
    pub dropout: Dropout,
    /// Number of heads, a constant of the module.
    n_heads: usize,
}

/// Keys and values split by head, `[batch, heads, positions, d_head]` each.
#[derive(Debug, Clone)]
pub struct KeyValue {
    /// Keys.
    pub key: Tensor<4>,
    /// Values.
    pub value: Tensor<4>,
}

impl KeyValue {
    /// The rows `rows` of both, in that order.
    pub fn select_rows(self, rows: burn::tensor::Tensor<1, burn::tensor::Int>) -> Self {
        Self {
            key: self.key.select(0, rows.clone()),
            value: self.value.select(0, rows),
        }
    }

    /// These positions followed by `next`'s.
    pub fn append(self, next: KeyValue) -> Self {
        Self {
            key: Tensor::cat(vec![self.key, next.key], 2),
            value: Tensor::cat(vec![self.value, next.value], 2),
        }
    }
}

impl MultiHeadAttention {
    pub(crate) fn new(d_model: usize, n_heads: usize, dropout: f64, device: &Device) -> Self {
        Self {
            in_proj: LinearConfig::new(d_model, 3 * d_model).init(device),
            out_proj: LinearConfig::new(d_model, d_model).init(device),
            dropout: DropoutConfig::new(dropout).init(),
            n_heads,
        }
    }

    /// Number of heads.
    pub fn n_heads(&self) -> usize {
        self.n_heads
    }

    fn d_model(&self) -> usize {
        self.out_proj.weight.dims()[0]
    }

    /// `x·W[:, part] + b[part]` for part 0 (queries), 1 (keys) or 2 (values), split by head.
    fn project(&self, x: Tensor<3>, part: usize) -> Tensor<4> {
        let d = self.d_model();
        let weight = self.in_proj.weight.val().narrow(1, part * d, d);
        let bias = self
            .in_proj
            .bias
            .as_ref()
            .map(|bias| bias.val().narrow(0, part * d, d));
        self.split_heads(linear(x, weight, bias))
    }

    /// `[batch, positions, d_model]` to `[batch, heads, positions, d_head]`.
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, positions, d] = x.dims();
        x.reshape([batch, positions, self.n_heads, d / self.n_heads])
            .swap_dims(1, 2)
    }

    /// Queries, keys and values of `x` `[batch, positions, d_model]` with one matmul.
    fn project_all(&self, x: Tensor<3>) -> (Tensor<4>, KeyValue) {
        let d = self.d_model();
        let qkv = self.in_proj.forward(x);
        let part = |i: usize| self.split_heads(qkv.clone().narrow(2, i * d, d));
        (
            part(0),
            KeyValue {
                key: part(1),
                value: part(2),
            },
        )
    }

    /// Keys and values of a memory `[batch, positions, d_model]` (cross-attention: computed
    /// once per image).
    pub fn key_value(&self, memory: Tensor<3>) -> KeyValue {
        KeyValue {
            key: self.project(memory.clone(), 1),
            value: self.project(memory, 2),
        }
    }

    /// Softmax attention of `query` over `kv`, merged back to `[batch, positions, d_model]`
    /// and projected by `out_proj`. `bias` (`[positions_q, positions_k]`, 0 or −∞) masks
    /// scores.
    fn attend(&self, query: Tensor<4>, kv: &KeyValue, bias: Option<Tensor<2>>) -> Tensor<3> {
        let [batch, heads, positions, d_head] = query.dims();
        let mut scores = query
            .matmul(kv.key.clone().swap_dims(2, 3))
            .mul_scalar(1.0 / (d_head as f64).sqrt());
        if let Some(bias) = bias {
            scores = scores + bias.unsqueeze::<4>();
        }
        let weights = self.dropout.forward(softmax(scores, 3));
        let context = weights.matmul(kv.value.clone()).swap_dims(1, 2).reshape([
            batch,
            positions,
            heads * d_head,
        ]);
        self.out_proj.forward(context)
    }

    /// Self-attention of every position of `x` `[batch, T, d_model]` under `bias`
    /// `[T, T]` (the causal mask).
    pub fn self_attention(&self, x: Tensor<3>, bias: Tensor<2>) -> Tensor<3> {
        let (query, kv) = self.project_all(x);
        self.attend(query, &kv, Some(bias))
    }

    /// Self-attention of one new position `x` `[batch, 1, d_model]` over the cached earlier
    /// positions and itself; returns the output and the cache extended by this position.
    pub fn self_attention_step(
        &self,
        x: Tensor<3>,
        cache: Option<KeyValue>,
    ) -> (Tensor<3>, KeyValue) {
        let (query, kv) = self.project_all(x);
        let kv = match cache {
            Some(cache) => cache.append(kv),
            None => kv,
        };
        (self.attend(query, &kv, None), kv)
    }

    /// Attention of `x` `[batch, T, d_model]` over a memory's keys and values.
    pub fn cross_attention(&self, x: Tensor<3>, memory: &KeyValue) -> Tensor<3> {
        let query = self.project(x, 0);
        self.attend(query, memory, None)
    }
}
