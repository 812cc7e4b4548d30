//! Folding inference-mode BatchNorm into the convolution before it.
//!
//! In evaluation mode BatchNorm is an affine map per channel,
//! `y = (x - mean) / sqrt(var + eps) * gamma + beta`, so after a convolution
//! `x = W * input + b` it can be absorbed into the convolution:
//!
//! ```text
//! s  = gamma / sqrt(var + eps)          (per output channel)
//! W' = W * s                            (each output channel's kernel scaled)
//! b' = (b - mean) * s + beta            (b = 0 for ResNet's bias-free convolutions)
//! ```
//!
//! The folded network does one pass over each activation instead of two. The
//! arithmetic is done once, on the host, in `f64`, then stored as `f32`.

use burn::module::Param;
use burn::nn::BatchNorm;
use burn::nn::conv::Conv2d;
use burn::tensor::{Tensor, TensorData};

fn host_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("a float tensor converted to f32 reads back as f32")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Returns `conv` with `bn` (evaluation mode: running statistics) folded into its
/// weight and bias.
///
/// # Panics
/// If `bn` does not have one channel per output channel of `conv` (a broken network).
pub fn fold_batch_norm(conv: Conv2d, bn: &BatchNorm) -> Conv2d {
    let weight = conv.weight.val();
    let device = weight.device();
    let dims = weight.dims();
    let d_output = dims[0];
    let per_channel = dims[1] * dims[2] * dims[3];

    let gamma = host_f64(bn.gamma.val());
    let beta = host_f64(bn.beta.val());
    let mean = host_f64(bn.running_mean.value());
    let var = host_f64(bn.running_var.value());
    assert_eq!(
        gamma.len(),
        d_output,
        "BatchNorm width != conv output channels"
    );
    let bias = match &conv.bias {
        Some(bias) => host_f64(bias.val()),
        None => vec![0.0; d_output],
    };

    let mut w = host_f64(weight);
    let mut b = vec![0f32; d_output];
    for o in 0..d_output {
        let s = gamma[o] / (var[o] + bn.epsilon).sqrt();
        for v in &mut w[o * per_channel..(o + 1) * per_channel] {
            *v *= s;
        }
        b[o] = ((bias[o] - mean[o]) * s + beta[o]) as f32;
    }
    let w: Vec<f32> = w.into_iter().map(|v| v as f32).collect();

    Conv2d {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, dims), &device)),
        bias: Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(b, [d_output]),
            &device,
        ))),
        ..conv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::RunningState;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Device, Distribution};

    use crate::block::conv;

    #[test]
    fn folded_conv_matches_conv_then_batch_norm() {
        let device = Device::flex();
        let c = conv(3, 5, 3, 2).init(&device);
        let mut bn = BatchNormConfig::new(5).init(&device);
        let rand = |lo, hi| Tensor::<1>::random([5], Distribution::Uniform(lo, hi), &device);
        bn.gamma = Param::from_tensor(rand(0.5, 1.5));
        bn.beta = Param::from_tensor(rand(-0.5, 0.5));
        bn.running_mean = RunningState::new(rand(-0.3, 0.3));
        bn.running_var = RunningState::new(rand(0.5, 2.0));

        let x = Tensor::<4>::random([2, 3, 9, 7], Distribution::Normal(0.0, 1.0), &device);
        let expected = bn.forward(c.forward(x.clone()));
        let folded = fold_batch_norm(c, &bn);
        let got = folded.forward(x);
        let diff = (got - expected.clone()).abs().max().into_scalar::<f32>();
        let scale = expected.abs().max().into_scalar::<f32>();
        assert!(diff <= 1e-5 * scale, "diff {diff} scale {scale}");
    }
}
