//! Float precision of a module: every float parameter cast to one dtype.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{FloatDType, Tensor};

/// Casts each float parameter of `module` to `dtype`.
pub fn cast<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| t.cast(dtype))
        }
    }
    module.map(&mut Cast(dtype))
}

/// Parses `f32`, `f16` or `bf16`.
pub fn parse(name: &str) -> anyhow::Result<FloatDType> {
    match name {
        "f32" => Ok(FloatDType::F32),
        "f16" => Ok(FloatDType::F16),
        "bf16" => Ok(FloatDType::BF16),
        other => anyhow::bail!("precision {other}: expected f32, f16 or bf16"),
    }
}

/// The name [`parse`] reads.
pub fn name(dtype: FloatDType) -> &'static str {
    match dtype {
        FloatDType::F16 => "f16",
        FloatDType::BF16 => "bf16",
        _ => "f32",
    }
}
