//! The attention decoder end to end through the binary: `extract --grid 2`, `train --decoder
//! show-attend-tell`, `caption --attention` (one PNG per word and a contact sheet), `serve`
//! (the API returns the weights), and `import` of a tutorial-layout state dict with its word
//! map. A seeded random ResNet-50 on 64 px crops (a 2x2 last map) stands in for pretrained
//! weights.

mod common;
mod server;

use std::collections::HashMap;
use std::path::Path;

use common::{path, random_encoder, storyteller, succeed};
use serde_json::Value;

/// Every row of `weights` has `regions` values summing to 1.
fn check_maps(maps: &Value, words: usize, regions: usize) {
    assert_eq!(maps["grid"], 2, "{maps}");
    let rows = maps["weights"].as_array().unwrap();
    assert_eq!(rows.len(), words, "one map per word: {maps}");
    for row in rows {
        let values: Vec<f64> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(values.len(), regions);
        let sum: f64 = values.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "weights sum to {sum}");
    }
}

#[test]
fn an_attention_model_trains_captions_with_maps_and_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let dataset = tmp.path().join("shapes");
    succeed(&[
        "synth",
        "--out",
        path(&dataset),
        "--images",
        "40",
        "--size",
        "72",
        "--seed",
        "9",
    ]);
    let weights = tmp.path().join("encoder.bpk");
    random_encoder(&weights, 17);
    let grid_cache = tmp.path().join("grid.safetensors");
    let extract = |out: &Path, grid: Option<&str>| {
        let mut args = vec![
            "extract",
            "--dataset",
            path(&dataset),
            "--weights",
            path(&weights),
            "--out",
            path(out),
            "--image-size",
            "64",
            "--json",
        ];
        if let Some(grid) = grid {
            args.extend(["--grid", grid]);
        }
        succeed(&args);
    };
    extract(&grid_cache, Some("2"));
    let model = tmp.path().join("model");
    let train = |features: &Path, extra: &[&str]| {
        let mut args = vec![
            "train",
            "--dataset",
            path(&dataset),
            "--features",
            path(features),
            "--weights",
            path(&weights),
            "--out",
            path(&model),
            "--decoder",
            "show-attend-tell",
            "--epochs",
            "2",
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
            "--dropout",
            "0.1",
            "--json",
        ];
        args.extend(extra);
        storyteller(&args)
    };
    let run = train(&grid_cache, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["kind"], "show-attend-tell", "{config}");
    assert_eq!(config["decoder"]["grid"], 2, "{config}");

    // Pooled features cannot feed an attention decoder: refused, naming the fix.
    let pooled = tmp.path().join("pooled.safetensors");
    extract(&pooled, None);
    let refused = train(&pooled, &["--overwrite"]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("--grid"), "{message}");

    let image = dataset.join("flickr30k_images").join(first_image(&dataset));
    let maps_dir = tmp.path().join("maps");
    let run = succeed(&[
        "caption",
        "--model",
        path(&model),
        "--attention",
        path(&maps_dir),
        "--json",
        path(&image),
    ]);
    let answer: Value = serde_json::from_slice(&run.stdout).unwrap();
    let best = &answer[0]["captions"][0];
    let words = best["tokens"].as_array().unwrap().len();
    check_maps(&best["attention"], words, 4);
    let folders: Vec<_> = std::fs::read_dir(&maps_dir).unwrap().collect();
    assert_eq!(folders.len(), 1);
    let folder = folders[0].as_ref().unwrap().path();
    let pngs = std::fs::read_dir(&folder)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count();
    assert_eq!(
        pngs,
        words + 1,
        "one PNG per word and the sheet in {}",
        folder.display()
    );
    let sheet = image::open(folder.join("sheet.png")).unwrap();
    assert_eq!(sheet.width(), 224 * (words as u32 + 1).min(5));

    let server = server::Server::start_with(&model, &[]);
    let png = std::fs::read(&image).unwrap();
    let (body_type, body) = server::multipart("image", &png);
    let (status, served) = server.caption("", &body_type, &body);
    assert_eq!(status, 200, "{served}");
    let best = &served["captions"][0];
    check_maps(
        &best["attention"],
        best["tokens"].as_array().unwrap().len(),
        4,
    );
    let (clean, stderr) = server.interrupt();
    assert!(clean, "{stderr}");
}

