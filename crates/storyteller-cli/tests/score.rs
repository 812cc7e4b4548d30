//! `storyteller score` end to end: the binary on real files.

use std::path::Path;
use std::process::Command;

fn storyteller(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storyteller"))
        .args(args)
        .output()
        .expect("run storyteller")
}

fn example(name: &str) -> String {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"))
        .join("../../examples/data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn json_output_has_every_metric() {
    let out = storyteller(&[
        "score",
        "--refs",
        &example("refs.json"),
        "--hyps",
        &example("hyps.json"),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "bleu1",
        "bleu2",
        "bleu3",
        "bleu4",
        "precision",
        "recall",
        "f1",
        "rouge_l",
        "cider_d",
    ] {
        let value = scores[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing"));
        assert!(value.is_finite() && value >= 0.0, "{key} = {value}");
    }
    assert_eq!(scores["images"], 3);
    assert!(scores["bleu1"].as_f64().unwrap() > scores["bleu4"].as_f64().unwrap());
}

#[test]
fn table_output_names_the_metrics() {
    let out = storyteller(&[
        "score",
        "--refs",
        &example("refs.json"),
        "--hyps",
        &example("hyps.json"),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "BLEU-1",
        "BLEU-4",
        "precision",
        "recall",
        "F1",
        "ROUGE-L",
        "CIDEr-D",
    ] {
        assert!(text.contains(name), "{name} missing from\n{text}");
    }
}

#[test]
fn nltk_flavour_with_smoothing_runs() {
    let refs = example("refs.json");
    let hyps = example("hyps.json");
    let out = storyteller(&[
        "score",
        "--refs",
        &refs,
        "--hyps",
        &hyps,
        "--json",
        "--bleu",
        "nltk",
        "--smoothing",
        "7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let scores: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(scores["bleu_flavour"]["nltk"]["method"], "method7");
}

#[test]
fn bad_input_fails_with_the_file_and_image_named() {
    let dir = tempfile::tempdir().unwrap();
    let hyps = dir.path().join("hyps.json");
    std::fs::write(&hyps, r#"{"1000092795": "two men", "nope": "a dog"}"#).unwrap();
    let out = storyteller(&[
        "score",
        "--refs",
        &example("refs.json"),
        "--hyps",
        hyps.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hyps.json") && err.contains("\"nope\""),
        "{err}"
    );
}

#[test]
fn help_is_available() {
    let out = storyteller(&["score", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--refs"));
}
