//! Decoder weights: import of the PyTorch reference decoder, and Burn's own record format.
//!
//! # PyTorch key map
//!
//! The reference decoder (`nn.Linear` init_h/init_c/out, `nn.Embedding` embed, `nn.LSTM`
//! lstm) maps field for field. PyTorch stores linear weights as `[out, in]`; Burn as
//! `[in, out]`, so those are transposed. `nn.LSTM` stacks its gates in the order
//! input, forget, cell, output in both `weight_ih_l{k}` `[4H, in]` and `weight_hh_l{k}`
//! `[4H, H]`, with two bias vectors `bias_ih_l{k}`, `bias_hh_l{k}` `[4H]`; [`LstmCell`]
//! keeps that order and both biases, so the import is a transpose, not a gate shuffle.
//!
//! | PyTorch key | shape | decoder field |
//! | --- | --- | --- |
//! | `init_h.weight`, `init_c.weight` | `[L·H, F]` | `init_h.weight`, `init_c.weight` (transposed) |
//! | `init_h.bias`, `init_c.bias` | `[L·H]` | `init_h.bias`, `init_c.bias` |
//! | `embed.weight` | `[V, E]` | `embed.weight` |
//! | `lstm.weight_ih_l{k}` | `[4H, in]` | `lstm[k].weight_ih` (transposed) |
//! | `lstm.weight_hh_l{k}` | `[4H, H]` | `lstm[k].weight_hh` (transposed) |
//! | `lstm.bias_ih_l{k}`, `lstm.bias_hh_l{k}` | `[4H]` | `lstm[k].bias_ih`, `lstm[k].bias_hh` |
//! | `out.weight` | `[V, H]` | `out.weight` (transposed) |
//! | `out.bias` | `[V]` | `out.bias` |
//! | `feature_gates.weight` (par-inject only) | `[4H, F]` | `feature_gates.weight` (transposed) |
//!
//! With `d_whitened: k` in the config, `feature_whitening` `[F, k]` (our layout, not
//! transposed) is read too, and `init_h`, `init_c` and `feature_gates` take `k` inputs.
//!
//! `init_h`/`init_c` are read only for init-inject decoders (the config's `conditioning`
//! is `init` or `both`); a par-inject PyTorch model is an LSTM whose first layer takes
//! `[embedding; feature]`: split its `weight_ih_l0` into the embedding columns
//! (`lstm.weight_ih_l0`) and the feature columns (`feature_gates.weight`) before saving.
//!
//! Optional: `feature_mean`, `feature_scale` `[F]` (the feature standardisation; identity
//! when absent, as in the anchor's decoder). Other keys (the anchor's weight-sharing
//! `cell.*`, optimiser state) are reported as unused and ignored.

use std::collections::BTreeSet;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::{CaptionDecoder, CaptionDecoderConfig, DecoderError};

/// A decoder imported from PyTorch, and the file's keys it did not use.
#[derive(Debug)]
pub struct PytorchImport {
    /// The decoder.
    pub decoder: CaptionDecoder,
    /// Keys in the file that map to no decoder parameter, sorted.
    pub unused: Vec<String>,
}

struct Reader<'a> {
    path: &'a Path,
    tensors: SafeTensors<'a>,
    used: BTreeSet<String>,
    device: &'a Device,
}

