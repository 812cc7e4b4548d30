//! The whole pipeline on a tiny synthetic dataset: demo, resume, refusals, captioning.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use burn::tensor::Device;
use storyteller::demo::{DemoReport, run_demo};
use storyteller::model_dir::ModelFiles;
use storyteller::train::{TrainConfig, TrainOptions, TrainSummary, train};
use storyteller::{Captioner, EncoderRef, FeatureCache, Flickr30k, StorytellerError};
use storyteller_test_support::tiny::{tiny_demo, tiny_train};

/// Burn's random generator is per backend, not per run: tests that create modules (even to
/// load weights into them) at the same time would draw from one stream. Every test holds
/// this lock while it trains or loads.
fn training_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct Fixture {
    _dir: tempfile::TempDir,
    out: PathBuf,
    report: DemoReport,
}

/// One demo run shared by every test: 60 images of 48 px, 32 px crops, 3 epochs.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("demo");
        let config = tiny_demo(tiny_train());
        let _training = training_lock();
        let report = run_demo(&out, &config, &Device::flex()).unwrap();
        Fixture {
            _dir: dir,
            out,
            report,
        }
    })
}

/// The shared fixture first (it takes the lock itself), then the lock.
fn training_lock_after_fixture() -> MutexGuard<'static, ()> {
    fixture();
    training_lock()
}

fn train_into(
    out: &Path,
    config: &TrainConfig,
    resume: bool,
    stop_after: Option<usize>,
) -> Result<TrainSummary, StorytellerError> {
    train_on(out, config, resume, stop_after, Vec::new())
}

fn train_on(
    out: &Path,
    config: &TrainConfig,
    resume: bool,
    stop_after: Option<usize>,
    data_parallel: Vec<Device>,
) -> Result<TrainSummary, StorytellerError> {
    train_with(out, config, resume, false, stop_after, data_parallel)
}

fn train_with(
    out: &Path,
    config: &TrainConfig,
    resume: bool,
    overwrite: bool,
    stop_after: Option<usize>,
    data_parallel: Vec<Device>,
) -> Result<TrainSummary, StorytellerError> {
    let f = fixture();
    let device = Device::flex();
    let dataset = Flickr30k::open(f.out.join("dataset")).unwrap();
    let features = FeatureCache::open(f.out.join("features.safetensors")).unwrap();
    let hash = features.key().encoder.clone();
    train(
        config,
        TrainOptions {
            dataset: &dataset,
            features: &features,
            encoder: EncoderRef {
                weights: f.out.join("encoder.bpk"),
                hash,
            },
            out_dir: out,
            resume,
            overwrite,
            data_parallel,
            reduction: Default::default(),
            stop_after,
            progress: false,
        },
        &device,
    )
}

#[test]
fn demo_writes_a_complete_model_directory_and_learns() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let model = f.out.join("model");
    for file in [
        "config.json",
        "vocab.json",
        "decoder.bpk",
        "metrics.jsonl",
        "checkpoint/state.json",
    ] {
        assert!(model.join(file).exists(), "{file} missing");
    }
    assert!(f.out.join("evaluation.json").exists());
    let metrics = std::fs::read_to_string(model.join("metrics.jsonl")).unwrap();
    let losses: Vec<f64> = metrics
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["train_loss"]
                .as_f64()
                .unwrap()
        })
        .collect();
    assert_eq!(losses.len(), 3);
    assert!(
        losses[2] < losses[0],
        "training loss did not fall: {losses:?}"
    );
    assert_eq!(f.report.evaluation.scores.len(), 2);
    assert!(f.report.evaluation.images > 0);
    assert_eq!(f.report.samples.len(), 3.min(f.report.evaluation.images));
}

