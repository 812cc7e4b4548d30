//! The tiny demo the end-to-end tests train: 60 synthetic images of 48 px, 32 px crops, a
//! 16-wide embedding and a 32-wide LSTM.

use storyteller::demo::DemoConfig;
use storyteller::train::TrainConfig;

/// Training settings small enough for a test: 3 epochs of batch 16 at learning rate 5e-3.
pub fn tiny_train() -> TrainConfig {
    TrainConfig::new()
        .with_epochs(3)
        .with_patience(10)
        .with_batch_size(16)
        .with_learning_rate(5e-3)
        .with_min_count(1)
        .with_d_embed(16)
        .with_d_hidden(32)
        .with_dropout(0.1)
}

/// The demo on 60 images of 48 px (32 px crops, seed 3, random encoder weights), trained with
/// `train`.
pub fn tiny_demo(train: TrainConfig) -> DemoConfig {
    DemoConfig {
        images: 60,
        image_size: 48,
        crop: 32,
        seed: 3,
        weights: None,
        train,
        blind_baseline: false,
        progress: false,
    }
}
