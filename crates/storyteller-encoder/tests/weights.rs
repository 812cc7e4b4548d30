//! Weight loading refuses malformed files with errors that name the key and the
//! shapes, and never panics. Uses the tiny checkpoints in `tests/data/` (written by
//! `scripts/make_resnet_fixture.py --crafted`) and files made on the spot.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use storyteller_encoder::{EncoderError, ResNetConfig};

fn data(name: &str) -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(path: &Path) -> Result<(), EncoderError> {
    // The smallest network with every kind of key; shapes differ from ResNet-50 only in
    // the number of blocks.
    let mut net = ResNetConfig::new([1, 1, 1, 1]).init(&Device::flex());
    net.load_weights(path).map(|_| ())
}

#[test]
fn wrong_shape_names_key_and_both_shapes() {
    for file in ["wrong_shape.pth", "wrong_shape.safetensors"] {
        let err = load(&data(file)).unwrap_err();
        let message = err.to_string();
        match err {
            EncoderError::ShapeMismatch {
                key,
                expected,
                found,
                ..
            } => {
                assert_eq!(key, "conv1.weight");
                assert_eq!(expected, [64, 3, 7, 7]);
                assert_eq!(found, [64, 3, 2, 2]);
            }
            other => panic!("{file}: expected ShapeMismatch, got {other:?}"),
        }
        assert!(
            message.contains("conv1.weight")
                && message.contains("[64, 3, 7, 7]")
                && message.contains("[64, 3, 2, 2]"),
            "{message}"
        );
    }
}

#[test]
fn missing_tensor_names_key_and_shape() {
    let err = load(&data("missing_keys.pth")).unwrap_err();
    let message = err.to_string();
    match err {
        EncoderError::MissingTensor {
            key,
            expected,
            count,
            ..
        } => {
            assert_eq!(key, "bn1.bias");
            assert_eq!(expected, [64]);
            // Every tensor of the [1, 1, 1, 1] network except conv1.weight.
            let total = ResNetConfig::new([1, 1, 1, 1])
                .init(&Device::flex())
                .torchvision_shapes()
                .len();
            assert_eq!(count, total - 1);
        }
        other => panic!("expected MissingTensor, got {other:?}"),
    }
    assert!(message.contains("bn1.bias"), "{message}");
}

#[test]
fn truncated_and_foreign_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let pth = std::fs::read(data("wrong_shape.pth")).unwrap();
    let st = std::fs::read(data("wrong_shape.safetensors")).unwrap();
    let cases = [
        write("truncated.pth", &pth[..pth.len() / 2]),
        write("truncated_head.pth", &pth[..10]),
        write("truncated.safetensors", &st[..st.len() - 100]),
        write("header_only.safetensors", &st[..12]),
        write("empty.pth", b""),
        write("text.pth", b"this is not a checkpoint"),
        write("text.safetensors", b"{\"not\": \"safetensors\"}"),
        write("garbage.bpk", b"NRUB\x01\x00\x00\x00garbage"),
        write("notes.txt", b"hello"),
        tmp.path().join("absent.pth"),
        tmp.path().to_path_buf(),
    ];
    for path in cases {
        let result = load(&path);
        assert!(result.is_err(), "{} loaded", path.display());
        let message = result.unwrap_err().to_string();
        assert!(
            message.contains(&*path.file_name().unwrap().to_string_lossy()),
            "error does not name the file: {message}"
        );
    }
}

#[test]
fn non_f32_tensors_are_refused() {
    use safetensors::tensor::{Dtype, TensorView};
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("half.safetensors");
    let bytes = vec![0u8; 64 * 3 * 7 * 7 * 2];
    let view = TensorView::new(Dtype::F16, vec![64, 3, 7, 7], &bytes).unwrap();
    safetensors::serialize_to_file([("conv1.weight", view)], None, &path).unwrap();
    match load(&path).unwrap_err() {
        EncoderError::UnsupportedDtype { key, .. } => assert_eq!(key, "conv1.weight"),
        other => panic!("expected UnsupportedDtype, got {other:?}"),
    }
}

#[test]
fn fused_network_refuses_load_and_save() {
    let net = ResNetConfig::new([1, 1, 1, 1]).init(&Device::flex());
    let mut fused = net.fuse();
    assert!(matches!(
        fused.load_weights(data("wrong_shape.pth")),
        Err(EncoderError::Fused { .. })
    ));
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        fused.save_burnpack(tmp.path().join("x.bpk")),
        Err(EncoderError::Fused { .. })
    ));
}

#[test]
fn a_deeper_networks_weights_are_refused() {
    // A deeper ResNet holds every key of the shallower one with the same shapes, plus its
    // extra blocks: loading it must fail, not take the first blocks silently.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("deeper.bpk");
    ResNetConfig::new([1, 2, 1, 1])
        .init(&Device::flex())
        .save_burnpack(&path)
        .unwrap();
    let err = load(&path).unwrap_err();
    let message = err.to_string();
    match err {
        EncoderError::UnexpectedTensors { key, count, .. } => {
            assert!(key.starts_with("layer2.1."), "{key}");
            assert!(count > 0);
        }
        other => panic!("expected UnexpectedTensors, got {other:?}"),
    }
    assert!(message.contains("ResNet-101"), "{message}");
}
