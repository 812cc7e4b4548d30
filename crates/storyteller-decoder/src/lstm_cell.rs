//! One LSTM layer with PyTorch's parameter layout, advanced one step at a time.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor};

/// An LSTM layer (Hochreiter & Schmidhuber, 1997) laid out as PyTorch's `nn.LSTM` layer:
/// the four gates stacked in the order input, forget, cell (g), output, with two bias
/// vectors.
///
/// Stacking the gates lets one step cost two matrix products instead of burn-nn's eight
/// (one per gate and input), and makes PyTorch import a transpose: `weight_ih` is
/// PyTorch's `weight_ih_l0` transposed to `[d_input, 4·d_hidden]`, `weight_hh` is
/// `weight_hh_l0` transposed to `[d_hidden, 4·d_hidden]`, and the biases are copied.
///
/// ```text
/// [i f g o] = x·W_ih + b_ih + h·W_hh + b_hh
/// c' = σ(f)·c + σ(i)·tanh(g)
/// h' = σ(o)·tanh(c')
/// ```
#[derive(Module, Debug)]
pub struct LstmCell {
    /// Input weights `[d_input, 4·d_hidden]`, gates i, f, g, o.
    pub weight_ih: Param<Tensor<2>>,
    /// Recurrent weights `[d_hidden, 4·d_hidden]`, gates i, f, g, o.
    pub weight_hh: Param<Tensor<2>>,
    /// Input bias `[4·d_hidden]`.
    pub bias_ih: Param<Tensor<1>>,
    /// Recurrent bias `[4·d_hidden]`.
    pub bias_hh: Param<Tensor<1>>,
}

impl LstmCell {
    /// A layer initialised as PyTorch does: every parameter uniform in `±1/√d_hidden`.
    pub fn new(d_input: usize, d_hidden: usize, device: &Device) -> Self {
        let k = 1.0 / (d_hidden as f64).sqrt();
        let init = Initializer::Uniform { min: -k, max: k };
        Self {
            weight_ih: init.init([d_input, 4 * d_hidden], device),
            weight_hh: init.init([d_hidden, 4 * d_hidden], device),
            bias_ih: init.init([4 * d_hidden], device),
            bias_hh: init.init([4 * d_hidden], device),
        }
    }

    /// Hidden size.
    pub fn d_hidden(&self) -> usize {
        self.weight_hh.dims()[0]
    }

    /// Both biases as one vector, `b_ih + b_hh` `[4·d_hidden]`: the step adds no bias to the
    /// recurrent product, so the input gates carry both.
    pub fn gate_bias(&self) -> Tensor<1> {
        self.bias_ih.val() + self.bias_hh.val()
    }

    /// The input half of the gate pre-activations with both biases, `x·W_ih + b_ih + b_hh`,
    /// for any number of leading dimensions (all time steps of a teacher-forced batch at
    /// once).
    ///
    /// # Shapes
    /// - `input`: `[..., d_input]`
    /// - returns `[..., 4·d_hidden]`
    pub fn input_gates<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        // One [rows, d_input] x [d_input, 4H] product over all leading dimensions: a
        // broadcast batched matmul would make the backward pass build one weight gradient
        // per batch row and sum them.
        linear(input, self.weight_ih.val(), Some(self.gate_bias()))
    }

    /// One step from precomputed input gates (see [`input_gates`](Self::input_gates)).
    ///
    /// # Arguments
    /// - `input_gates`: `x·W_ih + b_ih + b_hh` of this step (both biases: the step adds
    ///   none to the recurrent product `h·W_hh`, which saves a kernel per step).
    /// - `hidden`, `cell`: the state before the step.
    ///
    /// # Shapes
    /// - `input_gates`: `[batch, 4·d_hidden]`
    /// - `hidden`, `cell`, and both returned tensors: `[batch, d_hidden]`
    ///
    /// # Returns
    /// The new `(hidden, cell)`.
    pub fn step_gates(
        &self,
        input_gates: Tensor<2>,
        hidden: Tensor<2>,
        cell: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        // One product, then the pointwise tail as one fused operation where the backend has
        // it (see `fused_cell`).
        let recurrent_gates = hidden.matmul(self.weight_hh.val());
        crate::fused_cell::lstm_cell(input_gates, recurrent_gates, cell)
    }

    /// One step from the input.
    ///
    /// # Shapes
    /// - `input`: `[batch, d_input]`
    /// - `hidden`, `cell`, and both returned tensors: `[batch, d_hidden]`
    pub fn step(
        &self,
        input: Tensor<2>,
        hidden: Tensor<2>,
        cell: Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        self.step_gates(self.input_gates(input), hidden, cell)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// A hand-computed step: d_input 1, d_hidden 1, all weights 0.5, biases 0.
    #[test]
    fn one_step_matches_the_equations() {
        let device = Device::flex();
        let mut cell = LstmCell::new(1, 1, &device);
        cell.weight_ih = Param::from_tensor(Tensor::full([1, 4], 0.5, &device));
        cell.weight_hh = Param::from_tensor(Tensor::full([1, 4], 0.5, &device));
        cell.bias_ih = Param::from_tensor(Tensor::zeros([4], &device));
        cell.bias_hh = Param::from_tensor(Tensor::zeros([4], &device));
        let x = Tensor::from_data(TensorData::new(vec![1.0f32], [1, 1]), &device);
        let h = Tensor::from_data(TensorData::new(vec![0.2f32], [1, 1]), &device);
        let c = Tensor::from_data(TensorData::new(vec![-0.3f32], [1, 1]), &device);
        let (h2, c2) = cell.step(x, h, c);
        let pre = 0.5_f32 * 1.0 + 0.5 * 0.2;
        let s = 1.0 / (1.0 + (-pre).exp());
        let expected_c = s * -0.3 + s * pre.tanh();
        let expected_h = s * expected_c.tanh();
        let c2 = c2.into_data().try_to_vec::<f32>().unwrap()[0];
        let h2 = h2.into_data().try_to_vec::<f32>().unwrap()[0];
        assert!((c2 - expected_c).abs() < 1e-6, "{c2} vs {expected_c}");
        assert!((h2 - expected_h).abs() < 1e-6, "{h2} vs {expected_h}");
    }
}
