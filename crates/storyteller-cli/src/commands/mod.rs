//! One module per subcommand.

pub mod dataset;
pub mod score;
pub mod synth;