#[test]
fn resuming_ends_where_an_uninterrupted_run_ends() {
    let _training = training_lock_after_fixture();
    let dir = tempfile::tempdir().unwrap();
    let (interrupted, straight) = (dir.path().join("interrupted"), dir.path().join("straight"));
    let config = tiny_train();
    let first = train_into(&interrupted, &config, false, Some(1)).unwrap();
    assert_eq!(first.epochs, 1);
    let resumed = train_into(&interrupted, &config, true, None).unwrap();
    let uninterrupted = train_into(&straight, &config, false, None).unwrap();
    assert_eq!(resumed.epochs, 3);
    let losses = |s: &TrainSummary| s.history.iter().map(|m| m.train_loss).collect::<Vec<_>>();
    assert_eq!(losses(&resumed), losses(&uninterrupted));
    let device = Device::flex();
    let weights = |dir: &Path| {
        let files = ModelFiles::load(dir, &device).unwrap();
        let storyteller::Decoder::ShowTell(decoder) = files.decoder else {
            panic!("a show-tell model");
        };
        decoder
            .out
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(weights(&interrupted), weights(&straight));
}

#[test]
fn data_parallel_training_matches_one_device() {
    let _training = training_lock_after_fixture();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_train().with_epochs(2).with_dropout(0.0);
    let one = train_on(&dir.path().join("one"), &config, false, None, Vec::new()).unwrap();
    let two = train_on(
        &dir.path().join("two"),
        &config,
        false,
        None,
        vec![Device::flex()],
    )
    .unwrap();
    for (a, b) in one.history.iter().zip(&two.history) {
        assert!(
            (a.train_loss - b.train_loss).abs() < 1e-4,
            "{} vs {}",
            a.train_loss,
            b.train_loss
        );
        assert!(
            (a.val_loss - b.val_loss).abs() < 1e-4,
            "{} vs {}",
            a.val_loss,
            b.val_loss
        );
    }
}

#[test]
fn resuming_with_another_decoder_names_the_field() {
    let _training = training_lock_after_fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    train_into(&out, &tiny_train(), false, Some(1)).unwrap();
    let err = train_into(&out, &tiny_train().with_d_hidden(48), true, None).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("decoder.d_hidden") && message.contains("32") && message.contains("48"),
        "{message}"
    );
}

#[test]
fn resuming_with_features_of_another_encoder_is_refused() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    train_into(&out, &tiny_train(), false, Some(1)).unwrap();
    let state = out.join("checkpoint/state.json");
    let text = std::fs::read_to_string(&state).unwrap();
    let hash = FeatureCache::open(f.out.join("features.safetensors"))
        .unwrap()
        .key()
        .encoder
        .clone();
    std::fs::write(&state, text.replace(&hash, "sha256:other")).unwrap();
    let err = train_into(&out, &tiny_train(), true, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("encoder weights") && err.contains("sha256:other"),
        "{err}"
    );
}

#[test]
fn features_from_other_encoder_weights_are_refused() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dataset = Flickr30k::open(f.out.join("dataset")).unwrap();
    let features = FeatureCache::open(f.out.join("features.safetensors")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = train(
        &tiny_train(),
        TrainOptions {
            dataset: &dataset,
            features: &features,
            encoder: EncoderRef {
                weights: "other.pth".into(),
                hash: "not-the-same".into(),
            },
            out_dir: dir.path(),
            resume: false,
            overwrite: false,
            data_parallel: Vec::new(),
            reduction: Default::default(),
            stop_after: None,
            progress: false,
        },
        &Device::flex(),
    )
    .unwrap_err();
    assert!(
        matches!(err, StorytellerError::EncoderMismatch { .. }),
        "{err}"
    );
}

#[test]
fn a_diverging_loss_stops_training_with_a_clear_error() {
    let _training = training_lock_after_fixture();
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_train()
        .with_learning_rate(1e3)
        .with_optimizer(storyteller_decoder::train::OptimizerConfig::new().with_clip_norm(None));
    let err = train_into(&dir.path().join("model"), &config, false, None).unwrap_err();
    assert!(matches!(err, StorytellerError::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("diverged"), "{err}");
}

#[test]
fn captioner_batches_like_single_images_and_ranks_n_best() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let device = Device::flex();
    let captioner = Captioner::load(f.out.join("model"), &device).unwrap();
    let dataset = Flickr30k::open(f.out.join("dataset")).unwrap();
    let images: Vec<_> = dataset
        .images()
        .iter()
        .take(4)
        .map(|i| storyteller::decode_image(&i.path).unwrap())
        .collect();
    let batch = captioner.caption_batch(&images).unwrap();
    // The same words; scores equal up to matmul rounding, which differs with the batch size
    // (the whitening projection is a [batch, 2048] x [2048, k] product).
    for (image, batched) in images.iter().zip(&batch) {
        let single = captioner.caption(image).unwrap();
        assert_eq!(
            (&single.tokens, &single.text, single.finished),
            (&batched.tokens, &batched.text, batched.finished)
        );
        for (a, b) in [
            (single.log_prob, batched.log_prob),
            (single.score, batched.score),
        ] {
            assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "{a} vs {b}");
        }
    }
    let ranked = captioner.n_best(&images[0], 3).unwrap();
    assert_eq!(ranked.len(), 3);
    assert!(
        ranked
            .windows(2)
            .all(|w| w[0].score >= w[1].score || (w[0].finished && !w[1].finished))
    );
}

