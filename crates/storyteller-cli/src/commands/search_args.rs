//! `--beam K | --greedy` and friends, shared by `caption` and `evaluate`.

use clap::Args;
use storyteller::{BeamSearch, GreedySearch, Search};

/// Search options.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Beam search with this width (default: the model's, 3).
    #[arg(long, value_name = "K", conflicts_with = "greedy")]
    beam: Option<usize>,
    /// Greedy search instead of beam search.
    #[arg(long)]
    greedy: bool,
    /// Longest caption, in tokens.
    #[arg(long, default_value_t = 20)]
    max_len: usize,
    /// Length penalty α of the beam ranking, score = log p / len^α.
    #[arg(long, default_value_t = 0.0)]
    length_penalty: f32,
}

impl SearchArgs {
    /// `--max-len`.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The chosen search with `n_best` hypotheses (beam search only).
    pub fn search(&self, default: &BeamSearch, n_best: usize) -> Search {
        if self.greedy {
            return Search::Greedy(GreedySearch::new().with_max_len(self.max_len));
        }
        let width = self.beam.unwrap_or(default.width).max(n_best);
        Search::Beam(
            default
                .clone()
                .with_width(width)
                .with_max_len(self.max_len)
                .with_length_penalty(self.length_penalty)
                .with_n_best(n_best),
        )
    }
}
