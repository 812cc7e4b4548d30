//! The learning test: a model trained on the synthetic shapes must describe the image it is
//! shown, not write the sentence most likely for any image.
//!
//! One seeded demo run (synthetic data, random-init ResNet-50 features, the default
//! training recipe at a small size) trains the real model and the blind baseline (the same
//! model on features shuffled across images), then scores both on the test split: the
//! grounding metrics against chance (the same captions on shuffled scenes) and the caption
//! metrics against the blind model.

use burn::tensor::Device;
use storyteller::demo::{DemoConfig, run_demo};
use storyteller::train::TrainConfig;
use storyteller::{Evaluation, Scores};
use storyteller_data::{Attribute, GroundingReport};

/// The settings of the learning run: small enough for CI in a few minutes, large enough
/// that a model that looks at the image is clearly told apart from one that cannot.
fn learning_demo() -> DemoConfig {
    DemoConfig {
        images: 600,
        image_size: 96,
        crop: 64,
        seed: 5,
        weights: None,
        train: TrainConfig::new()
            .with_epochs(6)
            .with_patience(6)
            .with_batch_size(32)
            .with_learning_rate(1e-3)
            .with_lr_decay_every(0)
            .with_min_count(2)
            .with_d_embed(64)
            .with_d_hidden(128)
            .with_dropout(0.2),
        blind_baseline: true,
        progress: false,
    }
}

fn greedy(evaluation: &Evaluation) -> (&Scores, &GroundingReport) {
    let scores = &evaluation
        .scores
        .iter()
        .find(|(name, _)| name == "greedy")
        .expect("the demo scores greedy search")
        .1;
    let grounding = &evaluation
        .grounding
        .iter()
        .find(|(name, _)| name == "greedy")
        .expect("the synthetic dataset has scene truth, so the demo scores grounding")
        .1;
    (scores, grounding)
}

#[test]
fn a_trained_model_describes_the_image_and_a_blind_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let report = run_demo(&dir.path().join("demo"), &learning_demo(), &Device::flex()).unwrap();
    let (real_scores, real) = greedy(&report.evaluation);
    let (blind_scores, blind) = greedy(&report.blind.as_ref().expect("blind baseline").1);
    let table = real.compare_table("model", blind, "blind");
    eprintln!("{table}");

    let score = |g: &GroundingReport, a: Attribute| g.attributes.get(a).clone();
    // Colour and position: what the features carry best (linear probes reach ~80% and ~90%).
    for (attribute, margin) in [(Attribute::Colour, 1.5), (Attribute::Position, 1.5)] {
        let lift = score(real, attribute).lift.unwrap_or(0.0);
        assert!(
            lift >= margin,
            "{attribute} claims of the trained model are not {margin}x truer of their own image \
             than of a random one (lift {lift})\n{table}"
        );
    }
    // The trained model states the scene's colours correctly far more often than the same
    // captions would on other images.
    let colour = score(real, Attribute::Colour);
    let (recall, chance_recall) = (
        colour.recall.unwrap_or(0.0),
        colour.chance_recall.unwrap_or(1.0),
    );
    assert!(
        recall >= 1.5 * chance_recall,
        "colour recall {recall} is not 1.5x its chance level {chance_recall}\n{table}"
    );
    // Where the blind model claims often, its claims are as true of a random image.
    for attribute in Attribute::ALL {
        let s = score(blind, attribute);
        if s.claims >= 30 {
            let lift = s.lift.unwrap_or(0.0);
            assert!(
                lift < 1.3,
                "the blind model's {attribute} claims beat chance ({lift}): its features leak\n{table}"
            );
        }
    }
    assert!(
        real.distinct_share > blind.distinct_share + 0.15,
        "the trained model does not write more distinct captions than the blind one\n{table}"
    );
    assert!(
        real_scores.cider_d > 1.2 * blind_scores.cider_d,
        "CIDEr-D {} vs the blind model's {}",
        real_scores.cider_d,
        blind_scores.cider_d
    );
}
