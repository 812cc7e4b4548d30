//! Burn [`Dataset`] views: one item per image, or one per (image, caption).

use std::path::PathBuf;

use burn_dataset::{Dataset, DatasetError};

use super::{Caption, ImageItem};
use crate::split::Split;

/// The images of one split. Implements Burn's [`Dataset`] with one
/// [`ImageItem`] (all its captions) per image.
#[derive(Debug, Clone)]
pub struct Flickr30kSplit {
    split: Split,
    images: Vec<ImageItem>,
}

impl Flickr30kSplit {
    /// Wraps images (normally from [`Flickr30k::split`](super::Flickr30k::split)).
    pub fn new(split: Split, images: Vec<ImageItem>) -> Self {
        Self { split, images }
    }

    /// The split.
    pub fn split(&self) -> Split {
        self.split
    }

    /// The images.
    pub fn images(&self) -> &[ImageItem] {
        &self.images
    }

    /// Number of captions over all images.
    pub fn caption_count(&self) -> usize {
        self.images.iter().map(|i| i.captions.len()).sum()
    }

    /// One item per (image, caption): the usual training view.
    pub fn caption_pairs(&self) -> CaptionPairs {
        let mut pairs = Vec::with_capacity(self.caption_count());
        for (i, image) in self.images.iter().enumerate() {
            for c in 0..image.captions.len() {
                pairs.push((i, c));
            }
        }
        CaptionPairs {
            images: self.images.clone(),
            pairs,
        }
    }
}

impl Dataset<ImageItem> for Flickr30kSplit {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        Ok(self.images[index].clone())
    }

    fn len(&self) -> usize {
        self.images.len()
    }
}

/// One caption of one image.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionItem {
    /// The image id (file name).
    pub image_id: String,
    /// Path of the image file.
    pub image_path: PathBuf,
    /// Which of the image's captions this is.
    pub caption_index: usize,
    /// The caption.
    pub caption: Caption,
}

/// Burn [`Dataset`] with one [`CaptionItem`] per (image, caption).
#[derive(Debug, Clone)]
pub struct CaptionPairs {
    images: Vec<ImageItem>,
    pairs: Vec<(usize, usize)>,
}

impl Dataset<CaptionItem> for CaptionPairs {
    fn get(&self, index: usize) -> Result<CaptionItem, DatasetError> {
        let (i, c) = self.pairs[index];
        let image = &self.images[i];
        Ok(CaptionItem {
            image_id: image.id.clone(),
            image_path: image.path.clone(),
            caption_index: c,
            caption: image.captions[c].clone(),
        })
    }

    fn len(&self) -> usize {
        self.pairs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, captions: &[&str]) -> ImageItem {
        ImageItem {
            id: id.into(),
            path: PathBuf::from(id),
            captions: captions.iter().map(|c| Caption::new(*c)).collect(),
            split: Split::Train,
        }
    }

    #[test]
    fn burn_dataset_views() {
        let split = Flickr30kSplit::new(
            Split::Train,
            vec![
                item("1.jpg", &["a dog", "a brown dog"]),
                item("2.jpg", &["a cat"]),
            ],
        );
        assert_eq!(Dataset::len(&split), 2);
        assert_eq!(split.get(1).unwrap().id, "2.jpg");
        let pairs = split.caption_pairs();
        assert_eq!(pairs.len(), 3);
        let items: Vec<CaptionItem> = pairs.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(items[1].caption.raw, "a brown dog");
        assert_eq!(items[2].image_id, "2.jpg");
        assert_eq!(items[2].caption_index, 0);
    }
}
