//! Helpers shared by the workspace's integration tests and benches (unpublished).
//!
//! - [`compare`]: NaN-safe differences every parity check reports.
//! - [`fixtures`]: where the generated fixtures live, and the visible skip (or, with
//!   `STORYTELLER_REQUIRE_FIXTURES=1`, the failure) when they are missing.
//! - [`encoder_reference`]: PyTorch's ResNet-50 outputs for the encoder fixture.
//! - `decoder_reference` (feature `decoder`): PyTorch's reference decoder and its searches.
//! - `tiny` (feature `facade`): the tiny demo the end-to-end tests train.

pub mod compare;
#[cfg(feature = "decoder")]
pub mod decoder_reference;
pub mod encoder_reference;
pub mod fixtures;
#[cfg(feature = "facade")]
pub mod tiny;

pub use compare::{max_abs_difference, relative_error};
