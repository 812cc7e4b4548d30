//! Criterion bench of greedy and beam-3 search on the PyTorch anchor's decoder shapes
//! (vocabulary 8000, embedding 256, hidden 512, 20 tokens) at batch 1 and 32.
//!
//! `benches/search_vs_torch.py` runs the side-by-side comparison with PyTorch (batch 1, 32 and
//! 1024) and prints the ratios.

mod search_lstm;

use burn::prelude::*;
use burn::tensor::Distribution;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use search_lstm::{D_FEATURE, MAX_LEN, anchor_decoder};
use storyteller_search::{BeamSearch, GreedySearch, Search};

fn bench(c: &mut Criterion) {
    let device = Device::flex();
    let decoder = anchor_decoder(&device);
    let mut group = c.benchmark_group("search");
    group.sample_size(10);
    for batch in [1usize, 32] {
        let features =
            Tensor::<2>::random([batch, D_FEATURE], Distribution::Normal(0.0, 1.0), &device);
        group.throughput(Throughput::Elements(batch as u64));
        let searches: [(&str, Search); 2] = [
            ("greedy", GreedySearch::new().with_max_len(MAX_LEN).into()),
            (
                "beam3",
                BeamSearch::new().with_width(3).with_max_len(MAX_LEN).into(),
            ),
        ];
        for (name, search) in searches {
            group.bench_with_input(BenchmarkId::new(name, batch), &features, |b, features| {
                b.iter(|| {
                    search
                        .search(&decoder, features.clone())
                        .expect("valid search")
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
