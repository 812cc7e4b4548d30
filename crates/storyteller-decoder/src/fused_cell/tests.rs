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

/// The recurrence step by step with the tensor-operation composite: the reference.
fn sequence_reference(
    gates: Tensor<3>,
    weight: Tensor<2>,
    hidden: Tensor<2>,
    cell: Tensor<2>,
) -> Tensor<3> {
    let [rows, steps, d_gates] = gates.dims();
    let (mut hidden, mut cell) = (hidden, cell);
    let mut outputs = Vec::new();
    for t in 0..steps {
        let x = gates.clone().narrow(1, t, 1).reshape([rows, d_gates]);
        let state = lstm_cell_tensors(x, hidden.matmul(weight.clone()), cell);
        hidden = state.clone().narrow(1, 0, D_HIDDEN);
        cell = state.narrow(1, D_HIDDEN, D_HIDDEN);
        outputs.push(hidden.clone());
    }
    Tensor::stack(outputs, 1)
}

#[test]
fn fused_sequence_equals_the_step_by_step_composite() {
    let device = Device::flex();
    let gates = Tensor::<3>::random(
        [ROWS, 4, 4 * D_HIDDEN],
        Distribution::Normal(0.0, 2.0),
        &device,
    );
    let normal = Distribution::Normal(0.0, 0.5);
    let weight = Tensor::<2>::random([D_HIDDEN, 4 * D_HIDDEN], normal, &device);
    let hidden = Tensor::<2>::random([ROWS, D_HIDDEN], normal, &device);
    let cell = Tensor::<2>::random([ROWS, D_HIDDEN], normal, &device);
    let output_weights =
        Tensor::<3>::random([ROWS, 4, D_HIDDEN], Distribution::Normal(0.0, 1.0), &device);

    let forward = |fused: bool, device: &Device| {
        let tracked2 = |t: &Tensor<2>| Tensor::<2>::from_data(t.to_data(), device).require_grad();
        let g = Tensor::<3>::from_data(gates.to_data(), device).require_grad();
        let (w, h, c) = (tracked2(&weight), tracked2(&hidden), tracked2(&cell));
        let out = if fused {
            super::lstm_sequence(g.clone(), w.clone(), h.clone(), c.clone())
        } else {
            sequence_reference(g.clone(), w.clone(), h.clone(), c.clone())
        };
        let loss = (out.clone() * Tensor::<3>::from_data(output_weights.to_data(), device)).sum();
        let grads = loss.backward();
        let grad3 = |t: &Tensor<3>| {
            t.grad(&grads)
                .expect("tracked")
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let output = out
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        (
            output,
            vec![
                grad3(&g),
                values(w.grad(&grads).expect("tracked")),
                values(h.grad(&grads).expect("tracked")),
                values(c.grad(&grads).expect("tracked")),
            ],
        )
    };
    let train = Device::flex().autodiff();
    let (fused_out, fused_grads) = forward(true, &train);
    let (want_out, want_grads) = forward(false, &train);
    let difference = max_abs_difference(&fused_out, &want_out);
    assert!(difference <= 1e-5, "hidden states: {difference}");
    for (name, (ours, theirs)) in ["input gates", "W_hh", "h0", "c0"]
        .iter()
        .zip(fused_grads.iter().zip(&want_grads))
    {
        let difference = max_abs_difference(ours, theirs);
        assert!(difference <= 1e-4, "{name} gradient: {difference}");
        assert!(
            ours.iter().any(|g| *g != 0.0),
            "{name}: an all-zero gradient"
        );
    }
    // Without autodiff the fused forward gives the same states.
    let plain = super::lstm_sequence(gates.clone(), weight.clone(), hidden.clone(), cell.clone());
    let plain = plain
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(max_abs_difference(&plain, &want_out) <= 1e-5);
}
