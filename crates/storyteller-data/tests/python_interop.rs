//! Feature caches written by Rust are readable by Python's `safetensors`,
//! and caches written by Python are readable here.

mod common;

use std::process::Command;

use storyteller_data::{CacheKey, FeatureCache, FeatureCacheWriter, PreprocessConfig};

const READ: &str = r#"
import json, sys
from safetensors import safe_open
with safe_open(sys.argv[1], "np") as f:
    meta = f.metadata()
    x = f.get_tensor("features")
print(json.dumps({
    "shape": list(x.shape), "dtype": str(x.dtype),
    "ids": json.loads(meta["image_ids"]), "encoder": meta["encoder"],
    "preprocess": json.loads(meta["preprocess"]), "values": [float(v) for v in x.ravel()],
}))
"#;

const WRITE: &str = r#"
import json, sys
import numpy as np
from safetensors.numpy import save_file
x = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
save_file({"features": x}, sys.argv[1], metadata={
    "image_ids": json.dumps(["p.jpg", "q.jpg"]), "encoder": "sha256:py",
    "preprocess": json.dumps({"crop": 224, "resize": 256, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}),
})
"#;

#[test]
fn python_reads_a_rust_cache_and_rust_reads_a_python_cache() {
    let Some(python) = common::python("python_reads_a_rust_cache") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("features.safetensors");
    let key = CacheKey::new("sha256:0123", &PreprocessConfig::default(), 4);
    let mut writer = FeatureCacheWriter::create(&path, key).unwrap();
    writer
        .push("1000092795.jpg", &[0.5, -1.0, 2.25, 1e-3])
        .unwrap();
    writer.push("café.jpg", &[4.0, 5.0, 6.0, 7.0]).unwrap();
    writer.finish().unwrap();

    let out = Command::new(&python)
        .args(["-c", READ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["shape"], serde_json::json!([2, 4]));
    assert_eq!(read["dtype"], "float32");
    assert_eq!(
        read["ids"],
        serde_json::json!(["1000092795.jpg", "café.jpg"])
    );
    assert_eq!(read["encoder"], "sha256:0123");
    assert_eq!(read["preprocess"]["crop"], 224);
    let values: Vec<f32> = read["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(values, [0.5, -1.0, 2.25, 1e-3, 4.0, 5.0, 6.0, 7.0]);

    let py_path = dir.path().join("python.safetensors");
    let out = Command::new(&python)
        .args(["-c", WRITE])
        .arg(&py_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Python's JSON spells the settings differently; they compare as JSON values.
    let key = CacheKey::new("sha256:py", &PreprocessConfig::default(), 3);
    let cache = FeatureCache::open_expecting(&py_path, &key).unwrap();
    assert_eq!(cache.get("q.jpg").unwrap(), [0.75, 1.0, 1.25]);
}
