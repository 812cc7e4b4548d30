//! Greedy and beam search for caption decoders, batched across images and beams on a Burn
//! device.
//!
//! A model implements [`StepDecoder`] (initial state from image features, one token step to
//! log-probabilities, reordering of state rows); [`GreedySearch`] and [`BeamSearch`] (or the
//! run-time choice [`Search`]) turn it into ranked [`Hypothesis`] lists, one per image.
//!
//! ```
//! use burn::prelude::*;
//! use storyteller_search::{BeamSearch, GreedySearch, StepDecoder};
//!
//! /// A decoder whose next token depends only on the previous one: a table of log-probs.
//! struct Bigram {
//!     /// `[vocab_size, vocab_size]`: row = previous token, column = next token.
//!     log_probs: Tensor<2>,
//! }
//!
//! impl StepDecoder for Bigram {
//!     type State = ();
//!     fn vocab_size(&self) -> usize {
//!         self.log_probs.dims()[1]
//!     }
//!     fn init_state(&self, _features: Tensor<2>) {}
//!     fn step(&self, tokens: Tensor<1, Int>, _state: ()) -> (Tensor<2>, ()) {
//!         (self.log_probs.clone().select(0, tokens), ())
//!     }
//!     fn reorder_state(&self, _state: (), _rows: Tensor<1, Int>) {}
//! }
//!
//! let device = Device::default();
//! // Tokens: 0 <pad>, 1 <start>, 2 <end>, 3 <unk>, 4 "a", 5 "dog".
//! let p = |row: [f32; 6]| row.map(f32::ln);
//! let table = [
//!     p([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
//!     p([0.0, 0.0, 0.0, 0.0, 0.6, 0.4]), // <start> -> "a" 0.6 | "dog" 0.4
//!     p([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
//!     p([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]),
//!     p([0.0, 0.0, 0.3, 0.0, 0.2, 0.5]), // "a" -> <end> 0.3 | "a" 0.2 | "dog" 0.5
//!     p([0.0, 0.0, 0.9, 0.0, 0.05, 0.05]), // "dog" -> <end> 0.9
//! ];
//! let decoder = Bigram {
//!     log_probs: Tensor::from_data(table, &device),
//! };
//! let features = Tensor::zeros([2, 8], &device); // two images (ignored by this toy model)
//!
//! // Greedy: "a" (0.6), "dog" (0.5), <end> (0.9).
//! let greedy = GreedySearch::new().with_max_len(10).search(&decoder, features.clone())?;
//! assert_eq!(greedy[0][0].tokens, vec![4, 5]);
//!
//! // Beam search finds "dog" <end>: 0.4 * 0.9 = 0.36 > 0.6 * 0.5 * 0.9 = 0.27.
//! let beam = BeamSearch::new().with_width(2).with_n_best(2).search(&decoder, features)?;
//! assert_eq!(beam[1][0].tokens, vec![5]);
//! assert!((beam[1][0].log_prob - 0.36f32.ln()).abs() < 1e-5);
//! assert_eq!(beam[1][1].tokens, vec![4, 5]);
//! # Ok::<(), storyteller_search::SearchError>(())
//! ```
//!
//! # Batching and transfers
//!
//! Every step runs the decoder once on all rows of all unfinished images (`images * width`
//! rows for beam search), and images that are done leave the batch. The best `2 * width`
//! continuations of every image are chosen on the device in O(vocab) per row (a chunked argmax
//! selection with lowest-index ties, not a sort), so only `2 * width` values and indices per
//! image are read back per step; the host keeps the token histories and uploads the surviving
//! rows, tokens and scores (`images * width` numbers each).
//!
//! # Length penalty
//!
//! `score = log_prob / len^alpha`, where `log_prob` is the natural-log probability of the
//! generated tokens and `len` counts them including `<end>` (not `<start>`); see
//! [`length_penalized`] and [`BeamSearch`]'s ranking rules.

mod beam;
pub mod best_token;
mod decoder;
mod error;
mod greedy;
mod hypothesis;
mod scores;
mod search;
mod topk;

pub use beam::BeamSearch;
pub use decoder::StepDecoder;
pub use error::SearchError;
pub use greedy::GreedySearch;
pub use hypothesis::{Hypothesis, length_penalized};
pub use scores::NextTokenScores;
pub use search::Search;
