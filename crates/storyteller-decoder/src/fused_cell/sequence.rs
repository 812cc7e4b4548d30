//! A whole teacher-forced recurrence as one operation: per time step one product `h·W_hh` and
//! one fused cell forward; backward, one fused cell backward and one product per step, then the
//! recurrent weight's gradient as a single product over all steps.
//!
//! Written step by step with tensor operations, autodiff records a slice of the input gates per
//! step, whose gradient is a zero tensor of the whole sequence with one step assigned, summed
//! over the steps, and one weight-gradient product per step; this operation writes the gates'
//! gradient once and multiplies once.

use super::LstmCellOps;
use burn::backend::TensorMetadata;
use burn::backend::tensor::FloatTensor;
use burn::tensor::{Shape, Slice};

/// What the forward leaves for the backward.
#[derive(Debug, Clone)]
pub(super) struct Recorded<B: LstmCellOps> {
    /// The input gates, time-major (a view), `[steps, rows, 4·d_hidden]`.
    pub input_gates: FloatTensor<B>,
    /// `h_{t−1}·W_hh` of every step, `[rows, 4·d_hidden]` each.
    pub recurrent: Vec<FloatTensor<B>>,
    /// The initial state and every step's packed `[h | c]`, time-major:
    /// `[steps + 1, rows, 2·d_hidden]`.
    pub states: FloatTensor<B>,
}

fn range(tensor_shape: &Shape) -> Vec<Slice> {
    tensor_shape.iter().map(|&d| Slice::from(0..d)).collect()
}

/// Step `t` of a time-major tensor `[steps, rows, cols]` as `[rows, cols]`.
pub(super) fn step<B: LstmCellOps>(time_major: &FloatTensor<B>, t: usize) -> FloatTensor<B> {
    let shape = time_major.shape();
    let mut slices = range(&shape);
    slices[0] = Slice::from(t..t + 1);
    B::float_reshape(
        B::float_slice(time_major.clone(), &slices),
        Shape::new([shape[1], shape[2]]),
    )
}

/// Columns `start..start + len` of a `[..., cols]` tensor.
pub(super) fn columns<B: LstmCellOps>(
    tensor: &FloatTensor<B>,
    start: usize,
    len: usize,
) -> FloatTensor<B> {
    let shape = tensor.shape();
    let mut slices = range(&shape);
    let last = slices.len() - 1;
    slices[last] = Slice::from(start..start + len);
    B::float_slice(tensor.clone(), &slices)
}

/// The hidden halves of the packed states `steps` (`[steps, rows, H]` of `[.., rows, 2H]`).
fn hidden_of<B: LstmCellOps>(
    states: &FloatTensor<B>,
    steps: core::ops::Range<usize>,
    d_hidden: usize,
) -> FloatTensor<B> {
    let mut slices = range(&states.shape());
    slices[0] = Slice::from(steps);
    slices[2] = Slice::from(0..d_hidden);
    B::float_slice(states.clone(), &slices)
}

/// Stacks `[rows, cols]` tensors into a time-major `[steps, rows, cols]`.
pub(super) fn stack<B: LstmCellOps>(tensors: Vec<FloatTensor<B>>) -> FloatTensor<B> {
    let tensors = tensors
        .into_iter()
        .map(|t| {
            let shape = t.shape();
            B::float_reshape(t, Shape::new([1, shape[0], shape[1]]))
        })
        .collect();
    B::float_cat(tensors, 0)
}

/// The forward pass: hidden states `[rows, steps, d_hidden]` and what the backward needs.
pub(super) fn forward<B: LstmCellOps>(
    input_gates: FloatTensor<B>,
    weight_hh: FloatTensor<B>,
    hidden: FloatTensor<B>,
    cell: FloatTensor<B>,
) -> (FloatTensor<B>, Recorded<B>) {
    let [_, steps, _] = input_gates.shape().dims();
    let d_hidden = hidden.shape()[1];
    // Time-major views: every step's gates are a `[rows, 4H]` slice with a row stride.
    let input_gates = B::float_swap_dims(input_gates, 0, 1);
    let mut states = vec![B::float_cat(vec![hidden.clone(), cell.clone()], 1)];
    let mut recurrent = Vec::with_capacity(steps);
    let (mut hidden, mut cell) = (hidden, cell);
    for t in 0..steps {
        let product = B::float_matmul(hidden, weight_hh.clone());
        let state = B::lstm_cell(step::<B>(&input_gates, t), product.clone(), cell);
        hidden = columns::<B>(&state, 0, d_hidden);
        cell = columns::<B>(&state, d_hidden, d_hidden);
        recurrent.push(product);
        states.push(state);
    }
    let states = stack::<B>(states);
    let hidden_states = B::float_swap_dims(hidden_of::<B>(&states, 1..steps + 1, d_hidden), 0, 1);
    (
        hidden_states,
        Recorded {
            input_gates,
            recurrent,
            states,
        },
    )
}

/// The gradients of the input gates `[rows, steps, 4·d_hidden]`, of `W_hh`, and of the initial
/// hidden and cell states, given the gradient of the hidden states `[rows, steps, d_hidden]`.
pub(super) fn backward<B: LstmCellOps>(
    recorded: Recorded<B>,
    weight_hh: FloatTensor<B>,
    grad_hidden_states: FloatTensor<B>,
) -> [FloatTensor<B>; 4] {
    let Recorded {
        input_gates,
        recurrent,
        states,
    } = recorded;
    let steps = recurrent.len();
    let [_, rows, two_hidden] = states.shape().dims();
    let d_hidden = two_hidden / 2;
    let grad_time_major = B::float_swap_dims(grad_hidden_states, 0, 1);
    let weight_hh_t = B::float_transpose(weight_hh);
    let device = states.device();
    let dtype = states.dtype().into();
    let mut grad_hidden = B::float_zeros(Shape::new([rows, d_hidden]), &device, dtype);
    let mut grad_cell = B::float_zeros(Shape::new([rows, d_hidden]), &device, dtype);
    let mut grad_gates = Vec::with_capacity(steps);
    for t in (0..steps).rev() {
        let previous = step::<B>(&states, t);
        let grad_state = B::float_cat(
            vec![
                B::float_add(step::<B>(&grad_time_major, t), grad_hidden),
                grad_cell,
            ],
            1,
        );
        let (grad_z, grad_previous_cell) = B::lstm_cell_backward(
            step::<B>(&input_gates, t),
            recurrent[t].clone(),
            columns::<B>(&previous, d_hidden, d_hidden),
            grad_state,
        );
        grad_hidden = B::float_matmul(grad_z.clone(), weight_hh_t.clone());
        grad_cell = grad_previous_cell;
        grad_gates.push(grad_z);
    }
    grad_gates.reverse();
    // [steps, rows, 4H]: the input gates' gradient, and with the previous hidden states
    // [steps, rows, H] the recurrent weight's, Σ_t h_{t−1}ᵀ·dz_t, as one product.
    let grad_gates = stack::<B>(grad_gates);
    let d_gates = 4 * d_hidden;
    let previous_hidden = B::float_reshape(
        hidden_of::<B>(&states, 0..steps, d_hidden),
        Shape::new([steps * rows, d_hidden]),
    );
    let grad_weight_hh = B::float_matmul(
        B::float_transpose(previous_hidden),
        B::float_reshape(grad_gates.clone(), Shape::new([steps * rows, d_gates])),
    );
    [
        B::float_swap_dims(grad_gates, 0, 1),
        grad_weight_hh,
        grad_hidden,
        grad_cell,
    ]
}
