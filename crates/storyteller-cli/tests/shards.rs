//! Sharded extraction end to end: `extract --shard I/N` for every shard, then
//! `features merge`, equals one unsharded `extract` bit for bit; a missing or foreign shard
//! is refused. Uses a seeded random ResNet-50 on 32 px crops (no fixture needed).

use std::path::Path;

use storyteller_data::FeatureCache;

mod common;
use common::{path, storyteller, succeed};

fn extract(dataset: &Path, weights: &Path, out: &Path, batch: &str, shard: Option<&str>) {
    let mut args = vec![
        "extract",
        "--dataset",
        path(dataset),
        "--weights",
        path(weights),
        "--out",
        path(out),
        "--image-size",
        "32",
        "--batch-size",
        batch,
        "--json",
    ];
    if let Some(shard) = shard {
        args.extend(["--shard", shard]);
    }
    succeed(&args);
}

#[test]
fn shards_merge_into_the_unsharded_cache_and_bad_sets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = tmp.path().join("shapes");
    succeed(&[
        "synth",
        "--out",
        path(&dataset),
        "--images",
        "24",
        "--size",
        "40",
        "--seed",
        "5",
    ]);
    let weights = tmp.path().join("encoder.bpk");
    common::random_encoder(&weights, 11);

    let whole = tmp.path().join("whole.safetensors");
    extract(&dataset, &weights, &whole, "8", None);
    // Other batch sizes than the whole run: a row must not depend on its batch.
    let shards: Vec<_> = (0..3)
        .map(|i| {
            let out = tmp.path().join(format!("shard-{i}.safetensors"));
            extract(&dataset, &weights, &out, "3", Some(&format!("{i}/3")));
            out
        })
        .collect();
    let sizes: Vec<usize> = shards
        .iter()
        .map(|s| FeatureCache::open(s).unwrap().len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 24, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n > 0), "{sizes:?}");

    let merged = tmp.path().join("merged.safetensors");
    let run = succeed(&[
        "features",
        "merge",
        "--out",
        path(&merged),
        path(&shards[2]),
        path(&shards[0]),
        path(&shards[1]),
        "--json",
    ]);
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["rows"], 24, "{summary}");
    assert_eq!(summary["shards"], 3);

    let (whole, merged) = (
        FeatureCache::open(&whole).unwrap(),
        FeatureCache::open(&merged).unwrap(),
    );
    assert_eq!(merged.key(), whole.key());
    assert_eq!(merged.image_ids(), whole.image_ids());
    assert!(merged.shard().is_none());
    let bits = |c: &FeatureCache| c.to_vec().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert!(bits(&merged) == bits(&whole), "merged features differ");

    // A missing shard is named; a shard of another encoder is refused.
    let out = tmp.path().join("bad.safetensors");
    let run = storyteller(&[
        "features",
        "merge",
        "--out",
        path(&out),
        path(&shards[0]),
        path(&shards[2]),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("missing shard 1/3"), "{stderr}");
    assert!(!out.exists());

    let other_weights = tmp.path().join("other.bpk");
    common::random_encoder(&other_weights, 12);
    let foreign = tmp.path().join("foreign-1.safetensors");
    extract(&dataset, &other_weights, &foreign, "8", Some("1/3"));
    let run = storyteller(&[
        "features",
        "merge",
        "--out",
        path(&out),
        path(&shards[0]),
        path(&foreign),
        path(&shards[2]),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("encoder"), "{stderr}");

    // Shard numbers are checked by the parser.
    let run = storyteller(&[
        "extract",
        "--dataset",
        path(&dataset),
        "--weights",
        path(&weights),
        "--out",
        path(&out),
        "--shard",
        "3/3",
    ]);
    assert_eq!(run.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&run.stderr).contains("I/N"));
}
