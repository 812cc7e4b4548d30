//! The attention decoder against the PyTorch reference (`scripts/attention_reference.py`, the
//! tutorial's `DecoderWithAttention` layout): weights imported from `.safetensors` and `.pth`
//! through the tutorial's word map, teacher-forced logits and attention weights within 1e-5,
//! the training loss with the doubly stochastic regulariser, greedy and beam-3 outputs
//! identical.

mod common;

use burn::tensor::Device;
use common::{Reference, data_dir, floats, values, without_tensor};
use storyteller_decoder::attention::{AttentionDecoder, load_tutorial};
use storyteller_test_support::compare::max_abs_difference as worst;

fn reference() -> Reference {
    Reference::load("attention_reference")
}

fn import(r: &Reference, file: &str, reorder: bool) -> AttentionDecoder {
    let rows = reorder.then_some(r.file_row.as_slice());
    let import = load_tutorial(data_dir().join(file), 2, rows, &r.device).unwrap();
    assert!(import.unused.is_empty(), "unused keys {:?}", import.unused);
    let sizes = &r.json["sizes"];
    let size = |key: &str| sizes[key].as_u64().unwrap() as usize;
    let config = &import.config;
    assert_eq!(
        [
            config.vocab_size,
            config.d_embed,
            config.d_attention,
            config.d_hidden,
            config.d_feature,
            config.regions()
        ],
        [
            size("vocab_size"),
            size("d_embed"),
            size("d_attention"),
            size("d_hidden"),
            size("d_feature"),
            size("regions")
        ]
    );
    import.decoder
}

#[test]
fn teacher_forced_logits_and_attention_match_within_1e_5() {
    let r = reference();
    let decoder = import(&r, "attention_reference.safetensors", true);
    let (logits, alphas) = decoder.forward_with_attention(r.features.clone(), r.inputs.clone());
    let logit_error = worst(&values(logits), &r.expected_logits());
    let alpha_error = worst(&values(alphas), &floats(&r.json["alphas"]["data"]));
    println!("largest differences from PyTorch: logits {logit_error:e}, attention {alpha_error:e}");
    assert!(logit_error <= 1e-5, "logits differ by {logit_error}");
    assert!(
        alpha_error <= 1e-5,
        "attention weights differ by {alpha_error}"
    );
}

/// A `.pth` state dict (what `torch.save(decoder.state_dict())` writes) imports the same
/// weights; without the word map the vocabulary keeps the file's order.
#[test]
fn the_pth_file_imports_the_same_weights() {
    let r = reference();
    let decoder = import(&r, "attention_reference.pth", false);
    let logits = values(decoder.forward(r.features.clone(), r.inputs_in_file_order()));
    let error = worst(&logits, &floats(&r.json["logits"]["data"]));
    assert!(error <= 1e-5, "logits differ by {error}");
}

#[test]
fn greedy_and_beam3_match_pytorch_exactly() {
    let r = reference();
    r.assert_searches_match(&import(&r, "attention_reference.safetensors", true));
}

#[cfg(feature = "train")]
#[test]
fn training_loss_with_the_regulariser_matches() {
    use storyteller_decoder::train::{CaptionBatch, TeacherForcing};
    let r = reference();
    let decoder = import(&r, "attention_reference.safetensors", true);
    let batch = CaptionBatch {
        features: r.features.clone(),
        inputs: r.inputs.clone(),
        targets: r.targets.clone(),
    };
    let losses = decoder.losses(&batch, storyteller_decoder::train::Objective::new(0));
    let loss = &r.json["loss"];
    let expect = |key: &str| loss[key].as_f64().unwrap() as f32;
    let cross_entropy = values(losses.cross_entropy.clone())[0];
    let regulariser = values(losses.regulariser.clone().unwrap())[0];
    let total = values(losses.total())[0];
    assert!(
        (cross_entropy - expect("cross_entropy")).abs() < 1e-5,
        "{cross_entropy}"
    );
    assert!(
        (regulariser - expect("regulariser")).abs() < 1e-4,
        "{regulariser}"
    );
    assert!((total - expect("total")).abs() < 1e-4, "{total}");
}

#[test]
fn a_word_map_of_another_size_is_refused() {
    let r = reference();
    let rows: Vec<usize> = r.file_row[..20].to_vec();
    let err = load_tutorial(
        data_dir().join("attention_reference.safetensors"),
        2,
        Some(&rows),
        &r.device,
    )
    .unwrap_err();
    assert!(err.to_string().contains("word map"), "{err}");
}

#[test]
fn a_missing_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    without_tensor("attention_reference.safetensors", "f_beta.bias", &path);
    let err = load_tutorial(&path, 2, None, &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("f_beta.bias"), "{err}");
}
