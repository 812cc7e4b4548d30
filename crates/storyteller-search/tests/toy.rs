//! Greedy and beam search on hand-written log-probability tables.

mod common;

use common::{END, TableDecoder, device, image_ids, ln, pseudo_random_row};
use storyteller_search::{
    BeamSearch, GreedySearch, Hypothesis, Search, SearchError, StepDecoder, length_penalized,
};

const A: u32 = 4;
const B: u32 = 5;

/// A row over the 6-token vocabulary <pad> <start> <end> <unk> a b.
fn row(end: f32, a: f32, b: f32) -> Vec<f32> {
    ln(&[0.0, 0.0, end, 0.0, a, b])
}

fn assert_same(got: &[Vec<Hypothesis>], expected: &[Vec<Hypothesis>]) {
    assert_eq!(got.len(), expected.len());
    for (image, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g.len(), e.len(), "image {image}");
        for (g, e) in g.iter().zip(e) {
            assert_eq!(
                (&g.tokens, g.finished),
                (&e.tokens, e.finished),
                "image {image}"
            );
            assert!(
                (g.log_prob - e.log_prob).abs() < 1e-6,
                "image {image}: {g:?} vs {e:?}"
            );
            assert!(
                (g.score - e.score).abs() < 1e-6,
                "image {image}: {g:?} vs {e:?}"
            );
        }
    }
}

#[test]
fn width_one_equals_greedy() {
    for seed in 0..20 {
        let decoder = TableDecoder {
            vocab_size: 7,
            log_probs: |image: usize, prefix: &[u32]| pseudo_random_row(seed, image, prefix, 7),
        };
        let features = image_ids(&[0, 1, 2, 3, 4], 3);
        let greedy = GreedySearch::new()
            .with_max_len(6)
            .search(&decoder, features.clone())
            .unwrap();
        let beam = BeamSearch::new()
            .with_width(1)
            .with_max_len(6)
            .search(&decoder, features.clone())
            .unwrap();
        assert_same(&beam, &greedy);

        // A length penalty only changes the score, never the path of a single beam.
        let penalized = BeamSearch::new()
            .with_width(1)
            .with_max_len(6)
            .with_length_penalty(0.7)
            .search(&decoder, features)
            .unwrap();
        for (p, g) in penalized.iter().zip(&greedy) {
            let (p, g) = (&p[0], &g[0]);
            assert_eq!(p.tokens, g.tokens);
            assert!((p.log_prob - g.log_prob).abs() < 1e-6);
            let expected = length_penalized(g.log_prob, g.len(), 0.7);
            assert!((p.score - expected).abs() < 1e-6);
        }
    }
}

#[test]
fn beam_three_finds_a_better_caption_than_greedy() {
    // Greedy takes "a" (0.5) and then <end> (0.35): 0.175.
    // Beam search keeps "b" (0.45) and finds "b" <end>: 0.405.
    let decoder = TableDecoder {
        vocab_size: 6,
        log_probs: |_: usize, prefix: &[u32]| match prefix {
            [] => row(0.05, 0.5, 0.45),
            [A] => row(0.35, 0.33, 0.32),
            [B] => row(0.9, 0.05, 0.05),
            _ => row(0.5, 0.25, 0.25),
        },
    };
    let features = image_ids(&[0], 2);
    let greedy = GreedySearch::new()
        .search(&decoder, features.clone())
        .unwrap();
    assert_eq!(greedy[0][0].tokens, vec![A]);
    assert!((greedy[0][0].log_prob - 0.175f32.ln()).abs() < 1e-5);

    let beam = BeamSearch::new()
        .with_width(3)
        .search(&decoder, features)
        .unwrap();
    let best = &beam[0][0];
    assert_eq!(best.tokens, vec![B]);
    assert!(best.finished);
    assert!((best.log_prob - 0.405f32.ln()).abs() < 1e-5);
    assert!(best.score > greedy[0][0].score);
}

#[test]
fn end_finishes_a_hypothesis_without_the_end_token() {
    let decoder = TableDecoder {
        vocab_size: 6,
        log_probs: |_: usize, prefix: &[u32]| match prefix.len() {
            0 => row(0.1, 0.6, 0.3),
            1 => row(0.7, 0.2, 0.1),
            _ => row(0.9, 0.05, 0.05),
        },
    };
    let features = image_ids(&[0, 1], 2);
    for search in [
        Search::from(GreedySearch::new()),
        Search::from(BeamSearch::new().with_width(3).with_n_best(3)),
    ] {
        for hypotheses in search.search(&decoder, features.clone()).unwrap() {
            for h in hypotheses {
                assert!(h.finished, "{h:?}");
                assert!(!h.tokens.contains(&END), "{h:?}");
                assert!(h.len() <= 3);
            }
        }
    }
    let greedy = GreedySearch::new().search(&decoder, features).unwrap();
    assert_eq!(greedy[0][0].tokens, vec![A]);
    assert!((greedy[0][0].log_prob - (0.6f32 * 0.7).ln()).abs() < 1e-6);
    assert_eq!(greedy[0][0].len(), 2);
}

