//! Greedy search's best token as one fused operation on the GPU.
//!
//! Greedy search needs, per row of logits, the arg-max and its log-probability
//! `−log Σ exp(x − x_max)`. From tensor operations that is an arg-max, a subtraction, an
//! exponential, a sum and a logarithm (two to six kernels, as Burn's fusion manages); on the
//! CubeCL backend (features `wgpu`, `cuda`) [`best_token`] is one kernel, one cube per row.
//! Elsewhere (Flex, autodiff devices, builds without those features) it is the composite,
//! which on Flex is bit-identical to `log_softmax` followed by an arg-max.
//!
//! Ties resolve to the first index, as Burn's and PyTorch's arg-max do.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube;

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::{Device, Int, IntDType, Tensor};

/// The fused best token as a backend extension (implemented for the CubeCL backend, and
/// registered as a custom operation under Burn's fusion).
#[backend_extension(
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Fusion: cfg(all(feature = "fusion", any(feature = "wgpu", feature = "cuda"))),
)]
pub trait BestTokenOps: Backend {
    /// Each row's largest log-probability and its index.
    ///
    /// # Shapes
    /// - `logits`: `[rows, vocab]`
    /// - returns `[rows]` (float) and `[rows]` (int, of `indices_dtype`)
    #[fusion(meta = spec)]
    #[allow(unused_variables)] // Unused by the generated routing when no backend is compiled in.
    fn best_token(
        logits: FloatTensor<Self>,
        indices_dtype: IntDType,
    ) -> (FloatTensor<Self>, IntTensor<Self>);
}

#[cfg(all(feature = "fusion", any(feature = "wgpu", feature = "cuda")))]
fn spec(
    logits: &burn::backend::fusion::custom::TensorSpec,
    indices_dtype: &IntDType,
) -> (
    burn::backend::fusion::custom::TensorSpec,
    burn::backend::fusion::custom::TensorSpec,
) {
    use burn::backend::fusion::custom::TensorSpec;
    let rows = burn::tensor::Shape::new([logits.shape[0]]);
    (
        TensorSpec::new(rows.clone(), logits.dtype),
        TensorSpec::new(rows, (*indices_dtype).into()),
    )
}

/// Each row's best token and its log-probability under `log_softmax`, computed from logits.
///
/// # Shapes
/// - `logits`: `[rows, vocab]`
/// - returns `[rows]` log-probabilities and `[rows]` tokens
pub fn best_token(logits: Tensor<2>) -> (Tensor<1>, Tensor<1, Int>) {
    let device = logits.device();
    if has_fused_best_token(&device) {
        let indices_dtype = device.settings().int_dtype;
        let (best, token) = <burn::backend::Dispatch as BestTokenOps>::best_token(
            logits.into_dispatch(),
            indices_dtype,
        );
        return (Tensor::from_dispatch(best), Tensor::from_dispatch(token));
    }
    best_token_composite(logits)
}

/// [`best_token`] from tensor operations: arg-max, then `−log Σ exp(x − x_max)` (the
/// reference of the fused kernel, and the path of every other backend).
pub fn best_token_composite(logits: Tensor<2>) -> (Tensor<1>, Tensor<1, Int>) {
    let [rows, _] = logits.dims();
    let (max, token) = logits.clone().max_dim_with_indices(1);
    let log_sum = (logits - max).exp().sum_dim(1).log();
    (log_sum.neg().reshape([rows]), token.reshape([rows]))
}

/// Whether this build has the fused kernel for the device's backend (CubeCL devices, not
/// under autodiff).
pub fn has_fused_best_token(device: &Device) -> bool {
    match device.as_dispatch() {
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        burn::backend::DispatchDevice::Cube(_) => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}
