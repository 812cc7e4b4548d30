//! `storyteller demo`: the whole pipeline on a synthetic dataset, end to end.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use serde::Serialize;
use storyteller_data::{
    Flickr30k, Layout, PreprocessConfig, Split, SplitConfig, SynthConfig, generate,
};
use storyteller_encoder::{Encoder, ResNetConfig};
use storyteller_search::{BeamSearch, GreedySearch, Search};

use crate::error::{Result, io_error};
use crate::evaluate::{Evaluation, evaluate};
use crate::extract::{ExtractOptions, ExtractSummary, extract_features};
use crate::model_dir::{EncoderRef, reference_path};
use crate::train::{TrainConfig, TrainOptions, TrainSummary, train};
use crate::{Caption, Captioner};

/// Settings of the demo.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Synthetic images to generate.
    pub images: usize,
    /// Their side in pixels.
    pub image_size: u32,
    /// The encoder's input crop (the resize is `crop · 256/224`).
    pub crop: u32,
    /// Seed of the dataset, the random encoder and training.
    pub seed: u64,
    /// Encoder weights (`.pth`, `.safetensors`, `.bpk`); `None` uses a seeded random ResNet-50.
    pub weights: Option<PathBuf>,
    /// Training settings.
    pub train: TrainConfig,
    /// Also train the blind baseline (the same model and settings on features shuffled
    /// across images) and evaluate it beside the real model.
    pub blind_baseline: bool,
    /// Show progress.
    pub progress: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            images: 1500,
            image_size: 96,
            crop: 64,
            seed: 7,
            weights: None,
            train: TrainConfig::new()
                .with_epochs(10)
                .with_patience(3)
                .with_batch_size(64)
                .with_learning_rate(2e-3)
                .with_lr_decay_every(0)
                .with_min_count(2)
                .with_d_embed(64)
                .with_d_hidden(256)
                .with_dropout(0.3),
            blind_baseline: true,
            progress: true,
        }
    }
}

/// What the demo did and measured.
#[derive(Debug, Serialize)]
pub struct DemoReport {
    /// The output directory.
    pub out: PathBuf,
    /// Images in the dataset.
    pub images: usize,
    /// Images encoded by this run (0 when an earlier run's features were reused).
    pub extracted: usize,
    /// Feature extraction throughput, images/s.
    pub extract_images_per_second: f64,
    /// Epochs trained, best epoch and its validation BLEU-4.
    pub train: String,
    /// Test-split evaluation, greedy and beam 3.
    pub evaluation: Evaluation,
    /// The blind baseline's training summary and test-split evaluation, when trained.
    pub blind: Option<(String, Evaluation)>,
    /// A few test images with their beam-3 caption.
    pub samples: Vec<(String, Caption)>,
}

