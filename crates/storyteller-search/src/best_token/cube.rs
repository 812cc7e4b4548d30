//! The fused best token on the CubeCL backend: one cube per row, two passes over the row
//! (arg-max, then the sum of exponentials), each reduced across the cube in shared memory.

use super::BestTokenOps;
use burn::backend::cubecl::dtype_to_storage_type;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::tensor::{DType, IntDType, Shape};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::untile;
use burn_cubecl::ops::numeric::empty_device_dtype;
use cubecl::prelude::*;

/// Threads per cube (a power of two, for the tree reductions).
const THREADS: usize = 256;

#[cube(launch)]
fn best_token_kernel<F: Float, I: Int>(
    logits: &Tensor<F>,
    best: &mut Tensor<F>,
    token: &mut Tensor<I>,
    #[comptime] threads: usize,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let row = CUBE_POS_X as usize;
    let unit = UNIT_POS_X as usize;
    let vocab = logits.shape(1);
    let base = row * logits.stride(0);
    let step = logits.stride(1);

    // Pass 1: each thread's maximum over its columns unit, unit + threads, ...; starting
    // from column 0 keeps a thread without columns harmless and ties on the first index.
    let mut max = logits[base];
    let mut arg = 0usize;
    let mut col = unit;
    while col < vocab {
        let x = logits[base + col * step];
        if x > max {
            max = x;
            arg = col;
        }
        col += threads;
    }
    let mut values = Shared::<[F]>::new_slice(threads);
    let mut args = Shared::<[u32]>::new_slice(threads);
    values[unit] = max;
    args[unit] = arg as u32;
    sync_cube();
    let mut half = threads / 2;
    while half > 0 {
        if unit < half {
            let other = values[unit + half];
            let other_arg = args[unit + half];
            let mine = values[unit];
            if other > mine || (other == mine && other_arg < args[unit]) {
                values[unit] = other;
                args[unit] = other_arg;
            }
        }
        sync_cube();
        half /= 2;
    }
    let row_max = values[0];
    let row_arg = args[0];
    sync_cube();

    // Pass 2: Σ exp(x − max).
    let mut sum = F::new(0.0);
    let mut col = unit;
    while col < vocab {
        sum += F::exp(logits[base + col * step] - row_max);
        col += threads;
    }
    values[unit] = sum;
    sync_cube();
    let mut half = threads / 2;
    while half > 0 {
        if unit < half {
            values[unit] = values[unit] + values[unit + half];
        }
        sync_cube();
        half /= 2;
    }
    if unit == 0 {
        best[row * best.stride(0)] = F::new(0.0) - F::ln(values[0]);
        token[row * token.stride(0)] = I::cast_from(row_arg);
    }
}

impl BestTokenOps for CubeBackend {
    fn best_token(
        logits: FloatTensor<Self>,
        indices_dtype: IntDType,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        let logits = untile(logits);
        let rows = logits.meta.shape()[0];
        let client = logits.client.clone();
        let best = empty_device_dtype(
            client.clone(),
            logits.device.clone(),
            Shape::new([rows]),
            logits.dtype,
        );
        let indices_dtype: DType = indices_dtype.into();
        let token = empty_device_dtype(
            client.clone(),
            logits.device.clone(),
            Shape::new([rows]),
            indices_dtype,
        );
        if rows == 0 {
            return (best, token);
        }
        let threads = THREADS.min(client.properties().hardware.max_cube_dim.0 as usize);
        // The largest power of two within the hardware's limit.
        let threads = 1usize << (usize::BITS - 1 - threads.leading_zeros());
        let dtypes = [
            dtype_to_storage_type(logits.dtype),
            dtype_to_storage_type(indices_dtype),
        ];
        best_token_kernel::launch(
            &client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(threads as u32),
            logits.into_tensor_arg(),
            best.clone().into_tensor_arg(),
            token.clone().into_tensor_arg(),
            threads,
            dtypes,
        );
        (best, token)
    }
}
