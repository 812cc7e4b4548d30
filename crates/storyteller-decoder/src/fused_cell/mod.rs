//! The LSTM cell's pointwise part as one fused operation.
//!
//! One step of an LSTM layer is two matrix products and a pointwise tail:
//!
//! ```text
//! [i f g o] = input_gates + recurrent_gates
//! c' = σ(f)·c + σ(i)·tanh(g)
//! h' = σ(o)·tanh(c')
//! ```
//!
//! Written with tensor operations the tail is about ten kernels on a GPU (and ten passes over
//! memory on the CPU); [`lstm_cell`] runs it as one. It is a Burn backend extension
//! ([`LstmCellOps`]) with one implementation per backend:
//!
//! - **Flex** (feature `flex`): one loop over the rows for `f32`; other float types fall back
//!   to the tensor-operation composite.
//! - **CubeCL** (features `wgpu` or `cuda`): one kernel forward, one backward
//!   ([`cube`](self) module); under Burn's fusion (feature `fusion`) the kernel is
//!   registered as a custom operation of the fused stream.
//! - **Autodiff** (feature `train`): a hand-written backward that calls the backend's fused
//!   backward, so training runs one kernel per step each way.
//!
//! On a backend without an implementation (or one whose feature this crate was built without)
//! [`lstm_cell`] computes the same composite from tensor operations; the results agree within
//! float rounding.
//!
//! Cargo features must match Burn's: a build that enables Burn's `fusion` together with this
//! crate's `wgpu` or `cuda` must also enable this crate's `fusion` (the facade crate and the
//! CLI forward them together).

#[cfg(feature = "train")]
mod autodiff;
mod composite;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
mod cube;
#[cfg(feature = "flex")]
mod flex;

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, backend_extension};
use burn::tensor::{Device, Tensor};

/// The fused LSTM cell as a backend extension.
///
/// Both operations take the gate pre-activations as two halves (the input part
/// `x·W_ih + b_ih + b_hh` and the recurrent product `h·W_hh`, stacked i, f, g, o as PyTorch
/// does; only their sum matters) and the previous cell state, and return the new state packed as `[h' | c']`: one
/// output keeps the operation a single node of the autodiff graph.
#[backend_extension(
    Flex: cfg(feature = "flex"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Fusion: cfg(all(feature = "fusion", any(feature = "wgpu", feature = "cuda"))),
    Autodiff: cfg(feature = "train"),
)]
pub trait LstmCellOps: Backend {
    /// The new state `[h' | c']`.
    ///
    /// # Shapes
    /// - `input_gates`, `recurrent_gates`: `[rows, 4·d_hidden]` (any strides)
    /// - `cell`: `[rows, d_hidden]` (any strides)
    /// - returns `[rows, 2·d_hidden]`, contiguous
    #[fusion(meta = composite::state_spec)]
    fn lstm_cell(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        composite::lstm_cell::<Self>(input_gates, recurrent_gates, cell)
    }

    /// The gradients of [`lstm_cell`](Self::lstm_cell): of the gate pre-activations (the same
    /// for both halves) and of the previous cell state, given the gradient of `[h' | c']`.
    ///
    /// # Shapes
    /// - `input_gates`, `recurrent_gates`: `[rows, 4·d_hidden]`
    /// - `cell`: `[rows, d_hidden]`
    /// - `grad_state`: `[rows, 2·d_hidden]`
    /// - returns `[rows, 4·d_hidden]` and `[rows, d_hidden]`
    #[fusion(meta = composite::backward_spec)]
    fn lstm_cell_backward(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
        grad_state: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        composite::lstm_cell_backward::<Self>(input_gates, recurrent_gates, cell, grad_state)
    }
}

/// One LSTM step's pointwise part, fused where the backend has the operation.
///
/// # Arguments
/// - `input_gates`: `x·W_ih + b_ih + b_hh`, gates i, f, g, o.
/// - `recurrent_gates`: `h·W_hh`, same layout (only the sum of the two matters).
/// - `cell`: the cell state before the step.
///
/// # Shapes
/// - `input_gates`, `recurrent_gates`: `[rows, 4·d_hidden]`
/// - `cell` and both returned tensors: `[rows, d_hidden]`
///
/// # Returns
/// The new `(hidden, cell)`.
pub fn lstm_cell(
    input_gates: Tensor<2>,
    recurrent_gates: Tensor<2>,
    cell: Tensor<2>,
) -> (Tensor<2>, Tensor<2>) {
    let [rows, d_hidden] = cell.dims();
    assert_eq!(
        input_gates.dims(),
        [rows, 4 * d_hidden],
        "input gates must be [rows, 4·d_hidden]"
    );
    assert_eq!(
        recurrent_gates.dims(),
        [rows, 4 * d_hidden],
        "recurrent gates must be [rows, 4·d_hidden]"
    );
    let state = if has_fused_cell(&cell.device()) {
        Tensor::from_dispatch(<burn::backend::Dispatch as LstmCellOps>::lstm_cell(
            input_gates.into_dispatch(),
            recurrent_gates.into_dispatch(),
            cell.into_dispatch(),
        ))
    } else {
        composite::lstm_cell_tensors(input_gates, recurrent_gates, cell)
    };
    let hidden = state.clone().narrow(1, 0, d_hidden);
    let cell = state.narrow(1, d_hidden, d_hidden);
    (hidden, cell)
}

/// [`lstm_cell`] from tensor operations, packed `[h' | c']` (`[rows, 2·d_hidden]`): the
/// reference of the fused implementations, and the path of backends without one.
pub fn lstm_cell_composite(
    input_gates: Tensor<2>,
    recurrent_gates: Tensor<2>,
    cell: Tensor<2>,
) -> Tensor<2> {
    composite::lstm_cell_tensors(input_gates, recurrent_gates, cell)
}

/// Whether this build has a fused implementation for the device's backend.
pub fn has_fused_cell(device: &Device) -> bool {
    let dispatch = device.as_dispatch();
    #[cfg(feature = "train")]
    if let burn::backend::DispatchDevice::Autodiff(_) = dispatch {
        return has_fused_cell(&device.clone().inner());
    }
    match dispatch {
        #[cfg(feature = "flex")]
        burn::backend::DispatchDevice::Flex(_) => true,
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        burn::backend::DispatchDevice::Cube(_) => true,
        #[allow(unreachable_patterns)]
        _ => false,
    }
}

#[cfg(test)]
mod tests;