/// Generates a synthetic dataset, extracts features, trains a decoder, evaluates it and
/// captions a few images, all under `out`:
///
/// ```text
/// out/dataset/        the synthetic shapes dataset (Karpathy layout)
/// out/encoder.bpk     the encoder weights (a seeded random ResNet-50 unless `weights` is given)
/// out/features.safetensors
/// out/model/          the trained model directory
/// out/blind-model/    the blind baseline (when `blind_baseline`)
/// out/evaluation.json (and evaluation-blind.json)
/// ```
///
/// No pretrained ImageNet weights are needed: a random ResNet-50's pooled features still
/// separate colours and shapes, which is what the synthetic captions describe.
///
/// # Errors
/// Any step's error.
pub fn run_demo(out: &Path, config: &DemoConfig, device: &Device) -> Result<DemoReport> {
    std::fs::create_dir_all(out).map_err(io_error(out, "cannot create the demo directory"))?;
    let say = |message: &str| {
        if config.progress {
            eprintln!("demo: {message}");
        }
    };

    let dataset_dir = out.join("dataset");
    if !dataset_dir.join(Layout::Karpathy.file_name()).exists() {
        say(&format!(
            "writing {} synthetic images to {}",
            config.images,
            dataset_dir.display()
        ));
        let synth = SynthConfig {
            images: config.images,
            size: config.image_size,
            seed: config.seed,
            layout: Layout::Karpathy,
            split: SplitConfig {
                train: 8,
                val: 1,
                test: 1,
            },
            ..SynthConfig::default()
        };
        generate(&dataset_dir, &synth, &|_| {})?;
    }
    let dataset = Flickr30k::open(&dataset_dir)?;

    let weights = match &config.weights {
        Some(path) => path.clone(),
        None => {
            let path = out.join("encoder.bpk");
            if !path.exists() {
                say("no encoder weights given: using a seeded random-init ResNet-50");
                device.seed(config.seed);
                ResNetConfig::resnet50().init(device).save_burnpack(&path)?;
            }
            path
        }
    };
    let encoder = Encoder::load(&weights, device)?;

    let features_path = out.join("features.safetensors");
    let preprocess = PreprocessConfig::imagenet(config.crop);
    let images: Vec<(String, PathBuf)> = dataset
        .images()
        .iter()
        .map(|i| (i.id.clone(), i.path.clone()))
        .collect();
    say(&format!(
        "extracting {} features at {} px",
        images.len(),
        config.crop
    ));
    let extracted: ExtractSummary = extract_features(
        &encoder,
        &images,
        &preprocess,
        &features_path,
        &ExtractOptions::default(),
        device,
        &mut |_, _| {},
    )?;
    let features = storyteller_data::FeatureCache::open(&features_path)?;

    let train_config = config.train.clone().with_seed(config.seed);
    let train_into = |model_dir: &Path, train_config: &TrainConfig| {
        train(
            train_config,
            TrainOptions {
                dataset: &dataset,
                features: &features,
                encoder: EncoderRef {
                    weights: reference_path(&weights, model_dir),
                    hash: encoder.weights_hash().to_owned(),
                },
                out_dir: model_dir,
                resume: false,
                // The demo regenerates its whole output directory.
                overwrite: true,
                data_parallel: Vec::new(),
                reduction: Default::default(),
                stop_after: None,
                progress: config.progress,
            },
            device,
        )
    };
    let model_dir = out.join("model");
    say("training the decoder");
    let summary: TrainSummary = train_into(&model_dir, &train_config)?;
    for warning in &summary.warnings {
        say(warning);
    }
    let blind_dir = out.join("blind-model");
    let blind_summary = if config.blind_baseline {
        say("training the blind baseline (features shuffled across images)");
        Some(train_into(
            &blind_dir,
            &train_config.clone().with_blind(true),
        )?)
    } else {
        None
    };

    say("evaluating on the test split");
    let searches = vec![
        ("greedy".to_owned(), Search::Greedy(GreedySearch::new())),
        (
            "beam3".to_owned(),
            Search::Beam(BeamSearch::new().with_width(3)),
        ),
    ];
    let blind = match blind_summary {
        Some(summary) => {
            let blind_captioner = Captioner::from_parts(
                Encoder::load(&weights, device)?,
                crate::model_dir::ModelFiles::load(&blind_dir, device)?,
                device,
            )?;
            let evaluation = evaluate(
                &blind_captioner,
                &dataset,
                Split::Test,
                &searches,
                Some(&features),
            )?;
            Some((summary.to_string(), evaluation))
        }
        None => None,
    };
    let captioner = Captioner::from_parts(
        encoder,
        crate::model_dir::ModelFiles::load(&model_dir, device)?,
        device,
    )?;
    let evaluation = evaluate(
        &captioner,
        &dataset,
        Split::Test,
        &searches,
        Some(&features),
    )?;
    let json = serde_json::to_string_pretty(&evaluation).expect("an evaluation serialises");
    crate::model_dir::write_bytes(&out.join("evaluation.json"), json.as_bytes())?;
    if let Some((_, blind)) = &blind {
        let json = serde_json::to_string_pretty(blind).expect("an evaluation serialises");
        crate::model_dir::write_bytes(&out.join("evaluation-blind.json"), json.as_bytes())?;
    }

    let mut samples = Vec::new();
    for item in dataset.split(Split::Test).images().iter().take(3) {
        samples.push((item.id.clone(), captioner.caption_path(&item.path)?));
    }
    Ok(DemoReport {
        out: out.to_owned(),
        images: dataset.images().len(),
        extracted: extracted.extracted,
        extract_images_per_second: extracted.images_per_second(),
        train: summary.to_string(),
        evaluation,
        blind,
        samples,
    })
}
