//! A beam at least as wide as the number of sequences is an exhaustive search.

mod common;

use common::{END, TableDecoder, image_ids, pseudo_random_row};
use storyteller_search::{BeamSearch, length_penalized};

const VOCAB: usize = 5;
const MAX_LEN: usize = 4;

/// Every finished caption (at most MAX_LEN tokens with <end>) and every unfinished one
/// (MAX_LEN tokens, no <end>) with its log-probability, summed in f32 in step order.
/// A caption and its summed log-probability.
type Scored = (Vec<u32>, f32);

fn enumerate(seed: u64, image: usize) -> (Vec<Scored>, Vec<Scored>) {
    let mut finished = Vec::new();
    let mut unfinished = Vec::new();
    let mut frontier = vec![(Vec::<u32>::new(), 0.0f32)];
    for step in 0..MAX_LEN {
        let mut next = Vec::new();
        for (prefix, log_prob) in frontier {
            let row = pseudo_random_row(seed, image, &prefix, VOCAB);
            for token in 0..VOCAB as u32 {
                let value = log_prob + row[token as usize];
                if token == END {
                    finished.push((prefix.clone(), value));
                } else {
                    let mut longer = prefix.clone();
                    longer.push(token);
                    if step + 1 == MAX_LEN {
                        unfinished.push((longer, value));
                    } else {
                        next.push((longer, value));
                    }
                }
            }
        }
        frontier = next;
    }
    (finished, unfinished)
}

#[test]
fn wide_beam_equals_exhaustive_search() {
    // 4^3 + ... = 85 finished and 4^4 = 256 unfinished sequences; 5^4 = 625 bounds them all.
    let width = VOCAB.pow(MAX_LEN as u32);
    for seed in 0..6 {
        for alpha in [0.0f32, 0.8] {
            let decoder = TableDecoder {
                vocab_size: VOCAB,
                log_probs: move |image: usize, prefix: &[u32]| {
                    pseudo_random_row(seed, image, prefix, VOCAB)
                },
            };
            let n_best = 10;
            let results = BeamSearch::new()
                .with_width(width)
                .with_n_best(n_best)
                .with_max_len(MAX_LEN)
                .with_length_penalty(alpha)
                .search(&decoder, image_ids(&[0, 1, 2], 2))
                .unwrap();
            for (image, got) in results.iter().enumerate() {
                let (finished, _) = enumerate(seed, image);
                let mut expected: Vec<(Vec<u32>, f32, f32)> = finished
                    .into_iter()
                    .map(|(t, lp)| {
                        let score = length_penalized(lp, t.len() + 1, alpha);
                        (t, lp, score)
                    })
                    .collect();
                expected.sort_by(|a, b| b.2.total_cmp(&a.2));
                assert_eq!(got.len(), n_best);
                for (g, (tokens, log_prob, score)) in got.iter().zip(&expected) {
                    assert!(g.finished);
                    assert_eq!(&g.tokens, tokens, "seed {seed} alpha {alpha} image {image}");
                    assert!((g.log_prob - log_prob).abs() < 1e-5);
                    assert!((g.score - score).abs() < 1e-5);
                }
            }
        }
    }
}

#[test]
fn wide_beam_without_end_returns_the_best_unfinished() {
    // <end> made impossible: the best of the 4^4 unfinished sequences must come back.
    let decoder = TableDecoder {
        vocab_size: VOCAB,
        log_probs: |image: usize, prefix: &[u32]| {
            let mut row = pseudo_random_row(3, image, prefix, VOCAB);
            row[END as usize] = f32::NEG_INFINITY;
            row
        },
    };
    let results = BeamSearch::new()
        .with_width(VOCAB.pow(MAX_LEN as u32))
        .with_max_len(MAX_LEN)
        .search(&decoder, image_ids(&[0, 1], 2))
        .unwrap();
    for (image, got) in results.iter().enumerate() {
        let (_, unfinished) = enumerate(3, image);
        let best = unfinished
            .iter()
            .filter(|(t, _)| !t.contains(&END))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert!(!got[0].finished);
        assert_eq!(got[0].tokens, best.0);
    }
}
