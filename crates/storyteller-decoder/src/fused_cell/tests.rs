//! The fused cell against its composite, forward and backward, on Flex.

use super::composite::lstm_cell_tensors;
use super::{has_fused_cell, lstm_cell};
use burn::tensor::{Device, Distribution, Tensor};
use storyteller_test_support::compare::max_abs_difference;

const ROWS: usize = 5;
const D_HIDDEN: usize = 7;

fn values(tensor: Tensor<2>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Gates and cell with non-unit strides (narrowed from wider tensors), scaled so that every
/// gate saturates somewhere and stays linear elsewhere.
fn inputs(device: &Device) -> (Tensor<2>, Tensor<2>, Tensor<2>) {
    let wide = |cols: usize, offset: usize, width: usize| {
        Tensor::<2>::random([ROWS, cols], Distribution::Normal(0.0, 3.0), device)
            .narrow(1, offset, width)
    };
    (
        wide(4 * D_HIDDEN + 3, 2, 4 * D_HIDDEN),
        Tensor::<2>::random([4 * D_HIDDEN, ROWS], Distribution::Normal(0.0, 3.0), device)
            .transpose(),
        wide(2 * D_HIDDEN, D_HIDDEN, D_HIDDEN),
    )
}

#[test]
fn flex_has_the_fused_cell() {
    assert!(has_fused_cell(&Device::flex()));
    assert!(has_fused_cell(&Device::flex().autodiff()));
}

#[test]
fn fused_forward_equals_the_composite() {
    let device = Device::flex();
    let (x, r, c) = inputs(&device);
    let reference = lstm_cell_tensors(x.clone(), r.clone(), c.clone());
    let (hidden, cell) = lstm_cell(x, r, c);
    let fused = Tensor::cat(vec![hidden, cell], 1);
    let difference = max_abs_difference(&values(fused), &values(reference));
    assert!(difference <= 1e-5, "fused vs composite: {difference}");
}

/// Gradients of a weighted sum of `h'` and `c'` with respect to all three inputs.
fn gradients(
    fused: bool,
    inputs: &(Tensor<2>, Tensor<2>, Tensor<2>),
    weights: &Tensor<2>,
) -> Vec<Vec<f32>> {
    let device = Device::flex().autodiff();
    let tracked = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), &device).require_grad();
    let (x, r, c) = (tracked(&inputs.0), tracked(&inputs.1), tracked(&inputs.2));
    let weights = Tensor::<2>::from_data(weights.to_data(), &device);
    let state = if fused {
        let (hidden, cell) = lstm_cell(x.clone(), r.clone(), c.clone());
        Tensor::cat(vec![hidden, cell], 1)
    } else {
        lstm_cell_tensors(x.clone(), r.clone(), c.clone())
    };
    // A second step through the cell state, so that `c'` receives a gradient both directly
    // and through `h'`.
    let (next_hidden, _) = lstm_cell(
        x.clone() * 0.5,
        r.clone() * -0.25,
        state.clone().narrow(1, D_HIDDEN, D_HIDDEN),
    );
    let loss = (state * weights).sum() + next_hidden.sum();
    let grads = loss.backward();
    [x, r, c]
        .into_iter()
        .map(|t| values(t.grad(&grads).expect("every input is tracked")))
        .collect()
}

#[test]
fn fused_gradients_equal_the_composite() {
    let device = Device::flex();
    let inputs = inputs(&device);
    let weights = Tensor::<2>::random(
        [ROWS, 2 * D_HIDDEN],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let fused = gradients(true, &inputs, &weights);
    let reference = gradients(false, &inputs, &weights);
    for (name, (ours, theirs)) in ["input gates", "recurrent gates", "cell"]
        .iter()
        .zip(fused.iter().zip(&reference))
    {
        let difference = max_abs_difference(ours, theirs);
        assert!(
            difference <= 1e-4,
            "{name}: fused vs composite gradient {difference}"
        );
        assert!(
            ours.iter().any(|g| *g != 0.0),
            "{name}: an all-zero gradient"
        );
    }
}
