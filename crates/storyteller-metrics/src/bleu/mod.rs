//! BLEU (Papineni et al., 2002) in the two flavours captioning papers report.
//!
//! - [`coco`]: pycocoevalcap's `Bleu(4)` scorer, the captioning standard.
//! - [`nltk`]: NLTK's `corpus_bleu` and `sentence_bleu` with its smoothing functions.
//!
//! Both are corpus-level and multi-reference with clipped n-gram counts and a
//! brevity penalty against the closest reference length; they differ in the
//! constants that keep zero counts finite and in smoothing.

pub mod coco;
pub mod nltk;

pub use coco::{CocoBleu, coco_bleu};
pub use nltk::{NltkBleu, Smoothing, corpus_bleu, sentence_bleu};

/// Which BLEU implementation a report follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BleuFlavour {
    /// pycocoevalcap's `Bleu` scorer (the default).
    #[default]
    Coco,
    /// NLTK's `corpus_bleu` with cumulative uniform weights and the given smoothing.
    Nltk(Smoothing),
}
