//! The search strategy as one serialisable value.

use burn::config::Config;
use burn::tensor::Tensor;

use crate::{BeamSearch, GreedySearch, Hypothesis, SearchError, StepDecoder};

/// Greedy or beam search, chosen at run time (for example from a model's `config.json`).
#[derive(Config, Debug)]
pub enum Search {
    /// The most probable token at every step.
    Greedy(GreedySearch),
    /// The `width` most probable partial captions.
    Beam(BeamSearch),
}

impl Search {
    /// Checks the settings without running anything.
    ///
    /// # Returns
    ///
    /// The first configuration error, if any (see [`SearchError`]).
    pub fn validate(&self) -> Result<(), SearchError> {
        match self {
            Self::Greedy(greedy) => greedy.validate(),
            Self::Beam(beam) => beam.validate(),
        }
    }

    /// Decodes the ranked hypotheses of every image with the chosen strategy.
    ///
    /// # Arguments
    ///
    /// * `decoder` - The model, advanced one token at a time.
    /// * `features` - Image features, one row per image.
    ///
    /// # Shapes
    ///
    /// * `features`: `[batch, d_feature]`
    ///
    /// # Returns
    ///
    /// For every image, in input order, its hypotheses best first (one for greedy search,
    /// up to `n_best` for beam search).
    pub fn search<D: StepDecoder + ?Sized>(
        &self,
        decoder: &D,
        features: Tensor<2>,
    ) -> Result<Vec<Vec<Hypothesis>>, SearchError> {
        match self {
            Self::Greedy(greedy) => greedy.search(decoder, features),
            Self::Beam(beam) => beam.search(decoder, features),
        }
    }
}

impl From<GreedySearch> for Search {
    fn from(greedy: GreedySearch) -> Self {
        Self::Greedy(greedy)
    }
}

impl From<BeamSearch> for Search {
    fn from(beam: BeamSearch) -> Self {
        Self::Beam(beam)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_forwards_to_the_strategy() {
        let search = Search::from(BeamSearch::new().with_width(0));
        assert_eq!(search.validate(), Err(SearchError::ZeroWidth));
        assert!(Search::from(GreedySearch::new()).validate().is_ok());
    }

    #[test]
    fn round_trips_through_json() {
        let search = Search::from(BeamSearch::new().with_width(4));
        let json = serde_json::to_string(&search).unwrap();
        match serde_json::from_str::<Search>(&json).unwrap() {
            Search::Beam(beam) => assert_eq!(beam.width, 4),
            other => panic!("expected beam search, got {other:?}"),
        }
    }
}
