//! The bench run: train every decoder on the same features, measure each, write the report.
//! Resumable at the granularity of a row, and within a row at the granularity of an epoch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use storyteller_data::{FeatureCache, Flickr30k, OutputLock, Split};
use storyteller_decoder::SearchDecoder;

use crate::bench::memory::PeakWindow;
use crate::bench::{
    BenchDecoder, BenchReport, BenchRow, BenchSettings, MeasureOptions, ParameterCount, TestSet,
    measure_decoder, pooled_cache,
};
use crate::error::{Result, StorytellerError, io_error};
use crate::model_dir::{EncoderRef, ModelFiles, ModelLayout, read_json, write_bytes};
use crate::train::checkpoint::load_state;
use crate::train::{EpochMetrics, TrainConfig, TrainOptions, TrainSummary, train};

/// A finished row's file in its model directory.
pub const ROW_FILE: &str = "bench-row.json";
/// The pooled cache derived from a spatial one, in the output directory.
pub const POOLED_FILE: &str = "pooled.safetensors";
/// Format tag of [`ROW_FILE`].
const ROW_FORMAT: &str = "storyteller-bench-row/1";
/// The weights path recorded in the models when [`BenchOptions::encoder`] is `None`.
const UNRECORDED_WEIGHTS: &str = "encoder-weights-not-recorded-by-bench";

/// What a bench run needs besides the data.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The decoders to train and measure, in table order.
    pub decoders: Vec<BenchDecoder>,
    /// The training settings every decoder shares: seed, split, epochs, batch, widths...
    /// (each decoder sets its own family and, for Show and Tell, conditioning).
    pub train: TrainConfig,
    /// Also stop a decoder's training after the epoch whose end crosses this much training
    /// time (the sum of its epochs' wall-clock seconds, validation included). `None`: epochs
    /// only. A budget makes the number of epochs depend on the machine.
    pub time_budget: Option<Duration>,
    /// Beam width, timed batch sizes, timed images and runs.
    pub measure: MeasureOptions,
    /// The encoder weights the features came from, recorded in every model so that it can
    /// caption image files. `None` records the features' encoder hash with a placeholder
    /// path: the models are measured on cached features but cannot caption image files.
    pub encoder: Option<EncoderRef>,
    /// The device everything runs on.
    pub device: Device,
    /// Show training progress and what the bench does, on stderr.
    pub progress: bool,
}

impl BenchOptions {
    /// Every decoder, trained with `train`, measured with the default [`MeasureOptions`] on
    /// `device`, without a time budget or progress.
    pub fn new(train: TrainConfig, device: Device) -> Self {
        Self {
            decoders: BenchDecoder::ALL.to_vec(),
            train,
            time_budget: None,
            measure: MeasureOptions::default(),
            encoder: None,
            device,
            progress: false,
        }
    }
}

