//! One pre-norm Transformer decoder layer.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::transformer::{KeyValue, MultiHeadAttention};

/// A decoder layer laid out as PyTorch's `nn.TransformerDecoderLayer(norm_first=True,
/// activation="relu")`:
///
/// ```text
/// x = x + dropout(self_attn(norm1(x)))          (causal)
/// x = x + dropout(multihead_attn(norm2(x), memory))
/// x = x + dropout(linear2(dropout(relu(linear1(norm3(x))))))
/// ```
#[derive(Module, Debug)]
pub struct TransformerLayer {
    /// Masked self-attention over the caption so far.
    pub self_attn: MultiHeadAttention,
    /// Cross-attention over the image regions.
    pub multihead_attn: MultiHeadAttention,
    /// Feed-forward in, `d_model → d_ff`.
    pub linear1: Linear,
    /// Feed-forward out, `d_ff → d_model`.
    pub linear2: Linear,
    /// Before self-attention.
    pub norm1: LayerNorm,
    /// Before cross-attention.
    pub norm2: LayerNorm,
    /// Before the feed-forward.
    pub norm3: LayerNorm,
    /// Dropout on each sub-layer's output and inside the feed-forward (training only).
    pub dropout: Dropout,
}

impl TransformerLayer {
    pub(crate) fn new(
        d_model: usize,
        n_heads: usize,
        d_ff: usize,
        dropout: f64,
        device: &Device,
    ) -> Self {
        Self {
            self_attn: MultiHeadAttention::new(d_model, n_heads, dropout, device),
            multihead_attn: MultiHeadAttention::new(d_model, n_heads, dropout, device),
            linear1: LinearConfig::new(d_model, d_ff).init(device),
            linear2: LinearConfig::new(d_ff, d_model).init(device),
            norm1: LayerNormConfig::new(d_model).init(device),
            norm2: LayerNormConfig::new(d_model).init(device),
            norm3: LayerNormConfig::new(d_model).init(device),
            dropout: DropoutConfig::new(dropout).init(),
        }
    }

    /// Cross-attention and feed-forward after the self-attention's residual.
    fn attend_and_transform(&self, x: Tensor<3>, memory: &KeyValue) -> Tensor<3> {
        let attended = self
            .multihead_attn
            .cross_attention(self.norm2.forward(x.clone()), memory);
        let x = x + self.dropout.forward(attended);
        let hidden = self
            .dropout
            .forward(relu(self.linear1.forward(self.norm3.forward(x.clone()))));
        x.clone() + self.dropout.forward(self.linear2.forward(hidden))
    }

    /// Every position at once under the causal `bias` `[T, T]`.
    ///
    /// # Shapes
    /// - `x`: `[batch, T, d_model]`, returns the same
    pub fn forward(&self, x: Tensor<3>, memory: &KeyValue, bias: Tensor<2>) -> Tensor<3> {
        let attended = self
            .self_attn
            .self_attention(self.norm1.forward(x.clone()), bias);
        let x = x + self.dropout.forward(attended);
        self.attend_and_transform(x, memory)
    }

    /// One new position over the cached earlier ones; returns the output and the extended
    /// cache.
    ///
    /// # Shapes
    /// - `x`: `[batch, 1, d_model]`, returns the same
    pub fn step(
        &self,
        x: Tensor<3>,
        memory: &KeyValue,
        cache: Option<KeyValue>,
    ) -> (Tensor<3>, KeyValue) {
        let (attended, cache) = self
            .self_attn
            .self_attention_step(self.norm1.forward(x.clone()), cache);
        let x = x + self.dropout.forward(attended);
        (self.attend_and_transform(x, memory), cache)
    }
}
