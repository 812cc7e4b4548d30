//! Top-k selection on the device with a tie rule that does not depend on the backend.
//!
//! Burn's `topk` sorts whole rows (O(n log n) on the CPU backends) and does not specify which of
//! two equal values comes first. Beam search needs only a handful of candidates out of
//! `beams * vocab_size` per image, and needs ties broken the same way on every backend, so this
//! module selects them with argmax passes instead: `max_dim_with_indices` is O(n) and is
//! documented to return the lowest index among equal values.
//!
//! [`best_continuations`] first takes the maximum of every chunk of `chunk` consecutive
//! log-probabilities (one pass over the data), picks the best `k` chunks, gathers them and picks
//! the best `k` elements inside them. The `k` best elements always lie in the `k` best chunks
//! (each of them makes its chunk at least as good as itself), and ordering chunks by
//! (maximum, chunk index) orders them by their best element under the (value, lowest index)
//! rule. The chosen chunks are gathered in index order, so the lowest position in stage 2 is
//! the lowest index, and the result is exactly the `k` best elements with ties to the lowest
//! index.

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, Transaction};

/// The `k` largest values of every row, ties to the lowest column.
///
/// Duplicates can only appear when a row has fewer than `k` values above `-inf`: a value
/// taken once is replaced by `-inf`, so such a row repeats `-inf` entries at the end.
///
/// # Shapes
///
/// * `values`: `[rows, n]`
/// * returned values and columns: `[rows, min(k, n)]`
pub(crate) fn top_k_rows(values: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let [rows, n] = values.dims();
    let k = k.min(n).max(1);
    let device = values.device();
    let mut remaining = values;
    let mut top_values = Vec::with_capacity(k);
    let mut top_columns = Vec::with_capacity(k);
    // One column of -inf for every pass (one fill, not one per pass).
    let taken_mark = Tensor::full([rows, 1], f32::NEG_INFINITY, &device);
    for taken in 0..k {
        let (value, column) = remaining.clone().max_dim_with_indices(1);
        if taken + 1 < k {
            remaining = remaining.scatter(
                1,
                column.clone(),
                taken_mark.clone(),
                IndexingUpdateOp::Assign,
            );
        }
        top_values.push(value);
        top_columns.push(column);
    }
    (Tensor::cat(top_values, 1), Tensor::cat(top_columns, 1))
}

/// The best continuations of every image, in rank order, read back to the host.
#[derive(Debug)]
pub(crate) struct Candidates {
    /// Candidates per image.
    pub(crate) per_image: usize,
    /// Cumulative log-probability of each candidate, `[images * per_image]`.
    pub(crate) values: Vec<f32>,
    /// The beam (row within its image) each candidate extends.
    pub(crate) beams: Vec<usize>,
    /// The token each candidate appends.
    pub(crate) tokens: Vec<u32>,
}

/// The chunk length that balances the two selection passes, a divisor of `vocab_size` when one
/// is near (otherwise the rows are padded with `-inf`).
fn chunk_len(vocab_size: usize, beams: usize, k: usize) -> usize {
    // Stage 1 costs ~ k * beams * vocab / chunk, stage 2 ~ k * k * chunk.
    let target = ((beams * vocab_size) as f64 / k as f64).sqrt().max(1.0) as usize;
    let target = target.clamp(1, vocab_size.max(1));
    (target / 2..=target * 2)
        .filter(|c| *c >= 1 && vocab_size.is_multiple_of(*c))
        .min_by_key(|c| c.abs_diff(target))
        .unwrap_or(target)
}

