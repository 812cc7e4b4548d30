//! Training orchestration (the `train` feature).

pub(crate) mod checkpoint;
mod config;
mod examples;
mod plot;
mod trainer;
mod validation;
mod whitening;

pub use checkpoint::{EpochMetrics, TrainState};
pub use config::{Selection, TrainConfig};
pub use storyteller_decoder::train::GradientReduction;
pub use trainer::{TrainOptions, TrainSummary, train};
