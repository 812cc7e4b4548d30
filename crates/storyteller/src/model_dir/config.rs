//! `config.json`: what a model is and how to run it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use storyteller_data::PreprocessConfig;
use storyteller_decoder::{CaptionDecoderConfig, DecoderConfig};
use storyteller_search::BeamSearch;

use super::{ModelLayout, read_json, write_bytes};
use crate::error::{Result, StorytellerError};

/// Format tag of `config.json`.
pub const MODEL_FORMAT: &str = "storyteller-model/3";
/// The format before the decoder kind and the file checksums (every such model is a
/// Show and Tell LSTM, and its files are not verified); it still loads.
pub const MODEL_FORMAT_V2: &str = "storyteller-model/2";
/// The first format (no `decoder.conditioning`: every such model is init-inject); it
/// still loads.
pub const MODEL_FORMAT_V1: &str = "storyteller-model/1";

/// The largest image side (resize and crop) a model may ask for: a larger one is a corrupt
/// or hostile config, not a model (a 100,000 px crop would need a 120 GB tensor).
pub const MAX_IMAGE_SIDE: u32 = 2048;
/// The most decoder parameters a config may describe (4 GB of f32).
pub const MAX_DECODER_PARAMETERS: u64 = 1 << 30;
/// The widest default beam a config may ask for.
pub const MAX_BEAM_WIDTH: usize = 256;
/// The longest default caption a config may ask for.
pub const MAX_CAPTION_TOKENS: usize = 1024;

/// Which decoder family a model directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DecoderKind {
    /// The LSTM of Show and Tell, conditioned on the pooled feature (init-inject or
    /// par-inject, see `decoder.conditioning`).
    #[default]
    ShowTell,
    /// The soft-attention LSTM of Show, Attend and Tell over a grid of region features
    /// (`decoder.grid`).
    ShowAttendTell,
    /// A pre-norm Transformer decoder with cross-attention over a grid of region features
    /// (`decoder.grid`; 1: the pooled feature).
    Transformer,
}

impl DecoderKind {
    /// Every kind.
    pub const ALL: [DecoderKind; 3] = [
        DecoderKind::ShowTell,
        DecoderKind::ShowAttendTell,
        DecoderKind::Transformer,
    ];

    /// The name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::ShowTell => "show-tell",
            Self::ShowAttendTell => "show-attend-tell",
            Self::Transformer => "transformer",
        }
    }

    /// Parses [`name`](Self::name).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The kind of a decoder config.
    pub fn of(config: &DecoderConfig) -> Self {
        match config {
            DecoderConfig::ShowAttendTell(_) => Self::ShowAttendTell,
            DecoderConfig::Transformer(_) => Self::Transformer,
            _ => Self::ShowTell,
        }
    }
}

impl std::fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which encoder weights a model expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncoderRef {
    /// The weights file (`.pth`, `.safetensors` or `.bpk`); relative paths are relative to
    /// the model directory.
    pub weights: PathBuf,
    /// Hash of the weights (`storyteller_encoder::Encoder::weights_hash`).
    pub hash: String,
}

/// `config.json` of a model directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// The decoder family and its hyper-parameters, stored as `kind` (`show-tell`,
    /// `show-attend-tell`, `transformer`; absent before format 3: Show and Tell) and
    /// `decoder`.
    #[serde(flatten)]
    pub decoder: DecoderConfig,
    /// Image preprocessing the features were made with.
    pub preprocess: PreprocessConfig,
    /// The encoder.
    pub encoder: EncoderRef,
    /// Default beam search for captioning.
    pub beam: BeamSearch,
    /// `sha256:<hex>` of each file published with this config (`vocab.json`,
    /// `decoder.bpk`), verified on load; empty in directories written before format 3.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
}

impl ModelConfig {
    /// A config with the default beam search (width 3, 20 tokens).
    pub fn new(
        decoder: impl Into<DecoderConfig>,
        preprocess: PreprocessConfig,
        encoder: EncoderRef,
    ) -> Self {
        Self {
            format: MODEL_FORMAT.to_owned(),
            decoder: decoder.into(),
            preprocess,
            encoder,
            beam: BeamSearch::new(),
            files: BTreeMap::new(),
        }
    }

