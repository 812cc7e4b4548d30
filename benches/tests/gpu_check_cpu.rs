//! The `gpu-check` harness end to end on the CPU at tiny sizes, so that the benchmark code
//! cannot rot: every part runs, parity passes (Flex against Flex), every row is written.
//! Nothing here looks at a time.

use std::process::Command;

use serde_json::Value;

#[test]
fn gpu_check_runs_every_part_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.jsonl");
    let anchor = dir.path().join("torch.jsonl");
    // A stand-in for benches/torch_reference.py's output: one matching row, one line of its table.
    std::fs::write(
        &anchor,
        "{\"part\": \"beam3\", \"batch\": 4, \"max_len\": 20, \"captions_per_s\": 1.0}\n\
         beam3             batch 4            1.0 /s\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_gpu-check"))
        .args([
            "--tiny",
            "--device",
            "cpu",
            "--precisions",
            "f32,f16",
            "--anchor",
        ])
        .arg(&anchor)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let find = |part: &str, key: &str, value: &str| {
        rows.iter()
            .filter(|r| r["part"] == part && r[key].as_str().is_none_or(|v| v == value))
            .count()
    };
    // Parity: three checks and one per encoder precision, all passing, the decoder's searches
    // identical to PyTorch's.
    let parity: Vec<&Value> = rows.iter().filter(|r| r["part"] == "parity").collect();
    assert_eq!(parity.len(), 5, "{stdout}");
    let precisions = parity.iter().filter(|r| r["check"] == "encoder_precision");
    assert_eq!(precisions.count(), 2, "{stdout}");
    assert!(parity.iter().all(|r| r["pass"] == true), "{stdout}");
    assert_eq!(parity[1]["beam3_identical"], true);
    assert_eq!(parity[2]["identical"]["beam3"], 8);
    // Encoder rows per precision (f16 may be reported unsupported), search, train.
    assert_eq!(find("encoder", "prec", "f32"), 2, "{stdout}");
    assert!(find("encoder", "prec", "f16") >= 1, "{stdout}");
    assert_eq!(find("greedy", "", ""), 2);
    assert_eq!(find("beam3", "", ""), 2);
    assert_eq!(find("train_step", "", ""), 1);
    for row in rows
        .iter()
        .filter(|r| r.get("s_per_batch").is_some() || r.get("s_per_step").is_some())
    {
        let rate = row.get("img_per_s").or(row.get("captions_per_s")).unwrap();
        assert!(rate.as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["first_s"].as_f64().unwrap() <= row["warm_s"].as_f64().unwrap(),
            "{row}"
        );
    }
    let loss = rows.iter().find(|r| r["part"] == "train_step").unwrap()["loss"]
        .as_f64()
        .unwrap();
    assert!(loss.is_finite() && loss > 0.0, "loss {loss}");
    // The table compares the one row the stand-in anchor has.
    assert!(
        stdout.contains("part")
            && stdout
                .lines()
                .any(|l| l.starts_with("beam3") && l.ends_with('x')),
        "{stdout}"
    );

    // `--summary` prints the same table from the results file.
    let summary = Command::new(env!("CARGO_BIN_EXE_gpu-check"))
        .arg("--summary")
        .arg(&out)
        .arg("--anchor")
        .arg(&anchor)
        .output()
        .unwrap();
    assert!(summary.status.success());
    let table = String::from_utf8_lossy(&summary.stdout);
    assert!(stdout.ends_with(table.as_ref()), "{table}\nvs\n{stdout}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn gpu_check_names_the_feature_a_backend_needs() {
    let output = Command::new(env!("CARGO_BIN_EXE_gpu-check"))
        .args(["--device", "cuda"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--features cuda"), "{stderr}");
}
