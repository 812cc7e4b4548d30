//! The measurement every row goes through, ours or yours: quality, grounding, decoding
//! speed and memory of any [`StepDecoder`] on a test split's cached features.

use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};
use storyteller_data::{FeatureCache, Flickr30k, Scene, Split, Vocab};
use storyteller_search::{BeamSearch, GreedySearch, Search, StepDecoder};

use crate::bench::memory::PeakWindow;
use crate::bench::{BenchRow, Quality, SearchKind, Speed};
use crate::captioner::check_finite;
use crate::error::{Result, StorytellerError};
use crate::evaluate::{BATCH, cached_rows, references_of, scenes_of, score_captions};

/// The test images a decoder is measured on: their cached features (on the device), their
/// reference captions and, for the synthetic shapes, their scenes.
#[derive(Debug, Clone)]
pub struct TestSet {
    /// Image ids, in split order.
    pub ids: Vec<String>,
    /// One row per image, as the decoder takes it: `[images, regions · d_feature]`.
    pub features: Tensor<2>,
    /// Each image's reference captions, as written.
    pub references: Vec<Vec<String>>,
    /// Each image's scene truth (`scenes.json`), when every image has one.
    pub scenes: Option<Vec<Scene>>,
}

impl TestSet {
    /// The images of `split` that have a row in `cache`, with their features on `device`.
    /// The rows are checked against the image files' content digests.
    ///
    /// # Errors
    /// No image of the split has features, a row was made from another image, or
    /// `scenes.json` is unreadable.
    pub fn from_cache(
        dataset: &Flickr30k,
        split: Split,
        cache: &FeatureCache,
        device: &Device,
    ) -> Result<Self> {
        let images = dataset.split(split);
        let items: Vec<_> = images
            .images()
            .iter()
            .filter(|item| cache.index_of(&item.id).is_some())
            .collect();
        if items.is_empty() {
            return Err(StorytellerError::Bench(format!(
                "no {} image has features in {}",
                split.name(),
                cache.path().display()
            )));
        }
        let pairs: Vec<(&str, &std::path::Path)> = items
            .iter()
            .map(|item| (item.id.as_str(), item.path.as_path()))
            .collect();
        cache.verify_images(&pairs)?;
        Ok(Self {
            ids: items.iter().map(|item| item.id.clone()).collect(),
            features: cached_rows(cache, &items, device),
            references: references_of(&items),
            scenes: scenes_of(dataset, &items)?,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// How decoders are measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasureOptions {
    /// Beam width of the beam search (length penalty 0, as `storyteller evaluate`).
    pub beam_width: usize,
    /// Longest caption, in tokens.
    pub max_len: usize,
    /// Images per search call in the timed runs.
    pub batch_sizes: Vec<usize>,
    /// Images decoded per timed run (the test images in turn, repeated when there are
    /// fewer, so every batch is full).
    pub timed_images: usize,
    /// Timed runs per search and batch size, after one warm-up run that is not counted.
    pub timing_runs: usize,
}

impl Default for MeasureOptions {
    /// Beam 3, captions of up to 20 tokens, batches of 1 and 128, 128 images, 3 runs.
    fn default() -> Self {
        Self {
            beam_width: 3,
            max_len: 20,
            batch_sizes: vec![1, 128],
            timed_images: 128,
            timing_runs: 3,
        }
    }
}

impl MeasureOptions {
    /// The search of `kind`.
    pub fn search(&self, kind: SearchKind) -> Search {
        match kind {
            SearchKind::Greedy => GreedySearch::new().with_max_len(self.max_len).into(),
            SearchKind::Beam => BeamSearch::new()
                .with_width(self.beam_width)
                .with_max_len(self.max_len)
                .into(),
        }
    }

    /// Refuses settings that measure nothing.
    ///
    /// # Errors
    /// [`StorytellerError::Bench`] naming the setting; invalid search settings.
    pub fn validate(&self) -> Result<()> {
        let refuse = |what: &str| Err(StorytellerError::Bench(what.to_owned()));
        if self.batch_sizes.is_empty() || self.batch_sizes.contains(&0) {
            return refuse("the timed batch sizes must be one or more positive numbers");
        }
        if self.timed_images == 0 || self.timing_runs == 0 {
            return refuse("at least one image and one run must be timed");
        }
        for kind in [SearchKind::Greedy, SearchKind::Beam] {
            self.search(kind).validate()?;
        }
        Ok(())
    }
}

/// Measures any decoder on a test set with the code that measures the bench's own rows:
///
/// 1. **Quality**: greedy and beam captions of every test image (batches of 64, as
///    `storyteller evaluate`), scored with BLEU-1..4 (pycocoevalcap's flavour), ROUGE-L and
///    CIDEr-D against the references, and their grounding with chance levels when the
///    test set has scenes.
/// 2. **Speed**: for each search and batch size, `timed_images` captions decoded from the
///    cached features in batches of that size; the searches and sizes take turns run by
///    run, the first run of each is a warm-up, and the median of the rest is reported with
///    the slowest and fastest. Decode only: the features are on the device beforehand and
///    the words are read back by the search itself.
/// 3. **Memory**: the peak resident memory of the process over steps 1 and 2 (Linux; see
///    [`BenchRow::peak_memory_bytes`]).
///
/// The row's `kind` is `"custom"` and its training figures `None`: set them when you know
/// them. `vocab` turns the decoder's token ids into words (`<start>` 1, `<end>` 2, as
/// [`Vocab`]).
///
/// # Errors
/// An empty test set, a vocabulary of another size than the decoder's, invalid options, or
/// scores that are not finite.
pub fn measure_decoder<D: StepDecoder + ?Sized>(
    name: &str,
    decoder: &D,
    vocab: &Vocab,
    test: &TestSet,
    options: &MeasureOptions,
) -> Result<BenchRow> {
    options.validate()?;
    if test.is_empty() {
        return Err(StorytellerError::Bench("the test set has no image".into()));
    }
    if vocab.len() != decoder.vocab_size() {
        return Err(StorytellerError::Bench(format!(
            "{name} scores {} tokens, but the vocabulary has {} words",
            decoder.vocab_size(),
            vocab.len()
        )));
    }
    let window = PeakWindow::start();
    let greedy = quality(decoder, vocab, test, &options.search(SearchKind::Greedy))?;
    let beam = quality(decoder, vocab, test, &options.search(SearchKind::Beam))?;
    let speeds = speeds(decoder, test, options)?;
    Ok(BenchRow {
        name: name.to_owned(),
        kind: "custom".to_owned(),
        parameters: None,
        epochs: None,
        train_captions_per_second: None,
        train_peak_memory_bytes: None,
        images: test.len(),
        greedy,
        beam,
        beam_width: options.beam_width,
        speeds,
        peak_memory_bytes: window.peak_bytes(),
        reused: false,
    })
}

/// Captions every test image with `search` and scores the captions.
fn quality<D: StepDecoder + ?Sized>(
    decoder: &D,
    vocab: &Vocab,
    test: &TestSet,
    search: &Search,
) -> Result<Quality> {
    let mut captions = Vec::with_capacity(test.len());
    for start in (0..test.len()).step_by(BATCH) {
        let rows = BATCH.min(test.len() - start);
        let ranked = search.search(decoder, test.features.clone().narrow(0, start, rows))?;
        check_finite(&ranked)?;
        captions.extend(
            ranked
                .iter()
                .map(|hyps| vocab.decode_tokens(&hyps[0].tokens).join(" ")),
        );
    }
    let (scores, grounding) = score_captions(&captions, &test.references, test.scenes.as_deref())?;
    Ok(Quality { scores, grounding })
}

/// Times every search at every batch size, the configurations taking turns run by run.
fn speeds<D: StepDecoder + ?Sized>(
    decoder: &D,
    test: &TestSet,
    options: &MeasureOptions,
) -> Result<Vec<Speed>> {
    let device = test.features.device();
    // The timed images' rows, batched, uploaded before any clock starts.
    let batches = |size: usize| -> Vec<Tensor<2>> {
        let rows: Vec<i64> = (0..options.timed_images)
            .map(|i| (i % test.len()) as i64)
            .collect();
        rows.chunks(size)
            .map(|chunk| {
                let index = Tensor::<1, Int>::from_data(
                    TensorData::new(chunk.to_vec(), [chunk.len()]),
                    &device,
                );
                test.features.clone().select(0, index)
            })
            .collect()
    };
    let configs: Vec<(SearchKind, usize, Search, Vec<Tensor<2>>)> =
        [SearchKind::Greedy, SearchKind::Beam]
            .into_iter()
            .flat_map(|kind| options.batch_sizes.iter().map(move |&size| (kind, size)))
            .map(|(kind, size)| (kind, size, options.search(kind), batches(size)))
            .collect();
    let mut seconds = vec![Vec::with_capacity(options.timing_runs); configs.len()];
    for run in 0..=options.timing_runs {
        for (times, (_, _, search, batches)) in seconds.iter_mut().zip(&configs) {
            let started = Instant::now();
            for batch in batches {
                search.search(decoder, batch.clone())?;
            }
            if run > 0 {
                times.push(started.elapsed().as_secs_f64());
            }
        }
    }
    Ok(configs
        .iter()
        .zip(seconds)
        .map(|((search, batch_size, _, _), mut times)| {
            times.sort_by(f64::total_cmp);
            let rate = |t: f64| options.timed_images as f64 / t.max(1e-9);
            Speed {
                search: *search,
                batch_size: *batch_size,
                captions_per_second: rate(times[times.len() / 2]),
                min: rate(times[times.len() - 1]),
                max: rate(times[0]),
                runs: times.len(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyteller_data::{END, START};

    /// Writes the same caption whatever the image: `<start>` → word 4 → word 5 → `<end>`.
    struct Parrot {
        vocab: usize,
    }

    impl StepDecoder for Parrot {
        type State = Tensor<1, Int>;

        fn vocab_size(&self) -> usize {
            self.vocab
        }

        fn init_state(&self, features: Tensor<2>) -> Tensor<1, Int> {
            Tensor::zeros([features.dims()[0]], &features.device())
        }

        fn step(&self, tokens: Tensor<1, Int>, state: Tensor<1, Int>) -> (Tensor<2>, Self::State) {
            let rows = tokens.dims()[0];
            let previous: Vec<i64> = tokens
                .to_data()
                .convert::<i64>()
                .try_into_vec::<i64>()
                .unwrap();
            let mut log_probs = vec![f32::NEG_INFINITY; rows * self.vocab];
            for (row, token) in previous.iter().enumerate() {
                let next = match *token as u32 {
                    START => 4,
                    4 => 5,
                    _ => END as usize,
                };
                log_probs[row * self.vocab + next] = 0.0;
            }
            let device = tokens.device();
            (
                Tensor::from_data(TensorData::new(log_probs, [rows, self.vocab]), &device),
                state,
            )
        }

        fn reorder_state(&self, state: Tensor<1, Int>, rows: Tensor<1, Int>) -> Self::State {
            state.select(0, rows)
        }
    }

    fn test_set(device: &Device) -> TestSet {
        TestSet {
            ids: vec!["a".into(), "b".into(), "c".into()],
            features: Tensor::zeros([3, 4], device),
            references: vec![
                vec!["a red circle".into(), "red circle".into()],
                vec!["a blue square".into()],
                vec!["a red square".into()],
            ],
            scenes: None,
        }
    }

    #[test]
    fn any_step_decoder_is_scored_and_timed() {
        let device = Device::flex();
        let vocab = Vocab::from_tokens(
            [["red", "circle"].as_slice(), ["red", "circle"].as_slice()],
            1,
        );
        let parrot = Parrot { vocab: vocab.len() };
        let options = MeasureOptions {
            batch_sizes: vec![1, 2],
            timed_images: 5,
            timing_runs: 2,
            ..MeasureOptions::default()
        };
        let row = measure_decoder("parrot", &parrot, &vocab, &test_set(&device), &options).unwrap();
        assert_eq!((row.name.as_str(), row.kind.as_str()), ("parrot", "custom"));
        assert_eq!(row.images, 3);
        // "red circle" for every image: a perfect unigram match on the first image only.
        let scores = &row.greedy.scores;
        assert!(scores.bleu1 > 0.0 && scores.bleu1 <= 1.0, "{scores:?}");
        assert_eq!(row.beam.scores, row.greedy.scores);
        assert!(row.greedy.grounding.is_none());
        assert_eq!(row.speeds.len(), 4);
        for speed in &row.speeds {
            assert_eq!(speed.runs, 2);
            assert!(
                speed.min <= speed.captions_per_second && speed.captions_per_second <= speed.max
            );
            assert!(speed.min > 0.0 && speed.spread().is_finite());
        }
        assert!(row.speed(SearchKind::Beam, 2).is_some());
        assert!(row.speed(SearchKind::Beam, 128).is_none());

        let small = Vocab::from_tokens([["red"].as_slice()], 1);
        let err =
            measure_decoder("parrot", &parrot, &small, &test_set(&device), &options).unwrap_err();
        assert!(err.to_string().contains("vocabulary"), "{err}");
        let none = MeasureOptions {
            batch_sizes: vec![],
            ..options
        };
        let err =
            measure_decoder("parrot", &parrot, &vocab, &test_set(&device), &none).unwrap_err();
        assert!(err.to_string().contains("batch sizes"), "{err}");
    }
}