    /// Reads and validates `config.json` of `dir`.
    ///
    /// # Errors
    /// Missing or malformed file, another format version, or a setting out of range.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = ModelLayout::new(dir).config();
        if !path.exists() {
            return Err(StorytellerError::ModelDir {
                path: dir.to_owned(),
                reason: format!(
                    "not a model directory ({} is missing; `storyteller train` writes one)",
                    ModelLayout::CONFIG
                ),
            });
        }
        let mut value: serde_json::Value = read_json(&path, "model config")?;
        let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
        match format {
            MODEL_FORMAT | MODEL_FORMAT_V2 => {}
            MODEL_FORMAT_V1 => {
                if let Some(decoder) = value.get_mut("decoder") {
                    upgrade_decoder_config(decoder);
                }
            }
            _ => {
                return Err(StorytellerError::ModelDir {
                    path,
                    reason: format!(
                        "format {format:?}, this version reads {MODEL_FORMAT:?}, {MODEL_FORMAT_V2:?} and {MODEL_FORMAT_V1:?}"
                    ),
                });
            }
        }
        value["format"] = MODEL_FORMAT.into();
        if let Some(map) = value.as_object_mut() {
            map.entry("kind")
                .or_insert_with(|| DecoderKind::ShowTell.name().into());
        }
        let config: Self =
            serde_json::from_value(value).map_err(|source| StorytellerError::Json {
                path: path.clone(),
                what: "model config",
                source,
            })?;
        config
            .validate()
            .map_err(|reason| StorytellerError::ModelDir { path, reason })?;
        Ok(config)
    }

    /// Checks every setting: the decoder's own checks and a parameter budget, the
    /// preprocessing's checks and [`MAX_IMAGE_SIDE`], the beam's checks and its bounds.
    ///
    /// # Errors
    /// The first setting out of range, named as `section.field`.
    pub fn validate(&self) -> std::result::Result<(), String> {
        self.decoder
            .validate()
            .map_err(|err| format!("decoder: {err}"))?;
        let (parameters, sizes) = match &self.decoder {
            DecoderConfig::ShowTell(d) => (
                decoder_parameters(d),
                format!(
                    "vocab_size {}, d_embed {}, d_hidden {}, n_layers {}",
                    d.vocab_size, d.d_embed, d.d_hidden, d.n_layers
                ),
            ),
            DecoderConfig::ShowAttendTell(d) => (
                d.parameters(),
                format!(
                    "vocab_size {}, d_feature {}, d_embed {}, d_attention {}, d_hidden {}",
                    d.vocab_size, d.d_feature, d.d_embed, d.d_attention, d.d_hidden
                ),
            ),
            DecoderConfig::Transformer(d) => (
                d.parameters(),
                format!(
                    "vocab_size {}, d_feature {}, d_model {}, n_layers {}, d_ff {}",
                    d.vocab_size, d.d_feature, d.d_model, d.n_layers, d.d_ff
                ),
            ),
            _ => (0, String::new()),
        };
        if parameters > MAX_DECODER_PARAMETERS {
            return Err(format!(
                "decoder: {parameters} parameters ({sizes}), more than the {MAX_DECODER_PARAMETERS} a model may have"
            ));
        }
        self.preprocess
            .validate()
            .map_err(|err| format!("preprocess: {err}"))?;
        for (field, side) in [
            ("resize", self.preprocess.resize),
            ("crop", self.preprocess.crop),
        ] {
            if side > MAX_IMAGE_SIDE {
                return Err(format!(
                    "preprocess.{field} {side} is larger than {MAX_IMAGE_SIDE} px"
                ));
            }
        }
        self.beam.validate().map_err(|err| format!("beam: {err}"))?;
        if self.beam.width > MAX_BEAM_WIDTH {
            return Err(format!(
                "beam.width {} is more than {MAX_BEAM_WIDTH}",
                self.beam.width
            ));
        }
        if self.beam.max_len > MAX_CAPTION_TOKENS {
            return Err(format!(
                "beam.max_len {} is more than {MAX_CAPTION_TOKENS}",
                self.beam.max_len
            ));
        }
        let vocab = self.decoder.vocab_size();
        for (field, token) in [
            ("start_token", self.beam.start_token),
            ("end_token", self.beam.end_token),
        ] {
            if token as usize >= vocab {
                return Err(format!(
                    "beam.{field} {token} is outside the vocabulary ({vocab} words)"
                ));
            }
        }
        if !self.beam.length_penalty.is_finite() {
            return Err(format!(
                "beam.length_penalty {} is not finite",
                self.beam.length_penalty
            ));
        }
        if self.encoder.hash.is_empty() {
            return Err("encoder.hash is empty".into());
        }
        Ok(())
    }

    /// Writes `config.json` into `dir` atomically.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("a model config serialises");
        write_bytes(&ModelLayout::new(dir).config(), json.as_bytes())
    }

    /// The decoder family.
    pub fn kind(&self) -> DecoderKind {
        DecoderKind::of(&self.decoder)
    }

    /// The encoder weights path, resolved against the model directory.
    pub fn encoder_weights(&self, dir: &Path) -> PathBuf {
        if self.encoder.weights.is_absolute() {
            self.encoder.weights.clone()
        } else {
            dir.join(&self.encoder.weights)
        }
    }
}

