//! Reading named tensors from safetensors, PyTorch pickles and GGUF files, always as f32 on the
//! model's device, with errors that name the file and the tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};

use crate::error::ModelError;

/// The tensors of one model, from one or more files of one format.
pub(crate) struct WeightFiles {
    /// Shown in errors: the file, or the first shard.
    path: PathBuf,
    tensors: TensorSource,
}

enum TensorSource {
    /// Safetensors and PyTorch pickles are read whole: every tensor is converted and re-laid anyway.
    InMemory(HashMap<String, Tensor>),
    /// GGUF tensors stay quantized on disk until asked for.
    Gguf { content: gguf_file::Content, file: std::fs::File },
}

impl WeightFiles {
    /// Reads safetensors files (one, or the shards of one model).
    pub(crate) fn safetensors(paths: &[PathBuf], device: &Device) -> Result<Self, ModelError> {
        let mut tensors = HashMap::new();
        for path in paths {
            let shard = candle_core::safetensors::load(path, device)
                .map_err(|source| ModelError::WeightFile { path: path.clone(), source })?;
            tensors.extend(shard);
        }
        Ok(Self { path: first(paths), tensors: TensorSource::InMemory(tensors) })
    }

    /// Reads a PyTorch `torch.save` state dict (`pytorch_model.bin`, `model_final.pth`).
    pub(crate) fn pytorch(paths: &[PathBuf]) -> Result<Self, ModelError> {
        let mut tensors = HashMap::new();
        for path in paths {
            let shard = candle_core::pickle::read_all(path)
                .map_err(|source| ModelError::WeightFile { path: path.clone(), source })?;
            tensors.extend(shard);
        }
        Ok(Self { path: first(paths), tensors: TensorSource::InMemory(tensors) })
    }

    /// Opens a GGUF file and reads its metadata and tensor index.
    pub(crate) fn gguf(path: &Path) -> Result<Self, ModelError> {
        let mut file = std::fs::File::open(path).map_err(|err| ModelError::io(path, err))?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|source| ModelError::WeightFile { path: path.to_path_buf(), source })?;
        Ok(Self { path: path.to_path_buf(), tensors: TensorSource::Gguf { content, file } })
    }

    /// The file named in errors.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The GGUF metadata, if this is a GGUF file.
    pub(crate) fn gguf_metadata(&self) -> Option<&HashMap<String, gguf_file::Value>> {
        match &self.tensors {
            TensorSource::Gguf { content, .. } => Some(&content.metadata),
            TensorSource::InMemory(_) => None,
        }
    }

    /// Whether a tensor of this name exists.
    pub(crate) fn contains(&self, name: &str) -> bool {
        match &self.tensors {
            TensorSource::InMemory(tensors) => tensors.contains_key(name),
            TensorSource::Gguf { content, .. } => content.tensor_infos.contains_key(name),
        }
    }

    /// The shape of a tensor, without reading it.
    pub(crate) fn shape(&self, name: &str) -> Option<Vec<usize>> {
        match &self.tensors {
            TensorSource::InMemory(tensors) => tensors.get(name).map(|tensor| tensor.dims().to_vec()),
            TensorSource::Gguf { content, .. } => content.tensor_infos.get(name).map(|info| info.shape.dims().to_vec()),
        }
    }

    /// Every tensor name, sorted (for detection and error messages).
    pub(crate) fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = match &self.tensors {
            TensorSource::InMemory(tensors) => tensors.keys().map(String::as_str).collect(),
            TensorSource::Gguf { content, .. } => content.tensor_infos.keys().map(String::as_str).collect(),
        };
        names.sort_unstable();
        names
    }

    /// The tensor `name` as f32 on `device`, checked against `expected` dimensions.
    pub(crate) fn tensor(&mut self, name: &str, expected: &[usize], device: &Device) -> Result<Tensor, ModelError> {
        let tensor = match &mut self.tensors {
            TensorSource::InMemory(tensors) => tensors.remove(name),
            TensorSource::Gguf { content, file } => match content.tensor_infos.contains_key(name) {
                false => None,
                true => {
                    let quantized = content
                        .tensor(file, name, device)
                        .map_err(|source| ModelError::WeightFile { path: self.path.clone(), source })?;
                    // Dequantized once at load: batched recording runs f32 GEMMs, and f32 weights
                    // are exactly what reference implementations (llama.cpp's dequantize,
                    // transformers' GGUF loader) compute with.
                    Some(
                        quantized
                            .dequantize(device)
                            .map_err(|source| ModelError::WeightFile { path: self.path.clone(), source })?,
                    )
                }
            },
        };
        let Some(tensor) = tensor else {
            return Err(ModelError::MissingTensor { path: self.path.clone(), name: name.to_owned() });
        };
        if tensor.dims() != expected {
            return Err(ModelError::TensorShape {
                path: self.path.clone(),
                name: name.to_owned(),
                expected: expected.to_vec(),
                found: tensor.dims().to_vec(),
            });
        }
        let tensor = tensor.to_device(device)?.to_dtype(DType::F32)?;
        if !all_finite(&tensor)? {
            return Err(ModelError::WeightFile {
                path: self.path.clone(),
                source: candle_core::Error::Msg(format!("tensor `{name}` holds NaN or infinite values")),
            });
        }
        Ok(tensor)
    }
}

fn first(paths: &[PathBuf]) -> PathBuf {
    paths.first().cloned().unwrap_or_default()
}

/// Whether every element is finite; a NaN weight would silently poison every activation.
fn all_finite(tensor: &Tensor) -> Result<bool, ModelError> {
    let sum_of_abs = tensor.abs()?.flatten_all()?.sum_all()?.to_scalar::<f32>()?;
    Ok(sum_of_abs.is_finite())
}
