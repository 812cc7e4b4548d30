//! `storyteller synth` and `storyteller dataset` end to end.

use std::process::Command;

fn storyteller(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_storyteller"))
        .args(args)
        .output()
        .expect("the storyteller binary runs")
}

#[test]
fn synth_then_dataset_in_every_layout() {
    for layout in ["karpathy", "token", "kaggle"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("shapes");
        let out_str = out.to_str().unwrap();
        let synth = storyteller(&[
            "synth", "--out", out_str, "--images", "20", "--layout", layout, "--size", "32",
            "--seed", "7",
        ]);
        assert!(
            synth.status.success(),
            "{}",
            String::from_utf8_lossy(&synth.stderr)
        );
        let dataset = storyteller(&["dataset", out_str, "--json", "--min-count", "1"]);
        assert!(
            dataset.status.success(),
            "{}",
            String::from_utf8_lossy(&dataset.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&dataset.stdout).unwrap();
        assert_eq!(summary["layout"], layout);
        assert_eq!(summary["images"], 20);
        assert_eq!(summary["captions"], 100);
        assert_eq!(summary["splits"]["test"]["images"], 1);
        assert_eq!(summary["skipped"].as_array().unwrap().len(), 0);
        assert!(summary["vocab_size"].as_u64().unwrap() > 20);
        let text = storyteller(&["dataset", out_str]);
        assert!(String::from_utf8_lossy(&text.stdout).contains("images       20"));
    }
}

#[test]
fn dataset_reports_skipped_lines_and_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("flickr30k_images")).unwrap();
    std::fs::write(root.join("flickr30k_images/1.jpg"), b"x").unwrap();
    std::fs::write(
        root.join("results.csv"),
        "image_name| comment_number| comment\n1.jpg| 0| A dog .\n1.jpg| 1   A dog runs .\n2.jpg| 0| A cat .\n",
    )
    .unwrap();
    let out = storyteller(&["dataset", root.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["captions"], 2);
    assert_eq!(summary["skipped_by_kind"]["recovered_row"], 1);
    assert_eq!(summary["skipped_by_kind"]["missing_image"], 1);
    assert_eq!(summary["skipped"][0]["line"], 3);

    let strict = storyteller(&["dataset", root.to_str().unwrap(), "--strict"]);
    assert!(!strict.status.success());
    assert!(String::from_utf8_lossy(&strict.stderr).contains("results.csv:3"));

    let empty = tempfile::tempdir().unwrap();
    let out = storyteller(&["dataset", empty.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Flickr30k annotations"));

    let bad = storyteller(&["synth", "--out", root.to_str().unwrap(), "--images", "0"]);
    assert!(!bad.status.success());
}
