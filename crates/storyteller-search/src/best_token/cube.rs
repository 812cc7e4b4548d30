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
const THREADS: u32 = 256;

#[cube(launch)]
fn best_token_kernel<F: Float, I: Int>(
    logits: &Tensor<F>,
    best: &mut Tensor<F>,
    token: &mut Tensor<I>,
    #[comptime] threads: u32,
    #[define(F, I)] _dtypes: [ElemType; 2],
) {
    let row = CUBE_POS_X as usize;
    let unit = UNIT_POS_X;
    let vocab = logits.shape(1) as u32;
    let base = row * logits.stride(0);
    let step = logits.stride(1);

    // Pass 1: each thread's maximum over its columns unit, unit + threads, ...; starting
    // from column 0 keeps a thread without columns harmless and ties on the first index.
    // (Mutable locals start from runtime values: one initialised from the comptime
    // `threads` would be a constant, which CubeCL's IR verification rejects on update.)
    let mut max = logits[base];
    let mut arg = 0u32;
    let mut col = unit;
    while col < vocab {
        let x = logits[base + col as usize * step];
        let better = x > max;
        max = select(better, x, max);
        arg = select(better, col, arg);
        col += threads;
    }
    let mut values = Shared::<[F]>::new_slice(threads as usize);
    let mut args = Shared::<[u32]>::new_slice(threads as usize);
    values[unit as usize] = max;
    args[unit as usize] = arg;
    sync_cube();
    let mut half = CUBE_DIM_X / 2;
    while half > 0 {
        if unit < half {
            let other = values[(unit + half) as usize];
            let other_arg = args[(unit + half) as usize];
            let mine = values[unit as usize];
            let mine_arg = args[unit as usize];
            let take = other > mine || (other == mine && other_arg < mine_arg);
            values[unit as usize] = select(take, other, mine);
            args[unit as usize] = select(take, other_arg, mine_arg);
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
        sum += F::exp(logits[base + col as usize * step] - row_max);
        col += threads;
    }
    values[unit as usize] = sum;
    sync_cube();
    let mut half = CUBE_DIM_X / 2;
    while half > 0 {
        if unit < half {
            let other = values[(unit + half) as usize];
            values[unit as usize] += other;
        }
        sync_cube();
        half /= 2;
    }
    if unit == 0 {
        let best_at = row * best.stride(0);
        let token_at = row * token.stride(0);
        best[best_at] = F::new(0.0) - F::ln(values[0]);
        token[token_at] = I::cast_from(row_arg);
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
        let threads = THREADS.min(client.properties().hardware.max_cube_dim.0);
        // The largest power of two within the hardware's limit.
        let threads = 1u32 << (u32::BITS - 1 - threads.leading_zeros());
        let dtypes = [
            dtype_to_storage_type(logits.dtype),
            dtype_to_storage_type(indices_dtype),
        ];
        best_token_kernel::launch(
            &client,
            CubeCount::Static(rows as u32, 1, 1),
            CubeDim::new_1d(threads),
            logits.into_tensor_arg(),
            best.clone().into_tensor_arg(),
            token.clone().into_tensor_arg(),
            threads,
            dtypes,
        );
        (best, token)
    }
}
