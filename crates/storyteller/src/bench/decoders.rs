//! The decoders `storyteller bench` trains, by name.

use serde::{Deserialize, Serialize};
use storyteller_decoder::Conditioning;

use crate::error::{Result, StorytellerError};
use crate::model_dir::DecoderKind;
use crate::train::TrainConfig;

/// A decoder the bench trains: a family and, for Show and Tell, how the image enters it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BenchDecoder {
    /// Show and Tell, init-inject: the pooled feature sets the LSTM's initial state and is
    /// not seen again (the seed's model; with `d_whitened: None` exactly it).
    ShowTell,
    /// Show and Tell, par-inject: the pooled feature enters every step.
    ShowTellPar,
    /// Show, Attend and Tell: soft attention over the grid of regions.
    ShowAttendTell,
    /// The Transformer: cross-attention over the grid (or the pooled feature).
    Transformer,
}

impl BenchDecoder {
    /// Every decoder, in table order.
    pub const ALL: [BenchDecoder; 4] = [
        BenchDecoder::ShowTell,
        BenchDecoder::ShowTellPar,
        BenchDecoder::ShowAttendTell,
        BenchDecoder::Transformer,
    ];

    /// The name on the command line, in tables and as the model directory.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShowTell => "show-tell",
            Self::ShowTellPar => "show-tell-par",
            Self::ShowAttendTell => "show-attend-tell",
            Self::Transformer => "transformer",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Parses a comma-separated list of names (spaces around names are ignored).
    ///
    /// # Errors
    /// [`StorytellerError::Bench`] for an empty list, an unknown name (the message lists the
    /// valid ones) or a name given twice.
    pub fn parse_list(list: &str) -> Result<Vec<Self>> {
        let mut decoders = Vec::new();
        for name in list.split(',').map(str::trim) {
            let decoder = Self::parse(name).ok_or_else(|| {
                StorytellerError::Bench(format!(
                    "unknown decoder {name:?}: expected a comma-separated list of {}",
                    Self::ALL.map(Self::name).join(", ")
                ))
            })?;
            if decoders.contains(&decoder) {
                return Err(StorytellerError::Bench(format!(
                    "decoder {name} is listed twice"
                )));
            }
            decoders.push(decoder);
        }
        Ok(decoders)
    }

    /// The decoder family.
    pub fn kind(self) -> DecoderKind {
        match self {
            Self::ShowTell | Self::ShowTellPar => DecoderKind::ShowTell,
            Self::ShowAttendTell => DecoderKind::ShowAttendTell,
            Self::Transformer => DecoderKind::Transformer,
        }
    }

    /// Whether it reads one pooled vector per image (Show and Tell); the others read the
    /// cache they are given (a grid, or for the Transformer a pooled vector too).
    pub fn reads_pooled(self) -> bool {
        self.kind() == DecoderKind::ShowTell
    }

    /// `base` with this decoder's family (and conditioning); every other setting is the
    /// base's, so all decoders share the seed, the split and the budget.
    pub fn train_config(self, base: &TrainConfig) -> TrainConfig {
        let config = base.clone().with_kind(self.kind());
        match self {
            Self::ShowTell => config.with_conditioning(Conditioning::Init),
            Self::ShowTellPar => config.with_conditioning(Conditioning::Par),
            Self::ShowAttendTell | Self::Transformer => config,
        }
    }
}

impl std::fmt::Display for BenchDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_lists_parse() {
        for decoder in BenchDecoder::ALL {
            assert_eq!(BenchDecoder::parse(decoder.name()), Some(decoder));
            let json = serde_json::to_string(&decoder).unwrap();
            assert_eq!(json, format!("\"{}\"", decoder.name()));
        }
        assert_eq!(
            BenchDecoder::parse_list("transformer, show-tell").unwrap(),
            [BenchDecoder::Transformer, BenchDecoder::ShowTell]
        );
        assert_eq!(
            BenchDecoder::parse_list("show-tell,show-tell-par,show-attend-tell,transformer")
                .unwrap(),
            BenchDecoder::ALL
        );
    }

    #[test]
    fn bad_lists_name_the_valid_decoders() {
        for list in ["", "show-tell,", "lstm", "show-tell,Transformer"] {
            let err = BenchDecoder::parse_list(list).unwrap_err().to_string();
            assert!(
                err.contains("show-tell, show-tell-par, show-attend-tell, transformer"),
                "{list:?}: {err}"
            );
        }
        let err = BenchDecoder::parse_list("transformer,transformer")
            .unwrap_err()
            .to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn configs_differ_only_in_family_and_conditioning() {
        let base = TrainConfig::new().with_seed(9).with_epochs(4);
        let configs = BenchDecoder::ALL.map(|d| d.train_config(&base));
        assert_eq!(configs[0].conditioning, Conditioning::Init);
        assert_eq!(configs[1].conditioning, Conditioning::Par);
        assert_eq!(configs[2].kind, DecoderKind::ShowAttendTell);
        assert_eq!(configs[3].kind, DecoderKind::Transformer);
        for config in &configs {
            assert_eq!((config.seed, config.epochs), (9, 4));
            let same = config
                .clone()
                .with_kind(base.kind)
                .with_conditioning(base.conditioning);
            assert_eq!(same, base);
        }
        assert!(BenchDecoder::ShowTellPar.reads_pooled());
        assert!(!BenchDecoder::Transformer.reads_pooled());
    }
}
