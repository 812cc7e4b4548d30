//! `storyteller extract` end to end: a folder of images with one unreadable file, the
//! features against PyTorch's for the same files, resuming, and a synthetic dataset.
//! Needs the encoder fixture (scripts/fixtures.d/40-encoder.sh); skips visibly without it.

use std::process::Command;

use storyteller_data::FeatureCache;
use storyteller_test_support::encoder_reference::Reference;
use storyteller_test_support::fixtures::encoder_fixture_dir as fixture_dir;
use storyteller_test_support::relative_error;

fn storyteller(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storyteller"))
        .args(args)
        .output()
        .expect("the storyteller binary runs")
}

#[test]
fn images_folder_matches_pytorch_skips_bad_files_and_resumes() {
    let Some(fixtures) = fixture_dir("images_folder_matches_pytorch_skips_bad_files_and_resumes")
    else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("photos");
    std::fs::create_dir_all(images.join("more")).unwrap();
    for photo in ["astronaut", "chelsea", "coffee"] {
        std::fs::copy(
            fixtures.join(format!("photo_{photo}.png")),
            images.join(format!("{photo}.png")),
        )
        .unwrap();
    }
    std::fs::copy(
        fixtures.join("photo_rocket.png"),
        images.join("more/rocket.png"),
    )
    .unwrap();
    std::fs::write(images.join("broken.jpg"), b"not a jpeg").unwrap();
    std::fs::write(images.join("notes.txt"), b"ignored").unwrap();
    let out = tmp.path().join("features.safetensors");
    let weights = fixtures.join("resnet50-random.pth");
    let args = [
        "extract",
        "--images",
        images.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "2",
        "--json",
    ];
    let run = storyteller(&args);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["extracted"], 4, "{summary}");
    assert_eq!(summary["skipped"], 1);
    assert_eq!(summary["rows"], 4);
    assert!(String::from_utf8_lossy(&run.stderr).contains("broken.jpg"));

    let cache = FeatureCache::open(&out).unwrap();
    let reference = Reference::load(&fixtures);
    assert_eq!(cache.width(), 2048);
    for (id, photo) in [
        ("astronaut.png", "astronaut"),
        ("chelsea.png", "chelsea"),
        ("coffee.png", "coffee"),
        ("more/rocket.png", "rocket"),
    ] {
        let ours = cache.get(id).unwrap_or_else(|| panic!("{id} missing"));
        let err = relative_error(&ours, reference.values(&format!("output_photo_{photo}")));
        assert!(err <= 1e-4, "{id}: relative error {err}");
    }

    // A second run finds everything cached.
    let again = storyteller(&args);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["extracted"], 0);
    assert_eq!(summary["already_cached"], 4);
}

#[test]
fn synthetic_dataset_at_64_px() {
    let Some(fixtures) = fixture_dir("synthetic_dataset_at_64_px") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("shapes");
    let synth = storyteller(&[
        "synth",
        "--out",
        data.to_str().unwrap(),
        "--images",
        "6",
        "--size",
        "64",
        "--seed",
        "3",
    ]);
    assert!(
        synth.status.success(),
        "{}",
        String::from_utf8_lossy(&synth.stderr)
    );
    let out = tmp.path().join("f.safetensors");
    let weights = fixtures.join("resnet50-random.safetensors");
    let run = storyteller(&[
        "extract",
        "--dataset",
        data.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--image-size",
        "64",
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["rows"], 6, "{summary}");
    assert_eq!(summary["preprocess"]["crop"], 64);
    assert_eq!(FeatureCache::open(&out).unwrap().len(), 6);

    // Spatial features for attention decoders: a 2x2 grid in f16.
    let grid_out = tmp.path().join("grid.safetensors");
    let run = storyteller(&[
        "extract",
        "--dataset",
        data.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
        "--out",
        grid_out.to_str().unwrap(),
        "--image-size",
        "64",
        "--grid",
        "2",
        "--f16",
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        (summary["grid"].clone(), summary["storage"].clone()),
        (2.into(), "f16".into())
    );
    let grid = FeatureCache::open(&grid_out).unwrap();
    assert_eq!((grid.len(), grid.regions(), grid.width()), (6, 4, 2048));
    let bad = storyteller(&[
        "extract",
        "--dataset",
        "x",
        "--weights",
        "w",
        "--out",
        "o",
        "--grid",
        "0",
    ]);
    assert_eq!(bad.status.code(), Some(2), "--grid 0 is a usage error");
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f.safetensors");
    let missing = storyteller(&[
        "extract",
        "--images",
        tmp.path().to_str().unwrap(),
        "--weights",
        "/nonexistent.pth",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let neither = storyteller(&["extract", "--weights", "w.pth", "--out", "f.safetensors"]);
    assert!(!neither.status.success());
}
