//! Import of PyTorch `nn.TransformerDecoder`-based captioners.
//!
//! # Key map
//!
//! PyTorch stores linear weights as `[out, in]`, Burn as `[in, out]`: every linear weight is
//! transposed. `in_proj_weight` stacks the query, key and value projections by rows; its
//! transpose stacks them by columns, as [`MultiHeadAttention::in_proj`] keeps them.
//!
//! | PyTorch key | shape | field |
//! | --- | --- | --- |
//! | `feature_proj.weight`, `.bias` | `[D, F]`, `[D]` | `feature_proj` |
//! | `region_embedding.weight` | `[R, D]` | `region_embedding` (R = grid²) |
//! | `embedding.weight` | `[V, D]` | `embedding` (rows reordered) |
//! | `decoder.layers.{i}.self_attn.in_proj_weight`, `in_proj_bias` | `[3D, D]`, `[3D]` | `layers[i].self_attn.in_proj` |
//! | `decoder.layers.{i}.self_attn.out_proj.weight`, `.bias` | `[D, D]`, `[D]` | `layers[i].self_attn.out_proj` |
//! | `decoder.layers.{i}.multihead_attn.*` | as `self_attn` | `layers[i].multihead_attn` |
//! | `decoder.layers.{i}.linear1.weight`, `.bias` | `[FF, D]`, `[FF]` | `layers[i].linear1` |
//! | `decoder.layers.{i}.linear2.weight`, `.bias` | `[D, FF]`, `[D]` | `layers[i].linear2` |
//! | `decoder.layers.{i}.norm1`…`norm3` `.weight`, `.bias` | `[D]` | `layers[i].norm1`…`norm3` |
//! | `decoder.norm.weight`, `.bias` | `[D]` | `norm` |
//! | `out.weight`, `out.bias` | `[V, D]`, `[V]` | `output_weight`, `output_bias` (rows reordered) |
//!
//! The PyTorch model this layout comes from (`nn.TransformerDecoderLayer` with
//! `norm_first=True`, `activation="relu"`, `batch_first=True`; `nn.TransformerDecoder` with a
//! final `LayerNorm`) computes `memory = feature_proj(regions) + region_embedding.weight`,
//! `x = embedding(tokens)·√D + sinusoid`, `logits = out(decoder(x, memory, causal mask))`.
//! A model whose `out.weight` is missing or equal to `embedding.weight` imports tied.

use std::path::Path;

use burn::module::Param;
use burn::nn::LayerNorm;
use burn::tensor::{Device, Tensor};

use crate::DecoderError;
use crate::state_dict::{RowOrder, StateDict};
use crate::transformer::{MultiHeadAttention, TransformerDecoder, TransformerDecoderConfig};

/// An imported Transformer decoder, its config (sizes read from the file) and the file's
/// keys it did not use.
#[derive(Debug)]
pub struct TransformerImport {
    /// The decoder.
    pub decoder: TransformerDecoder,
    /// Its sizes, from the tensors' shapes (dropout at its default).
    pub config: TransformerDecoderConfig,
    /// Keys in the file that map to no parameter, sorted.
    pub unused: Vec<String>,
}

