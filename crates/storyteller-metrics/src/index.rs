//! N-gram ids of every sentence of a corpus, computed once and shared by the metrics.
//!
//! Unigram ids are token ids; a k-gram's id is interned from its (k−1)-gram
//! prefix id and its last token, so all n-gram comparisons after the build are
//! integer comparisons. Each sentence holds, per order, a list of
//! `(id, count)` sorted by id.

use rustc_hash::FxHashMap;

use crate::Corpus;

/// A sorted `(n-gram id, count)` list of one sentence and order.
pub(crate) type Grams = [(u32, u32)];

/// Every sentence's n-grams of orders `1..=max_order`.
#[derive(Debug, Clone)]
pub(crate) struct NgramIndex {
    max_order: usize,
    grams: Vec<(u32, u32)>,
    /// Start of each (sentence, order) list in `grams`; one extra entry at the end.
    offsets: Vec<usize>,
    /// Sentence number of each sample's hypothesis; its references follow it.
    first_sentence: Vec<usize>,
    ids: usize,
}

impl NgramIndex {
    /// Indexes every hypothesis and reference of `corpus` up to `max_order` (at least 1).
    pub(crate) fn build(corpus: &Corpus, max_order: usize) -> Self {
        let max_order = max_order.max(1);
        let sentences: usize = corpus
            .samples()
            .iter()
            .map(|s| 1 + s.references().len())
            .sum();
        let tokens: usize = corpus
            .samples()
            .iter()
            .map(|s| s.hypothesis().len() + s.references().iter().map(Vec::len).sum::<usize>())
            .sum();
        let mut index = Self {
            max_order,
            grams: Vec::with_capacity(tokens * max_order),
            offsets: Vec::with_capacity(sentences * max_order + 1),
            first_sentence: Vec::with_capacity(corpus.len() + 1),
            ids: corpus.distinct_tokens(),
        };
        let mut interner: FxHashMap<u64, u32> = FxHashMap::default();
        interner.reserve(tokens * max_order.saturating_sub(1) / 2);
        let (mut current, mut sorted) = (Vec::new(), Vec::new());
        let mut sentence = 0;
        for sample in corpus.samples() {
            index.first_sentence.push(sentence);
            for tokens in std::iter::once(sample.hypothesis())
                .chain(sample.references().iter().map(Vec::as_slice))
            {
                index.push_sentence(tokens, &mut interner, &mut current, &mut sorted);
                sentence += 1;
            }
        }
        index.first_sentence.push(sentence);
        index.offsets.push(index.grams.len());
        index
    }

    fn push_sentence(
        &mut self,
        tokens: &[u32],
        interner: &mut FxHashMap<u64, u32>,
        current: &mut Vec<u32>,
        sorted: &mut Vec<u32>,
    ) {
        current.clear();
        current.extend_from_slice(tokens);
        for order in 1..=self.max_order {
            if order > 1 {
                // current[i] was the (order-1)-gram at i; extend it by the token at i + order - 1.
                let grams = tokens.len().saturating_sub(order - 1);
                for i in 0..grams {
                    let key = (u64::from(current[i]) << 32) | u64::from(tokens[i + order - 1]);
                    let next = u32::try_from(self.ids).expect("more than 2^32 distinct n-grams");
                    current[i] = *interner.entry(key).or_insert_with(|| {
                        self.ids += 1;
                        next
                    });
                }
                current.truncate(grams);
            }
            let start = self.grams.len();
            self.offsets.push(start);
            sorted.clear();
            sorted.extend_from_slice(current);
            sorted.sort_unstable();
            for &id in sorted.iter() {
                match self.grams[start..].last_mut() {
                    Some((last, count)) if *last == id => *count += 1,
                    _ => self.grams.push((id, 1)),
                }
            }
        }
    }

    /// Number of distinct n-gram ids (token ids included).
    pub(crate) fn ids(&self) -> usize {
        self.ids
    }

    fn sentence(&self, sentence: usize, order: usize) -> &Grams {
        debug_assert!((1..=self.max_order).contains(&order));
        let slot = sentence * self.max_order + order - 1;
        &self.grams[self.offsets[slot]..self.offsets[slot + 1]]
    }

