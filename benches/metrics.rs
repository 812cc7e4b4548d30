//! Criterion benches of the captioning metrics on a 5,000-image x 5-reference corpus.
//!
//! `cargo bench -p storyteller-benches --bench metrics`

use criterion::{Criterion, criterion_group, criterion_main};
use storyteller_metrics::bleu::{BleuFlavour, coco_bleu};
use storyteller_metrics::{CiderConfig, Corpus, cider_d, evaluate, precision_recall_f1, rouge_l};

/// A deterministic caption-like corpus: words drawn from a skewed 400-word vocabulary.
fn corpus(images: usize) -> Corpus {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Square of a uniform draw: frequent words are frequent, as in captions.
        let u = (state % 1_000_000) as f64 / 1_000_000.0;
        (u * u * n as f64) as u32
    };
    let mut caption = |len: u32| (0..len).map(|_| next(400)).collect::<Vec<u32>>();
    let samples: Vec<(Vec<u32>, Vec<Vec<u32>>)> = (0..images)
        .map(|_| {
            let refs: Vec<Vec<u32>> = (0..5).map(|i| caption(8 + i % 7)).collect();
            let mut hyp = refs[0].clone();
            hyp.truncate(9);
            hyp.extend(caption(3));
            (hyp, refs)
        })
        .collect();
    Corpus::from_tokens(samples).expect("every image has references")
}

fn metrics(c: &mut Criterion) {
    let corpus = corpus(5000);
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("metrics_5000x5");
    group.sample_size(20);
    group.bench_function("bleu_coco_1_thread", |b| {
        b.iter(|| single.install(|| coco_bleu(&corpus, 4).unwrap()))
    });
    group.bench_function("rouge_l_1_thread", |b| {
        b.iter(|| single.install(|| rouge_l(&corpus).unwrap()))
    });
    group.bench_function("cider_d_1_thread", |b| {
        b.iter(|| single.install(|| cider_d(&corpus, CiderConfig::default()).unwrap()))
    });
    group.bench_function("prf_1_thread", |b| {
        b.iter(|| single.install(|| precision_recall_f1(&corpus).unwrap()))
    });
    group.bench_function("all_1_thread", |b| {
        b.iter(|| single.install(|| evaluate(&corpus, BleuFlavour::Coco).unwrap()))
    });
    group.bench_function("all_all_threads", |b| {
        b.iter(|| evaluate(&corpus, BleuFlavour::Coco).unwrap())
    });
    group.finish();
}

criterion_group!(benches, metrics);
criterion_main!(benches);
