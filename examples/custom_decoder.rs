//! Plug your own model into greedy and beam search: a bigram table as a `StepDecoder`.
//!
//! cargo run --release -p storyteller-examples --example custom_decoder

use burn::tensor::{Device, Int, Tensor, TensorData};
use storyteller::{BeamSearch, GreedySearch, StepDecoder};

/// Next-token log-probabilities that depend only on the previous token.
struct Bigram {
    /// `[vocab, vocab]`: row = previous token, column = next token.
    log_probs: Tensor<2>,
}

impl StepDecoder for Bigram {
    type State = ();

    fn vocab_size(&self) -> usize {
        self.log_probs.dims()[1]
    }

    fn init_state(&self, _features: Tensor<2>) {}

    fn step(&self, tokens: Tensor<1, Int>, _state: ()) -> (Tensor<2>, ()) {
        (self.log_probs.clone().select(0, tokens), ())
    }

    fn reorder_state(&self, _state: (), _rows: Tensor<1, Int>) {}
}

fn main() -> anyhow::Result<()> {
    let device = Device::default();
    let words = ["<pad>", "<start>", "<end>", "<unk>", "a", "dog", "runs"];
    let v = words.len();
    // Probabilities per previous token; every row sums to 1.
    let mut p = vec![1e-9f32; v * v];
    let mut set = |from: usize, to: usize, prob: f32| p[from * v + to] = prob;
    set(1, 4, 0.55); // <start> -> a
    set(1, 5, 0.45); // <start> -> dog
    set(4, 5, 0.5); // a -> dog
    set(4, 2, 0.5); // a -> <end>
    set(5, 6, 0.3); // dog -> runs
    set(5, 2, 0.7); // dog -> <end>
    set(6, 2, 1.0); // runs -> <end>
    for from in [0, 2, 3] {
        set(from, 2, 1.0);
    }
    let log_probs: Vec<f32> = p.iter().map(|x| x.ln()).collect();
    let decoder = Bigram {
        log_probs: Tensor::from_data(TensorData::new(log_probs, [v, v]), &device),
    };
    let features = Tensor::<2>::zeros([1, 4], &device);

    let show = |tokens: &[u32]| {
        tokens
            .iter()
            .map(|&t| words[t as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let greedy = GreedySearch::new()
        .with_max_len(5)
        .search(&decoder, features.clone())?;
    println!(
        "greedy: {:<12} log p = {:.3}",
        show(&greedy[0][0].tokens),
        greedy[0][0].log_prob
    );
    let beam = BeamSearch::new()
        .with_width(3)
        .with_n_best(3)
        .search(&decoder, features)?;
    for h in &beam[0] {
        println!("beam:   {:<12} log p = {:.3}", show(&h.tokens), h.log_prob);
    }
    Ok(())
}
