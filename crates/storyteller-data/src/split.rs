//! Train/validation/test splits, and the deterministic split by image used
//! when a dataset comes without Karpathy splits.

use serde::{Deserialize, Serialize};

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images (Karpathy's `restval` counts as train).
    Train,
    /// Validation images.
    Val,
    /// Test images.
    Test,
}

impl Split {
    /// All splits, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The lowercase name used in files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }

    /// Parses a split name as found in Karpathy's JSON (`restval` is train).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "train" | "restval" => Some(Split::Train),
            "val" | "valid" | "validation" | "dev" => Some(Split::Val),
            "test" => Some(Split::Test),
            _ => None,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Split::parse(s).ok_or_else(|| format!("unknown split {s:?} (train, val or test)"))
    }
}

/// Relative split sizes for datasets without Karpathy splits. The default is
/// Karpathy's Flickr30k split, 29,000 / 1,014 / 1,000 images, scaled to the
/// dataset size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitConfig {
    /// Weight of the training split.
    pub train: usize,
    /// Weight of the validation split.
    pub val: usize,
    /// Weight of the test split.
    pub test: usize,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            train: 29_000,
            val: 1_014,
            test: 1_000,
        }
    }
}

impl SplitConfig {
    /// How many of `n` images go to (train, val, test). Val and test get
    /// `round(n * weight / total)` images, at least one each when `n >= 3` and
    /// their weight is not zero; train gets the rest.
    pub fn sizes(&self, n: usize) -> (usize, usize, usize) {
        // Summed as floats: weights near `usize::MAX` must not overflow.
        let total = (self.train as f64 + self.val as f64 + self.test as f64).max(1.0);
        let part = |w: usize| {
            let k = (n as f64 * w as f64 / total).round() as usize;
            if w > 0 && n >= 3 { k.max(1) } else { k }
        };
        let test = part(self.test).min(n);
        let val = part(self.val).min(n - test);
        (n - test - val, val, test)
    }

    /// Assigns a split to every image name, deterministically: images are
    /// ordered by a 64-bit FNV-1a hash of the name (ties by name), the first
    /// ones go to test, the next to val, the rest to train. The result depends
    /// only on the set of names, not on their order.
    pub fn assign<S: AsRef<str>>(&self, names: &[S]) -> Vec<Split> {
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by_key(|&i| (fnv1a(names[i].as_ref().as_bytes()), names[i].as_ref()));
        let (_, val, test) = self.sizes(names.len());
        let mut splits = vec![Split::Train; names.len()];
        for (rank, &i) in order.iter().enumerate() {
            splits[i] = if rank < test {
                Split::Test
            } else if rank < test + val {
                Split::Val
            } else {
                Split::Train
            };
        }
        splits
    }
}

/// 64-bit FNV-1a: a stable hash (unlike std's, which is seeded per process).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_flickr30k_sizes() {
        assert_eq!(SplitConfig::default().sizes(31_014), (29_000, 1_014, 1_000));
    }

    #[test]
    fn small_datasets_still_get_val_and_test() {
        assert_eq!(SplitConfig::default().sizes(10), (8, 1, 1));
        assert_eq!(SplitConfig::default().sizes(2), (2, 0, 0));
        assert_eq!(SplitConfig::default().sizes(1000), (935, 33, 32));
    }

    #[test]
    fn huge_weights_do_not_overflow() {
        let config = |train, val, test| SplitConfig { train, val, test };
        assert_eq!(
            config(usize::MAX, usize::MAX, usize::MAX).sizes(9),
            (3, 3, 3)
        );
        assert_eq!(config(usize::MAX, 1, 1).sizes(10), (8, 1, 1));
        assert_eq!(config(1, usize::MAX, 0).sizes(4), (0, 4, 0));
        assert_eq!(config(0, 0, 0).sizes(5), (5, 0, 0));
        let names = ["a.jpg", "b.jpg", "c.jpg"];
        assert_eq!(config(usize::MAX, usize::MAX, 0).assign(&names).len(), 3);
    }

    #[test]
    fn assignment_is_order_independent() {
        let names: Vec<String> = (0..100).map(|i| format!("{i}.jpg")).collect();
        let mut rev = names.clone();
        rev.reverse();
        let a = SplitConfig::default().assign(&names);
        let mut b = SplitConfig::default().assign(&rev);
        b.reverse();
        assert_eq!(a, b);
        let tests = a.iter().filter(|s| **s == Split::Test).count();
        assert_eq!(tests, 3);
    }

    #[test]
    fn parse_names() {
        assert_eq!(Split::parse("restval"), Some(Split::Train));
        assert_eq!("test".parse::<Split>(), Ok(Split::Test));
        assert!("nope".parse::<Split>().is_err());
    }
}