/// Loads the `state_dict` of a PyTorch `nn.TransformerDecoder` captioner (`.pth` written by
/// `torch.save`, or `.safetensors`; key map in the [module docs](self)), reading every size
/// but the number of heads from the tensors' shapes.
///
/// # Arguments
/// - `n_heads`: attention heads per layer (not stored in the weights).
/// - `file_row`: for every token id of the target vocabulary, the row of the file's
///   embedding and output layer that holds it (`None`: keep the file's order).
///
/// # Errors
/// The file cannot be read, a key is missing, a tensor is not f32 or its shape disagrees
/// with the others (the error names the key and both shapes), the region count is not a
/// square, `n_heads` does not divide the width, or `file_row` is not a permutation of the
/// file's vocabulary.
pub fn load_pytorch_transformer(
    path: impl AsRef<Path>,
    n_heads: usize,
    file_row: Option<&[usize]>,
    device: &Device,
) -> Result<TransformerImport, DecoderError> {
    let path = path.as_ref();
    let mut file = StateDict::read(path)?;
    let [d, f] = file.shape2("feature_proj.weight")?;
    let [v, _] = file.shape2("embedding.weight")?;
    let [regions, _] = file.shape2("region_embedding.weight")?;
    let [d_ff, _] = file.shape2("decoder.layers.0.linear1.weight")?;
    let n_layers = (0..)
        .take_while(|i| file.contains(&format!("decoder.layers.{i}.linear1.weight")))
        .count();
    let grid = (1..=regions).find(|g| g * g >= regions).unwrap_or(0);
    if grid * grid != regions {
        return Err(DecoderError::Import {
            path: path.to_owned(),
            reason: format!("region_embedding has {regions} rows, not a square grid"),
        });
    }
    let embedding = file.tensor("embedding.weight", [v, d], device)?;
    let tied = match file.contains("out.weight") {
        false => true,
        true => {
            let out = file.tensor("out.weight", [v, d], device)?;
            out.clone()
                .equal(embedding.clone())
                .all()
                .into_scalar::<bool>()
        }
    };
    let config = TransformerDecoderConfig::new(v)
        .with_d_feature(f)
        .with_grid(grid)
        .with_d_model(d)
        .with_n_heads(n_heads)
        .with_n_layers(n_layers)
        .with_d_ff(d_ff)
        .with_tied_output(tied);
    let mut decoder = config.init(device)?;
    let order = RowOrder::new(path, file_row, v, device)?;
    let reorder = |t: Tensor<2>| order.apply(t);

    file.linear(&mut decoder.feature_proj, "feature_proj", f, d, device)?;
    decoder.region_embedding =
        Param::from_tensor(file.tensor("region_embedding.weight", [regions, d], device)?);
    decoder.embedding.weight = Param::from_tensor(reorder(embedding));
    for (i, layer) in decoder.layers.iter_mut().enumerate() {
        let prefix = format!("decoder.layers.{i}");
        attention(
            &mut file,
            &mut layer.self_attn,
            &format!("{prefix}.self_attn"),
            d,
            device,
        )?;
        attention(
            &mut file,
            &mut layer.multihead_attn,
            &format!("{prefix}.multihead_attn"),
            d,
            device,
        )?;
        file.linear(
            &mut layer.linear1,
            &format!("{prefix}.linear1"),
            d,
            d_ff,
            device,
        )?;
        file.linear(
            &mut layer.linear2,
            &format!("{prefix}.linear2"),
            d_ff,
            d,
            device,
        )?;
        for (norm, name) in [
            (&mut layer.norm1, "norm1"),
            (&mut layer.norm2, "norm2"),
            (&mut layer.norm3, "norm3"),
        ] {
            layer_norm(&mut file, norm, &format!("{prefix}.{name}"), d, device)?;
        }
    }
    layer_norm(&mut file, &mut decoder.norm, "decoder.norm", d, device)?;
    if !tied {
        let out = file.tensor("out.weight", [v, d], device)?;
        decoder.output_weight = Some(Param::from_tensor(reorder(out).transpose()));
    }
    let bias = file.tensor("out.bias", [v], device)?.unsqueeze_dim::<2>(1);
    decoder.output_bias = Param::from_tensor(reorder(bias).reshape([v]));
    Ok(TransformerImport {
        decoder,
        config,
        unused: file.unused(),
    })
}

/// `{prefix}.in_proj_weight` / `in_proj_bias` and `{prefix}.out_proj.*`.
fn attention(
    file: &mut StateDict<'_>,
    attention: &mut MultiHeadAttention,
    prefix: &str,
    d: usize,
    device: &Device,
) -> Result<(), DecoderError> {
    let weight = file.tensor(&format!("{prefix}.in_proj_weight"), [3 * d, d], device)?;
    attention.in_proj.weight = Param::from_tensor(weight.transpose());
    attention.in_proj.bias = Some(Param::from_tensor(file.tensor(
        &format!("{prefix}.in_proj_bias"),
        [3 * d],
        device,
    )?));
    file.linear(
        &mut attention.out_proj,
        &format!("{prefix}.out_proj"),
        d,
        d,
        device,
    )
}

/// `{prefix}.weight` and `{prefix}.bias` of a `LayerNorm`.
fn layer_norm(
    file: &mut StateDict<'_>,
    norm: &mut LayerNorm,
    prefix: &str,
    d: usize,
    device: &Device,
) -> Result<(), DecoderError> {
    norm.gamma = Param::from_tensor(file.tensor(&format!("{prefix}.weight"), [d], device)?);
    norm.beta = Some(Param::from_tensor(file.tensor(
        &format!("{prefix}.bias"),
        [d],
        device,
    )?));
    Ok(())
}