#[test]
fn no_beam_finishing_returns_the_best_unfinished() {
    // <end> has probability 0 everywhere: nothing ever finishes.
    let decoder = TableDecoder {
        vocab_size: 6,
        log_probs: |_: usize, prefix: &[u32]| {
            if prefix.last() == Some(&A) {
                row(0.0, 0.3, 0.7)
            } else {
                row(0.0, 0.6, 0.4)
            }
        },
    };
    let features = image_ids(&[0, 1, 2], 2);
    let beam = BeamSearch::new()
        .with_width(3)
        .with_n_best(3)
        .with_max_len(5)
        .with_length_penalty(0.5)
        .search(&decoder, features.clone())
        .unwrap();
    for hypotheses in &beam {
        assert_eq!(hypotheses.len(), 3);
        for pair in hypotheses.windows(2) {
            assert!(pair[0].score >= pair[1].score);
        }
        for h in hypotheses {
            assert!(!h.finished);
            assert_eq!(h.tokens.len(), 5);
            assert!((h.score - length_penalized(h.log_prob, 5, 0.5)).abs() < 1e-6);
        }
        // a b a b a: 0.6 * 0.7 * 0.6 * 0.7 * 0.6
        assert_eq!(hypotheses[0].tokens, vec![A, B, A, B, A]);
    }
    let greedy = GreedySearch::new()
        .with_max_len(5)
        .search(&decoder, features)
        .unwrap();
    assert!(!greedy[0][0].finished);
    assert_eq!(greedy[0][0].tokens, vec![A, B, A, B, A]);
}

#[test]
fn finished_hypotheses_rank_before_unfinished_ones() {
    // "a" <end> finishes with 0.6 * 0.5 = 0.3; the unfinished "b b" (0.4 * 0.9 = 0.36) scores
    // higher but is cut by max_len = 2.
    let decoder = TableDecoder {
        vocab_size: 6,
        log_probs: |_: usize, prefix: &[u32]| match prefix {
            [] => row(0.0, 0.6, 0.4),
            [A] => row(0.5, 0.25, 0.25),
            _ => row(0.0, 0.1, 0.9),
        },
    };
    let beam = BeamSearch::new()
        .with_width(2)
        .with_n_best(2)
        .with_max_len(2)
        .search(&decoder, image_ids(&[0], 2))
        .unwrap();
    let [first, second] = &beam[0][..] else {
        panic!("expected two hypotheses, got {:?}", beam[0]);
    };
    assert!(first.finished && !second.finished);
    assert_eq!(first.tokens, vec![A]);
    assert_eq!(second.tokens, vec![B, B]);
    assert!(second.score > first.score);
}

/// "a" <end> has the higher probability (0.3), "b b b" <end> the higher mean (0.2304 over 4).
fn penalty_decoder() -> TableDecoder<impl Fn(usize, &[u32]) -> Vec<f32>> {
    TableDecoder {
        vocab_size: 6,
        log_probs: |_: usize, prefix: &[u32]| match prefix {
            [] => row(0.0, 0.6, 0.4),
            [A] => row(0.5, 0.25, 0.25),
            [B] | [B, B] => row(0.2, 0.0, 0.8),
            [B, B, B] => row(0.9, 0.05, 0.05),
            _ => row(0.05, 0.475, 0.475),
        },
    }
}

#[test]
fn length_penalty_changes_the_ranking() {
    let search = |alpha: f32| {
        BeamSearch::new()
            .with_width(2)
            .with_n_best(2)
            .with_length_penalty(alpha)
            .search(&penalty_decoder(), image_ids(&[0], 2))
            .unwrap()
            .remove(0)
    };
    let raw = search(0.0);
    assert_eq!(raw[0].tokens, vec![A]);
    assert_eq!(raw[1].tokens, vec![B, B, B]);
    assert!((raw[0].score - 0.3f32.ln()).abs() < 1e-6);

    let mean = search(1.0);
    assert_eq!(mean[0].tokens, vec![B, B, B]);
    assert_eq!(mean[1].tokens, vec![A]);
    assert!((mean[0].score - 0.2304f32.ln() / 4.0).abs() < 1e-6);
    assert!((mean[1].score - 0.3f32.ln() / 2.0).abs() < 1e-6);
    // The penalty ranks; it never changes the log-probabilities.
    assert!((mean[0].log_prob - raw[1].log_prob).abs() < 1e-7);
}

