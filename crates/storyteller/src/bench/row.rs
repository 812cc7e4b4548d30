//! One decoder's line of the bench: quality, grounding, speed, memory.

use serde::{Deserialize, Serialize};
use storyteller_data::GroundingReport;
use storyteller_metrics::Scores;

use crate::bench::ParameterCount;

/// Which search a figure is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchKind {
    /// Greedy search.
    Greedy,
    /// Beam search (of the bench's width).
    Beam,
}

/// The quality of one search's captions of the test images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Quality {
    /// BLEU-1..4 (pycocoevalcap's flavour), ROUGE-L, CIDEr-D and the unigram scores.
    pub scores: Scores,
    /// Grounding against the scene truth, with chance levels (datasets with `scenes.json`
    /// only).
    pub grounding: Option<GroundingReport>,
}

/// Decoding speed of one search at one batch size: captions per second over the timed
/// runs (the first run, a warm-up, is not counted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Speed {
    /// The search.
    pub search: SearchKind,
    /// Images per search call.
    pub batch_size: usize,
    /// The median run's captions per second.
    pub captions_per_second: f64,
    /// The slowest run's.
    pub min: f64,
    /// The fastest run's.
    pub max: f64,
    /// Timed runs.
    pub runs: usize,
}

impl Speed {
    /// Half the range of the runs relative to the median, `(max − min) / 2 / median`: the
    /// `±` of the tables.
    pub fn spread(&self) -> f64 {
        (self.max - self.min) / 2.0 / self.captions_per_second.max(f64::MIN_POSITIVE)
    }
}

/// Everything the bench measured of one decoder.
///
/// [`measure_decoder`](crate::bench::measure_decoder) fills the measurements (quality,
/// grounding, decoding speed, decoding memory) and leaves what it cannot know (`kind`
/// `"custom"`, the training figures `None`) for the caller to set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    /// The decoder's name.
    pub name: String,
    /// Its family (`show-tell`, `show-attend-tell`, `transformer`; `custom` for a decoder
    /// of your own).
    pub kind: String,
    /// Its weights, when known.
    pub parameters: Option<ParameterCount>,
    /// Epochs trained.
    pub epochs: Option<usize>,
    /// Captions trained per second of training (teacher-forced batches only: validation,
    /// checkpoints and the plot are not counted), over all epochs.
    pub train_captions_per_second: Option<f64>,
    /// Peak resident memory of the process while it trained (see
    /// [`peak_memory_bytes`](Self::peak_memory_bytes)); `None` when no epoch was trained by
    /// the run that measured the row.
    pub train_peak_memory_bytes: Option<u64>,
    /// Test images scored.
    pub images: usize,
    /// Greedy search's captions.
    pub greedy: Quality,
    /// Beam search's captions.
    pub beam: Quality,
    /// The beam width.
    pub beam_width: usize,
    /// Decoding speed per search and batch size.
    pub speeds: Vec<Speed>,
    /// Peak resident memory of the whole process while the decoder was measured (Linux;
    /// `None` elsewhere): what the process already held plus what decoding added, host
    /// memory only (`docs/decoders.md`).
    pub peak_memory_bytes: Option<u64>,
    /// Whether this run took the row from an earlier run's `bench-row.json` instead of
    /// training and measuring.
    #[serde(default)]
    pub reused: bool,
}

impl BenchRow {
    /// The speed of `search` at `batch_size`, if measured.
    pub fn speed(&self, search: SearchKind, batch_size: usize) -> Option<&Speed> {
        self.speeds
            .iter()
            .find(|s| s.search == search && s.batch_size == batch_size)
    }

    /// The quality of `search`'s captions.
    pub fn quality(&self, search: SearchKind) -> &Quality {
        match search {
            SearchKind::Greedy => &self.greedy,
            SearchKind::Beam => &self.beam,
        }
    }
}
