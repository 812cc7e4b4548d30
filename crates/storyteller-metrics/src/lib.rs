//! Captioning metrics that give the numbers pycocoevalcap and NLTK give.
//!
//! BLEU-1..4 in two flavours ([`bleu::coco`], the captioning standard, and
//! [`bleu::nltk`] with its smoothing functions), unigram precision / recall /
//! F1, ROUGE-L and CIDEr-D, all corpus-level with multiple references. Each
//! reproduces its reference implementation's arithmetic, quirks included, to
//! 1e-9 on the same tokens; `docs/evaluation.md` defines every metric.
//!
//! ```
//! use storyteller_metrics::{Corpus, evaluate, bleu::BleuFlavour};
//!
//! let corpus = Corpus::from_captions([
//!     ("A man rides a horse.", vec!["a man riding a horse", "a person on a brown horse"]),
//!     ("Two dogs play in the snow.", vec!["two dogs playing in snow", "dogs run through the snow"]),
//! ])?;
//! let scores = evaluate(&corpus, BleuFlavour::Coco)?;
//! println!("BLEU-4 {:.4}  CIDEr-D {:.4}  ROUGE-L {:.4}", scores.bleu4, scores.cider_d, scores.rouge_l);
//! # Ok::<(), storyteller_metrics::MetricsError>(())
//! ```
//!
//! Tokens can be of any hashable type ([`Corpus::from_tokens`]): strings,
//! vocabulary ids, or the project tokenizer's output ([`Corpus::from_captions`]).
//! With the default `parallel` feature, images are scored on rayon's pool; the
//! numbers do not depend on the number of threads.

pub mod bleu;
mod cider;
mod corpus;
mod error;
mod index;
mod overlap;
mod parallel;
mod rouge;
mod scores;
mod tokenize;

pub use cider::{CiderConfig, CiderD, cider_d};
pub use corpus::{Corpus, CorpusBuilder, Sample};
pub use error::MetricsError;
pub use overlap::{ImageOverlap, Overlap, Prf, precision_recall_f1};
pub use rouge::{RougeL, rouge_l};
pub use scores::{Scores, evaluate};
pub use tokenize::tokenize;