/// The `k` best (beam, token) continuations of every image.
///
/// The value of a continuation is `scores[row] + log_probs[row, token]`, computed in `f32` on the
/// device. Candidates are ordered by value, ties to the lower `beam * vocab_size + token`.
///
/// # Arguments
///
/// * `log_probs` - Log-probabilities of the next token for every row; the rows of one image
///   are consecutive.
/// * `scores` - Cumulative log-probability of every row.
/// * `beams` - Rows per image.
/// * `k` - Candidates to return per image (fewer when an image has fewer continuations).
///
/// # Shapes
///
/// * `log_probs`: `[images * beams, vocab_size]`
/// * `scores`: `[images * beams, 1]`
pub(crate) fn best_continuations(
    log_probs: Tensor<2>,
    scores: Tensor<2>,
    beams: usize,
    k: usize,
) -> Candidates {
    let device: Device = log_probs.device();
    let [rows, vocab_size] = log_probs.dims();
    let images = rows / beams;
    let chunk = chunk_len(vocab_size, beams, k);
    let chunks_per_row = vocab_size.div_ceil(chunk);
    let padded = chunks_per_row * chunk;
    let log_probs = if padded == vocab_size {
        log_probs
    } else {
        Tensor::cat(
            vec![
                log_probs,
                Tensor::full([rows, padded - vocab_size], f32::NEG_INFINITY, &device),
            ],
            1,
        )
    };

    // Stage 1: the best chunks of every image.
    let chunk_max: Tensor<2> = log_probs
        .clone()
        .reshape([rows, chunks_per_row, chunk])
        .max_dim(2)
        .reshape([rows, chunks_per_row]);
    let chunk_max = (chunk_max + scores.clone()).reshape([images, beams * chunks_per_row]);
    // In index order, so that stage 2's lowest-position tie rule is the lowest-index rule.
    let best_chunks = top_k_rows(chunk_max, k).1.sort(1);
    let chunks_taken = best_chunks.dims()[1];

    // Stage 2: the best elements inside them.
    let image_offset = Tensor::<1, Int>::arange(0..images as i64, &device).reshape([images, 1]);
    let chunk_rows = (best_chunks.clone()
        + image_offset
            .clone()
            .mul_scalar((beams * chunks_per_row) as i64))
    .reshape([images * chunks_taken]);
    let score_rows = (best_chunks.clone().div_scalar(chunks_per_row as i64)
        + image_offset.mul_scalar(beams as i64))
    .reshape([images * chunks_taken]);
    let gathered = log_probs
        .reshape([rows * chunks_per_row, chunk])
        .select(0, chunk_rows)
        + scores.select(0, score_rows);
    let (values, positions) = top_k_rows(gathered.reshape([images, chunks_taken * chunk]), k);
    let per_image = values.dims()[1];

    let data = Transaction::default()
        .register(best_chunks)
        .register(values)
        .register(positions)
        .execute();
    let best_chunks: Vec<i64> = data[0].iter::<i64>().collect();
    let values: Vec<f32> = data[1].iter::<f32>().collect();
    let positions: Vec<i64> = data[2].iter::<i64>().collect();

    let mut beams_out = Vec::with_capacity(values.len());
    let mut tokens = Vec::with_capacity(values.len());
    for (i, &position) in positions.iter().enumerate() {
        let image = i / per_image;
        let position = position as usize;
        let chunk_id = best_chunks[image * chunks_taken + position / chunk] as usize;
        beams_out.push(chunk_id / chunks_per_row);
        tokens.push(((chunk_id % chunks_per_row) * chunk + position % chunk) as u32);
    }
    Candidates {
        per_image,
        values,
        beams: beams_out,
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device::flex()
    }

    #[test]
    fn chunk_len_prefers_divisors() {
        assert_eq!(8000 % chunk_len(8000, 3, 6), 0);
        assert_eq!(chunk_len(5, 1, 2), 1);
        assert!(chunk_len(7919, 3, 6) >= 1);
    }

    #[test]
    fn top_k_rows_breaks_ties_to_lowest_index() {
        let t = Tensor::<2>::from_data([[1.0, 3.0, 3.0, 0.0, 3.0]], &device());
        let (values, columns) = top_k_rows(t, 4);
        let values: Vec<f32> = values.into_data().iter::<f32>().collect();
        let columns: Vec<i64> = columns.into_data().iter::<i64>().collect();
        assert_eq!(columns, vec![1, 2, 4, 0]);
        for (v, e) in values.iter().zip([3.0, 3.0, 3.0, 1.0]) {
            assert!((v - e).abs() < 1e-7);
        }
    }

    /// Brute force reference: every (beam, token) of an image, sorted by (value desc, index asc).
    fn brute_force(
        lp: &[f32],
        scores: &[f32],
        beams: usize,
        vocab: usize,
        k: usize,
    ) -> Vec<(f32, usize, u32)> {
        let images = scores.len() / beams;
        let mut out = Vec::new();
        for image in 0..images {
            let mut all: Vec<(f32, usize, u32)> = (0..beams * vocab)
                .map(|i| {
                    let row = image * beams + i / vocab;
                    (
                        scores[row] + lp[row * vocab + i % vocab],
                        i / vocab,
                        (i % vocab) as u32,
                    )
                })
                .collect();
            all.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
            out.extend(all.into_iter().take(k));
        }
        out
    }

    #[test]
    fn best_continuations_match_brute_force() {
        // Values on a coarse grid so that many ties occur, odd vocabulary to exercise padding.
        for (vocab, beams, k) in [(37, 3, 6), (40, 2, 4), (5, 1, 2), (3, 4, 8), (101, 1, 2)] {
            let images = 4;
            let rows = images * beams;
            let lp: Vec<f32> = (0..rows * vocab)
                .map(|i| -(((i * 7919 + 13) % 11) as f32) * 0.5)
                .collect();
            let scores: Vec<f32> = (0..rows).map(|r| -((r % 3) as f32) * 0.5).collect();
            let got = best_continuations(
                Tensor::<1>::from_data(lp.as_slice(), &device()).reshape([rows, vocab]),
                Tensor::<1>::from_data(scores.as_slice(), &device()).reshape([rows, 1]),
                beams,
                k,
            );
            let expected = brute_force(&lp, &scores, beams, vocab, got.per_image);
            assert_eq!(got.per_image, k.min(beams * vocab));
            for (i, (value, beam, token)) in expected.into_iter().enumerate() {
                assert_eq!(
                    (got.beams[i], got.tokens[i]),
                    (beam, token),
                    "vocab {vocab} candidate {i}"
                );
                assert!((got.values[i] - value).abs() < 1e-6);
            }
        }
    }
}
