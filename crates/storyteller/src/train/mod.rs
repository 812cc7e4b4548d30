//! Training orchestration (the `train` feature).

pub mod checkpoint;
mod config;
mod examples;
mod plot;
mod trainer;
mod whitening;

pub use checkpoint::{EpochMetrics, TrainState};
pub use config::{Selection, TrainConfig};
pub use examples::{CaptionExamples, epoch_order};
pub use storyteller_decoder::train::GradientReduction;
pub use trainer::{TrainOptions, TrainSummary, train};
