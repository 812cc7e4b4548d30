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
mod sequence;

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

    /// A whole teacher-forced recurrence: per step `h·W_hh` and [`lstm_cell`](Self::lstm_cell).
    /// Under autodiff its backward runs the steps in reverse with
    /// [`lstm_cell_backward`](Self::lstm_cell_backward) and one product per step, and
    /// computes `W_hh`'s gradient as one product over all steps.
    ///
    /// # Shapes
    /// - `input_gates`: `[rows, steps, 4·d_hidden]` (`x·W_ih + b_ih + b_hh`)
    /// - `weight_hh`: `[d_hidden, 4·d_hidden]`
    /// - `hidden`, `cell`: the initial state, `[rows, d_hidden]`
    /// - returns the hidden states `[rows, steps, d_hidden]`
    #[fusion(default)]
    fn lstm_sequence(
        input_gates: FloatTensor<Self>,
        weight_hh: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        cell: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        sequence::forward::<Self>(input_gates, weight_hh, hidden, cell).0
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

/// A teacher-forced LSTM layer over all time steps, fused where the backend has the cell
/// (see [`LstmCellOps::lstm_sequence`]); elsewhere the same steps with tensor operations.
///
/// # Shapes
/// - `input_gates`: `[rows, steps, 4·d_hidden]`, `x·W_ih + b_ih + b_hh`
/// - `weight_hh`: `[d_hidden, 4·d_hidden]`
/// - `hidden`, `cell`: the initial state, `[rows, d_hidden]`
/// - returns the hidden states `[rows, steps, d_hidden]`
pub fn lstm_sequence(
    input_gates: Tensor<3>,
    weight_hh: Tensor<2>,
    hidden: Tensor<2>,
    cell: Tensor<2>,
) -> Tensor<3> {
    let [rows, steps, d_gates] = input_gates.dims();
    let d_hidden = hidden.dims()[1];
    assert_eq!(
        d_gates,
        4 * d_hidden,
        "input gates must be [rows, steps, 4·d_hidden]"
    );
    assert_eq!(
        weight_hh.dims(),
        [d_hidden, d_gates],
        "W_hh must be [d_hidden, 4·d_hidden]"
    );
    assert_eq!(
        cell.dims(),
        [rows, d_hidden],
        "the cell state must be [rows, d_hidden]"
    );
    if has_fused_cell(&hidden.device()) {
        return Tensor::from_dispatch(<burn::backend::Dispatch as LstmCellOps>::lstm_sequence(
            input_gates.into_dispatch(),
            weight_hh.into_dispatch(),
            hidden.into_dispatch(),
            cell.into_dispatch(),
        ));
    }
    let (mut hidden, mut cell) = (hidden, cell);
    let mut outputs = Vec::with_capacity(steps);
    for t in 0..steps {
        let gates = input_gates.clone().narrow(1, t, 1).reshape([rows, d_gates]);
        (hidden, cell) = lstm_cell(gates, hidden.matmul(weight_hh.clone()), cell);
        outputs.push(hidden.clone());
    }
    Tensor::stack(outputs, 1)
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
