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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleStore, PytorchStore, SafetensorsStore, bridge};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::DecoderError;
use crate::attention::{AttentionDecoder, AttentionDecoderConfig};

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
    let mut file = TutorialFile::read(path)?;
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
    let order = match file_row {
        Some(rows) => Some(permutation(path, rows, v)?),
        None => None,
    };
    let reorder = |t: Tensor<2>| match &order {
        Some(rows) => t.select(
            0,
            Tensor::<1, Int>::from_data(TensorData::new(rows.clone(), [rows.len()]), device),
        ),
        None => t,
    };

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

    let unused = file
        .tensors
        .keys()
        .filter(|k| !file.used.contains(*k))
        .cloned()
        .collect();
    Ok(TutorialImport {
        decoder,
        config,
        unused,
    })
}

/// Checks that `rows` maps every token to a distinct row of a `v`-row vocabulary.
fn permutation(path: &Path, rows: &[usize], v: usize) -> Result<Vec<i64>, DecoderError> {
    let distinct: BTreeSet<usize> = rows.iter().copied().collect();
    if rows.len() != v || distinct.len() != v || rows.iter().any(|&r| r >= v) {
        return Err(DecoderError::Import {
            path: path.to_owned(),
            reason: format!(
                "the word map does not match the weights: the file scores {v} tokens, the \
                 vocabulary maps {} tokens onto {} distinct rows",
                rows.len(),
                distinct.len()
            ),
        });
    }
    Ok(rows.iter().map(|&r| r as i64).collect())
}

/// A checkpoint's tensors by key, and the keys read so far.
struct TutorialFile<'a> {
    path: &'a Path,
    tensors: BTreeMap<String, PackTensor>,
    used: BTreeSet<String>,
}

impl<'a> TutorialFile<'a> {
    fn read(path: &'a Path) -> Result<Self, DecoderError> {
        let import_error = |reason: String| DecoderError::Import {
            path: path.to_owned(),
            reason,
        };
        if !path.exists() {
            return Err(DecoderError::Read {
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let safetensors = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("safetensors"));
        let all = if safetensors {
            SafetensorsStore::from_file(path)
                .get_all_tensors()
                .map(|all| all.values().cloned().collect::<Vec<_>>())
                .map_err(|err| import_error(format!("not a safetensors file: {err}")))?
        } else {
            PytorchStore::from_file(path)
                .get_all_tensors()
                .map(|all| all.values().cloned().collect::<Vec<_>>())
                .map_err(|err| {
                    import_error(format!(
                        "not a PyTorch state_dict ({err}); a tutorial checkpoint pickles whole \
                         modules: export its decoder's state_dict first (see the import docs)"
                    ))
                })?
        };
        Ok(Self {
            path,
            tensors: all.into_iter().map(|t| (t.name.clone(), t)).collect(),
            used: BTreeSet::new(),
        })
    }

    fn get(&self, key: &str) -> Result<&PackTensor, DecoderError> {
        self.tensors
            .get(key)
            .ok_or_else(|| DecoderError::MissingTensor {
                path: self.path.to_owned(),
                key: key.to_owned(),
            })
    }

    fn shape2(&self, key: &str) -> Result<[usize; 2], DecoderError> {
        match self.get(key)?.shape.as_slice() {
            &[rows, columns] => Ok([rows, columns]),
            other => Err(DecoderError::Import {
                path: self.path.to_owned(),
                reason: format!("tensor {key:?} has shape {other:?}, expected a matrix"),
            }),
        }
    }

    fn tensor<const D: usize>(
        &mut self,
        key: &str,
        expected: [usize; D],
        device: &Device,
    ) -> Result<Tensor<D>, DecoderError> {
        let tensor = self.get(key)?;
        if tensor.shape.as_slice() != expected.as_slice() {
            return Err(DecoderError::ShapeMismatch {
                path: self.path.to_owned(),
                key: key.to_owned(),
                expected: expected.to_vec(),
                found: tensor.shape.to_vec(),
            });
        }
        if tensor.dtype != DType::F32 {
            return Err(DecoderError::DType {
                path: self.path.to_owned(),
                key: key.to_owned(),
                dtype: format!("{:?}", tensor.dtype),
            });
        }
        let data: TensorData = bridge::to_data(tensor).map_err(|err| DecoderError::Import {
            path: self.path.to_owned(),
            reason: format!("tensor {key:?}: {err}"),
        })?;
        self.used.insert(key.to_owned());
        Ok(Tensor::from_data(data, device))
    }

    /// `{prefix}.weight` `[d_out, d_in]` (transposed) and `{prefix}.bias` `[d_out]`.
    fn linear(
        &mut self,
        linear: &mut Linear,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        device: &Device,
    ) -> Result<(), DecoderError> {
        let weight = self.tensor(&format!("{prefix}.weight"), [d_out, d_in], device)?;
        linear.weight = Param::from_tensor(weight.transpose());
        linear.bias = Some(Param::from_tensor(self.tensor(
            &format!("{prefix}.bias"),
            [d_out],
            device,
        )?));
        Ok(())
    }
}