#[test]
fn a_bad_image_file_is_an_error_naming_it() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let captioner = Captioner::load(f.out.join("model"), &Device::flex()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-an-image.jpg");
    std::fs::write(&path, b"plain text").unwrap();
    let err = captioner.caption_path(&path).unwrap_err().to_string();
    assert!(err.contains("not-an-image.jpg"), "{err}");
}

#[test]
fn a_model_whose_encoder_changed_is_refused() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for file in ["config.json", "vocab.json", "decoder.bpk"] {
        std::fs::copy(f.out.join("model").join(file), model.join(file)).unwrap();
    }
    let mut config = storyteller::ModelConfig::load(&model).unwrap();
    config.encoder.weights = f.out.join("encoder.bpk");
    config.encoder.hash = "0000".into();
    config.save(&model).unwrap();
    let err = Captioner::load(&model, &Device::flex()).unwrap_err();
    assert!(
        matches!(err, StorytellerError::EncoderMismatch { .. }),
        "{err}"
    );
}

/// The learning rate that blows the tiny model up within its first epoch.
fn diverging() -> TrainConfig {
    tiny_train()
        .with_learning_rate(1e6)
        .with_optimizer(storyteller_decoder::train::OptimizerConfig::new().with_clip_norm(None))
}

#[test]
fn a_diverged_first_epoch_names_no_checkpoint() {
    let _training = training_lock_after_fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    let err = train_into(&out, &diverging(), false, None).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(
            err,
            StorytellerError::Diverged {
                last_good: 0,
                checkpoint: None,
                ..
            }
        ),
        "{message}"
    );
    assert!(message.contains("no checkpoint"), "{message}");
    assert!(!out.join("checkpoint").exists());
    assert!(!out.join("config.json").exists(), "nothing was published");
}

/// Re-training into a model directory: refused without `overwrite`; with it, a run that
/// diverges in its first epoch leaves the old model whole (the seed wrote the new
/// vocabulary and config first and left old weights under them).
#[test]
fn retraining_over_a_model_never_mixes_two_models() {
    let _training = training_lock_after_fixture();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model");
    // A vocabulary of words seen at least twice: the failed run's differs.
    train_into(
        &out,
        &tiny_train().with_epochs(1).with_min_count(2),
        false,
        None,
    )
    .unwrap();
    let files = ["config.json", "vocab.json", "decoder.bpk"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();

    let err = train_into(&out, &tiny_train(), false, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--overwrite") && err.contains("--resume"),
        "{err}"
    );

    let err = train_with(&out, &diverging(), false, true, None, Vec::new()).unwrap_err();
    assert!(matches!(err, StorytellerError::Diverged { .. }), "{err}");
    for (file, bytes) in files.iter().zip(&before) {
        assert_eq!(
            &std::fs::read(out.join(file)).unwrap(),
            bytes,
            "{file} changed"
        );
    }
    let model = ModelFiles::load(&out, &Device::flex()).unwrap();
    assert_eq!(model.vocab.len(), model.config.decoder.vocab_size());

    // What a run killed while writing leaves behind: temporaries, here and in a checkpoint.
    let stale = [
        out.join(".decoder.bpk.k1ll3d.tmp"),
        out.join("checkpoint/.state.json.k1ll3d.tmp"),
    ];
    for path in &stale {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"half a file").unwrap();
    }

    // A successful overwrite publishes the new model as a whole.
    let summary = train_with(
        &out,
        &tiny_train().with_epochs(1).with_seed(99),
        false,
        true,
        None,
        Vec::new(),
    )
    .unwrap();
    assert_eq!(summary.epochs, 1);
    let model = ModelFiles::load(&out, &Device::flex()).unwrap();
    assert_eq!(model.vocab.len(), model.config.decoder.vocab_size());
    assert_ne!(std::fs::read(out.join("decoder.bpk")).unwrap(), before[2]);
    for path in &stale {
        assert!(!path.exists(), "{} was left behind", path.display());
    }
}

