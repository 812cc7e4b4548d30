//! `storyteller bench` end to end: a tiny synthetic dataset, the 2x2 grid of a seeded random
//! ResNet-50 at 64 px, all four decoders for one epoch at tiny sizes; the report's three
//! files with four rows of finite numbers in range; a second run that reuses every row
//! without retraining; the time budget; and the refusals (settings changed under finished
//! rows, attention on pooled features).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::{path, random_encoder, storyteller, succeed};
use serde_json::Value;
use storyteller_data::FeatureCache;

const DECODERS: [&str; 4] = [
    "show-tell",
    "show-tell-par",
    "show-attend-tell",
    "transformer",
];

/// Every file under `dir` with its modification time.
fn mtimes(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.insert(entry.path(), meta.modified().unwrap());
            }
        }
    }
    out
}

fn in_range(value: &Value, low: f64, high: f64, what: &str) {
    let x = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {value}"));
    assert!(
        x.is_finite() && (low..=high).contains(&x),
        "{what} = {x}, not in [{low}, {high}]"
    );
}

/// `a` and `b` are the same JSON but for the last bit of numbers (serde_json's float
/// parsing is not exact).
fn assert_close(a: &Value, b: &Value) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-12 * x.abs().max(y.abs()), "{x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len());
            x.iter().zip(y).for_each(|(x, y)| assert_close(x, y));
        }
        (Value::Object(x), Value::Object(y)) => {
            assert!(x.keys().eq(y.keys()), "{a} vs {b}");
            x.values()
                .zip(y.values())
                .for_each(|(x, y)| assert_close(x, y));
        }
        _ => assert_eq!(a, b),
    }
}

/// The checks every row of bench.json must pass.
fn check_row(row: &Value) {
    let name = row["name"].as_str().unwrap();
    assert_eq!(row["epochs"], 1, "{name}");
    in_range(&row["parameters"]["trained"], 1.0, 1e7, "parameters");
    in_range(&row["train_captions_per_second"], 1e-3, 1e7, "train rate");
    for search in ["greedy", "beam"] {
        let quality = &row[search];
        let scores = &quality["scores"];
        for metric in ["bleu1", "bleu2", "bleu3", "bleu4", "rouge_l"] {
            in_range(
                &scores[metric],
                0.0,
                1.0,
                &format!("{name} {search} {metric}"),
            );
        }
        in_range(
            &scores["cider_d"],
            0.0,
            10.0,
            &format!("{name} {search} CIDEr-D"),
        );
        // The synthetic dataset has scenes: grounding with chance levels.
        let grounding = &quality["grounding"];
        in_range(&grounding["distinct_share"], 0.0, 1.0, "distinct share");
        let shape = &grounding["attributes"]["shape"];
        if !shape["precision"].is_null() {
            in_range(&shape["precision"], 0.0, 1.0, "shape precision");
            in_range(&shape["chance_precision"], 0.0, 1.0, "shape chance");
        }
    }
    let speeds = row["speeds"].as_array().unwrap();
    assert_eq!(speeds.len(), 4, "greedy and beam at batch 1 and 4: {name}");
    for speed in speeds {
        let [min, median, max] =
            ["min", "captions_per_second", "max"].map(|k| speed[k].as_f64().unwrap());
        assert!(
            0.0 < min && min <= median && median <= max && max.is_finite(),
            "{name}: {speed}"
        );
        assert_eq!(speed["runs"], 2);
    }
    if !row["peak_memory_bytes"].is_null() {
        in_range(&row["peak_memory_bytes"], 1e6, 1e12, "peak memory");
    }
}