/// Trains every decoder of `options` into `out_dir/models/<name>` with the same seed,
/// split and budget, measures each with [`measure_decoder`] on the test split, and writes
/// `out_dir/bench.json`, `bench.md` and `bench.png`.
///
/// Features: a spatial cache (`extract --grid G`) feeds the grid decoders as it is and
/// Show and Tell through the mean of each image's regions (written once to
/// `out_dir/pooled.safetensors`); a pooled cache feeds Show and Tell and the Transformer,
/// and refuses Show, Attend and Tell.
///
/// Resumable: a decoder whose `models/<name>/bench-row.json` exists is neither retrained nor
/// measured again (its row is marked `reused`), unless it was measured with other settings,
/// which is an error naming the first that differs; an interrupted training resumes from
/// its checkpoint.
///
/// # Errors
/// No decoder, features a decoder cannot read, a row measured with other settings, or any
/// training, measuring or writing failure.
pub fn run_bench(
    dataset: &Flickr30k,
    features: &FeatureCache,
    options: &BenchOptions,
    out_dir: &Path,
) -> Result<BenchReport> {
    let grid = check_inputs(features, options)?;
    std::fs::create_dir_all(out_dir)
        .map_err(io_error(out_dir, "cannot create the bench directory"))?;
    let _lock = OutputLock::acquire(out_dir, &out_dir.join(".bench.lock"), "storyteller bench")?;
    let pooled = if grid > 1 && options.decoders.iter().any(|d| d.reads_pooled()) {
        note(options, "pooling the grid into one vector per image");
        Some(pooled_cache(features, &out_dir.join(POOLED_FILE))?)
    } else {
        None
    };
    let encoder = options.encoder.clone().unwrap_or_else(|| EncoderRef {
        weights: UNRECORDED_WEIGHTS.into(),
        hash: features.key().encoder.clone(),
    });
    let backend = format!("{:?}", options.device);
    let dataset_root = std::fs::canonicalize(dataset.root()).unwrap_or(dataset.root().to_owned());
    let mut test_sets: [Option<TestSet>; 2] = [None, None];
    let mut test_set = |pooled_input: bool, cache: &FeatureCache| -> Result<TestSet> {
        let slot = &mut test_sets[usize::from(pooled_input)];
        if slot.is_none() {
            *slot = Some(TestSet::from_cache(
                dataset,
                Split::Test,
                cache,
                &options.device,
            )?);
        }
        Ok(slot.clone().expect("filled above"))
    };
    let test_images = test_set(false, features)?.len();
    let mut rows = Vec::with_capacity(options.decoders.len());
    for &decoder in &options.decoders {
        let pooled_input = decoder.reads_pooled() && pooled.is_some();
        let cache = match (&pooled, decoder.reads_pooled()) {
            (Some(pooled), true) => pooled,
            _ => features,
        };
        let dir = out_dir.join("models").join(decoder.name());
        let config = decoder.train_config(&options.train);
        let settings = RowSettings {
            decoder,
            train: config.clone(),
            time_budget_seconds: options.time_budget.map(|b| b.as_secs_f64()),
            features: FeaturesRecord::of(features, cache.regions()),
            dataset: dataset_root.clone(),
            test_images,
            measure: options.measure.clone(),
            backend: backend.clone(),
        };
        if let Some(mut row) = reusable_row(&dir, &settings)? {
            note(
                options,
                &format!("{decoder}: reused {}", dir.join(ROW_FILE).display()),
            );
            row.reused = true;
            rows.push(row);
            continue;
        }
        note(
            options,
            &format!("{decoder}: training into {}", dir.display()),
        );
        let trained = train_decoder(&config, dataset, cache, &encoder, &dir, options)?;
        note(options, &format!("{decoder}: measuring"));
        let files = ModelFiles::load(&dir, &options.device)?;
        let test = test_set(pooled_input, cache)?;
        // Searched as the captioner searches it (Show and Tell through its gate table).
        let searched = SearchDecoder::new(files.decoder.clone());
        let mut row = measure_decoder(
            decoder.name(),
            &searched,
            &files.vocab,
            &test,
            &options.measure,
        )?;
        row.kind = decoder.kind().name().to_owned();
        row.parameters = Some(ParameterCount::of(&files.decoder));
        row.epochs = Some(trained.summary.epochs);
        row.train_captions_per_second = train_rate(&trained.summary.history);
        row.train_peak_memory_bytes = trained.peak_memory_bytes;
        write_row(&dir, &settings, &row)?;
        rows.push(row);
    }
    let report = BenchReport {
        settings: BenchSettings {
            dataset: dataset.root().to_owned(),
            features: features.path().to_owned(),
            grid,
            d_feature: features.width(),
            pooled: pooled.as_ref().map(|p| p.path().to_owned()),
            test_images,
            train: options.train.clone(),
            time_budget_seconds: options.time_budget.map(|b| b.as_secs_f64()),
            measure: options.measure.clone(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            backend,
        },
        rows,
    };
    report.write(out_dir)?;
    Ok(report)
}

/// Checks what can be checked before any work; returns the side of the cache's grid.
fn check_inputs(features: &FeatureCache, options: &BenchOptions) -> Result<usize> {
    if options.decoders.is_empty() {
        return Err(StorytellerError::Bench("no decoder to bench".into()));
    }
    if options.time_budget.is_some_and(|b| b.is_zero()) {
        return Err(StorytellerError::Bench(
            "the time budget must be positive".into(),
        ));
    }
    options.measure.validate()?;
    let regions = features.regions();
    let grid = (1..=regions).find(|g| g * g >= regions).unwrap_or(1);
    if grid * grid != regions {
        return Err(StorytellerError::Bench(format!(
            "{} holds {regions} regions per image, not a square grid",
            features.path().display()
        )));
    }
    if grid == 1 && options.decoders.contains(&BenchDecoder::ShowAttendTell) {
        return Err(StorytellerError::Bench(format!(
            "{} holds pooled features (one vector per image), but show-attend-tell attends over \
             a grid of regions: extract a spatial cache with `storyteller extract --grid G` \
             (G 2 or more) and bench on it (Show and Tell then reads the mean of the regions), \
             or leave show-attend-tell out of --decoders",
            features.path().display()
        )));
    }
    Ok(grid)
}

fn note(options: &BenchOptions, message: &str) {
    if options.progress {
        eprintln!("bench: {message}");
    }
}

/// A decoder's training as the bench saw it.
struct Trained {
    summary: TrainSummary,
    /// Peak resident memory while this process trained; `None` when it trained no epoch.
    peak_memory_bytes: Option<u64>,
}

/// Trains (or resumes) one decoder into `dir`. Without a time budget this is one call of
/// [`train`]; with one, [`train`] is called an epoch at a time (`stop_after`), each call
/// resuming from the checkpoint, until the epochs run out, early stopping ends the run or
/// the epochs' seconds add up to the budget.
fn train_decoder(
    config: &TrainConfig,
    dataset: &Flickr30k,
    features: &FeatureCache,
    encoder: &EncoderRef,
    dir: &Path,
    options: &BenchOptions,
) -> Result<Trained> {
    let layout = ModelLayout::new(dir);
    let state = load_state(&layout)?;
    let started_at = state.as_ref().map_or(0, |s| s.epoch);
    let mut done = started_at;
    let mut spent = state.map_or(0.0, |s| seconds(&s.history));
    let budget = options.time_budget.map(|b| b.as_secs_f64());
    let window = PeakWindow::start();
    let summary = loop {
        let stop_after = match budget {
            None => None,
            Some(budget) if spent >= budget => Some(done),
            Some(_) => Some(done + 1),
        };
        let summary = train(
            config,
            TrainOptions {
                dataset,
                features,
                encoder: encoder.clone(),
                out_dir: dir,
                resume: layout.checkpoint_state().exists(),
                overwrite: false,
                data_parallel: Vec::new(),
                reduction: Default::default(),
                stop_after,
                progress: options.progress,
            },
            &options.device,
        )?;
        let progressed = summary.epochs > done;
        done = summary.epochs;
        spent = seconds(&summary.history);
        if budget.is_none_or(|budget| !progressed || spent >= budget) {
            break summary;
        }
    };
    for warning in &summary.warnings {
        note(options, &format!("warning: {warning}"));
    }
    Ok(Trained {
        peak_memory_bytes: window.peak_bytes().filter(|_| done > started_at),
        summary,
    })
}

fn seconds(history: &[EpochMetrics]) -> f64 {
    history.iter().map(|m| m.seconds).sum()
}

/// Captions per second of training time over all epochs: every epoch trains the same
/// captions, so this is the harmonic mean of the epochs' rates.
fn train_rate(history: &[EpochMetrics]) -> Option<f64> {
    let inverse: f64 = history.iter().map(|m| 1.0 / m.captions_per_second).sum();
    (!history.is_empty() && inverse.is_finite() && inverse > 0.0)
        .then(|| history.len() as f64 / inverse)
}

/// The features a row was measured on, by content (not by file name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FeaturesRecord {
    /// The encoder weights' hash.
    encoder: String,
    /// The preprocessing.
    preprocess: serde_json::Value,
    /// Feature width.
    width: usize,
    /// Regions per image of the cache given to the bench.
    regions: usize,
    /// Regions per image the decoder read (1 for Show and Tell on a pooled grid).
    read_regions: usize,
}

