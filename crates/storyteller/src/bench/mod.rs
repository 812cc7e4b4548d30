//! Decoders compared honestly (the `train` feature): [`run_bench`] trains every decoder
//! family on the same features with the same seed, split and budget, then scores and times
//! each on the test split with one function, [`measure_decoder`], which measures a decoder
//! of your own the same way.
//!
//! ```no_run
//! use storyteller::bench::{BenchDecoder, BenchOptions, run_bench};
//! use storyteller::train::TrainConfig;
//! use storyteller::{Device, FeatureCache, Flickr30k};
//!
//! let dataset = Flickr30k::open("shapes")?;
//! let features = FeatureCache::open("grid.safetensors")?; // storyteller extract --grid 2
//! let mut options = BenchOptions::new(TrainConfig::new().with_epochs(10), Device::default());
//! options.decoders = BenchDecoder::parse_list("show-tell,show-attend-tell")?;
//! let report = run_bench(&dataset, &features, &options, "bench".as_ref())?;
//! print!("{}", report.markdown());
//! # Ok::<(), storyteller::StorytellerError>(())
//! ```
//!
//! `docs/decoders.md` describes the decoders and every column.

mod decoders;
mod measure;
mod memory;
mod parameters;
mod plot;
mod pool;
mod report;
mod row;
mod run;

pub use decoders::BenchDecoder;
pub use measure::{MeasureOptions, TestSet, measure_decoder};
pub use parameters::ParameterCount;
pub use pool::{pool_regions, pooled_cache};
pub use report::{BenchReport, BenchSettings};
pub use row::{BenchRow, Quality, SearchKind, Speed};
pub use run::{BenchOptions, POOLED_FILE, ROW_FILE, run_bench};
/// The grounding report of [`Quality::grounding`] and the scenes of [`TestSet::scenes`].
pub use storyteller_data::{GroundingReport, Scene};