#[test]
fn four_decoders_are_benched_on_the_same_features_and_a_rerun_reuses_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = tmp.path().join("shapes");
    succeed(&[
        "synth",
        "--out",
        path(&dataset),
        "--images",
        "120",
        "--size",
        "72",
        "--seed",
        "9",
    ]);
    let weights = tmp.path().join("encoder.bpk");
    random_encoder(&weights, 17);
    let grid = tmp.path().join("grid.safetensors");
    succeed(&[
        "extract",
        "--dataset",
        path(&dataset),
        "--weights",
        path(&weights),
        "--out",
        path(&grid),
        "--image-size",
        "64",
        "--grid",
        "2",
        "--json",
    ]);
    let out = tmp.path().join("bench");
    let bench_epochs = |epochs: &str, extra: &[&str]| {
        let mut args = vec![
            "bench",
            "--dataset",
            path(&dataset),
            "--features",
            path(&grid),
            "--out",
            path(&out),
            "--epochs",
            epochs,
            "--batch-size",
            "16",
            "--lr",
            "5e-3",
            "--min-count",
            "1",
            "--d-embed",
            "16",
            "--d-hidden",
            "32",
            "--d-attention",
            "16",
            "--heads",
            "4",
            "--dropout",
            "0.1",
            "--whiten",
            "16",
            "--batch-sizes",
            "1,4",
            "--timed-images",
            "6",
            "--timing-runs",
            "2",
        ];
        args.extend(extra);
        storyteller(&args)
    };
    let bench = |extra: &[&str]| bench_epochs("1", extra);
    let run = bench(&["--weights", path(&weights)]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!stdout.contains("reused"), "{stdout}");

    for file in ["bench.md", "bench.json", "bench.png"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let png = image::open(out.join("bench.png")).unwrap();
    assert!(png.width() > 100 && png.height() > 100);
    let markdown = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert_eq!(markdown, stdout.split("\nwrote ").next().unwrap());
    for decoder in DECODERS {
        // The quality, two grounding and the speed tables.
        let lines = markdown
            .lines()
            .filter(|l| l.starts_with(&format!("| {decoder} |")))
            .count();
        assert_eq!(lines, 4, "{decoder}: {markdown}");
    }
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, DECODERS);
    rows.iter().for_each(check_row);
    assert_eq!(report["settings"]["grid"], 2);
    assert!(report["settings"]["cores"].as_u64().unwrap() >= 1);

    // Show and Tell trained on the mean of the regions; the others on the grid.
    let pooled_path = out.join("pooled.safetensors");
    let pooled = FeatureCache::open(&pooled_path).unwrap();
    let spatial = FeatureCache::open(&grid).unwrap();
    assert_eq!(
        (pooled.regions(), pooled.image_ids()),
        (1, spatial.image_ids())
    );
    for (decoder, kind, grid) in [
        ("show-tell", "show-tell", None),
        ("show-tell-par", "show-tell", None),
        ("show-attend-tell", "show-attend-tell", Some(2)),
        ("transformer", "transformer", Some(2)),
    ] {
        let dir = out.join("models").join(decoder);
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(config["kind"], kind, "{decoder}: {config}");
        if let Some(grid) = grid {
            assert_eq!(config["decoder"]["grid"], grid, "{decoder}: {config}");
        }
        assert!(dir.join("bench-row.json").is_file(), "{decoder}");
    }
    // The recorded weights caption images: the models are whole.
    let image = std::fs::read_dir(dataset.join("flickr30k_images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "jpg"))
        .unwrap();
    succeed(&[
        "caption",
        "--model",
        path(&out.join("models").join("show-tell-par")),
        path(&image),
    ]);

    // Again: nothing is retrained or measured, and the output says so.
    let before = mtimes(&out.join("models"));
    let run = bench(&["--json"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(mtimes(&out.join("models")), before, "no model file changed");
    let again: Value = serde_json::from_slice(&run.stdout).unwrap();
    for (row, first) in again["rows"].as_array().unwrap().iter().zip(rows) {
        assert_eq!(row["reused"], true, "{}", row["name"]);
        assert_close(&row["greedy"], &first["greedy"]);
        assert_close(&row["speeds"], &first["speeds"]);
    }
    let run = bench(&[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        stdout.contains(&format!(
            "reused (finished in an earlier run, not retrained): {}",
            DECODERS.join(", ")
        )),
        "{stdout}"
    );

    // Finished rows are not silently compared with other settings.
    let changed = bench_epochs("2", &[]);
    assert!(!changed.status.success());
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(
        stderr.contains("other settings") && stderr.contains("train.epochs: 1 then, 2 now"),
        "{stderr}"
    );
    assert_eq!(mtimes(&out.join("models")), before);

    // A time budget stops after the epoch that crosses it; a generous one lets the trainer,
    // called an epoch at a time and resuming its checkpoint, run every epoch.
    for (budget, epochs) in [("0.001", 1), ("1000", 2)] {
        let budget_out = tmp.path().join(format!("budget-{budget}"));
        let run = succeed(&[
            "bench",
            "--dataset",
            path(&dataset),
            "--features",
            path(&grid),
            "--out",
            path(&budget_out),
            "--decoders",
            "show-tell",
            "--epochs",
            "2",
            "--patience",
            "5",
            "--time-budget",
            budget,
            "--batch-size",
            "32",
            "--min-count",
            "1",
            "--d-embed",
            "16",
            "--d-hidden",
            "32",
            "--whiten",
            "16",
            "--batch-sizes",
            "2",
            "--timed-images",
            "2",
            "--timing-runs",
            "1",
            "--json",
        ]);
        let report: Value = serde_json::from_slice(&run.stdout).unwrap();
        assert_eq!(report["rows"][0]["epochs"], epochs, "budget {budget} s");
        let metrics =
            std::fs::read_to_string(budget_out.join("models/show-tell/metrics.jsonl")).unwrap();
        assert_eq!(metrics.lines().count(), epochs, "budget {budget} s");
    }

    // Pooled features cannot feed the attention decoder: refused, naming the fix.
    let refused = storyteller(&[
        "bench",
        "--dataset",
        path(&dataset),
        "--features",
        path(&pooled_path),
        "--out",
        path(&tmp.path().join("pooled-bench")),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("extract --grid G"), "{stderr}");
    let unknown = storyteller(&[
        "bench",
        "--decoders",
        "lstm",
        "--dataset",
        "d",
        "--features",
        "f",
        "--out",
        "o",
    ]);
    assert_eq!(unknown.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("show-tell-par"));
}
