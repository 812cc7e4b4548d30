//! A stable identity for a set of encoder weights.

use burn::store::ModuleSnapshot;
use burn::store::bridge;
use sha2::{Digest, Sha256};

use crate::error::{EncoderError, Result};
use crate::resnet::ResNet;
use crate::weights::burn_to_torchvision;

impl ResNet {
    /// SHA-256 of the weights, as `sha256:<64 hex digits>`, for the feature cache's
    /// `encoder` field: two caches agree on it only if the same weights made them.
    ///
    /// Defined on the torchvision state dict, so the same weights give the same hash
    /// whichever format they were loaded from and Python can recompute it: for every
    /// tensor (all of them except `fc.*` and `num_batches_tracked`) in ascending key
    /// order, the key's UTF-8 bytes, a zero byte, the rank and each dimension as
    /// little-endian `u64`, then the elements as little-endian `f32`.
    ///
    /// ```python
    /// h = hashlib.sha256()
    /// for k in sorted(k for k in sd if not k.startswith("fc.") and "num_batches" not in k):
    ///     t = sd[k].float().contiguous()
    ///     h.update(k.encode() + b"\0" + struct.pack("<Q", t.dim()))
    ///     h.update(struct.pack(f"<{t.dim()}Q", *t.shape) + t.numpy().tobytes())
    /// ```
    ///
    /// # Errors
    /// [`EncoderError::Fused`] on a fused network: hash before [`ResNet::fuse`].
    pub fn weights_hash(&self) -> Result<String> {
        if self.is_fused() {
            return Err(EncoderError::Fused {
                operation: "hashing the weights",
            });
        }
        let mut tensors: Vec<_> = self
            .collect(None, None, false)
            .into_iter()
            .map(|t| (burn_to_torchvision(&t.name), t))
            .collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        let mut hasher = Sha256::new();
        for (key, tensor) in tensors {
            hasher.update(key.as_bytes());
            hasher.update([0u8]);
            hasher.update((tensor.shape.len() as u64).to_le_bytes());
            for &dim in tensor.shape.iter() {
                hasher.update((dim as u64).to_le_bytes());
            }
            let data = bridge::into_data(tensor)
                .expect("a tensor collected from a live module reads back")
                .convert::<f32>();
            hasher.update(data.as_bytes());
        }
        let digest = hasher.finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(format!("sha256:{hex}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resnet::ResNetConfig;
    use burn::tensor::Device;

    #[test]
    fn hash_is_stable_and_sensitive() {
        let device = Device::flex();
        let net = ResNetConfig::new([1, 1, 1, 1]).init(&device);
        let first = net.weights_hash().unwrap();
        assert_eq!(first, net.weights_hash().unwrap());
        assert!(first.starts_with("sha256:") && first.len() == 7 + 64);
        let other = ResNetConfig::new([1, 1, 1, 1]).init(&device);
        assert_ne!(first, other.weights_hash().unwrap());
        assert!(matches!(
            net.fuse().weights_hash(),
            Err(EncoderError::Fused { .. })
        ));
    }
}
