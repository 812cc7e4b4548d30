//! Parity with pycocoevalcap and NLTK on the stored test vectors.
//!
//! `tests/data/vectors.json` is written by `scripts/make_vectors.py`, which runs
//! the reference implementations (CI regenerates it and fails on drift). Every
//! value must agree to 1e-9.

use serde_json::Value;
use storyteller_metrics::bleu::{Smoothing, coco_bleu, nltk::corpus_bleu_many};
use storyteller_metrics::{
    CiderConfig, Corpus, MetricsError, cider_d, precision_recall_f1, rouge_l,
};

const TOLERANCE: f64 = 1e-9;

struct Checker {
    compared: usize,
    worst: f64,
    failures: Vec<String>,
}

impl Checker {
    fn close(&mut self, what: &str, expected: f64, actual: f64) {
        self.compared += 1;
        let diff = (expected - actual).abs();
        self.worst = self.worst.max(diff);
        if diff > TOLERANCE || actual.is_nan() {
            self.failures
                .push(format!("{what}: expected {expected:e}, got {actual:e}"));
        }
    }

    fn all_close(&mut self, what: &str, expected: &Value, actual: &[f64]) {
        let expected = floats(expected);
        assert_eq!(expected.len(), actual.len(), "{what}: length");
        for (i, (e, a)) in expected.iter().zip(actual).enumerate() {
            self.close(&format!("{what}[{i}]"), *e, *a);
        }
    }
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn corpus_of(refs: &[Value], hyps: &[Value]) -> Corpus {
    Corpus::from_whitespace_tokens(hyps.iter().zip(refs).map(|(h, r)| {
        (
            h.as_str().unwrap(),
            r.as_array().unwrap().iter().map(|s| s.as_str().unwrap()),
        )
    }))
    .unwrap()
}

fn check_nltk(
    checker: &mut Checker,
    what: &str,
    corpus: &Corpus,
    weights: &[Vec<f64>],
    auto_reweigh: bool,
    expected: &Value,
) {
    for method in 0..8u8 {
        let key = format!("method{method}");
        let smoothing = Smoothing::nltk_method(method).unwrap();
        let actual = corpus_bleu_many(corpus, weights, smoothing, auto_reweigh);
        match (&expected[&key], actual) {
            (Value::Object(err), Err(MetricsError::Method6NeedsTrigrams)) => {
                assert_eq!(err["error"], "AssertionError", "{what} {key}");
            }
            (Value::Array(_), Ok(scores)) => {
                checker.all_close(&format!("{what} nltk {key}"), &expected[&key], &scores)
            }
            (e, a) => panic!("{what} {key}: NLTK gave {e}, we gave {a:?}"),
        }
    }
}

#[test]
fn metrics_match_pycocoevalcap_and_nltk() {
    let text = std::fs::read_to_string(
        std::path::Path::new(
            &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
        )
        .join("tests/data/vectors.json"),
    )
    .expect("tests/data/vectors.json (run scripts/make_vectors.py)");
    let vectors: Value = serde_json::from_str(&text).unwrap();
    let weights: Vec<Vec<f64>> = vectors["cumulative_weights"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let mut checker = Checker {
        compared: 0,
        worst: 0.0,
        failures: Vec::new(),
    };
    let mut images = 0;

    for entry in vectors["corpora"].as_array().unwrap() {
        let name = entry["name"].as_str().unwrap();
        let refs = entry["refs"].as_array().unwrap();
        let hyps = entry["hyps"].as_array().unwrap();
        let corpus = corpus_of(refs, hyps);
        images += corpus.len();

        let coco = &entry["coco"];
        let bleu = coco_bleu(&corpus, 4).unwrap();
        checker.all_close(&format!("{name} coco bleu"), &coco["bleu"], &bleu.corpus);
        for (i, (expected, actual)) in coco["bleu_per_image"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&bleu.per_image)
            .enumerate()
        {
            checker.all_close(&format!("{name} coco bleu image {i}"), expected, actual);
        }
        let rouge = rouge_l(&corpus).unwrap();
        checker.close(
            &format!("{name} rouge_l"),
            coco["rouge_l"].as_f64().unwrap(),
            rouge.mean,
        );
        checker.all_close(
            &format!("{name} rouge_l per image"),
            &coco["rouge_l_per_image"],
            &rouge.per_image,
        );
        let cider = cider_d(&corpus, CiderConfig::default()).unwrap();
        checker.close(
            &format!("{name} cider_d"),
            coco["cider_d"].as_f64().unwrap(),
            cider.mean,
        );
        checker.all_close(
            &format!("{name} cider_d per image"),
            &coco["cider_d_per_image"],
            &cider.per_image,
        );

        let nltk = &entry["nltk"];
        let auto_reweigh = nltk["auto_reweigh"].as_bool().unwrap();
        check_nltk(
            &mut checker,
            &format!("{name} corpus"),
            &corpus,
            &weights,
            auto_reweigh,
            &nltk["corpus"],
        );
        for (i, expected) in nltk["sentence"].as_array().unwrap().iter().enumerate() {
            let one = corpus_of(&refs[i..=i], &hyps[i..=i]);
            check_nltk(
                &mut checker,
                &format!("{name} sentence {i}"),
                &one,
                &weights,
                false,
                expected,
            );
        }

        let overlap = precision_recall_f1(&corpus).unwrap();
        let expected = &entry["overlap"];
        let m = overlap.macro_avg;
        checker.all_close(
            &format!("{name} macro prf"),
            &expected["macro"],
            &[m.precision, m.recall, m.f1],
        );
        let m = overlap.micro_avg;
        checker.all_close(
            &format!("{name} micro prf"),
            &expected["micro"],
            &[m.precision, m.recall, m.f1],
        );
        for (i, (e, a)) in expected["per_image"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&overlap.per_image)
            .enumerate()
        {
            let s = a.scores;
            checker.all_close(
                &format!("{name} prf image {i}"),
                e,
                &[s.precision, s.recall, s.f1, a.reference as f64],
            );
        }
    }

    println!(
        "compared {} values over {images} images; largest difference {:e}",
        checker.compared, checker.worst
    );
    assert!(images >= 500, "the vectors must cover at least 500 images");
    assert!(
        checker.failures.is_empty(),
        "{} of {} values differ by more than {TOLERANCE:e}:\n{}",
        checker.failures.len(),
        checker.compared,
        checker
            .failures
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
