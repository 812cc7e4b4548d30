//! Import of the PyTorch tutorial's `DecoderWithAttention` weights.
//!
//! # Key map
//!
//! PyTorch stores linear weights as `[out, in]`, Burn as `[in, out]`: every `*.weight` of a
//! linear layer is transposed. `decode_step` is an `nn.LSTMCell` whose gates are stacked
//! i, f, g, o, as [`LstmCell`](crate::LstmCell) keeps them; its input is
//! `[embedding; context]`, so the first `d_embed` columns of `weight_ih` read the embedding.
//!
//! | PyTorch key | shape | field |
//! | --- | --- | --- |
//! | `attention.encoder_att.weight`, `.bias` | `[A, F]`, `[A]` | `attention.encoder_att` |
//! | `attention.decoder_att.weight`, `.bias` | `[A, H]`, `[A]` | `attention.decoder_att` |
//! | `attention.full_att.weight`, `.bias` | `[1, A]`, `[1]` | `attention.full_att` |
//! | `embedding.weight` | `[V, E]` | `embedding` (rows reordered) |
//! | `decode_step.weight_ih`, `weight_hh` | `[4H, E+F]`, `[4H, H]` | `decode_step` |
//! | `decode_step.bias_ih`, `bias_hh` | `[4H]` | `decode_step` |
//! | `init_h.*`, `init_c.*` | `[H, F]`, `[H]` | `init_h`, `init_c` |
//! | `f_beta.weight`, `.bias` | `[F, H]`, `[F]` | `f_beta` |
//! | `fc.weight`, `.bias` | `[V, H]`, `[V]` | `fc` (rows reordered) |
//!
//! The tutorial numbers its words from 1 and puts `<unk>`, `<start>`, `<end>` after them
//! (`<pad>` is 0); a Neural Storyteller vocabulary puts the four specials first. The caller
//! passes the permutation (`file_row[i]`: the file's row of our token `i`) and the
//! embedding and output rows are reordered by it, so the imported model scores exactly as
//! the original, under our token ids.

use std::path::Path;

use burn::module::Param;
use burn::tensor::{Device, Tensor};

use crate::DecoderError;
use crate::attention::{AttentionDecoder, AttentionDecoderConfig};
use crate::state_dict::{RowOrder, StateDict};

/// An imported tutorial decoder, its config (sizes read from the file) and the file's
/// keys it did not use.
#[derive(Debug)]
pub struct TutorialImport {
    /// The decoder.
    pub decoder: AttentionDecoder,
    /// Its sizes, from the tensors' shapes (dropout and λ at the tutorial's defaults).
    pub config: AttentionDecoderConfig,
    /// Keys in the file that map to no parameter, sorted.
    pub unused: Vec<String>,
}

/// Loads a tutorial `DecoderWithAttention` `state_dict` (`.pth` written by `torch.save`, or
/// `.safetensors`), reading every size from the tensors' shapes.
///
/// # Arguments
/// - `grid`: the side of the feature grid the model was trained on (the tutorial's
///   encoder pools to 14x14); not stored in the weights.
/// - `file_row`: for every token id of the target vocabulary, the row of the file's
///   embedding and output layer that holds it (`None`: keep the file's order).
///
/// # Errors
/// The file cannot be read, a key is missing, a tensor is not f32 or its shape disagrees
/// with the others (the error names the key and both shapes), or `file_row` is not a
/// permutation of the file's vocabulary.
pub fn load_tutorial(
    path: impl AsRef<Path>,
    grid: usize,
    file_row: Option<&[usize]>,
    device: &Device,
) -> Result<TutorialImport, DecoderError> {
    let path = path.as_ref();
    let mut file = StateDict::read(path)?;
    let [_, f] = file.shape2("init_h.weight")?;
    let [_, h] = file.shape2("decode_step.weight_hh")?;
    let [a, _] = file.shape2("attention.encoder_att.weight")?;
    let [v, e] = file.shape2("embedding.weight")?;
    let config = AttentionDecoderConfig::new(v)
        .with_d_feature(f)
        .with_grid(grid)
        .with_d_embed(e)
        .with_d_attention(a)
        .with_d_hidden(h);
    let mut decoder = config.init(device)?;
    let order = RowOrder::new(path, file_row, v, device)?;
    let reorder = |t: Tensor<2>| order.apply(t);

    let attention = &mut decoder.attention;
    file.linear(
        &mut attention.encoder_att,
        "attention.encoder_att",
        f,
        a,
        device,
    )?;
    file.linear(
        &mut attention.decoder_att,
        "attention.decoder_att",
        h,
        a,
        device,
    )?;
    file.linear(&mut attention.full_att, "attention.full_att", a, 1, device)?;
    decoder.embedding.weight =
        Param::from_tensor(reorder(file.tensor("embedding.weight", [v, e], device)?));
    let cell = &mut decoder.decode_step;
    cell.weight_ih = Param::from_tensor(
        file.tensor("decode_step.weight_ih", [4 * h, e + f], device)?
            .transpose(),
    );
    cell.weight_hh = Param::from_tensor(
        file.tensor("decode_step.weight_hh", [4 * h, h], device)?
            .transpose(),
    );
    cell.bias_ih = Param::from_tensor(file.tensor("decode_step.bias_ih", [4 * h], device)?);
    cell.bias_hh = Param::from_tensor(file.tensor("decode_step.bias_hh", [4 * h], device)?);
    file.linear(&mut decoder.init_h, "init_h", f, h, device)?;
    file.linear(&mut decoder.init_c, "init_c", f, h, device)?;
    file.linear(&mut decoder.f_beta, "f_beta", h, f, device)?;
    let fc = file.tensor("fc.weight", [v, h], device)?;
    decoder.fc.weight = Param::from_tensor(reorder(fc).transpose());
    let bias = file.tensor("fc.bias", [v], device)?.unsqueeze_dim::<2>(1);
    decoder.fc.bias = Some(Param::from_tensor(reorder(bias).reshape([v])));

    Ok(TutorialImport {
        decoder,
        config,
        unused: file.unused(),
    })
}