/// The parameters a Show and Tell decoder config describes (an upper estimate, computed
/// without allocating, so a hostile config is refused before any tensor exists).
fn decoder_parameters(config: &CaptionDecoderConfig) -> u64 {
    let [vocab, feature, embed, hidden, layers] = [
        config.vocab_size,
        config.d_feature,
        config.d_embed,
        config.d_hidden,
        config.n_layers,
    ]
    .map(|n| n as u64);
    let input = embed.saturating_add(feature);
    let first = 4u64
        .saturating_mul(hidden)
        .saturating_mul(input.saturating_add(hidden).saturating_add(2));
    let rest = 4u64
        .saturating_mul(hidden)
        .saturating_mul(hidden.saturating_mul(2).saturating_add(2))
        .saturating_mul(layers.saturating_sub(1));
    [
        vocab.saturating_mul(embed),
        feature.saturating_mul(
            feature
                .saturating_add(embed)
                .saturating_add(hidden.saturating_mul(2).saturating_add(2)),
        ),
        first,
        rest,
        hidden.saturating_add(1).saturating_mul(vocab),
    ]
    .into_iter()
    .fold(0u64, u64::saturating_add)
}

/// Fills the decoder-config fields that models written before they existed lack, with the
/// value those models had: `conditioning` `init` (the seed's init-inject decoder).
pub(crate) fn upgrade_decoder_config(decoder: &mut serde_json::Value) {
    if let Some(map) = decoder.as_object_mut() {
        map.entry("conditioning").or_insert_with(|| "init".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_refuses_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig::new(
            CaptionDecoderConfig::new(40),
            PreprocessConfig::imagenet(64),
            EncoderRef {
                weights: "encoder.bpk".into(),
                hash: "abc".into(),
            },
        );
        config.save(dir.path()).unwrap();
        let loaded = ModelConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.decoder, config.decoder);
        assert_eq!(
            loaded.encoder_weights(dir.path()),
            dir.path().join("encoder.bpk")
        );

        let text = std::fs::read_to_string(dir.path().join(ModelLayout::CONFIG)).unwrap();
        std::fs::write(
            dir.path().join(ModelLayout::CONFIG),
            text.replace(MODEL_FORMAT, "storyteller-model/99"),
        )
        .unwrap();
        let err = ModelConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("storyteller-model/99"), "{err}");
    }

    #[test]
    fn a_version_1_config_loads_as_init_inject() {
        let dir = tempfile::tempdir().unwrap();
        let config = ModelConfig::new(
            CaptionDecoderConfig::new(40).with_conditioning(storyteller_decoder::Conditioning::Par),
            PreprocessConfig::imagenet(64),
            EncoderRef {
                weights: "encoder.bpk".into(),
                hash: "abc".into(),
            },
        );
        let mut value = serde_json::to_value(&config).unwrap();
        value["format"] = MODEL_FORMAT_V1.into();
        value["decoder"]
            .as_object_mut()
            .unwrap()
            .remove("conditioning");
        value.as_object_mut().unwrap().remove("kind");
        std::fs::write(dir.path().join(ModelLayout::CONFIG), value.to_string()).unwrap();
        let loaded = ModelConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.format, MODEL_FORMAT);
        let DecoderConfig::ShowTell(decoder) = &loaded.decoder else {
            panic!("a version 1 model is Show and Tell");
        };
        assert_eq!(
            decoder.conditioning,
            storyteller_decoder::Conditioning::Init
        );
    }

    #[test]
    fn a_version_2_config_loads_as_show_tell_without_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let config = sample();
        let mut value = serde_json::to_value(&config).unwrap();
        value["format"] = MODEL_FORMAT_V2.into();
        value.as_object_mut().unwrap().remove("kind");
        std::fs::write(dir.path().join(ModelLayout::CONFIG), value.to_string()).unwrap();
        let loaded = ModelConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.kind(), DecoderKind::ShowTell);
        assert!(loaded.files.is_empty());
        let text = serde_json::to_value(&loaded).unwrap();
        assert_eq!(text["kind"], "show-tell");
    }

    fn sample() -> ModelConfig {
        ModelConfig::new(
            CaptionDecoderConfig::new(40),
            PreprocessConfig::imagenet(64),
            EncoderRef {
                weights: "encoder.bpk".into(),
                hash: "sha256:abc".into(),
            },
        )
    }

    /// Every field out of range is refused on load with its name, before anything is
    /// allocated.
    #[test]
    fn out_of_range_settings_are_refused_naming_the_field() {
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "preprocess",
                Box::new(|v| v["preprocess"]["crop"] = 0.into()),
            ),
            (
                "larger than 2048 px",
                Box::new(|v| {
                    v["preprocess"]["crop"] = 100_000.into();
                    v["preprocess"]["resize"] = 100_000.into();
                }),
            ),
            (
                "preprocess",
                Box::new(|v| v["preprocess"]["std"][1] = 0.0.into()),
            ),
            (
                "d_hidden",
                Box::new(|v| v["decoder"]["d_hidden"] = 0.into()),
            ),
            (
                "parameters",
                Box::new(|v| v["decoder"]["d_hidden"] = 1_000_000.into()),
            ),
            (
                "parameters",
                Box::new(|v| v["decoder"]["vocab_size"] = u64::MAX.into()),
            ),
            (
                "dropout",
                Box::new(|v| v["decoder"]["dropout"] = 1.5.into()),
            ),
            (
                "beam.width",
                Box::new(|v| v["beam"]["width"] = 100_000.into()),
            ),
            (
                "beam.max_len",
                Box::new(|v| v["beam"]["max_len"] = 1_000_000.into()),
            ),
            (
                "beam.end_token",
                Box::new(|v| v["beam"]["end_token"] = 40.into()),
            ),
            ("beam", Box::new(|v| v["beam"]["width"] = 0.into())),
            (
                "encoder.hash",
                Box::new(|v| v["encoder"]["hash"] = "".into()),
            ),
            (
                "model config",
                Box::new(|v| v["kind"] = "rnn-of-the-future".into()),
            ),
            (
                "model config",
                Box::new(|v| v["preprocess"]["crop"] = (-3).into()),
            ),
        ];
        for (needle, edit) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut value = serde_json::to_value(sample()).unwrap();
            edit(&mut value);
            std::fs::write(dir.path().join(ModelLayout::CONFIG), value.to_string()).unwrap();
            let err = ModelConfig::load(dir.path()).unwrap_err();
            let message = format!("{err}: {:?}", std::error::Error::source(&err));
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }

    #[test]
    fn the_parameter_estimate_bounds_the_real_count_closely() {
        use burn::module::Module;
        let device = burn::tensor::Device::flex();
        for config in [
            CaptionDecoderConfig::new(50).with_d_feature(16),
            CaptionDecoderConfig::new(70)
                .with_d_feature(24)
                .with_n_layers(2)
                .with_conditioning(storyteller_decoder::Conditioning::Par),
            CaptionDecoderConfig::new(60)
                .with_d_feature(32)
                .with_d_whitened(Some(8)),
        ] {
            let real = config.init(&device).unwrap().num_params() as u64;
            let estimate = decoder_parameters(&config);
            assert!(
                estimate >= real && estimate <= 2 * real,
                "{estimate} vs {real}"
            );
        }
        assert!(decoder_parameters(&CaptionDecoderConfig::new(10_000)) < MAX_DECODER_PARAMETERS);
    }

    #[test]
    fn a_directory_without_config_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelConfig::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a model directory"), "{err}");
    }
}