impl Reader<'_> {
    fn tensor<const D: usize>(
        &mut self,
        key: &str,
        expected: [usize; D],
    ) -> Result<Tensor<D>, DecoderError> {
        let view = self
            .tensors
            .tensor(key)
            .map_err(|_| DecoderError::MissingTensor {
                path: self.path.to_owned(),
                key: key.to_owned(),
            })?;
        if view.dtype() != Dtype::F32 {
            return Err(DecoderError::DType {
                path: self.path.to_owned(),
                key: key.to_owned(),
                dtype: format!("{:?}", view.dtype()),
            });
        }
        if view.shape() != expected {
            return Err(DecoderError::ShapeMismatch {
                path: self.path.to_owned(),
                key: key.to_owned(),
                expected: expected.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let values: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        self.used.insert(key.to_owned());
        Ok(Tensor::from_data(
            TensorData::new(values, expected),
            self.device,
        ))
    }

    /// A PyTorch `[out, in]` matrix as Burn's `[in, out]`.
    fn transposed(
        &mut self,
        key: &str,
        d_in: usize,
        d_out: usize,
    ) -> Result<Param<Tensor<2>>, DecoderError> {
        Ok(Param::from_tensor(
            self.tensor(key, [d_out, d_in])?.transpose(),
        ))
    }

    fn vector(&mut self, key: &str, len: usize) -> Result<Param<Tensor<1>>, DecoderError> {
        Ok(Param::from_tensor(self.tensor(key, [len])?))
    }
}

/// Loads the PyTorch reference decoder's `state_dict` saved as safetensors
/// (`safetensors.torch.save_file(model.state_dict(), path)`).
///
/// # Errors
/// The file cannot be read or parsed, a tensor is missing, not f32, or of a shape other
/// than `config` implies (the error names the key and both shapes), or the config is invalid.
pub fn load_pytorch(
    path: impl AsRef<Path>,
    config: &CaptionDecoderConfig,
    device: &Device,
) -> Result<PytorchImport, DecoderError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| DecoderError::Read {
        path: path.to_owned(),
        source,
    })?;
    let tensors = SafeTensors::deserialize(&bytes).map_err(|source| DecoderError::Safetensors {
        path: path.to_owned(),
        source,
    })?;
    let mut decoder = config.init(device)?;
    let mut r = Reader {
        path,
        tensors,
        used: BTreeSet::new(),
        device,
    };
    let (f, h, v) = (config.d_feature, config.d_hidden, config.vocab_size);
    let d_in = config.d_whitened.unwrap_or(f);
    let d_state = h * config.n_layers;

    if let (Some(init_h), Some(init_c)) = (&mut decoder.init_h, &mut decoder.init_c) {
        init_h.weight = r.transposed("init_h.weight", d_in, d_state)?;
        init_h.bias = Some(r.vector("init_h.bias", d_state)?);
        init_c.weight = r.transposed("init_c.weight", d_in, d_state)?;
        init_c.bias = Some(r.vector("init_c.bias", d_state)?);
    }
    if let (Some(whitening), Some(k)) = (&mut decoder.feature_whitening, config.d_whitened) {
        *whitening = r
            .tensor("feature_whitening", [f, k])
            .map(|t| Param::from_tensor(t).set_require_grad(false))?;
    }
    if let Some(feature_gates) = &mut decoder.feature_gates {
        feature_gates.weight = r.transposed("feature_gates.weight", d_in, 4 * h)?;
    }
    decoder.embed.weight = Param::from_tensor(r.tensor("embed.weight", [v, config.d_embed])?);
    for (k, layer) in decoder.lstm.iter_mut().enumerate() {
        let d_input = if k == 0 { config.d_embed } else { h };
        layer.weight_ih = r.transposed(&format!("lstm.weight_ih_l{k}"), d_input, 4 * h)?;
        layer.weight_hh = r.transposed(&format!("lstm.weight_hh_l{k}"), h, 4 * h)?;
        layer.bias_ih = r.vector(&format!("lstm.bias_ih_l{k}"), 4 * h)?;
        layer.bias_hh = r.vector(&format!("lstm.bias_hh_l{k}"), 4 * h)?;
    }
    decoder.out.weight = r.transposed("out.weight", h, v)?;
    decoder.out.bias = Some(r.vector("out.bias", v)?);
    if r.tensors.names().contains(&"feature_mean") || r.tensors.names().contains(&"feature_scale") {
        decoder.feature_mean = r.vector("feature_mean", f)?.set_require_grad(false);
        decoder.feature_scale = r.vector("feature_scale", f)?.set_require_grad(false);
    }

    let unused = r
        .tensors
        .names()
        .into_iter()
        .filter(|k| !r.used.contains(*k))
        .map(str::to_owned)
        .collect::<BTreeSet<_>>();
    Ok(PytorchImport {
        decoder,
        unused: unused.into_iter().collect(),
    })
}

