//! The fused cell's reference: the same arithmetic from Burn's tensor operations.
//!
//! Used where a backend has no fused implementation, for float types the CPU loop does not
//! cover, and by the tests as the ground truth of every fused implementation.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, TensorMetadata};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Slice, Tensor};

/// `[rows, 4H]` columns of gate `k` (0 i, 1 f, 2 g, 3 o).
fn gate<B: Backend>(gates: &FloatTensor<B>, k: usize, d_hidden: usize) -> FloatTensor<B> {
    let rows = gates.shape()[0];
    B::float_slice(
        gates.clone(),
        &[
            Slice::from(0..rows),
            Slice::from(k * d_hidden..(k + 1) * d_hidden),
        ],
    )
}

fn one_minus<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_add_scalar(B::float_neg(x), 1.0.into())
}

/// The activated gates σ(i), σ(f), tanh(g), σ(o) and the new cell state.
struct Activated<B: Backend> {
    input: FloatTensor<B>,
    forget: FloatTensor<B>,
    candidate: FloatTensor<B>,
    output: FloatTensor<B>,
    cell: FloatTensor<B>,
}

fn activate<B: Backend>(
    input_gates: FloatTensor<B>,
    recurrent_gates: FloatTensor<B>,
    cell: FloatTensor<B>,
) -> Activated<B> {
    let d_hidden = cell.shape()[1];
    let gates = B::float_add(input_gates, recurrent_gates);
    let input = B::sigmoid(gate::<B>(&gates, 0, d_hidden));
    let forget = B::sigmoid(gate::<B>(&gates, 1, d_hidden));
    let candidate = B::float_tanh(gate::<B>(&gates, 2, d_hidden));
    let output = B::sigmoid(gate::<B>(&gates, 3, d_hidden));
    let new_cell = B::float_add(
        B::float_mul(forget.clone(), cell),
        B::float_mul(input.clone(), candidate.clone()),
    );
    Activated {
        input,
        forget,
        candidate,
        output,
        cell: new_cell,
    }
}

/// [`LstmCellOps::lstm_cell`](super::LstmCellOps::lstm_cell) from backend operations.
pub(super) fn lstm_cell<B: Backend>(
    input_gates: FloatTensor<B>,
    recurrent_gates: FloatTensor<B>,
    cell: FloatTensor<B>,
) -> FloatTensor<B> {
    let a = activate::<B>(input_gates, recurrent_gates, cell);
    let hidden = B::float_mul(a.output, B::float_tanh(a.cell.clone()));
    B::float_cat(vec![hidden, a.cell], 1)
}

/// [`LstmCellOps::lstm_cell_backward`](super::LstmCellOps::lstm_cell_backward) from backend
/// operations.
pub(super) fn lstm_cell_backward<B: Backend>(
    input_gates: FloatTensor<B>,
    recurrent_gates: FloatTensor<B>,
    cell: FloatTensor<B>,
    grad_state: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let [rows, d_hidden] = cell.shape().dims();
    let a = activate::<B>(input_gates, recurrent_gates, cell.clone());
    let half = |k: usize| {
        B::float_slice(
            grad_state.clone(),
            &[
                Slice::from(0..rows),
                Slice::from(k * d_hidden..(k + 1) * d_hidden),
            ],
        )
    };
    let (grad_hidden, grad_cell) = (half(0), half(1));
    let tanh_cell = B::float_tanh(a.cell);
    // dL/dc' in total: directly, and through h' = σ(o)·tanh(c').
    let grad_cell = B::float_add(
        grad_cell,
        B::float_mul(
            B::float_mul(grad_hidden.clone(), a.output.clone()),
            one_minus::<B>(B::float_mul(tanh_cell.clone(), tanh_cell.clone())),
        ),
    );
    let sigmoid_grad = |s: FloatTensor<B>| B::float_mul(s.clone(), one_minus::<B>(s));
    let grad_input = B::float_mul(
        B::float_mul(grad_cell.clone(), a.candidate.clone()),
        sigmoid_grad(a.input.clone()),
    );
    let grad_forget = B::float_mul(
        B::float_mul(grad_cell.clone(), cell),
        sigmoid_grad(a.forget.clone()),
    );
    let grad_candidate = B::float_mul(
        B::float_mul(grad_cell.clone(), a.input),
        one_minus::<B>(B::float_mul(a.candidate.clone(), a.candidate)),
    );
    let grad_output = B::float_mul(B::float_mul(grad_hidden, tanh_cell), sigmoid_grad(a.output));
    let grad_gates = B::float_cat(
        vec![grad_input, grad_forget, grad_candidate, grad_output],
        1,
    );
    (grad_gates, B::float_mul(grad_cell, a.forget))
}

/// The composite with tensor operations (differentiable on any autodiff device).
pub fn lstm_cell_tensors(
    input_gates: Tensor<2>,
    recurrent_gates: Tensor<2>,
    cell: Tensor<2>,
) -> Tensor<2> {
    let d_hidden = cell.dims()[1];
    let gates = input_gates + recurrent_gates;
    let input = sigmoid(gates.clone().narrow(1, 0, d_hidden));
    let forget = sigmoid(gates.clone().narrow(1, d_hidden, d_hidden));
    let candidate = gates.clone().narrow(1, 2 * d_hidden, d_hidden).tanh();
    let output = sigmoid(gates.narrow(1, 3 * d_hidden, d_hidden));
    let cell = forget * cell + input * candidate;
    let hidden = output * cell.clone().tanh();
    Tensor::cat(vec![hidden, cell], 1)
}

#[cfg(all(feature = "fusion", any(feature = "wgpu", feature = "cuda")))]
use burn::backend::fusion::custom::TensorSpec;

/// The output layout of the fused forward under Burn's fusion: `[rows, 2·d_hidden]`.
#[cfg(all(feature = "fusion", any(feature = "wgpu", feature = "cuda")))]
pub(super) fn state_spec(
    _input: &TensorSpec,
    _recurrent: &TensorSpec,
    cell: &TensorSpec,
) -> TensorSpec {
    let [rows, d_hidden] = cell.shape.dims();
    TensorSpec::new(burn::tensor::Shape::new([rows, 2 * d_hidden]), cell.dtype)
}

/// The output layouts of the fused backward under Burn's fusion.
#[cfg(all(feature = "fusion", any(feature = "wgpu", feature = "cuda")))]
pub(super) fn backward_spec(
    input: &TensorSpec,
    _recurrent: &TensorSpec,
    cell: &TensorSpec,
    _grad_state: &TensorSpec,
) -> (TensorSpec, TensorSpec) {
    (
        TensorSpec::new(input.shape.clone(), input.dtype),
        TensorSpec::new(cell.shape.clone(), cell.dtype),
    )
}
