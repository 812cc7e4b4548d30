//! The decoder against the PyTorch reference (`scripts/decoder_reference.py`): imported
//! weights, teacher-forced logits within 1e-5, greedy and beam-3 outputs identical.

use burn::tensor::Device;
use storyteller_decoder::{CaptionDecoder, CaptionDecoderConfig, load_pytorch};
use storyteller_test_support::decoder_reference::{Reference, data_dir};

fn setup() -> (Reference, Device) {
    let device = Device::flex();
    let reference = Reference::load(&data_dir(), &device);
    (reference, device)
}

#[test]
fn teacher_forced_logits_match_within_1e_5() {
    let (r, _) = setup();
    let worst = r.logit_error();
    println!("largest logit difference from PyTorch: {worst:e}");
    assert!(worst <= 1e-5, "largest logit difference {worst}");
}

#[test]
fn greedy_and_beam3_match_pytorch_exactly() {
    setup().0.check_greedy_and_beam3();
}

#[test]
fn a_wrong_shape_names_the_key_and_both_shapes() {
    let (r, device) = setup();
    let config = r.config.clone().with_d_hidden(2 * r.config.d_hidden);
    let dir = data_dir();
    let err =
        load_pytorch(dir.join("decoder_reference.safetensors"), &config, &device).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("init_h.weight")
            && message.contains("[32, 12]")
            && message.contains("[16, 12]"),
        "{message}"
    );
}

#[test]
fn a_non_safetensors_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junk.safetensors");
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let err = load_pytorch(&path, &CaptionDecoderConfig::new(30), &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("junk.safetensors"), "{err}");
}

#[test]
fn native_record_round_trips() {
    let (r, device) = setup();
    let (decoder, features) = (r.decoder, r.features);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decoder.bpk");
    std::fs::write(&path, decoder.to_bytes().unwrap()).unwrap();
    let config = CaptionDecoderConfig::new(30)
        .with_d_feature(12)
        .with_d_embed(8)
        .with_d_hidden(16);
    let loaded = CaptionDecoder::load(&path, &config, &device).unwrap();
    // The weights come back bit for bit (outputs may differ in the last ulp: the imported
    // weights are transposed views, the reloaded ones contiguous, and matmul rounds each
    // layout its own way).
    let values = |d: &CaptionDecoder| {
        let mut v = d
            .init_h
            .as_ref()
            .unwrap()
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        v.extend(
            d.lstm[0]
                .weight_hh
                .val()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
        );
        v.extend(d.out.weight.val().into_data().try_to_vec::<f32>().unwrap());
        v
    };
    assert_eq!(values(&decoder), values(&loaded));
    let before = decoder.init_state(features.clone()).hidden[0]
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let after = loaded.init_state(features).hidden[0]
        .clone()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert!((a - b).abs() < 1e-6);
    }
}
