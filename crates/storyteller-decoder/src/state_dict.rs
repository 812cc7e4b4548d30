//! A PyTorch `state_dict` read from `.pth` or `.safetensors`: typed, shape-checked access by
//! key, and the keys no parameter used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::Param;
use burn::nn::Linear;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::store::{ModuleStore, PytorchStore, SafetensorsStore, bridge};
use burn::tensor::{DType, Device, Int, Tensor, TensorData};

use crate::DecoderError;

/// The file's vocabulary rows in our token order (`None`: the file's own order).
pub(crate) struct RowOrder(Option<Tensor<1, Int>>);

impl RowOrder {
    /// `file_row[i]`: the file's row of our token `i`, checked to be a permutation of the
    /// file's `v` rows.
    pub(crate) fn new(
        path: &Path,
        file_row: Option<&[usize]>,
        v: usize,
        device: &Device,
    ) -> Result<Self, DecoderError> {
        Ok(Self(match file_row {
            Some(rows) => {
                let rows = row_order(path, rows, v)?;
                let len = rows.len();
                Some(Tensor::from_data(TensorData::new(rows, [len]), device))
            }
            None => None,
        }))
    }

    /// The rows of `t` (one per file token) in our order.
    pub(crate) fn apply(&self, t: Tensor<2>) -> Tensor<2> {
        match &self.0 {
            Some(rows) => t.select(0, rows.clone()),
            None => t,
        }
    }
}

/// Checks that `rows` maps every token to a distinct row of a `v`-row vocabulary.
fn row_order(path: &Path, rows: &[usize], v: usize) -> Result<Vec<i64>, DecoderError> {
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
pub(crate) struct StateDict<'a> {
    path: &'a Path,
    tensors: BTreeMap<String, PackTensor>,
    used: BTreeSet<String>,
}

impl<'a> StateDict<'a> {
    pub(crate) fn read(path: &'a Path) -> Result<Self, DecoderError> {
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
                        "not a PyTorch state_dict ({err}); a checkpoint that pickles whole \
                         modules must be exported as a state_dict first (see the import docs)"
                    ))
                })?
        };
        Ok(Self {
            path,
            tensors: all.into_iter().map(|t| (t.name.clone(), t)).collect(),
            used: BTreeSet::new(),
        })
    }

    /// Keys in the file that no read used, sorted.
    pub(crate) fn unused(&self) -> Vec<String> {
        self.tensors
            .keys()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect()
    }

    /// Whether the file holds `key`.
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.tensors.contains_key(key)
    }

    pub(crate) fn get(&self, key: &str) -> Result<&PackTensor, DecoderError> {
        self.tensors
            .get(key)
            .ok_or_else(|| DecoderError::MissingTensor {
                path: self.path.to_owned(),
                key: key.to_owned(),
            })
    }

    pub(crate) fn shape2(&self, key: &str) -> Result<[usize; 2], DecoderError> {
        match self.get(key)?.shape.as_slice() {
            &[rows, columns] => Ok([rows, columns]),
            other => Err(DecoderError::Import {
                path: self.path.to_owned(),
                reason: format!("tensor {key:?} has shape {other:?}, expected a matrix"),
            }),
        }
    }

    pub(crate) fn tensor<const D: usize>(
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
    pub(crate) fn linear(
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
