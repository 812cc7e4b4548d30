//! Additive (MLP) attention over image regions.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

/// Soft attention of Show, Attend and Tell (Xu et al., 2015), as Bahdanau et al.'s additive
/// score: `e_r = w·relu(W_enc·a_r + W_dec·h) + b`, `α = softmax(e)` over the regions, and
/// the context `Σ_r α_r·a_r`.
///
/// Field names are the PyTorch tutorial's (`encoder_att`, `decoder_att`, `full_att`).
#[derive(Module, Debug)]
pub struct SoftAttention {
    /// Region feature to attention space, `d_feature → d_attention`.
    pub encoder_att: Linear,
    /// Hidden state to attention space, `d_hidden → d_attention`.
    pub decoder_att: Linear,
    /// Attention space to one score, `d_attention → 1`.
    pub full_att: Linear,
}

impl SoftAttention {
    pub(crate) fn new(
        d_feature: usize,
        d_hidden: usize,
        d_attention: usize,
        device: &Device,
    ) -> Self {
        Self {
            encoder_att: LinearConfig::new(d_feature, d_attention).init(device),
            decoder_att: LinearConfig::new(d_hidden, d_attention).init(device),
            full_att: LinearConfig::new(d_attention, 1).init(device),
        }
    }

    /// `W_enc·a_r + b_enc` of every region: computed once per image, reused at every step.
    ///
    /// # Shapes
    /// - `regions`: `[batch, regions, d_feature]`
    /// - returns `[batch, regions, d_attention]`
    pub fn project_regions(&self, regions: Tensor<3>) -> Tensor<3> {
        self.encoder_att.forward(regions)
    }

    /// The attention weights and the context vector of one step.
    ///
    /// # Shapes
    /// - `regions`: `[batch, regions, d_feature]`
    /// - `projected`: `[batch, regions, d_attention]` ([`project_regions`](Self::project_regions))
    /// - `hidden`: `[batch, d_hidden]`
    /// - returns `(context [batch, d_feature], alpha [batch, regions])`
    pub fn attend(
        &self,
        regions: Tensor<3>,
        projected: Tensor<3>,
        hidden: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let [batch, count, d_feature] = regions.dims();
        let query = self.decoder_att.forward(hidden).unsqueeze_dim::<3>(1);
        let scores = self.full_att.forward(relu(projected + query));
        let alpha = softmax(scores.reshape([batch, count]), 1);
        let context = alpha
            .clone()
            .unsqueeze_dim::<3>(1)
            .matmul(regions)
            .reshape([batch, d_feature]);
        (context, alpha)
    }
}