fn first_image(dataset: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dataset.join("flickr30k_images"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.remove(0)
}

/// A tutorial-layout state dict (random weights, 2048-d regions) and its word map.
fn tutorial_files(dir: &Path, words: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let (f, e, a, h) = (2048usize, 8usize, 6usize, 10usize);
    let v = words.len() + 4;
    let shapes: Vec<(&str, Vec<usize>)> = vec![
        ("attention.encoder_att.weight", vec![a, f]),
        ("attention.encoder_att.bias", vec![a]),
        ("attention.decoder_att.weight", vec![a, h]),
        ("attention.decoder_att.bias", vec![a]),
        ("attention.full_att.weight", vec![1, a]),
        ("attention.full_att.bias", vec![1]),
        ("embedding.weight", vec![v, e]),
        ("decode_step.weight_ih", vec![4 * h, e + f]),
        ("decode_step.weight_hh", vec![4 * h, h]),
        ("decode_step.bias_ih", vec![4 * h]),
        ("decode_step.bias_hh", vec![4 * h]),
        ("init_h.weight", vec![h, f]),
        ("init_h.bias", vec![h]),
        ("init_c.weight", vec![h, f]),
        ("init_c.bias", vec![h]),
        ("f_beta.weight", vec![f, h]),
        ("f_beta.bias", vec![f]),
        ("fc.weight", vec![v, h]),
        ("fc.bias", vec![v]),
    ];
    random_state_dict(dir, &shapes, words, 7)
}

/// A Transformer captioner's state dict in `nn.TransformerDecoder`'s layout (2048-d
/// regions of a 2x2 grid, width 8, 2 heads, 1 layer) with random weights, and a word map of
/// `words`.
fn transformer_files(dir: &Path, words: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let (f, r, d, ff) = (2048usize, 4usize, 8usize, 12usize);
    let v = words.len() + 4;
    let mut shapes: Vec<(String, Vec<usize>)> = vec![
        ("feature_proj.weight".into(), vec![d, f]),
        ("feature_proj.bias".into(), vec![d]),
        ("region_embedding.weight".into(), vec![r, d]),
        ("embedding.weight".into(), vec![v, d]),
        ("decoder.norm.weight".into(), vec![d]),
        ("decoder.norm.bias".into(), vec![d]),
        ("out.weight".into(), vec![v, d]),
        ("out.bias".into(), vec![v]),
    ];
    let layer = "decoder.layers.0";
    for attention in ["self_attn", "multihead_attn"] {
        shapes.push((
            format!("{layer}.{attention}.in_proj_weight"),
            vec![3 * d, d],
        ));
        shapes.push((format!("{layer}.{attention}.in_proj_bias"), vec![3 * d]));
        shapes.push((format!("{layer}.{attention}.out_proj.weight"), vec![d, d]));
        shapes.push((format!("{layer}.{attention}.out_proj.bias"), vec![d]));
    }
    for (name, shape) in [
        ("linear1.weight", vec![ff, d]),
        ("linear1.bias", vec![ff]),
        ("linear2.weight", vec![d, ff]),
        ("linear2.bias", vec![d]),
    ] {
        shapes.push((format!("{layer}.{name}"), shape));
    }
    for norm in ["norm1", "norm2", "norm3"] {
        shapes.push((format!("{layer}.{norm}.weight"), vec![d]));
        shapes.push((format!("{layer}.{norm}.bias"), vec![d]));
    }
    let shapes: Vec<(&str, Vec<usize>)> = shapes
        .iter()
        .map(|(name, shape)| (name.as_str(), shape.clone()))
        .collect();
    random_state_dict(dir, &shapes, words, 11)
}

/// `decoder.safetensors` with uniform random tensors of `shapes`, and `WORDMAP.json`
/// numbering `words` from 1 with the tutorial's specials after them (`<pad>` 0).
fn random_state_dict(
    dir: &Path,
    shapes: &[(&str, Vec<usize>)],
    words: &[&str],
    seed: u64,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut state: rng::Lcg = rng::Lcg(seed);
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .iter()
        .map(|(name, shape)| {
            let count: usize = shape.iter().product();
            let bytes = (0..count)
                .flat_map(|_| (state.next() * 0.2).to_le_bytes())
                .collect();
            (name.to_string(), shape.clone(), bytes)
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = data
        .iter()
        .map(|(name, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .unwrap();
            (name.clone(), view)
        })
        .collect();
    let state_dict = dir.join("decoder.safetensors");
    safetensors::serialize_to_file(views, None, &state_dict).unwrap();
    let mut map: HashMap<&str, usize> =
        words.iter().enumerate().map(|(i, w)| (*w, i + 1)).collect();
    map.insert("<unk>", words.len() + 1);
    map.insert("<start>", words.len() + 2);
    map.insert("<end>", words.len() + 3);
    map.insert("<pad>", 0);
    let word_map = dir.join("WORDMAP.json");
    std::fs::write(&word_map, serde_json::to_string(&map).unwrap()).unwrap();
    (state_dict, word_map)
}

mod rng {
    /// A small linear congruential generator: uniform values in [-1, 1).
    pub struct Lcg(pub u64);

    impl Lcg {
        pub fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }
}

#[test]
fn a_tutorial_decoder_imports_and_captions() {
    let tmp = tempfile::tempdir().unwrap();
    let words = ["a", "red", "circle", "square", "on", "the", "left"];
    let (state_dict, word_map) = tutorial_files(tmp.path(), &words);
    let weights = tmp.path().join("encoder.bpk");
    random_encoder(&weights, 17);
    let model = tmp.path().join("imported");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--state-dict",
            path(&state_dict),
            "--word-map",
            path(&word_map),
            "--weights",
            path(&weights),
            "--grid",
            "2",
            "--image-size",
            "64",
            "--out",
            path(&model),
            "--json",
        ];
        args.extend(extra);
        storyteller(&args)
    };
    let run = import(&[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["vocab_size"], 11, "{summary}");
    assert_eq!(summary["d_hidden"], 10, "{summary}");
    // A second import into the same directory is refused without --overwrite.
    let again = import(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--overwrite"));
    assert!(import(&["--overwrite"]).status.success());

    let image = tmp.path().join("picture.png");
    image::RgbImage::from_fn(80, 64, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let run = succeed(&["caption", "--model", path(&model), "--json", path(&image)]);
    let answer: Value = serde_json::from_slice(&run.stdout).unwrap();
    for word in answer[0]["captions"][0]["tokens"].as_array().unwrap() {
        let word = word.as_str().unwrap();
        assert!(words.contains(&word) || word == "<unk>", "{word}");
    }

    // A word map of another size than the weights is refused, naming it.
    let short = tmp.path().join("short.json");
    std::fs::write(
        &short,
        r#"{"a": 1, "<unk>": 2, "<start>": 3, "<end>": 4, "<pad>": 0}"#,
    )
    .unwrap();
    let run = storyteller(&[
        "import",
        "--state-dict",
        path(&state_dict),
        "--word-map",
        path(&short),
        "--weights",
        path(&weights),
        "--out",
        path(&tmp.path().join("other")),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("word map"));
}

#[test]
fn a_transformer_decoder_imports_and_captions() {
    let tmp = tempfile::tempdir().unwrap();
    let words = ["a", "red", "circle", "square", "on", "the", "left"];
    let (state_dict, word_map) = transformer_files(tmp.path(), &words);
    let weights = tmp.path().join("encoder.bpk");
    random_encoder(&weights, 17);
    let model = tmp.path().join("imported");
    let run = succeed(&[
        "import",
        "--decoder",
        "transformer",
        "--heads",
        "2",
        "--state-dict",
        path(&state_dict),
        "--word-map",
        path(&word_map),
        "--weights",
        path(&weights),
        "--image-size",
        "64",
        "--out",
        path(&model),
        "--json",
    ]);
    let summary: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(summary["kind"], "transformer", "{summary}");
    assert_eq!(summary["grid"], 2, "{summary}");
    assert_eq!(summary["n_layers"], 1, "{summary}");
    assert_eq!(summary["tied_output"], false, "{summary}");
    let image = tmp.path().join("picture.png");
    image::RgbImage::from_fn(80, 64, |x, y| {
        image::Rgb([(x * 3) as u8, (y * 4) as u8, 90])
    })
    .save(&image)
    .unwrap();
    let run = succeed(&["caption", "--model", path(&model), "--json", path(&image)]);
    let answer: Value = serde_json::from_slice(&run.stdout).unwrap();
    for word in answer[0]["captions"][0]["tokens"].as_array().unwrap() {
        let word = word.as_str().unwrap();
        assert!(words.contains(&word) || word == "<unk>", "{word}");
    }
    // Heads that do not divide the width are refused, naming the setting.
    let run = storyteller(&[
        "import",
        "--decoder",
        "transformer",
        "--heads",
        "3",
        "--state-dict",
        path(&state_dict),
        "--word-map",
        path(&word_map),
        "--weights",
        path(&weights),
        "--out",
        path(&tmp.path().join("other")),
    ]);
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("n_heads"));
}