impl CaptionDecoder {
    /// The weights in Burn's record format (burnpack), for a checkpoint or model directory.
    ///
    /// # Errors
    /// [`DecoderError::Record`] (with an empty path) when serialisation fails.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecoderError> {
        record_bytes(self)
    }

    /// A decoder of `config` with the weights of a burnpack file written by [`to_bytes`](Self::to_bytes).
    ///
    /// # Errors
    /// The config is invalid, or the file is unreadable or does not fit the config.
    pub fn load(
        path: impl AsRef<Path>,
        config: &CaptionDecoderConfig,
        device: &Device,
    ) -> Result<Self, DecoderError> {
        load_record(config.init(device)?, path.as_ref())
    }
}

/// The frozen `(mean, scale)` parameters that standardise `d`-wide features:
/// `scale = 1 / std`, or 1 where the deviation is below 1e-6 (those dimensions are only
/// centred).
///
/// # Panics
/// When `mean` or `std` is not `d` long.
pub(crate) fn standardisation(
    mean: &[f32],
    std: &[f32],
    d: usize,
    device: &Device,
) -> (Param<Tensor<1>>, Param<Tensor<1>>) {
    assert!(
        mean.len() == d && std.len() == d,
        "feature statistics must have {d} values"
    );
    let scale: Vec<f32> = std
        .iter()
        .map(|s| if *s > 1e-6 { 1.0 / s } else { 1.0 })
        .collect();
    let vector = |values: Vec<f32>| {
        Param::from_tensor(Tensor::from_data(TensorData::new(values, [d]), device))
            .set_require_grad(false)
    };
    (vector(mean.to_vec()), vector(scale))
}

/// A module's weights in Burn's record format (burnpack).
pub(crate) fn record_bytes<M: Module>(module: &M) -> Result<Vec<u8>, DecoderError> {
    let bytes = module
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|source| DecoderError::Record {
            path: Default::default(),
            source,
        })?;
    Ok(bytes.to_vec())
}

/// `module` with the weights of the burnpack file at `path`.
pub(crate) fn load_record<M: Module>(module: M, path: &Path) -> Result<M, DecoderError> {
    module
        .try_load_file(path)
        .map_err(|source| DecoderError::Record {
            path: path.to_owned(),
            source,
        })
}

/// Draws every lazily initialised parameter of `module` now, in module order: Burn
/// initialises parameters on first use, and without this the order of the random draws
/// (so the weights a seed gives) would depend on which code touches them first.
pub(crate) fn materialize<M: Module>(module: M) -> M {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
    module
}

/// Flattened rows of `grid²` region features to standardised regions,
/// `(row − mean) · scale` per region: `[batch, grid²·d]` to `[batch, grid², d]`.
///
/// # Panics
/// When a row is not `grid²·d` wide (`family` names the decoder in the message).
pub(crate) fn standardised_regions(
    features: Tensor<2>,
    mean: &Param<Tensor<1>>,
    scale: &Param<Tensor<1>>,
    grid: usize,
    family: &str,
) -> Tensor<3> {
    let [batch, width] = features.dims();
    let d = mean.dims()[0];
    let regions = grid * grid;
    assert_eq!(
        width,
        regions * d,
        "{family} over a {grid}x{grid} grid of {d}-d features takes rows of {} values, not {width}",
        regions * d
    );
    let mean = mean.val().detach().reshape([1, 1, d]);
    let scale = scale.val().detach().reshape([1, 1, d]);
    (features.reshape([batch, regions, d]) - mean) * scale
}
