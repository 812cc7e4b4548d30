//! Whether a JPEG stream reaches its end-of-image marker.
//!
//! The JPEG decoder fills the missing part of a truncated file with grey and
//! reports success, so a half-uploaded photograph would be captioned as if it
//! were whole. This walk over the marker structure finds the end-of-image
//! marker (EOI) of the main image; a stream that ends before it is truncated.

/// Start of image.
const SOI: u8 = 0xd8;
/// End of image.
const EOI: u8 = 0xd9;
/// Start of scan: a header segment followed by entropy-coded data.
const SOS: u8 = 0xda;

/// True when `bytes` start like a JPEG (the SOI marker).
pub(crate) fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xff, SOI])
}

/// True when the JPEG in `bytes` ends with its EOI marker (bytes after it,
/// which some cameras append, are allowed). Segments are skipped by their
/// lengths, so the EOI of an embedded EXIF thumbnail is not mistaken for the
/// image's own; entropy-coded data is scanned for the next marker, skipping
/// stuffed bytes (`FF 00`), restart markers and fill bytes.
pub(crate) fn jpeg_is_complete(bytes: &[u8]) -> bool {
    if !looks_like_jpeg(bytes) {
        return false;
    }
    let mut at = 2;
    loop {
        // Find the next marker: 0xFF, any fill 0xFF bytes, then the code.
        if bytes.get(at) != Some(&0xff) {
            return false;
        }
        while at < bytes.len() && bytes[at] == 0xff {
            at += 1;
        }
        let Some(&code) = bytes.get(at) else {
            return false;
        };
        at += 1;
        match code {
            EOI => return true,
            // Markers without a length: TEM and restart markers.
            0x01 | 0xd0..=0xd7 => {}
            _ => {
                let Some(length) = bytes.get(at..at + 2) else {
                    return false;
                };
                let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
                if length < 2 {
                    return false;
                }
                at += length;
                if at > bytes.len() {
                    return false;
                }
                if code == SOS {
                    match skip_entropy_coded(bytes, at) {
                        Some(marker) => at = marker,
                        None => return false,
                    }
                }
            }
        }
    }
}

/// The position of the first marker (its 0xFF) after entropy-coded data that
/// starts at `at`, or `None` when the data runs to the end of the stream.
fn skip_entropy_coded(bytes: &[u8], mut at: usize) -> Option<usize> {
    while at + 1 < bytes.len() {
        if bytes[at] == 0xff {
            match bytes[at + 1] {
                // A stuffed zero, a restart marker or a fill byte: still data.
                0x00 | 0xd0..=0xd7 | 0xff => at += 1,
                _ => return Some(at),
            }
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
    use std::io::Cursor;

    fn jpeg(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_fn(width, height, |x, y| {
            Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x + y) % 256) as u8,
            ])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image)
            .write_to(&mut out, ImageFormat::Jpeg)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn whole_jpegs_are_complete_and_every_truncation_is_not() {
        let bytes = jpeg(48, 32);
        assert!(jpeg_is_complete(&bytes));
        for cut in 0..bytes.len() {
            assert!(
                !jpeg_is_complete(&bytes[..cut]),
                "cut at {cut} of {}",
                bytes.len()
            );
        }
    }

    #[test]
    fn trailing_bytes_after_the_end_marker_are_allowed() {
        let mut bytes = jpeg(16, 16);
        bytes.extend_from_slice(b"camera maker notes");
        assert!(jpeg_is_complete(&bytes));
    }

    #[test]
    fn a_thumbnail_end_marker_does_not_end_the_image() {
        // An APP1 segment holding a complete small JPEG (as EXIF thumbnails do).
        let thumbnail = jpeg(8, 8);
        let main = jpeg(32, 32);
        let mut bytes = main[..2].to_vec();
        bytes.extend_from_slice(&[0xff, 0xe1]);
        bytes.extend_from_slice(&((thumbnail.len() + 2) as u16).to_be_bytes());
        bytes.extend_from_slice(&thumbnail);
        let whole_from = bytes.len();
        bytes.extend_from_slice(&main[2..]);
        assert!(jpeg_is_complete(&bytes));
        // Cut inside the main image's scan data, after the thumbnail's EOI.
        let cut = whole_from + (main.len() - 2) / 2;
        assert!(!jpeg_is_complete(&bytes[..cut]));
    }

    #[test]
    fn non_jpegs_are_not_jpegs() {
        assert!(!looks_like_jpeg(b"\x89PNG\r\n\x1a\n"));
        assert!(!jpeg_is_complete(b""));
    }
}
