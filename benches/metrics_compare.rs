//! Times our BLEU + ROUGE-L + CIDEr-D on a pycocoevalcap-format REFS/HYPS pair.
//!
//! Run by `benches/metrics_vs_pycocoevalcap.py`, which times pycocoevalcap on
//! the same files in the same run and prints the ratio:
//!
//! ```text
//! metrics-compare REFS.json HYPS.json RUNS
//! ```
//!
//! Captions are already tokenised and split on whitespace, as pycocoevalcap
//! does. Prints one JSON object: the scores and the median seconds of `RUNS`
//! runs on one thread and on all threads. Timed: building the corpus from the
//! parsed strings, then BLEU-1..4, ROUGE-L and CIDEr-D (not the JSON parsing,
//! which the Python side does not time either).

use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use storyteller_metrics::{CiderConfig, Corpus, bleu::coco_bleu, cider_d, rouge_l};

fn read(path: &str) -> Result<Map<String, Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    match serde_json::from_str(&text).with_context(|| format!("parsing {path}"))? {
        Value::Object(map) => Ok(map),
        _ => bail!("{path}: expected an object keyed by image id"),
    }
}

fn score(refs: &[(String, Vec<String>)], hyps: &Map<String, Value>) -> Result<[f64; 6]> {
    let corpus = Corpus::from_whitespace_tokens(refs.iter().map(|(id, r)| {
        (
            hyps[id].as_str().unwrap_or_default(),
            r.iter().map(String::as_str),
        )
    }))?;
    let bleu = coco_bleu(&corpus, 4)?.corpus;
    let rouge = rouge_l(&corpus)?.mean;
    let cider = cider_d(&corpus, CiderConfig::default())?.mean;
    Ok([bleu[0], bleu[1], bleu[2], bleu[3], rouge, cider])
}

/// Seconds of each stage on the current pool, for the report.
fn breakdown(refs: &[(String, Vec<String>)], hyps: &Map<String, Value>) -> Result<Value> {
    let start = Instant::now();
    let corpus = Corpus::from_whitespace_tokens(refs.iter().map(|(id, r)| {
        (
            hyps[id].as_str().unwrap_or_default(),
            r.iter().map(String::as_str),
        )
    }))?;
    let corpus_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    coco_bleu(&corpus, 4)?;
    let bleu_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    rouge_l(&corpus)?;
    let rouge_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    cider_d(&corpus, CiderConfig::default())?;
    let cider_s = start.elapsed().as_secs_f64();
    Ok(json!({"corpus": corpus_s, "bleu": bleu_s, "rouge_l": rouge_s, "cider_d": cider_s}))
}

fn median_seconds(runs: usize, mut f: impl FnMut() -> Result<[f64; 6]>) -> Result<(f64, [f64; 6])> {
    let mut times = Vec::with_capacity(runs);
    let mut scores = [0.0; 6];
    for _ in 0..runs {
        let start = Instant::now();
        scores = f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], scores))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, refs_path, hyps_path, runs] = args.as_slice() else {
        bail!("usage: metrics-compare REFS.json HYPS.json RUNS");
    };
    let runs: usize = runs.parse().context("RUNS must be a positive integer")?;
    let refs: Vec<(String, Vec<String>)> = read(refs_path)?
        .into_iter()
        .map(|(id, v)| {
            let list = v.as_array().map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            });
            (id, list.unwrap_or_default())
        })
        .collect();
    let hyps = read(hyps_path)?;

    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let (single, scores) = one.install(|| median_seconds(runs, || score(&refs, &hyps)))?;
    let (multi, _) = median_seconds(runs, || score(&refs, &hyps))?;
    let breakdown = one.install(|| breakdown(&refs, &hyps))?;
    let out = json!({
        "images": refs.len(),
        "threads": rayon::current_num_threads(),
        "seconds_single_thread": single,
        "seconds_all_threads": multi,
        "bleu": &scores[..4],
        "rouge_l": scores[4],
        "cider_d": scores[5],
        "single_thread_breakdown_seconds": breakdown,
    });
    println!("{out}");
    Ok(())
}
