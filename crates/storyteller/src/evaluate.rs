//! Scoring a model on a dataset split: every metric, for every search asked for.

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use storyteller_data::{
    DecodeLimits, FeatureCache, Flickr30k, GroundingReport, ImageItem, PreprocessConfig, Scene,
    SceneTruth, Split, grounding, preprocess_batch,
};
use storyteller_metrics::bleu::BleuFlavour;
use storyteller_metrics::{Corpus, Scores};
use storyteller_search::Search;

use crate::Captioner;
use crate::error::Result;

/// Images encoded or decoded per batch.
pub(crate) const BATCH: usize = 64;
/// Seed of the scene shuffles that give the grounding metrics' chance levels.
const GROUNDING_SEED: u64 = 0x5ce7e;

/// One image's captions under each search, next to its references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageCaptions {
    /// Image id.
    pub image_id: String,
    /// Caption per search name.
    pub captions: BTreeMap<String, String>,
    /// The reference captions (raw).
    pub references: Vec<String>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// The split scored.
    pub split: String,
    /// Images scored.
    pub images: usize,
    /// Images skipped (unreadable files), with the reason.
    pub skipped: Vec<(String, String)>,
    /// Scores per search name, in the order asked.
    pub scores: Vec<(String, Scores)>,
    /// Per-image captions.
    pub per_image: Vec<ImageCaptions>,
    /// Grounding of each search's captions (in the order of `scores`) when the dataset has
    /// scene truth (`scenes.json`, written by `storyteller synth`); empty otherwise.
    #[serde(default)]
    pub grounding: Vec<(String, GroundingReport)>,
    /// Whether the features came from the given cache (`false`: no cache was given, or it
    /// was made by other encoder weights or preprocessing, so the images were encoded).
    #[serde(default)]
    pub features_from_cache: bool,
}

/// Captions every image of `split` with each named search and scores the captions against
/// the references with every metric (BLEU in pycocoevalcap's flavour), and, when the dataset
/// has scene truth (`scenes.json`), their grounding against the scenes with chance levels.
///
/// Features come from `features` when given and made by the captioner's encoder and
/// preprocessing (faster); otherwise images are decoded and encoded in batches, and
/// unreadable ones are skipped and listed.
///
/// # Errors
/// Invalid searches, or a split with no usable image.
pub fn evaluate(
    captioner: &Captioner,
    dataset: &Flickr30k,
    split: Split,
    searches: &[(String, Search)],
    features: Option<&FeatureCache>,
) -> Result<Evaluation> {
    evaluate_with_progress(
        captioner,
        dataset,
        split,
        searches,
        features,
        &mut |_, _| {},
    )
}

/// [`evaluate`], calling `on_batch(done, total)` with the number of images captioned so far
/// after every batch (for a progress bar).
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_with_progress(
    captioner: &Captioner,
    dataset: &Flickr30k,
    split: Split,
    searches: &[(String, Search)],
    features: Option<&FeatureCache>,
    on_batch: &mut dyn FnMut(usize, usize),
) -> Result<Evaluation> {
    for (_, search) in searches {
        search.validate()?;
    }
    let images = dataset.split(split);
    // Typed comparison: the cache stores the settings as JSON, and comparing JSON numbers
    // after an f32 -> f64 round trip never matched.
    let usable_cache = features.filter(|cache| {
        let grid = captioner.decoder().grid();
        cache.regions() == grid * grid
            && cache.width() == captioner.decoder().d_feature()
            && cache.key().encoder == captioner.config().encoder.hash
            && serde_json::from_str::<PreprocessConfig>(&cache.key().preprocess)
                .ok()
                .as_ref()
                == Some(captioner.preprocess())
    });
    // Rows are keyed by content: features of other images under the same names are refused.
    if let Some(cache) = usable_cache {
        let pairs: Vec<(&str, &std::path::Path)> = images
            .images()
            .iter()
            .map(|image| (image.id.as_str(), image.path.as_path()))
            .collect();
        cache.verify_images(&pairs)?;
    }
    let mut scored: Vec<&ImageItem> = Vec::new();
    let mut skipped = Vec::new();
    let mut hypotheses: Vec<Vec<String>> = vec![Vec::new(); searches.len()];
    let total = images.images().len();
    for (index, chunk) in images.images().chunks(BATCH).enumerate() {
        on_batch((index * BATCH).min(total), total);
        let (items, features) = match usable_cache {
            Some(cache) => from_cache(captioner, cache, chunk),
            None => from_files(captioner, chunk, &mut skipped),
        };
        let Some(features) = features else { continue };
        for (s, (_, search)) in searches.iter().enumerate() {
            for ranked in captioner.caption_features(features.clone(), search)? {
                hypotheses[s].push(ranked[0].text.clone());
            }
        }
        scored.extend(items);
    }
    on_batch(total, total);

    let references = references_of(&scored);
    let scenes = scenes_of(dataset, &scored)?;
    let mut scores = Vec::with_capacity(searches.len());
    let mut grounding_reports = Vec::new();
    for ((name, _), captions) in searches.iter().zip(&hypotheses) {
        let (search_scores, report) = score_captions(captions, &references, scenes.as_deref())?;
        scores.push((name.clone(), search_scores));
        grounding_reports.extend(report.map(|report| (name.clone(), report)));
    }
    let per_image = scored
        .iter()
        .zip(references)
        .enumerate()
        .map(|(i, (item, references))| ImageCaptions {
            image_id: item.id.clone(),
            captions: searches
                .iter()
                .enumerate()
                .map(|(s, (name, _))| (name.clone(), hypotheses[s][i].clone()))
                .collect(),
            references,
        })
        .collect();
    Ok(Evaluation {
        split: split.name().to_owned(),
        images: scored.len(),
        skipped,
        scores,
        per_image,
        grounding: grounding_reports,
        features_from_cache: usable_cache.is_some(),
    })
}

