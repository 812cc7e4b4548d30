//! Recognising a weights file's format.

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::error::{EncoderError, Result};

/// The on-disk formats [`ResNet::load_weights`](crate::ResNet::load_weights) reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeightFormat {
    /// A PyTorch checkpoint (`torch.save` of a state dict), zip or legacy pickle:
    /// torchvision's released `resnet50-0676ba61.pth`, `resnet50-11ad3fa6.pth`.
    Pytorch,
    /// A safetensors file holding the torchvision state dict.
    Safetensors,
    /// Burn's own record format (burnpack), as written by
    /// [`ResNet::save_burnpack`](crate::ResNet::save_burnpack).
    Burnpack,
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pytorch => "pytorch",
            Self::Safetensors => "safetensors",
            Self::Burnpack => "burnpack",
        })
    }
}

impl WeightFormat {
    /// Identifies the format from the first bytes of the file, falling back on the
    /// extension (`.pth`/`.pt`, `.safetensors`, `.bpk`/`.burnpack`) when the content
    /// is not conclusive.
    ///
    /// # Errors
    /// [`EncoderError::Io`] when the file cannot be read, [`EncoderError::UnknownFormat`]
    /// when neither the content nor the extension identifies it.
    pub fn detect(path: &Path) -> Result<Self> {
        let io = |source| EncoderError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut head = Vec::with_capacity(16);
        std::fs::File::open(path)
            .map_err(io)?
            .take(16)
            .read_to_end(&mut head)
            .map_err(io)?;
        if let Some(format) = Self::from_magic(&head) {
            return Ok(format);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("pth" | "pt" | "bin" | "ckpt") => Ok(Self::Pytorch),
            Some("safetensors") => Ok(Self::Safetensors),
            Some("bpk" | "burnpack") => Ok(Self::Burnpack),
            _ => Err(EncoderError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }

    /// The format the leading bytes announce, if any.
    fn from_magic(head: &[u8]) -> Option<Self> {
        // safetensors: u64 little-endian header length, then a JSON object. Checked
        // first: the length's low byte can be anything, 0x80 (a pickle opcode) included.
        if head.len() > 8 && head[8] == b'{' {
            return Some(Self::Safetensors);
        }
        // zip local file header (torch.save since 1.6) or a pickle PROTO opcode with
        // protocol 2 to 5 (the legacy torch.save format).
        if head.starts_with(b"PK\x03\x04")
            || (head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]))
        {
            return Some(Self::Pytorch);
        }
        // burnpack: the magic number 0x4255524E ("BURN") in little-endian order.
        if head.starts_with(&0x4255_524E_u32.to_le_bytes()) {
            return Some(Self::Burnpack);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes() {
        assert_eq!(
            WeightFormat::from_magic(b"PK\x03\x04rest"),
            Some(WeightFormat::Pytorch)
        );
        assert_eq!(
            WeightFormat::from_magic(&[0x80, 2, 0x8a]),
            Some(WeightFormat::Pytorch)
        );
        assert_eq!(
            WeightFormat::from_magic(b"NRUB\x01\x00"),
            Some(WeightFormat::Burnpack)
        );
        assert_eq!(
            WeightFormat::from_magic(b"\x10\0\0\0\0\0\0\0{\"a\""),
            Some(WeightFormat::Safetensors)
        );
        assert_eq!(
            WeightFormat::from_magic(b"\x80\x5a\0\0\0\0\0\0{\"a\""),
            Some(WeightFormat::Safetensors)
        );
        assert_eq!(WeightFormat::from_magic(b"hello world"), None);
        assert_eq!(WeightFormat::from_magic(b""), None);
    }

    #[test]
    fn unknown_content_and_extension_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "not weights").unwrap();
        assert!(matches!(
            WeightFormat::detect(&path),
            Err(EncoderError::UnknownFormat { .. })
        ));
        let missing = dir.path().join("absent.pth");
        assert!(matches!(
            WeightFormat::detect(&missing),
            Err(EncoderError::Io { .. })
        ));
    }
}
