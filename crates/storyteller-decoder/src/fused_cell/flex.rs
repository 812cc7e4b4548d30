//! The fused cell on Flex, Burn's CPU backend: one pass over the rows for `f32`.

use super::LstmCellOps;
use super::composite;
use burn::backend::flex::{Flex, FlexTensor};
use burn::backend::tensor::FloatTensor;
use burn::tensor::{DType, TensorData};

/// A read-only 2-d `f32` view of a Flex tensor with any strides.
struct Matrix<'a> {
    data: &'a [f32],
    offset: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Matrix<'a> {
    fn new(tensor: &'a FlexTensor) -> Self {
        let layout = tensor.layout();
        let (_, _, row_stride, col_stride) = layout
            .as_2d_strides()
            .expect("the fused cell takes 2-d tensors");
        Self {
            data: tensor.storage::<f32>(),
            offset: layout.start_offset(),
            row_stride,
            col_stride,
        }
    }

    #[inline]
    fn get(&self, row: usize, col: usize) -> f32 {
        let index =
            self.offset as isize + row as isize * self.row_stride + col as isize * self.col_stride;
        self.data[index as usize]
    }
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn all_f32(tensors: &[&FlexTensor]) -> bool {
    tensors.iter().all(|t| t.dtype() == DType::F32)
}

fn output(shape: [usize; 2], values: Vec<f32>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl LstmCellOps for Flex {
    fn lstm_cell(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if !all_f32(&[&input_gates, &recurrent_gates, &cell]) {
            return composite::lstm_cell::<Self>(input_gates, recurrent_gates, cell);
        }
        let [rows, d_hidden] = cell.layout().shape().dims();
        let (x, r, c) = (
            Matrix::new(&input_gates),
            Matrix::new(&recurrent_gates),
            Matrix::new(&cell),
        );
        let mut state = vec![0.0f32; rows * 2 * d_hidden];
        for (row, out) in state.chunks_exact_mut(2 * d_hidden).enumerate() {
            let (hidden, new_cell) = out.split_at_mut(d_hidden);
            for j in 0..d_hidden {
                let z = |k: usize| x.get(row, k * d_hidden + j) + r.get(row, k * d_hidden + j);
                let c1 = sigmoid(z(1)) * c.get(row, j) + sigmoid(z(0)) * z(2).tanh();
                new_cell[j] = c1;
                hidden[j] = sigmoid(z(3)) * c1.tanh();
            }
        }
        output([rows, 2 * d_hidden], state)
    }

    fn lstm_cell_backward(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
        grad_state: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if !all_f32(&[&input_gates, &recurrent_gates, &cell, &grad_state]) {
            return composite::lstm_cell_backward::<Self>(
                input_gates,
                recurrent_gates,
                cell,
                grad_state,
            );
        }
        let [rows, d_hidden] = cell.layout().shape().dims();
        let (x, r, c, grad) = (
            Matrix::new(&input_gates),
            Matrix::new(&recurrent_gates),
            Matrix::new(&cell),
            Matrix::new(&grad_state),
        );
        let mut grad_gates = vec![0.0f32; rows * 4 * d_hidden];
        let mut grad_cell = vec![0.0f32; rows * d_hidden];
        for (row, (gates_out, cell_out)) in grad_gates
            .chunks_exact_mut(4 * d_hidden)
            .zip(grad_cell.chunks_exact_mut(d_hidden))
            .enumerate()
        {
            for j in 0..d_hidden {
                let z = |k: usize| x.get(row, k * d_hidden + j) + r.get(row, k * d_hidden + j);
                let (i, f, g, o) = (sigmoid(z(0)), sigmoid(z(1)), z(2).tanh(), sigmoid(z(3)));
                let c0 = c.get(row, j);
                let tanh_c1 = (f * c0 + i * g).tanh();
                let grad_h = grad.get(row, j);
                let grad_c1 = grad.get(row, d_hidden + j) + grad_h * o * (1.0 - tanh_c1 * tanh_c1);
                gates_out[j] = grad_c1 * g * i * (1.0 - i);
                gates_out[d_hidden + j] = grad_c1 * c0 * f * (1.0 - f);
                gates_out[2 * d_hidden + j] = grad_c1 * i * (1.0 - g * g);
                gates_out[3 * d_hidden + j] = grad_h * tanh_c1 * o * (1.0 - o);
                cell_out[j] = grad_c1 * f;
            }
        }
        (
            output([rows, 4 * d_hidden], grad_gates),
            output([rows, d_hidden], grad_cell),
        )
    }
}