impl FeaturesRecord {
    fn of(given: &FeatureCache, read_regions: usize) -> Self {
        let key = given.key();
        Self {
            encoder: key.encoder.clone(),
            preprocess: serde_json::from_str(&key.preprocess)
                .unwrap_or_else(|_| key.preprocess.clone().into()),
            width: key.width,
            regions: key.regions,
            read_regions,
        }
    }
}

/// Everything a row's numbers depend on: a later run reuses the row only when these are
/// the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RowSettings {
    decoder: BenchDecoder,
    /// The decoder's own training settings.
    train: TrainConfig,
    time_budget_seconds: Option<f64>,
    features: FeaturesRecord,
    /// The dataset directory, canonical.
    dataset: PathBuf,
    test_images: usize,
    measure: MeasureOptions,
    /// The device, as Burn names it (speeds depend on it).
    backend: String,
}

/// `bench-row.json`.
#[derive(Debug, Serialize, Deserialize)]
struct RowRecord {
    format: String,
    settings: RowSettings,
    row: BenchRow,
}

/// The finished row in `dir`, if any and measured with `settings`.
///
/// # Errors
/// A row measured with other settings (naming the first that differs and the way out), or
/// an unreadable file.
pub(crate) fn reusable_row(dir: &Path, settings: &RowSettings) -> Result<Option<BenchRow>> {
    let path = dir.join(ROW_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let record: RowRecord = read_json(&path, "bench row")?;
    if record.format != ROW_FORMAT {
        return Err(StorytellerError::Bench(format!(
            "{}: format {:?}, this version reads {ROW_FORMAT:?}",
            path.display(),
            record.format
        )));
    }
    let then = serde_json::to_value(&record.settings).expect("settings serialise");
    let now = serde_json::to_value(settings).expect("settings serialise");
    if let Some((field, then, now)) = first_difference(&then, &now, String::new()) {
        return Err(StorytellerError::Bench(format!(
            "{} was measured with other settings ({field}: {then} then, {now} now): bench into \
             another --out directory, or delete {} to train and measure it again",
            path.display(),
            dir.display()
        )));
    }
    Ok(Some(record.row))
}

/// Publishes a finished row (atomically: a row file is whole or absent).
fn write_row(dir: &Path, settings: &RowSettings, row: &BenchRow) -> Result<()> {
    let record = RowRecord {
        format: ROW_FORMAT.to_owned(),
        settings: settings.clone(),
        row: row.clone(),
    };
    let json = serde_json::to_string_pretty(&record).expect("a bench row serialises");
    write_bytes(&dir.join(ROW_FILE), json.as_bytes())
}

/// The first leaf where two JSON values differ, as (dotted path, then, now).
fn first_difference(
    then: &serde_json::Value,
    now: &serde_json::Value,
    path: String,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (then, now) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            keys.into_iter().find_map(|key| {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                first_difference(
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    field,
                )
            })
        }
        _ if then == now => None,
        _ => Some((path, then.to_string(), now.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::sample_row;

    fn settings() -> RowSettings {
        RowSettings {
            decoder: BenchDecoder::ShowTell,
            train: BenchDecoder::ShowTell.train_config(&TrainConfig::new().with_epochs(2)),
            time_budget_seconds: None,
            features: FeaturesRecord {
                encoder: "sha256:enc".into(),
                preprocess: serde_json::json!({"crop": 64}),
                width: 2048,
                regions: 4,
                read_regions: 1,
            },
            dataset: "/data/shapes".into(),
            test_images: 6,
            measure: MeasureOptions::default(),
            backend: "Flex".into(),
        }
    }

    #[test]
    fn a_finished_row_is_reused_only_with_the_same_settings() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(reusable_row(dir.path(), &settings()).unwrap(), None);
        let row = sample_row("show-tell", 50.0);
        write_row(dir.path(), &settings(), &row).unwrap();
        assert_eq!(
            reusable_row(dir.path(), &settings()).unwrap(),
            Some(row.clone())
        );

        let mut other = settings();
        other.train.d_hidden = 64;
        let err = reusable_row(dir.path(), &other).unwrap_err().to_string();
        assert!(err.contains("train.d_hidden: 512 then, 64 now"), "{err}");
        assert!(err.contains("another --out directory"), "{err}");
        let mut other = settings();
        other.measure.batch_sizes = vec![1, 64];
        let err = reusable_row(dir.path(), &other).unwrap_err().to_string();
        assert!(
            err.contains("measure.batch_sizes: [1,128] then, [1,64] now"),
            "{err}"
        );

        std::fs::write(dir.path().join(ROW_FILE), "{\"format\": 1").unwrap();
        assert!(reusable_row(dir.path(), &settings()).is_err());
    }

    #[test]
    fn the_training_rate_weighs_every_epoch_by_its_time() {
        let epoch = |captions_per_second| EpochMetrics {
            epoch: 1,
            learning_rate: 1e-3,
            train_loss: 1.0,
            val_loss: 1.0,
            val_bleu4: 0.1,
            val_cider_d: 0.1,
            val_distinct: 0.5,
            seconds: 1.0,
            captions_per_second,
        };
        // 100 captions at 100/s and 100 at 300/s: 200 captions in 4/3 s.
        let rate = train_rate(&[epoch(100.0), epoch(300.0)]).unwrap();
        assert!((rate - 150.0).abs() < 1e-9, "{rate}");
        assert_eq!(train_rate(&[]), None);
        assert_eq!(seconds(&[epoch(1.0), epoch(2.0)]), 2.0);
    }

    #[test]
    fn show_attend_tell_on_pooled_features_is_refused_naming_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pooled.safetensors");
        let key = storyteller_data::CacheKey::new(
            "sha256:enc",
            &storyteller_data::PreprocessConfig::default(),
            3,
        );
        let mut writer = storyteller_data::FeatureCacheWriter::create(&path, key).unwrap();
        writer.push("a.jpg", &[1.0, 2.0, 3.0]).unwrap();
        writer.finish().unwrap();
        let cache = FeatureCache::open(&path).unwrap();
        let mut options = BenchOptions::new(TrainConfig::new(), Device::flex());
        let err = check_inputs(&cache, &options).unwrap_err().to_string();
        assert!(err.contains("extract --grid G"), "{err}");
        options.decoders = vec![BenchDecoder::ShowTell, BenchDecoder::Transformer];
        assert_eq!(check_inputs(&cache, &options).unwrap(), 1);
        options.decoders.clear();
        assert!(check_inputs(&cache, &options).is_err());
    }
}
