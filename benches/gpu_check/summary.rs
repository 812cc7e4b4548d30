//! The closing table: each rate we measured and, when `benches/torch_reference.py`'s JSON lines are
//! given, PyTorch's rate for the same workload beside it with the ratio ours / PyTorch.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Reads JSON lines: ours (`--out`) or those `benches/torch_reference.py` printed (other lines, like
/// its own table, are skipped).
pub fn load_rows(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|line| line.trim_start().starts_with('{'))
        .map(|line| {
            serde_json::from_str(line).with_context(|| format!("{}: {line}", path.display()))
        })
        .collect()
}

/// The PyTorch precisions a row of ours is compared with. Burn's default f32 matmul on
/// CUDA behaves like TF32, so f32 is shown against both PyTorch's TF32 and true FP32.
fn torch_precisions(prec: Option<&str>) -> Vec<Option<&'static str>> {
    match prec {
        None => vec![None],
        Some("f32") => vec![Some("tf32"), Some("fp32")],
        Some("f16") => vec![Some("fp16-cl")],
        Some("bf16") => vec![Some("bf16")],
        Some(_) => vec![],
    }
}

fn rate(row: &Value) -> Option<f64> {
    row.get("img_per_s")
        .or_else(|| row.get("captions_per_s"))
        .and_then(Value::as_f64)
}

/// PyTorch's rate for `part` at `batch` in precision `prec`.
fn torch_rate(torch: &[Value], part: &str, prec: Option<&str>, batch: u64) -> Option<f64> {
    torch
        .iter()
        .find(|t| {
            t["part"].as_str() == Some(part)
                && t["batch"].as_u64() == Some(batch)
                && t.get("prec").and_then(Value::as_str) == prec
        })
        .and_then(rate)
}

/// The table, one line per measurement (and per PyTorch precision it is compared with).
pub fn table(ours: &[Value], torch: Option<&[Value]>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:<5} {:>6} {:>12} {:>9} {:>9}   {:<8} {:>12} {:>8}",
        "part", "prec", "batch", "ours /s", "first s", "warm s", "pytorch", "pytorch /s", "ratio"
    );
    for row in ours {
        let (Some(part), Some(batch), Some(ours_rate)) =
            (row["part"].as_str(), row["batch"].as_u64(), rate(row))
        else {
            continue;
        };
        let prec = row.get("prec").and_then(Value::as_str);
        let head = format!(
            "{:<11} {:<5} {:>6} {:>12.1} {:>9.2} {:>9.2}",
            part,
            prec.unwrap_or(""),
            batch,
            ours_rate,
            row["first_s"].as_f64().unwrap_or(f64::NAN),
            row["warm_s"].as_f64().unwrap_or(f64::NAN),
        );
        let Some(torch) = torch else {
            let _ = writeln!(out, "{head}");
            continue;
        };
        for torch_prec in torch_precisions(prec) {
            match torch_rate(torch, part, torch_prec, batch) {
                Some(theirs) => {
                    let _ = writeln!(
                        out,
                        "{head}   {:<8} {:>12.1} {:>7.2}x",
                        torch_prec.unwrap_or(""),
                        theirs,
                        ours_rate / theirs
                    );
                }
                None => {
                    let _ = writeln!(out, "{head}   {:<8} {:>12}", torch_prec.unwrap_or(""), "-");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_are_matched_by_part_batch_and_precision() {
        let torch = vec![
            json!({"part": "encoder", "prec": "fp32", "batch": 32, "img_per_s": 100.0}),
            json!({"part": "encoder", "prec": "tf32", "batch": 32, "img_per_s": 200.0}),
            json!({"part": "encoder", "prec": "fp16-cl", "batch": 32, "img_per_s": 400.0}),
            json!({"part": "beam3", "batch": 1, "captions_per_s": 70.0}),
        ];
        let ours = vec![
            json!({"part": "encoder", "prec": "f32", "batch": 32, "img_per_s": 300.0, "first_s": 1.0, "warm_s": 2.0}),
            json!({"part": "encoder", "prec": "f16", "batch": 32, "img_per_s": 200.0}),
            json!({"part": "beam3", "batch": 1, "captions_per_s": 210.0}),
            json!({"part": "beam3", "batch": 8, "captions_per_s": 1.0}),
            json!({"part": "parity", "check": "encoder", "pass": true}),
        ];
        let table = table(&ours, Some(&torch));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 1 + 5, "{table}");
        assert!(
            lines[1].contains("tf32") && lines[1].ends_with("1.50x"),
            "{table}"
        );
        assert!(
            lines[2].contains("fp32") && lines[2].ends_with("3.00x"),
            "{table}"
        );
        assert!(
            lines[3].contains("fp16-cl") && lines[3].ends_with("0.50x"),
            "{table}"
        );
        assert!(lines[4].ends_with("3.00x"), "{table}");
        assert!(lines[5].trim_end().ends_with('-'), "{table}");
        assert_eq!(super::table(&ours, None).lines().count(), 1 + 4);
    }
}