/// Each image's reference captions, as written.
pub(crate) fn references_of(items: &[&ImageItem]) -> Vec<Vec<String>> {
    items
        .iter()
        .map(|item| item.captions.iter().map(|c| c.raw.clone()).collect())
        .collect()
}

/// Each image's scene (`scenes.json`), when the dataset has scene truth for every one.
pub(crate) fn scenes_of(dataset: &Flickr30k, items: &[&ImageItem]) -> Result<Option<Vec<Scene>>> {
    Ok(SceneTruth::load(dataset.root())?.and_then(|truth| {
        items
            .iter()
            .map(|item| truth.get(&item.id).cloned())
            .collect::<Option<Vec<_>>>()
    }))
}

/// Every metric of one caption per image against its references (BLEU in pycocoevalcap's
/// flavour), and their grounding with chance levels when the images have scenes.
pub(crate) fn score_captions(
    captions: &[String],
    references: &[Vec<String>],
    scenes: Option<&[Scene]>,
) -> Result<(Scores, Option<GroundingReport>)> {
    let corpus = Corpus::from_captions(
        captions
            .iter()
            .zip(references)
            .map(|(caption, references)| (caption.as_str(), references.iter())),
    )?;
    let scores = storyteller_metrics::evaluate(&corpus, BleuFlavour::Coco)?;
    let report = scenes.map(|scenes| {
        let pairs: Vec<_> = captions.iter().map(String::as_str).zip(scenes).collect();
        grounding(&pairs, GROUNDING_SEED)
    });
    Ok((scores, report))
}

/// The cached rows of `items` (each must have one), `[items.len(), row_len]` on `device`.
pub(crate) fn cached_rows(
    cache: &FeatureCache,
    items: &[&ImageItem],
    device: &Device,
) -> Tensor<2> {
    let width = cache.row_len();
    let mut values = vec![0.0f32; items.len() * width];
    for (chunk, item) in values.chunks_exact_mut(width).zip(items) {
        let row = cache
            .index_of(&item.id)
            .expect("an image with a cached row");
        cache.copy_row(row, chunk);
    }
    Tensor::from_data(TensorData::new(values, [items.len(), width]), device)
}

fn from_cache<'a>(
    captioner: &Captioner,
    cache: &FeatureCache,
    chunk: &'a [ImageItem],
) -> (Vec<&'a ImageItem>, Option<Tensor<2>>) {
    let items: Vec<&ImageItem> = chunk
        .iter()
        .filter(|i| cache.index_of(&i.id).is_some())
        .collect();
    if items.is_empty() {
        return (items, None);
    }
    let tensor = cached_rows(cache, &items, captioner.device());
    (items, Some(tensor))
}

fn from_files<'a>(
    captioner: &Captioner,
    chunk: &'a [ImageItem],
    skipped: &mut Vec<(String, String)>,
) -> (Vec<&'a ImageItem>, Option<Tensor<2>>) {
    let paths: Vec<&std::path::Path> = chunk.iter().map(|i| i.path.as_path()).collect();
    let batch = match preprocess_batch(&paths, captioner.preprocess(), &DecodeLimits::default()) {
        Ok(batch) => batch,
        Err(err) => {
            skipped.extend(chunk.iter().map(|i| (i.id.clone(), err.to_string())));
            return (Vec::new(), None);
        }
    };
    for (path, err) in &batch.failed {
        let id = chunk
            .iter()
            .find(|i| &i.path == path)
            .map_or_else(|| path.display().to_string(), |i| i.id.clone());
        skipped.push((id, err.to_string()));
    }
    let items: Vec<&ImageItem> = batch.ok.iter().map(|&i| &chunk[i]).collect();
    if items.is_empty() {
        return (items, None);
    }
    let crop = captioner.preprocess().crop as usize;
    let pixels = Tensor::from_data(
        TensorData::new(batch.data, [items.len(), 3, crop, crop]),
        captioner.device(),
    );
    (items, Some(captioner.encode_pixels(pixels)))
}
