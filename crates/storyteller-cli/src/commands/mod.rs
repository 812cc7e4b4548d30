//! One module per subcommand.

pub mod bench;
pub mod caption;
pub mod dataset;
pub mod demo;
pub mod evaluate;
pub mod extract;
pub mod features;
pub mod import;
pub mod score;
pub mod search_args;
pub mod synth;
pub mod train;
pub mod training_args;
pub mod weights;
