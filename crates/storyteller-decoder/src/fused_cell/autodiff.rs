//! The fused cell under autodiff: the backend's fused forward, and a backward that calls the
//! backend's fused backward once per step.

use super::{LstmCellOps, sequence};
use burn::backend::Backend;
use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

/// The backward step of one fused cell: parents input gates, recurrent gates, cell.
#[derive(Debug)]
struct LstmCellBackward;

impl<B: Backend + LstmCellOps> Backward<B, 3> for LstmCellBackward {
    /// The forward's inputs (the activations are recomputed in the backward kernel).
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [input_node, recurrent_node, cell_node] = ops.parents;
        let grad_state = grads.consume::<B>(&ops.node);
        let (input_gates, recurrent_gates, cell) = ops.state;
        let (grad_gates, grad_cell) =
            B::lstm_cell_backward(input_gates, recurrent_gates, cell, grad_state);
        match (input_node, recurrent_node) {
            (Some(input), Some(recurrent)) => {
                grads.register::<B>(input.id, grad_gates.clone());
                grads.register::<B>(recurrent.id, grad_gates);
            }
            (Some(node), None) | (None, Some(node)) => grads.register::<B>(node.id, grad_gates),
            (None, None) => {}
        }
        if let Some(node) = cell_node {
            grads.register::<B>(node.id, grad_cell);
        }
    }
}

impl<B: Backend + LstmCellOps, C: CheckpointStrategy> LstmCellOps for Autodiff<B, C> {
    fn lstm_cell(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (input_gates, input_guard) = input_gates.into_parts();
        let (recurrent_gates, recurrent_guard) = recurrent_gates.into_parts();
        let (cell, cell_guard) = cell.into_parts();
        let prepared = LstmCellBackward
            .prepare::<C>([input_guard, recurrent_guard, cell_guard])
            .compute_bound()
            .stateful();
        match prepared {
            OpsKind::Tracked(prep) => {
                let state =
                    B::lstm_cell(input_gates.clone(), recurrent_gates.clone(), cell.clone());
                prep.finish((input_gates, recurrent_gates, cell), state)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::lstm_cell(input_gates, recurrent_gates, cell))
            }
        }
    }

    fn lstm_cell_backward(
        input_gates: FloatTensor<Self>,
        recurrent_gates: FloatTensor<Self>,
        cell: FloatTensor<Self>,
        grad_state: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        // Second-order gradients go through the differentiable composite.
        super::composite::lstm_cell_backward::<Self>(input_gates, recurrent_gates, cell, grad_state)
    }

    fn lstm_sequence(
        input_gates: FloatTensor<Self>,
        weight_hh: FloatTensor<Self>,
        hidden: FloatTensor<Self>,
        cell: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let (input_gates, input_guard) = input_gates.into_parts();
        let (weight_hh, weight_guard) = weight_hh.into_parts();
        let (hidden, hidden_guard) = hidden.into_parts();
        let (cell, cell_guard) = cell.into_parts();
        let prepared = LstmSequenceBackward
            .prepare::<C>([input_guard, weight_guard, hidden_guard, cell_guard])
            .compute_bound()
            .stateful();
        match prepared {
            OpsKind::Tracked(prep) => {
                let (hidden_states, recorded) =
                    sequence::forward::<B>(input_gates, weight_hh.clone(), hidden, cell);
                prep.finish((recorded, weight_hh), hidden_states)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::lstm_sequence(input_gates, weight_hh, hidden, cell))
            }
        }
    }
}

/// The backward step of a whole recurrence: parents input gates, `W_hh`, initial hidden and
/// cell states.
#[derive(Debug)]
struct LstmSequenceBackward;

impl<B: Backend + LstmCellOps> Backward<B, 4> for LstmSequenceBackward {
    type State = (sequence::Recorded<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (recorded, weight_hh) = ops.state;
        let gradients = sequence::backward::<B>(recorded, weight_hh, grad);
        for (node, gradient) in ops.parents.into_iter().zip(gradients) {
            if let Some(node) = node {
                grads.register::<B>(node.id, gradient);
            }
        }
    }
}
