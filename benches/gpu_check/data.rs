//! Seeded inputs made on the host, so the CPU and the device under test see the same values
//! (a device's own random generator differs from backend to backend).

use burn::tensor::{Device, Int, Tensor, TensorData};

/// SplitMix64: small, seedable, good enough for test inputs.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1]`.
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }
}

/// Standard normal values (Box–Muller) of the given shape.
pub fn normal<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let mut rng = SplitMix(seed);
    let n = shape.iter().product();
    let values: Vec<f32> = (0..n)
        .map(|_| {
            let (u, v) = (rng.unit(), rng.unit());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Token ids uniform in `low..high`, shape `[rows, cols]`.
pub fn tokens(
    [rows, cols]: [usize; 2],
    low: usize,
    high: usize,
    seed: u64,
    device: &Device,
) -> Tensor<2, Int> {
    let mut rng = SplitMix(seed);
    let span = (high - low) as u64;
    let values: Vec<i64> = (0..rows * cols)
        .map(|_| (low as u64 + rng.next() % span) as i64)
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}
