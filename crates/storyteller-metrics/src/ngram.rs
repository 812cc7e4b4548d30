//! N-gram counting on token-id slices, shared by every metric.
//!
//! Counts are sorted lists of `(n-gram, count)`; captions are short, so sorting
//! and binary search beat hashing and allocate once per sentence.

/// The n-grams of order `n` in `tokens` with their counts, sorted by n-gram.
pub(crate) fn counts(tokens: &[u32], n: usize) -> Vec<(&[u32], u32)> {
    if n == 0 || tokens.len() < n {
        return Vec::new();
    }
    let mut grams: Vec<&[u32]> = tokens.windows(n).collect();
    grams.sort_unstable();
    let mut out: Vec<(&[u32], u32)> = Vec::with_capacity(grams.len());
    for gram in grams {
        match out.last_mut() {
            Some((last, count)) if *last == gram => *count += 1,
            _ => out.push((gram, 1)),
        }
    }
    out
}

/// How often `gram` occurs in sorted `counts`, zero when absent.
pub(crate) fn count_of(counts: &[(&[u32], u32)], gram: &[u32]) -> u32 {
    counts
        .binary_search_by(|(g, _)| (*g).cmp(gram))
        .map_or(0, |i| counts[i].1)
}

/// Number of n-grams of order `n` in a sentence of `len` tokens.
pub(crate) fn positions(len: usize, n: usize) -> usize {
    (len + 1).saturating_sub(n)
}

/// Clipped matches of order `n`: every hypothesis n-gram counts at most as
/// often as it occurs in the reference where it occurs most.
pub(crate) fn clipped_matches(hypothesis: &[u32], references: &[Vec<u32>], n: usize) -> u64 {
    let hyp = counts(hypothesis, n);
    if hyp.is_empty() {
        return 0;
    }
    let refs: Vec<_> = references.iter().map(|r| counts(r, n)).collect();
    hyp.iter()
        .map(|&(gram, count)| {
            let max_ref = refs.iter().map(|r| count_of(r, gram)).max().unwrap_or(0);
            u64::from(count.min(max_ref))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_sorted_and_merged() {
        let c = counts(&[3, 1, 3, 1, 3], 1);
        assert_eq!(c, vec![(&[1][..], 2), (&[3][..], 3)]);
        assert_eq!(
            counts(&[3, 1, 3, 1], 2),
            vec![(&[1, 3][..], 1), (&[3, 1][..], 2)]
        );
        assert!(counts(&[1, 2], 3).is_empty());
    }

    #[test]
    fn clipping_uses_the_best_reference() {
        // "the the the the" against "the cat" and "the the mat": at most 2 "the" count.
        let hyp = [0, 0, 0, 0];
        let refs = vec![vec![0, 1], vec![0, 0, 2]];
        assert_eq!(clipped_matches(&hyp, &refs, 1), 2);
        assert_eq!(clipped_matches(&hyp, &refs, 2), 1);
        assert_eq!(clipped_matches(&hyp, &refs, 3), 0);
    }

    #[test]
    fn positions_never_underflow() {
        assert_eq!(positions(5, 2), 4);
        assert_eq!(positions(1, 2), 0);
        assert_eq!(positions(0, 1), 0);
    }
}
