//! A property harness over the model directory's `config.json` reader: valid configs
//! mutated as values (numbers out of range, wrong types, removed and extra fields, other
//! formats) and as bytes; every input must load or be refused with an error, never panic,
//! and a loaded config must be one its own validation accepts.
//!
//! ```text
//! STORYTELLER_FUZZ_ITERATIONS=100000 cargo test -p storyteller --test fuzz_config -- --nocapture
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde_json::Value;
use storyteller::{
    BeamSearch, CaptionDecoderConfig, EncoderRef, ModelConfig, ModelLayout, PreprocessConfig,
};

/// SplitMix64: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Valid configs of every format this version reads.
fn seeds() -> Vec<Value> {
    let mut config = ModelConfig::new(
        CaptionDecoderConfig::new(40)
            .with_d_embed(16)
            .with_d_hidden(32),
        PreprocessConfig::imagenet(64),
        EncoderRef {
            weights: "encoder.bpk".into(),
            hash: "sha256:abc".into(),
        },
    );
    config.beam = BeamSearch::new().with_width(5);
    let current = serde_json::to_value(&config).unwrap();
    let mut v2 = current.clone();
    v2["format"] = "storyteller-model/2".into();
    let mut with_files = current.clone();
    with_files["files"] =
        serde_json::json!({"vocab.json": "sha256:00", "decoder.bpk": "sha256:11"});
    vec![current, v2, with_files]
}

/// Every path to a leaf or an object member of `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    if let Value::Object(map) = value {
        for (key, child) in map {
            prefix.push(key.clone());
            paths(child, prefix, out);
            prefix.pop();
        }
    }
}

/// The value at `path`, when an earlier mutation left it there.
fn at<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let pointer: String = path
        .iter()
        .map(|key| format!("/{}", key.replace('~', "~0").replace('/', "~1")))
        .collect();
    value.pointer_mut(&pointer)
}

/// A hostile replacement value.
fn hostile(rng: &mut Rng) -> Value {
    let numbers = [
        0.0,
        -1.0,
        1e300,
        -1e300,
        4_294_967_296.0,
        1.5,
        1e-300,
        1_000_000.0,
        2048.0,
        100_000.0,
    ];
    match rng.below(9) {
        0 => numbers[rng.below(numbers.len())].into(),
        1 => (rng.next() as i64).into(),
        2 => u64::MAX.into(),
        3 => Value::Null,
        4 => "NaN".into(),
        5 => Value::Bool(rng.below(2) == 0),
        6 => Value::Array(vec![1.into(), "x".into()]),
        7 => serde_json::json!({"nested": {"deep": [1, 2, 3]}}),
        _ => "x".repeat(rng.below(5000)).into(),
    }
}

fn mutate(seed: &Value, rng: &mut Rng) -> Vec<u8> {
    let mut value = seed.clone();
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    for _ in 0..1 + rng.below(4) {
        let path = &all[rng.below(all.len())];
        if path.is_empty() {
            continue;
        }
        match rng.below(4) {
            0 => {
                let (last, parent) = path.split_last().unwrap();
                if let Some(Value::Object(map)) = at(&mut value, parent) {
                    map.remove(last);
                }
            }
            1 => {
                if let Some(Value::Object(map)) = at(&mut value, &path[..path.len() - 1]) {
                    map.insert(format!("extra{}", rng.below(10)), hostile(rng));
                }
            }
            _ => {
                if let Some(slot) = at(&mut value, path) {
                    *slot = hostile(rng);
                }
            }
        }
    }
    let mut bytes = serde_json::to_vec_pretty(&value).unwrap();
    // Some inputs are also damaged as bytes.
    if rng.below(4) == 0 && !bytes.is_empty() {
        match rng.below(3) {
            0 => bytes.truncate(rng.below(bytes.len())),
            1 => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            _ => {
                let i = rng.below(bytes.len());
                bytes.insert(i, rng.next() as u8);
            }
        }
    }
    bytes
}

#[test]
fn hostile_configs_are_errors_never_panics() {
    let iterations: usize = std::env::var("STORYTELLER_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let dir = tempfile::tempdir().unwrap();
    let file = ModelLayout::new(dir.path()).config();
    let seeds = seeds();
    for seed in &seeds {
        std::fs::write(&file, serde_json::to_vec(seed).unwrap()).unwrap();
        ModelConfig::load(dir.path()).expect("every seed is a valid config");
    }
    let mut rng = Rng(0x5eed);
    let (mut loaded, mut refused, mut panics) = (0usize, 0usize, Vec::new());
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for iteration in 0..iterations {
        let bytes = mutate(&seeds[iteration % seeds.len()], &mut rng);
        std::fs::write(&file, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| {
            ModelConfig::load(dir.path()).map(|config| config.validate())
        })) {
            Ok(Ok(Ok(()))) => loaded += 1,
            Ok(Ok(Err(reason))) => {
                panics.push((iteration, format!("loaded but invalid: {reason}")))
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => panics.push((iteration, String::from_utf8_lossy(&bytes).into_owned())),
        }
    }
    std::panic::set_hook(quiet);
    println!(
        "config.json: {iterations} inputs, {} panics, {refused} errors, {loaded} ok",
        panics.len()
    );
    assert!(
        panics.is_empty(),
        "first failures: {:?}",
        &panics[..panics.len().min(3)]
    );
}