#[test]
fn a_corrupted_decoder_file_is_refused_naming_it() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    std::fs::create_dir_all(&model).unwrap();
    for file in ["config.json", "vocab.json", "decoder.bpk"] {
        std::fs::copy(f.out.join("model").join(file), model.join(file)).unwrap();
    }
    let mut config = storyteller::ModelConfig::load(&model).unwrap();
    config.encoder.weights = f.out.join("encoder.bpk");
    config.save(&model).unwrap();
    Captioner::load(&model, &Device::flex()).unwrap();
    let mut bytes = std::fs::read(model.join("decoder.bpk")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(model.join("decoder.bpk"), bytes).unwrap();
    let err = Captioner::load(&model, &Device::flex())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("decoder.bpk") && err.contains("checksum"),
        "{err}"
    );
}

#[test]
fn a_model_with_nan_weights_is_an_error_not_an_empty_caption() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let device = Device::flex();
    let mut files = ModelFiles::load(&f.out.join("model"), &device).unwrap();
    let storyteller::Decoder::ShowTell(decoder) = &mut files.decoder else {
        panic!("a show-tell model");
    };
    let weight = decoder.out.weight.val();
    decoder.out.weight = burn::module::Param::from_tensor(weight.clone().mul_scalar(f32::NAN));
    let encoder = storyteller::Encoder::load(f.out.join("encoder.bpk"), &device).unwrap();
    let captioner = Captioner::from_parts(encoder, files, &device).unwrap();
    let image = image::RgbImage::from_pixel(40, 40, image::Rgb([200, 30, 30]));
    let err = captioner.caption(&image).unwrap_err();
    assert!(matches!(err, StorytellerError::NonFinite(_)), "{err}");
    assert!(err.to_string().contains("NaN"), "{err}");
}

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn features_follow_image_content_not_file_names() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dataset");
    copy_tree(&f.out.join("dataset"), &data);
    let cache_path = dir.path().join("features.safetensors");
    std::fs::copy(f.out.join("features.safetensors"), &cache_path).unwrap();

    // Regenerate one image under the same name.
    let dataset = Flickr30k::open(&data).unwrap();
    let changed = dataset.split(storyteller::Split::Train).images()[0].clone();
    let before = FeatureCache::open(&cache_path)
        .unwrap()
        .get(&changed.id)
        .unwrap();
    let mut image = image::open(&changed.path).unwrap().to_rgb8();
    image::imageops::invert(&mut image);
    image.save(&changed.path).unwrap();

    // Training on the stale cache is refused, naming the image.
    let features = FeatureCache::open(&cache_path).unwrap();
    let out = dir.path().join("model");
    let options = |features| TrainOptions {
        dataset: &dataset,
        features,
        encoder: EncoderRef {
            weights: f.out.join("encoder.bpk"),
            hash: FeatureCache::open(&cache_path)
                .unwrap()
                .key()
                .encoder
                .clone(),
        },
        out_dir: &out,
        resume: false,
        overwrite: true,
        data_parallel: Vec::new(),
        reduction: Default::default(),
        stop_after: None,
        progress: false,
    };
    let err = train(
        &tiny_train().with_epochs(1),
        options(&features),
        &Device::flex(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("1 of 60 images differ") && text.contains(&changed.id),
        "{text}"
    );

    // Extraction encodes exactly that image again and says so.
    let device = Device::flex();
    let encoder = storyteller::Encoder::load(f.out.join("encoder.bpk"), &device).unwrap();
    let preprocess: storyteller::PreprocessConfig =
        serde_json::from_str(&FeatureCache::open(&cache_path).unwrap().key().preprocess).unwrap();
    let images: Vec<(String, PathBuf)> = dataset
        .images()
        .iter()
        .map(|i| (i.id.clone(), i.path.clone()))
        .collect();
    let summary = storyteller::extract_features(
        &encoder,
        &images,
        &preprocess,
        &cache_path,
        &storyteller::ExtractOptions::default(),
        &device,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(summary.recomputed, std::slice::from_ref(&changed.id));
    assert_eq!((summary.extracted, summary.already_cached), (1, 59));
    let updated = FeatureCache::open(&cache_path).unwrap();
    let after = updated.get(&changed.id).unwrap();
    assert_ne!(after, before);
    let summary = train(
        &tiny_train().with_epochs(1),
        options(&updated),
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(summary.epochs, 1);
}

#[test]
fn spatial_features_in_f16_are_the_encoders_grid_and_pooled_training_refuses_them() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let encoder = storyteller::Encoder::load(f.out.join("encoder.bpk"), &device).unwrap();
    let pooled = FeatureCache::open(f.out.join("features.safetensors")).unwrap();
    let preprocess: storyteller::PreprocessConfig =
        serde_json::from_str(&pooled.key().preprocess).unwrap();
    let dataset = Flickr30k::open(f.out.join("dataset")).unwrap();
    let images: Vec<(String, PathBuf)> = dataset.images()[..5]
        .iter()
        .map(|i| (i.id.clone(), i.path.clone()))
        .collect();
    let path = dir.path().join("grid.safetensors");
    let options = storyteller::ExtractOptions {
        batch_size: 2,
        grid: Some(2),
        storage: storyteller::Storage::F16,
        ..Default::default()
    };
    let summary = storyteller::extract_features(
        &encoder,
        &images,
        &preprocess,
        &path,
        &options,
        &device,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(summary.extracted, 5);
    let grid = FeatureCache::open(&path).unwrap();
    assert_eq!((grid.regions(), grid.width(), grid.len()), (4, 2048, 5));
    assert_eq!(grid.key().storage, storyteller::Storage::F16);
    // Each row is the encoder's 2x2 grid of that image, to f16 precision.
    let (id, file) = &images[3];
    let pixels = storyteller_data::preprocess_file(file, &preprocess, &Default::default()).unwrap();
    let crop = preprocess.crop as usize;
    let input = burn::tensor::Tensor::<4>::from_data(
        burn::tensor::TensorData::new(pixels, [1, 3, crop, crop]),
        &device,
    );
    let expected: Vec<f32> = encoder
        .forward_grid(input, 2)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let stored = grid.get(id).unwrap();
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = stored
        .iter()
        .zip(&expected)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        worst <= scale / 1024.0,
        "f16 grid differs by {worst} (scale {scale})"
    );
    // The show-tell decoder trains on pooled vectors: a spatial cache is refused.
    let err = train(
        &tiny_train().with_epochs(1),
        TrainOptions {
            dataset: &dataset,
            features: &grid,
            encoder: EncoderRef {
                weights: f.out.join("encoder.bpk"),
                hash: grid.key().encoder.clone(),
            },
            out_dir: &dir.path().join("model"),
            resume: false,
            overwrite: false,
            data_parallel: Vec::new(),
            reduction: Default::default(),
            stop_after: None,
            progress: false,
        },
        &device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("spatial features"), "{err}");
}

/// The fixture's images with their encoder's 2x2 grid cached in `dir`.
fn grid_features(f: &Fixture, dir: &Path) -> (Flickr30k, Vec<(String, PathBuf)>, FeatureCache) {
    let device = Device::flex();
    let encoder = storyteller::Encoder::load(f.out.join("encoder.bpk"), &device).unwrap();
    let pooled = FeatureCache::open(f.out.join("features.safetensors")).unwrap();
    let preprocess: storyteller::PreprocessConfig =
        serde_json::from_str(&pooled.key().preprocess).unwrap();
    let dataset = Flickr30k::open(f.out.join("dataset")).unwrap();
    let images: Vec<(String, PathBuf)> = dataset
        .images()
        .iter()
        .map(|i| (i.id.clone(), i.path.clone()))
        .collect();
    let path = dir.join("grid.safetensors");
    let options = storyteller::ExtractOptions {
        grid: Some(2),
        ..Default::default()
    };
    storyteller::extract_features(
        &encoder,
        &images,
        &preprocess,
        &path,
        &options,
        &device,
        &mut |_, _| {},
    )
    .unwrap();
    let grid = FeatureCache::open(&path).unwrap();
    (dataset, images, grid)
}

/// Trains `config` on `grid` twice into `dir`: stopped after epoch 1 and resumed, and
/// straight through; asserts equal losses and returns both model directories.
fn resume_matches_straight(
    f: &Fixture,
    config: &TrainConfig,
    dataset: &Flickr30k,
    grid: &FeatureCache,
    dir: &Path,
) -> (PathBuf, PathBuf) {
    let device = Device::flex();
    let run = |out: &Path, resume: bool, stop_after: Option<usize>| {
        train(
            config,
            TrainOptions {
                dataset,
                features: grid,
                encoder: EncoderRef {
                    weights: f.out.join("encoder.bpk"),
                    hash: grid.key().encoder.clone(),
                },
                out_dir: out,
                resume,
                overwrite: false,
                data_parallel: Vec::new(),
                reduction: Default::default(),
                stop_after,
                progress: false,
            },
            &device,
        )
        .unwrap()
    };
    let (interrupted, straight) = (dir.join("interrupted"), dir.join("straight"));
    assert_eq!(run(&interrupted, false, Some(1)).epochs, 1);
    let resumed = run(&interrupted, true, None);
    let uninterrupted = run(&straight, false, None);
    let losses = |s: &TrainSummary| s.history.iter().map(|m| m.train_loss).collect::<Vec<_>>();
    assert_eq!(resumed.epochs, 3);
    assert_eq!(losses(&resumed), losses(&uninterrupted));
    assert!(losses(&resumed).iter().all(|l| l.is_finite()));
    (interrupted, straight)
}

#[test]
fn an_attention_model_resumes_exactly_and_shows_where_it_looked() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let (dataset, images, grid) = grid_features(f, dir.path());
    let config = tiny_train()
        .with_kind(storyteller::DecoderKind::ShowAttendTell)
        .with_d_attention(16);
    let (interrupted, straight) = resume_matches_straight(f, &config, &dataset, &grid, dir.path());
    let weights = |dir: &Path| {
        let files = ModelFiles::load(dir, &device).unwrap();
        assert_eq!(
            files.config.kind(),
            storyteller::DecoderKind::ShowAttendTell
        );
        let storyteller::Decoder::ShowAttendTell(decoder) = files.decoder else {
            panic!("an attention model");
        };
        decoder
            .fc
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(weights(&interrupted), weights(&straight));

    // Captions come with one map of grid² weights per word, each summing to 1.
    let captioner = Captioner::load(&straight, &device).unwrap();
    let image = storyteller::decode_image(&images[0].1).unwrap();
    let ranked = captioner
        .ranked_with_attention(std::slice::from_ref(&image), captioner.search())
        .unwrap();
    let best = &ranked[0][0];
    let maps = best.attention.as_ref().expect("attention maps");
    assert_eq!(maps.grid, 2);
    assert_eq!(maps.weights.len(), best.tokens.len());
    for row in &maps.weights {
        let sum: f32 = row.iter().sum();
        assert!(row.len() == 4 && (sum - 1.0).abs() < 1e-4, "{row:?}");
    }
    // The same captions as without maps.
    let plain = captioner
        .ranked(std::slice::from_ref(&image), captioner.search())
        .unwrap();
    assert_eq!(plain[0][0].tokens, best.tokens);
}

/// A Transformer (tied output, label smoothing, warm-up) trains on the grid, resumes
/// exactly, publishes a model directory of its kind, and captions through the captioner.
#[test]
fn a_transformer_model_resumes_exactly_with_warm_up_and_label_smoothing() {
    let _training = training_lock_after_fixture();
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let (dataset, images, grid) = grid_features(f, dir.path());
    let config = tiny_train()
        .with_kind(storyteller::DecoderKind::Transformer)
        .with_n_heads(4)
        .with_n_layers(2)
        .with_d_ff(Some(48))
        .with_tied_output(true)
        .with_label_smoothing(0.1)
        .with_warmup_steps(4);
    let (interrupted, straight) = resume_matches_straight(f, &config, &dataset, &grid, dir.path());
    let weights = |dir: &Path| {
        let files = ModelFiles::load(dir, &device).unwrap();
        assert_eq!(files.config.kind(), storyteller::DecoderKind::Transformer);
        let storyteller::Decoder::Transformer(decoder) = files.decoder else {
            panic!("a Transformer model");
        };
        assert!(decoder.output_weight.is_none(), "tied output");
        assert_eq!((decoder.grid(), decoder.layers.len()), (2, 2));
        decoder.layers[1]
            .linear2
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    assert_eq!(weights(&interrupted), weights(&straight));
    let captioner = Captioner::load(&straight, &device).unwrap();
    let image = storyteller::decode_image(&images[0].1).unwrap();
    let caption = captioner.caption(&image).unwrap();
    assert!(caption.attention.is_none());
    assert!(caption.score.is_finite(), "{caption:?}");
}
