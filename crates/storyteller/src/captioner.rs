//! The captioning API: an image in, a caption out.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use storyteller_data::{DecodeLimits, END, PreprocessConfig, START, Vocab, decode_rgb, preprocess};
use storyteller_decoder::{Decoder, SearchDecoder};
use storyteller_encoder::Encoder;
use storyteller_search::{BeamSearch, Hypothesis, Search};

use crate::error::{Result, StorytellerError};
use crate::model_dir::{ModelConfig, ModelFiles};

/// Decodes an image file to RGB with the default size limits (EXIF orientation applied).
///
/// # Errors
/// The file is missing, not an image, corrupt or too large; the error names it.
pub fn decode_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    Ok(decode_rgb(path.as_ref(), &DecodeLimits::default())?)
}

/// One caption with its search scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// The words joined by spaces.
    pub text: String,
    /// The words.
    pub tokens: Vec<String>,
    /// Sum of the token log-probabilities (natural log), `<end>` included when finished.
    pub log_prob: f32,
    /// The rank score: `log_prob / len^length_penalty` (equal to `log_prob` for greedy).
    pub score: f32,
    /// Whether the caption ended with `<end>` (false when it hit `max_len`).
    pub finished: bool,
    /// Where an attention decoder looked for each word: one row of `grid²` weights (summing
    /// to 1, row-major over the grid) per token of `tokens`. Filled by
    /// [`Captioner::attention_maps`]; `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionMaps>,
}

/// The attention weights of a caption's words over the encoder's feature grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionMaps {
    /// Side of the grid.
    pub grid: usize,
    /// One row of `grid²` weights per word, row-major over the grid.
    pub weights: Vec<Vec<f32>>,
}

impl Caption {
    pub(crate) fn from_hypothesis(hypothesis: &Hypothesis, vocab: &Vocab) -> Self {
        let tokens: Vec<String> = vocab
            .decode_tokens(&hypothesis.tokens)
            .into_iter()
            .map(str::to_owned)
            .collect();
        Self {
            text: tokens.join(" "),
            tokens,
            log_prob: hypothesis.log_prob,
            score: hypothesis.score,
            finished: hypothesis.finished,
            attention: None,
        }
    }
}

/// A trained captioning model: encoder, decoder, vocabulary and search settings on a device.
///
/// ```no_run
/// use burn::tensor::Device;
/// use storyteller::Captioner;
///
/// let captioner = Captioner::load("model", &Device::default())?;
/// let caption = captioner.caption_path("photo.jpg")?;
/// println!("{} ({:.2})", caption.text, caption.score);
/// # Ok::<(), storyteller::StorytellerError>(())
/// ```
#[derive(Debug)]
pub struct Captioner {
    encoder: Encoder,
    /// The decoder, prepared once for every search (Show and Tell's gate table).
    decoder: SearchDecoder,
    vocab: Vocab,
    config: ModelConfig,
    search: Search,
    device: Device,
    limits: DecodeLimits,
}

impl Captioner {
    /// Loads a model directory (see [`crate::model_dir`]) onto `device`; the search is the
    /// model's default beam search.
    ///
    /// # Errors
    /// A missing or corrupt file, or encoder weights whose hash differs from the one the
    /// model was trained with.
    pub fn load(model_dir: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let dir = model_dir.as_ref();
        let files = ModelFiles::load(dir, device)?;
        let weights = files.config.encoder_weights(dir);
        let encoder = Encoder::load(&weights, device)?;
        if encoder.weights_hash() != files.config.encoder.hash {
            return Err(StorytellerError::EncoderMismatch {
                path: weights,
                found: encoder.weights_hash().to_owned(),
                expected: files.config.encoder.hash.clone(),
                context: format!("the model in {}", dir.display()),
            });
        }
        Self::from_parts(encoder, files, device)
    }

