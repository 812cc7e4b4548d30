//! The Transformer decoder against the PyTorch reference (`scripts/transformer_reference.py`:
//! `nn.TransformerDecoder` with pre-norm layers): weights imported from `.safetensors` and
//! `.pth` through a word map, untied and tied; teacher-forced logits under the causal mask
//! within 1e-5; incremental (key/value-cached) decoding equal to the full forward; the
//! training loss with and without label smoothing; greedy and beam-3 outputs identical.

mod common;

use burn::tensor::{Int, Tensor};
use common::{Reference, data_dir, floats, values, without_tensor};
use storyteller_decoder::transformer::{TransformerDecoder, load_pytorch_transformer};
use storyteller_test_support::compare::max_abs_difference as worst;

const FIXTURES: [&str; 2] = ["transformer_reference", "transformer_reference_tied"];

fn import(r: &Reference, file: &str, reorder: bool) -> TransformerDecoder {
    let rows = reorder.then_some(r.file_row.as_slice());
    let heads = r.size("n_heads");
    let import = load_pytorch_transformer(data_dir().join(file), heads, rows, &r.device).unwrap();
    let config = &import.config;
    let tied = r.json["sizes"]["tied"].as_bool().unwrap();
    // A tied file holds `out.weight` equal to `embedding.weight`: read, compared, not needed.
    assert!(import.unused.is_empty(), "unused keys {:?}", import.unused);
    assert_eq!(
        [
            config.vocab_size,
            config.d_model,
            config.n_heads,
            config.n_layers,
            config.d_ff,
            config.d_feature,
            config.regions()
        ],
        [
            r.size("vocab_size"),
            r.size("d_model"),
            heads,
            r.size("n_layers"),
            r.size("d_ff"),
            r.size("d_feature"),
            r.size("regions")
        ]
    );
    assert_eq!(config.tied_output, tied);
    assert_eq!(import.decoder.output_weight.is_none(), tied);
    import.decoder
}

#[test]
fn teacher_forced_logits_match_within_1e_5() {
    for name in FIXTURES {
        let r = Reference::load(name);
        let decoder = import(&r, &format!("{name}.safetensors"), true);
        let logits = values(decoder.forward(r.features.clone(), r.inputs.clone()));
        let error = worst(&logits, &r.expected_logits());
        println!("{name}: largest logit difference from PyTorch {error:e}");
        assert!(error <= 1e-5, "{name}: logits differ by {error}");
    }
}

/// Decoding token by token through the key/value caches gives the full causal forward's
/// logits for the reference's batch.
#[test]
fn cached_steps_equal_the_full_forward() {
    for name in FIXTURES {
        let r = Reference::load(name);
        let decoder = import(&r, &format!("{name}.safetensors"), true);
        let [n, t] = r.inputs.dims();
        let v = decoder.vocab_size();
        let full = values(decoder.forward(r.features.clone(), r.inputs.clone()));
        let mut state = decoder.init_state(r.features.clone());
        let mut stepped = vec![0.0; full.len()];
        for step in 0..t {
            let column: Tensor<1, Int> = r.inputs.clone().narrow(1, step, 1).reshape([n]);
            let (logits, next) = decoder.step_logits(column, state);
            for (b, row) in values(logits).chunks(v).enumerate() {
                stepped[(b * t + step) * v..][..v].copy_from_slice(row);
            }
            state = next;
        }
        let error = worst(&full, &stepped);
        assert!(error <= 1e-5, "{name}: cached steps differ by {error}");
    }
}

/// A `.pth` state dict imports the same weights; without the word map the vocabulary
/// keeps the file's order.
#[test]
fn the_pth_file_imports_the_same_weights() {
    for name in FIXTURES {
        let r = Reference::load(name);
        let decoder = import(&r, &format!("{name}.pth"), false);
        let logits = values(decoder.forward(r.features.clone(), r.inputs_in_file_order()));
        let error = worst(&logits, &floats(&r.json["logits"]["data"]));
        assert!(error <= 1e-5, "{name}: logits differ by {error}");
    }
}

#[test]
fn greedy_and_beam3_match_pytorch_exactly() {
    for name in FIXTURES {
        let r = Reference::load(name);
        r.assert_searches_match(&import(&r, &format!("{name}.safetensors"), true));
    }
}

#[cfg(feature = "train")]
#[test]
fn training_loss_with_and_without_label_smoothing_matches() {
    use storyteller_decoder::train::{CaptionBatch, Objective, TeacherForcing};
    let r = Reference::load("transformer_reference");
    let decoder = import(&r, "transformer_reference.safetensors", true);
    let batch = CaptionBatch {
        features: r.features.clone(),
        inputs: r.inputs.clone(),
        targets: r.targets.clone(),
    };
    let loss = &r.json["loss"];
    let epsilon = loss["label_smoothing"].as_f64().unwrap();
    for (objective, key) in [
        (Objective::new(0), "cross_entropy"),
        (
            Objective::new(0).with_label_smoothing(epsilon),
            "smoothed_cross_entropy",
        ),
    ] {
        let losses = decoder.losses(&batch, objective);
        assert!(losses.regulariser.is_none());
        let ours = values(losses.cross_entropy)[0];
        let expected = loss[key].as_f64().unwrap() as f32;
        assert!(
            (ours - expected).abs() < 1e-5,
            "{key}: {ours} vs {expected}"
        );
    }
}

#[test]
fn a_missing_key_is_named_and_a_wrong_head_count_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("partial.safetensors");
    let key = "decoder.layers.1.multihead_attn.in_proj_bias";
    without_tensor("transformer_reference.safetensors", key, &path);
    let device = burn::tensor::Device::flex();
    let err = load_pytorch_transformer(&path, 4, None, &device).unwrap_err();
    assert!(err.to_string().contains(key), "{err}");
    let file = data_dir().join("transformer_reference.safetensors");
    let err = load_pytorch_transformer(&file, 3, None, &device).unwrap_err();
    assert!(err.to_string().contains("n_heads"), "{err}");
}

#[test]
fn a_word_map_of_another_size_is_refused() {
    let r = Reference::load("transformer_reference");
    let rows: Vec<usize> = r.file_row[..20].to_vec();
    let file = data_dir().join("transformer_reference.safetensors");
    let err = load_pytorch_transformer(&file, 4, Some(&rows), &r.device).unwrap_err();
    assert!(err.to_string().contains("word map"), "{err}");
}
