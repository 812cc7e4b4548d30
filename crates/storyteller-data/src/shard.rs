//! Sharding a dataset's images across processes or machines: which shard an image belongs
//! to, and the record a shard's feature cache keeps so that shards can be merged safely.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Shard `index` of `count` (0-based, as Slurm array task ids and Kubernetes completion
/// indices are).
///
/// An image belongs to shard `fnv1a64(id) % count`, where `id` is its id (its file name
/// in the dataset, or its path relative to the `--images` folder) as UTF-8 bytes and
/// `fnv1a64` is the 64-bit FNV-1a hash. The assignment depends on nothing but the id, so
/// adding images to a dataset never moves an image to another shard.
///
/// ```
/// use storyteller_data::Shard;
/// let shard: Shard = "1/4".parse()?;
/// assert_eq!((shard.index(), shard.count()), (1, 4));
/// let ids = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"];
/// let mine: Vec<_> = ids.iter().filter(|id| shard.contains(id)).collect();
/// // Every image is in exactly one of the four shards.
/// let total: usize = (0..4)
///     .map(|i| ids.iter().filter(|id| Shard::new(i, 4).unwrap().contains(id)).count())
///     .sum();
/// assert_eq!(total, ids.len());
/// # let _ = mine;
/// # Ok::<(), storyteller_data::DataError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    index: usize,
    count: usize,
}

impl Shard {
    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// `count` is 0 or `index >= count`.
    pub fn new(index: usize, count: usize) -> Result<Self> {
        if count == 0 || index >= count {
            return Err(DataError::InvalidConfig {
                reason: format!(
                    "shard {index}/{count}: expected I/N with 0 <= I < N (shards are numbered from 0)"
                ),
            });
        }
        Ok(Self { index, count })
    }

    /// This shard's index, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The number of shards.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The shard (of `count`) that image `id` belongs to.
    ///
    /// # Panics
    /// `count` is 0.
    pub fn of(id: &str, count: usize) -> usize {
        assert!(count > 0, "a shard count must be positive");
        (fnv1a64(id.as_bytes()) % count as u64) as usize
    }

    /// Whether image `id` belongs to this shard.
    pub fn contains(&self, id: &str) -> bool {
        Self::of(id, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || DataError::InvalidConfig {
            reason: format!("shard {s:?}: expected I/N, such as 0/8 (shards are numbered from 0)"),
        };
        let (index, count) = s.split_once('/').ok_or_else(invalid)?;
        let index = index.trim().parse().map_err(|_| invalid())?;
        let count = count.trim().parse().map_err(|_| invalid())?;
        Self::new(index, count)
    }
}

/// 64-bit FNV-1a: a stable hash anyone can recompute (unlike `std`'s, which may change).
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What a shard's feature cache records: which shard it is and of which image list, so
/// that a merge can refuse a shard of another dataset and name a missing one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// The shard.
    pub shard: Shard,
    /// [`image_list_fingerprint`] of the whole image list (every shard's images).
    pub images_fingerprint: String,
    /// The number of images in the whole list.
    pub images: usize,
}

impl ShardRecord {
    /// The record of `shard` of the image list `ids` (every image, not only the shard's).
    pub fn new<'a>(shard: Shard, ids: impl IntoIterator<Item = &'a str>) -> Self {
        let ids: Vec<&str> = ids.into_iter().collect();
        Self {
            shard,
            images_fingerprint: image_list_fingerprint(ids.iter().copied()),
            images: ids.len(),
        }
    }
}

/// `sha256:<hex>` of the sorted, de-duplicated ids, each followed by a newline: the same for
/// the same set of images whatever order they are listed in.
pub fn image_list_fingerprint<'a>(ids: impl IntoIterator<Item = &'a str>) -> String {
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    let mut hasher = Sha256::new();
    for id in ids {
        hasher.update(id.as_bytes());
        hasher.update(b"\n");
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_its_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_image_is_in_exactly_one_shard_and_shards_are_balanced() {
        let ids: Vec<String> = (0..4000).map(|i| format!("{i}.jpg")).collect();
        let mut sizes = [0usize; 8];
        for id in &ids {
            let owners: Vec<usize> = (0..8)
                .filter(|&i| Shard::new(i, 8).unwrap().contains(id))
                .collect();
            assert_eq!(owners.len(), 1, "{id} in {owners:?}");
            sizes[owners[0]] += 1;
        }
        // 500 expected per shard; a hash this poor would show as a far larger spread.
        for size in sizes {
            assert!((400..600).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn parsing_and_bad_shards() {
        assert_eq!("3/8".parse::<Shard>().unwrap(), Shard::new(3, 8).unwrap());
        assert_eq!(" 0 / 1 ".parse::<Shard>().unwrap().to_string(), "0/1");
        for bad in ["8/8", "1/0", "3", "-1/4", "a/b", "1/2/3", ""] {
            let err = bad.parse::<Shard>().unwrap_err().to_string();
            assert!(err.contains("I/N"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_fingerprint_ignores_order_and_sees_one_more_image() {
        let a = image_list_fingerprint(["b.jpg", "a.jpg"]);
        assert_eq!(a, image_list_fingerprint(["a.jpg", "b.jpg", "a.jpg"]));
        assert_ne!(a, image_list_fingerprint(["a.jpg", "b.jpg", "c.jpg"]));
        assert!(a.starts_with("sha256:") && a.len() == 7 + 64, "{a}");
    }
}