    /// The n-grams of order `order` of sample `sample`'s hypothesis.
    pub(crate) fn hypothesis(&self, sample: usize, order: usize) -> &Grams {
        self.sentence(self.first_sentence[sample], order)
    }

    /// The n-grams of order `order` of each reference of sample `sample`.
    pub(crate) fn references(
        &self,
        sample: usize,
        order: usize,
    ) -> impl Iterator<Item = &Grams> + Clone {
        (self.first_sentence[sample] + 1..self.first_sentence[sample + 1])
            .map(move |s| self.sentence(s, order))
    }
}

/// How often n-gram `id` occurs in a sorted list, zero when absent.
pub(crate) fn count_of(grams: &Grams, id: u32) -> u32 {
    grams
        .binary_search_by_key(&id, |&(g, _)| g)
        .map_or(0, |i| grams[i].1)
}

/// Clipped matches: each hypothesis n-gram counts at most as often as in the
/// reference where it occurs most.
pub(crate) fn clipped_matches<'a>(
    hypothesis: &Grams,
    references: impl Iterator<Item = &'a Grams> + Clone,
) -> u64 {
    hypothesis
        .iter()
        .map(|&(id, count)| {
            let max_ref = references
                .clone()
                .map(|r| count_of(r, id))
                .max()
                .unwrap_or(0);
            u64::from(count.min(max_ref))
        })
        .sum()
}

/// Number of n-grams of order `n` in a sentence of `len` tokens.
pub(crate) fn positions(len: usize, n: usize) -> usize {
    (len + 1).saturating_sub(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(pairs: &[(&str, &[&str])], order: usize) -> NgramIndex {
        let corpus =
            Corpus::from_whitespace_tokens(pairs.iter().map(|(h, r)| (*h, r.iter().copied())))
                .unwrap();
        NgramIndex::build(&corpus, order)
    }

    #[test]
    fn equal_ngrams_get_equal_ids_across_sentences() {
        let idx = index(&[("a b a b", &["x a b"]), ("b a", &["a b a"])], 3);
        // "a b" twice in the first hypothesis, once in its reference.
        let hyp2 = idx.hypothesis(0, 2);
        let ref2: Vec<_> = idx.references(0, 2).collect();
        let ab = hyp2.iter().find(|&&(_, c)| c == 2).unwrap().0;
        assert_eq!(count_of(ref2[0], ab), 1);
        // "a b a" is one trigram id in both places it occurs.
        let hyp3 = idx.hypothesis(0, 3);
        let ref3: Vec<_> = idx.references(1, 3).collect();
        assert!(hyp3.iter().any(|&(id, _)| id == ref3[0][0].0));
        assert!(idx.hypothesis(1, 3).is_empty());
    }

    #[test]
    fn lists_are_sorted_and_counted() {
        let idx = index(&[("c a c a c", &["a"])], 1);
        let grams = idx.hypothesis(0, 1);
        assert!(grams.windows(2).all(|w| w[0].0 < w[1].0));
        let counts: Vec<u32> = grams.iter().map(|&(_, c)| c).collect();
        assert_eq!(counts.iter().sum::<u32>(), 5);
    }

    #[test]
    fn clipping_uses_the_best_reference() {
        let idx = index(&[("the the the the", &["the cat", "the the mat"])], 3);
        assert_eq!(
            clipped_matches(idx.hypothesis(0, 1), idx.references(0, 1)),
            2
        );
        assert_eq!(
            clipped_matches(idx.hypothesis(0, 2), idx.references(0, 2)),
            1
        );
        assert_eq!(
            clipped_matches(idx.hypothesis(0, 3), idx.references(0, 3)),
            0
        );
    }

    #[test]
    fn empty_sentences_have_empty_lists() {
        let idx = index(&[("", &[""])], 4);
        for order in 1..=4 {
            assert!(idx.hypothesis(0, order).is_empty());
        }
    }

    #[test]
    fn positions_never_underflow() {
        assert_eq!(positions(5, 2), 4);
        assert_eq!(positions(1, 2), 0);
        assert_eq!(positions(0, 1), 0);
    }
}