#[test]
fn ties_go_to_the_lowest_beam_then_token() {
    // Four equally likely words 4..=7, <end> unlikely: every partial caption ties.
    let decoder = TableDecoder {
        vocab_size: 8,
        log_probs: |_: usize, _: &[u32]| ln(&[0.0, 0.0, 0.04, 0.0, 0.24, 0.24, 0.24, 0.24]),
    };
    let features = image_ids(&[0, 1], 2);
    let greedy = GreedySearch::new()
        .with_max_len(4)
        .search(&decoder, features.clone())
        .unwrap();
    assert_eq!(greedy[1][0].tokens, vec![4, 4, 4, 4]);

    let beam = |features| {
        BeamSearch::new()
            .with_width(3)
            .with_n_best(3)
            .with_max_len(4)
            .search(&decoder, features)
            .unwrap()
    };
    let first = beam(features.clone());
    let tokens: Vec<_> = first[1].iter().map(|h| h.tokens.clone()).collect();
    assert_eq!(
        tokens,
        vec![vec![4, 4, 4, 4], vec![4, 4, 4, 5], vec![4, 4, 4, 6]]
    );
    assert_eq!(first, beam(features));
}

#[test]
fn n_best_lists_are_ranked_and_sized() {
    let decoder = TableDecoder {
        vocab_size: 9,
        log_probs: |image: usize, prefix: &[u32]| pseudo_random_row(7, image, prefix, 9),
    };
    let results = BeamSearch::new()
        .with_width(4)
        .with_n_best(4)
        .with_max_len(8)
        .with_length_penalty(0.6)
        .search(&decoder, image_ids(&[0, 1, 2, 3, 4, 5], 2))
        .unwrap();
    for hypotheses in results {
        assert_eq!(hypotheses.len(), 4);
        let finished: Vec<_> = hypotheses.iter().map(|h| h.finished).collect();
        assert!(finished.windows(2).all(|w| w[0] >= w[1]), "finished first");
        for pair in hypotheses.windows(2) {
            if pair[0].finished == pair[1].finished {
                assert!(pair[0].score >= pair[1].score);
            }
        }
    }
}

#[test]
fn max_len_one_takes_a_single_step() {
    let decoder = penalty_decoder();
    let beam = BeamSearch::new()
        .with_max_len(1)
        .with_n_best(2)
        .search(&decoder, image_ids(&[0], 2))
        .unwrap();
    assert_eq!(beam[0].len(), 2);
    assert_eq!(beam[0][0].tokens, vec![A]);
    assert_eq!(beam[0][1].tokens, vec![B]);
    assert!(!beam[0][0].finished);
}

#[test]
fn empty_batch_gives_empty_results() {
    let decoder = penalty_decoder();
    let features = burn::tensor::Tensor::<2>::zeros([0, 2], &device());
    assert!(
        BeamSearch::new()
            .search(&decoder, features.clone())
            .unwrap()
            .is_empty()
    );
    assert!(
        GreedySearch::new()
            .search(&decoder, features)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn special_tokens_outside_the_vocabulary_are_errors() {
    let decoder = penalty_decoder();
    let err = BeamSearch::new()
        .with_start_token(6)
        .search(&decoder, image_ids(&[0], 2))
        .unwrap_err();
    assert_eq!(
        err,
        SearchError::TokenOutOfVocab {
            name: "<start>",
            token: 6,
            vocab_size: 6
        }
    );
    assert!(
        err.to_string()
            .contains("outside the decoder's vocabulary of 6 tokens")
    );
    let err = GreedySearch::new()
        .with_end_token(10)
        .search(&decoder, image_ids(&[0], 2))
        .unwrap_err();
    assert!(matches!(
        err,
        SearchError::TokenOutOfVocab { name: "<end>", .. }
    ));
}

/// A decoder that claims a vocabulary of 6 but returns 5 columns.
struct Broken;

impl StepDecoder for Broken {
    type State = ();
    fn vocab_size(&self) -> usize {
        6
    }
    fn init_state(&self, _: burn::tensor::Tensor<2>) {}
    fn step(
        &self,
        tokens: burn::tensor::Tensor<1, burn::tensor::Int>,
        _: (),
    ) -> (burn::tensor::Tensor<2>, ()) {
        (
            burn::tensor::Tensor::zeros([tokens.dims()[0], 5], &device()),
            (),
        )
    }
    fn reorder_state(&self, _: (), _: burn::tensor::Tensor<1, burn::tensor::Int>) {}
}

#[test]
fn a_decoder_returning_the_wrong_shape_is_an_error() {
    let err = BeamSearch::new()
        .search(&Broken, image_ids(&[0, 1], 2))
        .unwrap_err();
    assert_eq!(
        err,
        SearchError::DecoderShape {
            expected: [2, 6],
            found: [2, 5]
        }
    );
    assert!(
        GreedySearch::new()
            .search(&Broken, image_ids(&[0], 2))
            .is_err()
    );
}
