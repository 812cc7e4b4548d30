//! Searching a batch of images together gives exactly what searching them one at a time does.

mod common;

use burn::tensor::{Tensor, s};
use common::{LstmDecoder, TableDecoder, device, image_ids, pseudo_random_row};
use storyteller_search::{BeamSearch, GreedySearch, Hypothesis, Search};

const IMAGES: usize = 64;

fn one_by_one<D: storyteller_search::StepDecoder>(
    search: &Search,
    decoder: &D,
    features: &Tensor<2>,
) -> Vec<Vec<Hypothesis>> {
    (0..features.dims()[0])
        .map(|i| {
            let row = features.clone().slice(s![i..i + 1, ..]);
            search.search(decoder, row).unwrap().remove(0)
        })
        .collect()
}

fn assert_same(batched: &[Vec<Hypothesis>], single: &[Vec<Hypothesis>], tolerance: f32) {
    assert_eq!(batched.len(), single.len());
    for (image, (b, s)) in batched.iter().zip(single).enumerate() {
        let tokens = |h: &[Hypothesis]| {
            h.iter()
                .map(|h| (h.tokens.clone(), h.finished))
                .collect::<Vec<_>>()
        };
        assert_eq!(tokens(b), tokens(s), "image {image}");
        for (b, s) in b.iter().zip(s) {
            assert!(
                (b.log_prob - s.log_prob).abs() <= tolerance,
                "image {image}"
            );
            assert!((b.score - s.score).abs() <= tolerance, "image {image}");
        }
    }
}

fn searches() -> Vec<Search> {
    vec![
        GreedySearch::new().with_max_len(10).into(),
        BeamSearch::new().with_width(3).with_max_len(10).into(),
        BeamSearch::new()
            .with_width(4)
            .with_n_best(3)
            .with_max_len(10)
            .with_length_penalty(0.7)
            .into(),
    ]
}

#[test]
fn batched_tables_equal_one_by_one() {
    // Host-side tables are exact, so the comparison is exact too.
    let decoder = TableDecoder {
        vocab_size: 11,
        log_probs: |image: usize, prefix: &[u32]| pseudo_random_row(11, image, prefix, 11),
    };
    let ids: Vec<usize> = (0..IMAGES).collect();
    let features = image_ids(&ids, 3);
    for search in searches() {
        let batched = search.search(&decoder, features.clone()).unwrap();
        assert_same(&batched, &one_by_one(&search, &decoder, &features), 0.0);
    }
}

#[test]
fn batched_lstm_equals_one_by_one() {
    // A matrix product may round differently with a different number of rows: tokens must
    // match exactly, scores within float noise.
    let decoder = LstmDecoder::random(5, 16, 8, 24, 40);
    let data: Vec<f32> = (0..IMAGES * 16)
        .map(|i| ((i * 7_919 % 1_000) as f32 / 500.0) - 1.0)
        .collect();
    let features = Tensor::<1>::from_data(data.as_slice(), &device()).reshape([IMAGES, 16]);
    let mut finished = 0;
    for search in searches() {
        let batched = search.search(&decoder, features.clone()).unwrap();
        finished += batched.iter().flatten().filter(|h| h.finished).count();
        assert_same(&batched, &one_by_one(&search, &decoder, &features), 1e-5);
    }
    assert!(
        finished > 0,
        "the test should exercise images leaving the batch"
    );
}