    /// A captioner from parts already loaded.
    ///
    /// # Errors
    /// The decoder's feature width differs from the encoder's.
    pub fn from_parts(encoder: Encoder, files: ModelFiles, device: &Device) -> Result<Self> {
        if files.decoder.d_feature() != encoder.d_feature() {
            return Err(StorytellerError::ModelDir {
                path: files.config.encoder.weights.clone(),
                reason: format!(
                    "the encoder gives {}-d features, the decoder takes {}",
                    encoder.d_feature(),
                    files.decoder.d_feature()
                ),
            });
        }
        let search = Search::Beam(files.config.beam.clone());
        Ok(Self {
            encoder,
            decoder: SearchDecoder::new(files.decoder),
            vocab: files.vocab,
            config: files.config,
            search,
            device: device.clone(),
            limits: DecodeLimits::default(),
        })
    }

    /// The same captioner with another search.
    ///
    /// # Errors
    /// Invalid search settings.
    pub fn with_search(mut self, search: Search) -> Result<Self> {
        search.validate()?;
        self.search = search;
        Ok(self)
    }

    /// The search in use.
    pub fn search(&self) -> &Search {
        &self.search
    }

    /// The model configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &Vocab {
        &self.vocab
    }

    /// The device everything runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The preprocessing images go through.
    pub fn preprocess(&self) -> &PreprocessConfig {
        &self.config.preprocess
    }

    /// The best caption of one image.
    ///
    /// # Errors
    /// Search failure (invalid settings).
    pub fn caption(&self, image: &RgbImage) -> Result<Caption> {
        Ok(self.caption_batch(std::slice::from_ref(image))?.remove(0))
    }

    /// The best caption of each image, batched on the device.
    ///
    /// # Errors
    /// Search failure (invalid settings).
    pub fn caption_batch(&self, images: &[RgbImage]) -> Result<Vec<Caption>> {
        Ok(self
            .ranked(images, &self.search)?
            .into_iter()
            .map(|mut ranked| ranked.remove(0))
            .collect())
    }

    /// Decodes and captions an image file.
    ///
    /// # Errors
    /// The file is missing, not an image, corrupt or too large; or the search fails.
    pub fn caption_path(&self, path: impl AsRef<Path>) -> Result<Caption> {
        let image = decode_rgb(path.as_ref(), &self.limits)?;
        self.caption(&image)
    }

    /// The `n` best captions of one image by beam search (width at least `n`).
    ///
    /// # Errors
    /// `n` is 0.
    pub fn n_best(&self, image: &RgbImage, n: usize) -> Result<Vec<Caption>> {
        let beam = match &self.search {
            Search::Beam(beam) => beam.clone(),
            Search::Greedy(greedy) => BeamSearch::new().with_max_len(greedy.max_len),
        };
        let beam = beam.clone().with_width(beam.width.max(n)).with_n_best(n);
        Ok(self
            .ranked(std::slice::from_ref(image), &Search::Beam(beam))?
            .remove(0))
    }

    /// Ranked captions of each image with the given search.
    ///
    /// # Errors
    /// Search failure (invalid settings).
    pub fn ranked(&self, images: &[RgbImage], search: &Search) -> Result<Vec<Vec<Caption>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let features = self.encode(images);
        self.caption_features(features, search)
    }

    /// The decoder's family and settings.
    pub fn decoder(&self) -> &Decoder {
        self.decoder.decoder()
    }

    /// Ranked captions of each image with [`Caption::attention`] filled (for an attention
    /// decoder; as [`ranked`](Self::ranked) otherwise).
    ///
    /// # Errors
    /// Search failure (invalid settings).
    pub fn ranked_with_attention(
        &self,
        images: &[RgbImage],
        search: &Search,
    ) -> Result<Vec<Vec<Caption>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let features = self.encode(images);
        let mut ranked = self.caption_features(features.clone(), search)?;
        self.attention_maps(features, &mut ranked);
        Ok(ranked)
    }

    /// The encoder's features of a batch of images, as the decoder takes them.
    ///
    /// # Shapes
    /// - returns `[images.len(), grid²·2048]` (`grid` 1, the pooled feature, for Show and
    ///   Tell)
    pub fn encode(&self, images: &[RgbImage]) -> Tensor<2> {
        let crop = self.config.preprocess.crop as usize;
        let mut values = Vec::with_capacity(images.len() * 3 * crop * crop);
        for image in images {
            values.extend(preprocess(image, &self.config.preprocess));
        }
        let pixels = Tensor::from_data(
            TensorData::new(values, [images.len(), 3, crop, crop]),
            &self.device,
        );
        self.encode_pixels(pixels)
    }

    /// The encoder's features of preprocessed pixels, as the decoder takes them: the pooled
    /// feature for Show and Tell (and any decoder over a 1x1 grid), the `grid x grid` regions
    /// (flattened per image) for attention and Transformer decoders.
    ///
    /// # Shapes
    /// - `pixels`: `[batch, 3, crop, crop]`, normalised as [`preprocess`](Self::preprocess) says
    /// - returns `[batch, grid²·2048]`
    pub fn encode_pixels(&self, pixels: Tensor<4>) -> Tensor<2> {
        match self.decoder.decoder().grid() {
            1 => self.encoder.forward(pixels),
            grid => {
                let regions = self.encoder.forward_grid(pixels, grid);
                let [batch, count, d] = regions.dims();
                regions.reshape([batch, count * d])
            }
        }
    }

    /// Fills [`Caption::attention`] of each image's captions: the decoder is run again,
    /// teacher-forced, on each caption's words, and the weights of the step that chose each
    /// word are kept (the same weights the search saw). Captions of a decoder without
    /// attention are left as they are.
    ///
    /// # Shapes
    /// - `features`: `[captions.len(), grid²·d_feature]` ([`encode`](Self::encode))
    pub fn attention_maps(&self, features: Tensor<2>, captions: &mut [Vec<Caption>]) {
        let Decoder::ShowAttendTell(decoder) = self.decoder.decoder() else {
            return;
        };
        let grid = decoder.grid();
        for (image, ranked) in captions.iter_mut().enumerate() {
            for caption in ranked.iter_mut() {
                let mut ids = vec![START as i64];
                ids.extend(
                    caption
                        .tokens
                        .iter()
                        .map(|w| i64::from(self.vocab.id(w).unwrap_or(END))),
                );
                let steps = caption.tokens.len().max(1);
                ids.truncate(steps);
                let tokens =
                    Tensor::<2, Int>::from_data(TensorData::new(ids, [1, steps]), &self.device);
                let row = features.clone().narrow(0, image, 1);
                let (_, alphas) = decoder.forward_with_attention(row, tokens);
                let values = alphas
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 weights");
                let regions = grid * grid;
                caption.attention = Some(AttentionMaps {
                    grid,
                    weights: values
                        .chunks(regions)
                        .take(caption.tokens.len())
                        .map(<[f32]>::to_vec)
                        .collect(),
                });
            }
        }
    }

    /// Ranked captions from precomputed features (a feature cache, the server's batches).
    ///
    /// # Shapes
    /// - `features`: `[batch, d_feature]`
    ///
    /// # Errors
    /// Search failure (invalid settings), or scores that are not finite (a model whose
    /// weights hold NaN or infinity).
    pub fn caption_features(
        &self,
        features: Tensor<2>,
        search: &Search,
    ) -> Result<Vec<Vec<Caption>>> {
        let ranked = search.search(&self.decoder, features)?;
        check_finite(&ranked)?;
        Ok(ranked
            .iter()
            .map(|hyps| {
                hyps.iter()
                    .map(|h| Caption::from_hypothesis(h, &self.vocab))
                    .collect()
            })
            .collect())
    }
}

/// Refuses search results of a decoder whose weights hold NaN or infinity: searches drop
/// hypotheses whose scores are NaN, so an image left without any, or a hypothesis scored NaN
/// or infinity, comes from such weights.
///
/// # Errors
/// [`StorytellerError::NonFinite`], naming what was found.
pub(crate) fn check_finite(ranked: &[Vec<Hypothesis>]) -> Result<()> {
    if let Some(hyps) = ranked.iter().find(|hyps| {
        hyps.is_empty()
            || hyps
                .iter()
                .any(|h| !h.log_prob.is_finite() || !h.score.is_finite())
    }) {
        let found = hyps.first().map_or("no caption".to_owned(), |h| {
            format!("log-probability {}", h.log_prob)
        });
        return Err(StorytellerError::NonFinite(format!(
            "the decoder's scores are not finite numbers ({found}): its weights hold NaN or infinity"
        )));
    }
    Ok(())
}
