//! The fused cell on the CubeCL backend (wgpu, CUDA): one kernel forward, one backward,
//! one thread per hidden unit of each row.

use super::LstmCellOps;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::FloatTensor;
use burn::tensor::Shape;
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::untile;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use cubecl::{calculate_cube_count_elemwise, prelude::*};

#[cube]
fn sigmoid<F: Float>(x: F) -> F {
    F::new(1.0) / (F::new(1.0) + F::exp(F::new(0.0) - x))
}

/// Gate column `col`'s pre-activation in `row`: input plus recurrent part.
#[cube]
fn pre_activation<F: Float>(
    input_gates: &Tensor<F>,
    recurrent_gates: &Tensor<F>,
    row: usize,
    col: usize,
) -> F {
    input_gates[row * input_gates.stride(0) + col * input_gates.stride(1)]
        + recurrent_gates[row * recurrent_gates.stride(0) + col * recurrent_gates.stride(1)]
}

/// The activated gates σ(i), σ(f), tanh(g), σ(o) of one hidden unit and its previous cell
/// state: what the forward and the backward kernel both start from.
#[derive(CubeType)]
struct Activated<F: Float> {
    input: F,
    forget: F,
    candidate: F,
    output: F,
    cell: F,
}

#[cube]
fn activate<F: Float>(
    input_gates: &Tensor<F>,
    recurrent_gates: &Tensor<F>,
    cell: &Tensor<F>,
    row: usize,
    j: usize,
) -> Activated<F> {
    let d_hidden = cell.shape(1);
    Activated::<F> {
        input: sigmoid::<F>(pre_activation::<F>(input_gates, recurrent_gates, row, j)),
        forget: sigmoid::<F>(pre_activation::<F>(
            input_gates,
            recurrent_gates,
            row,
            d_hidden + j,
        )),
        candidate: F::tanh(pre_activation::<F>(
            input_gates,
            recurrent_gates,
            row,
            2 * d_hidden + j,
        )),
        output: sigmoid::<F>(pre_activation::<F>(
            input_gates,
            recurrent_gates,
            row,
            3 * d_hidden + j,
        )),
        cell: cell[row * cell.stride(0) + j * cell.stride(1)],
    }
}

#[cube(launch)]
fn lstm_cell_kernel<F: Float>(
    input_gates: &Tensor<F>,
    recurrent_gates: &Tensor<F>,
    cell: &Tensor<F>,
    state: &mut Tensor<F>,
    #[define(F)] _dtype: ElemType,
) {
    let d_hidden = cell.shape(1);
    if ABSOLUTE_POS >= cell.shape(0) * d_hidden {
        terminate!();
    }
    let row = ABSOLUTE_POS / d_hidden;
    let j = ABSOLUTE_POS % d_hidden;
    let a = activate::<F>(input_gates, recurrent_gates, cell, row, j);
    let c1 = a.forget * a.cell + a.input * a.candidate;
    let out = row * state.stride(0);
    state[out + j] = a.output * F::tanh(c1);
    state[out + d_hidden + j] = c1;
}

#[cube(launch)]
fn lstm_cell_backward_kernel<F: Float>(
    input_gates: &Tensor<F>,
    recurrent_gates: &Tensor<F>,
    cell: &Tensor<F>,
    grad_state: &Tensor<F>,
    grad_gates: &mut Tensor<F>,
    grad_cell: &mut Tensor<F>,
    #[define(F)] _dtype: ElemType,
) {
    let d_hidden = cell.shape(1);
    if ABSOLUTE_POS >= cell.shape(0) * d_hidden {
        terminate!();
    }
    let row = ABSOLUTE_POS / d_hidden;
    let j = ABSOLUTE_POS % d_hidden;
    let one = F::new(1.0);
    let a = activate::<F>(input_gates, recurrent_gates, cell, row, j);
    let (i, f, g, o) = (a.input, a.forget, a.candidate, a.output);
    let tanh_c1 = F::tanh(f * a.cell + i * g);
    let grad_row = row * grad_state.stride(0);
    let grad_h = grad_state[grad_row + j * grad_state.stride(1)];
    let grad_c1 = grad_state[grad_row + (d_hidden + j) * grad_state.stride(1)]
        + grad_h * o * (one - tanh_c1 * tanh_c1);
    let out = row * grad_gates.stride(0);
    grad_gates[out + j] = grad_c1 * g * i * (one - i);
    grad_gates[out + d_hidden + j] = grad_c1 * a.cell * f * (one - f);
    grad_gates[out + 2 * d_hidden + j] = grad_c1 * i * (one - g * g);
    grad_gates[out + 3 * d_hidden + j] = grad_h * tanh_c1 * o * (one - o);
    let cell_out = row * grad_cell.stride(0) + j;
    grad_cell[cell_out] = grad_c1 * f;
}

/// A contiguous output on the device of `like`.
fn empty_like(like: &CubeTensor, shape: [usize; 2]) -> CubeTensor {
    empty_device_dtype(
        like.client.clone(),
        like.device.clone(),
        Shape::new(shape),
        like.dtype,
    )
}

impl LstmCellOps for CubeBackend {
    fn lstm_cell(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (input_gates, recurrent_gates, cell) =
            (untile(input_gates), untile(recurrent_gates), untile(cell));
        let [rows, d_hidden] = cell.meta.shape().dims();
        let state = empty_like(&cell, [rows, 2 * d_hidden]);
        let units = rows * d_hidden;
        let client = cell.client.clone();
        let cube_dim = CubeDim::new(&client, units);
        let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
        let dtype = dtype_to_storage_type(cell.dtype);
        lstm_cell_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            input_gates.into_tensor_arg(),
            recurrent_gates.into_tensor_arg(),
            cell.into_tensor_arg(),
            state.clone().into_tensor_arg(),
            dtype,
        );
        state
    }

    fn lstm_cell_backward(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
        grad_state: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (input_gates, recurrent_gates, cell, grad_state) = (
            untile(input_gates),
            untile(recurrent_gates),
            untile(cell),
            untile(grad_state),
        );
        let [rows, d_hidden] = cell.meta.shape().dims();
        let grad_gates = empty_like(&cell, [rows, 4 * d_hidden]);
        let grad_cell = empty_like(&cell, [rows, d_hidden]);
        let units = rows * d_hidden;
        let client = cell.client.clone();
        let cube_dim = CubeDim::new(&client, units);
        let cube_count = calculate_cube_count_elemwise(&client, units, cube_dim);
        let dtype = dtype_to_storage_type(cell.dtype);
        lstm_cell_backward_kernel::launch(
            &client,
            cube_count,
            cube_dim,
            input_gates.into_tensor_arg(),
            recurrent_gates.into_tensor_arg(),
            cell.into_tensor_arg(),
            grad_state.into_tensor_arg(),
            grad_gates.clone().into_tensor_arg(),
            grad_cell.clone().into_tensor_arg(),
            dtype,
        );
        (grad_gates, grad_cell)
    }
}
