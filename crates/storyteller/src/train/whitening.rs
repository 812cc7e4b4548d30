//! Feature statistics of the training images: per-dimension mean and standard deviation,
//! and the PCA whitening projection.
//!
//! The whitening is the top `k` eigenvectors of the features' covariance, each divided by
//! the square root of its eigenvalue, found by randomised subspace iteration (Halko,
//! Martinsson and Tropp, 2011), all on the host in f64: the covariance and its products
//! row-parallel (each output row summed in a fixed order), the small problems
//! (orthonormalising `d × (k + 16)` columns, the `(k + 16)²` eigenproblem) sequentially.
//! Bit-for-bit deterministic, whatever the thread count: a device matmul splits its work by
//! the threads available, and a whitening that differs in the last bit would break exact
//! resumption. The start subspace comes from a fixed seed, not the device's generator.

use rayon::prelude::*;
use storyteller_data::FeatureCache;

/// Extra directions carried through the iteration beyond the `k` kept (oversampling).
const OVERSAMPLE: usize = 16;
/// Subspace iterations (power steps); the spectrum of pooled CNN features decays fast.
const ITERATIONS: usize = 6;
/// Eigenvalues are floored at this fraction of the largest before the inverse square root.
const EIGEN_FLOOR: f64 = 1e-4;

/// Per-dimension mean and standard deviation of the features of the distinct `rows` (over
/// every region of a spatial cache).
pub(crate) fn feature_statistics(features: &FeatureCache, rows: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let distinct = distinct_rows(rows);
    let width = features.width();
    let (mut sum, mut squares) = (vec![0.0f64; width], vec![0.0f64; width]);
    let mut row = vec![0.0f32; features.row_len()];
    for &r in &distinct {
        features.copy_row(r, &mut row);
        for region in row.chunks_exact(width) {
            for (d, &v) in region.iter().enumerate() {
                sum[d] += f64::from(v);
                squares[d] += f64::from(v) * f64::from(v);
            }
        }
    }
    let n = (distinct.len() * features.regions()).max(1) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = squares
        .iter()
        .zip(&mean)
        .map(|(q, m)| ((q / n - m * m).max(0.0)).sqrt() as f32)
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// The whitening projection of the distinct `rows`' features, centred by `mean`:
/// `[d_feature, k]` row-major, where `k` is `d_whitened` capped at the number of images
/// less one (the rank of their covariance). Returns the matrix and `k`.
pub(crate) fn whitening(
    features: &FeatureCache,
    rows: &[usize],
    mean: &[f32],
    d_whitened: usize,
) -> (Vec<f32>, usize) {
    let distinct = distinct_rows(rows);
    let d = features.width();
    let n = distinct.len();
    let k = whitened_width(d_whitened, rows, d);
    let m = (k + OVERSAMPLE).min(d);

    let mut centred = vec![0.0f64; n * d];
    let mut row = vec![0.0f32; d];
    for (i, &r) in distinct.iter().enumerate() {
        features.copy_row(r, &mut row);
        for ((out, v), mu) in centred[i * d..(i + 1) * d].iter_mut().zip(&row).zip(mean) {
            *out = f64::from(v - mu);
        }
    }
    let covariance = covariance(&centred, n, d);

    let mut basis = orthonormal_columns(start_subspace(d, m), d, m);
    for _ in 0..ITERATIONS {
        basis = orthonormal_columns(multiply(&covariance, &basis, d, d, m), d, m);
    }
    let product = multiply(&covariance, &basis, d, d, m);
    let mut small = vec![0.0f64; m * m];
    for i in 0..m {
        for j in 0..m {
            small[i * m + j] = (0..d).map(|r| basis[r * m + i] * product[r * m + j]).sum();
        }
    }
    let (values, vectors) = symmetric_eigen(small, m);

    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let largest = values[order[0]].max(f64::MIN_POSITIVE);
    let mut matrix = vec![0.0f32; d * k];
    for (out, &j) in order.iter().take(k).enumerate() {
        let scale = 1.0 / values[j].max(EIGEN_FLOOR * largest).sqrt();
        for row in 0..d {
            let direction: f64 = (0..m)
                .map(|c| basis[row * m + c] * vectors[c * m + j])
                .sum();
            matrix[row * k + out] = (direction * scale) as f32;
        }
    }
    (matrix, k)
}

/// The width [`whitening`] gives: `d_whitened` capped at the number of distinct images less
/// one (the rank of their covariance) and at the feature width `d`.
pub(crate) fn whitened_width(d_whitened: usize, rows: &[usize], d: usize) -> usize {
    let n = distinct_rows(rows).len();
    d_whitened.min(n.saturating_sub(1)).min(d).max(1)
}

fn distinct_rows(rows: &[usize]) -> Vec<usize> {
    let mut distinct = rows.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    distinct
}

/// A `[d, m]` matrix of SplitMix64 uniforms in `[-1, 1)`.
fn start_subspace(d: usize, m: usize) -> Vec<f64> {
    let mut state = 0x005e_ed0f_f00d_u64;
    (0..d * m)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// `XᵀX / n` of a row-major `[n, d]` matrix, `[d, d]` row-major.
fn covariance(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut c = vec![0.0f64; d * d];
    c.par_chunks_mut(d).enumerate().for_each(|(i, out)| {
        for r in 0..n {
            let xi = x[r * d + i];
            if xi != 0.0 {
                for (o, xj) in out.iter_mut().zip(&x[r * d..(r + 1) * d]) {
                    *o += xi * xj;
                }
            }
        }
        for o in out.iter_mut() {
            *o /= n.max(1) as f64;
        }
    });
    c
}

/// `A·B` of row-major `[rows, inner]` and `[inner, cols]` matrices.
fn multiply(a: &[f64], b: &[f64], rows: usize, inner: usize, cols: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; rows * cols];
    out.par_chunks_mut(cols).enumerate().for_each(|(i, out)| {
        for k in 0..inner {
            let aik = a[i * inner + k];
            for (o, bkj) in out.iter_mut().zip(&b[k * cols..(k + 1) * cols]) {
                *o += aik * bkj;
            }
        }
    });
    out
}

/// Orthonormalises the columns of a `[d, m]` row-major matrix by modified Gram–Schmidt,
/// twice (re-orthogonalisation keeps the columns orthogonal to working precision). A column
/// that vanishes is replaced by a unit vector orthogonal to the others.
fn orthonormal_columns(mut a: Vec<f64>, d: usize, m: usize) -> Vec<f64> {
    for _pass in 0..2 {
        for j in 0..m {
            for i in 0..j {
                let dot: f64 = (0..d).map(|r| a[r * m + i] * a[r * m + j]).sum();
                for r in 0..d {
                    a[r * m + j] -= dot * a[r * m + i];
                }
            }
            let mut norm = (0..d).map(|r| a[r * m + j].powi(2)).sum::<f64>().sqrt();
            if norm < 1e-12 {
                // Degenerate direction: restart it from a coordinate axis and orthogonalise.
                for r in 0..d {
                    a[r * m + j] = if r == j % d { 1.0 } else { 0.0 };
                }
                for i in 0..j {
                    let dot: f64 = (0..d).map(|r| a[r * m + i] * a[r * m + j]).sum();
                    for r in 0..d {
                        a[r * m + j] -= dot * a[r * m + i];
                    }
                }
                norm = (0..d).map(|r| a[r * m + j].powi(2)).sum::<f64>().sqrt();
            }
            for r in 0..d {
                a[r * m + j] /= norm.max(1e-300);
            }
        }
    }
    a
}

/// Eigenvalues and eigenvectors (columns of the returned row-major `[m, m]` matrix) of a
/// symmetric `[m, m]` matrix, by cyclic Jacobi rotations.
fn symmetric_eigen(mut a: Vec<f64>, m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; m * m];
    for i in 0..m {
        v[i * m + i] = 1.0;
    }
    let total = |a: &[f64]| a.iter().map(|x| x * x).sum::<f64>();
    for _sweep in 0..60 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * m + j].powi(2))
            .sum();
        if off <= 1e-24 * total(&a).max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..m {
            for q in p + 1..m {
                let apq = a[p * m + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * m + q] - a[p * m + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..m {
                    let (akp, akq) = (a[k * m + p], a[k * m + q]);
                    a[k * m + p] = c * akp - s * akq;
                    a[k * m + q] = s * akp + c * akq;
                }
                for k in 0..m {
                    let (apk, aqk) = (a[p * m + k], a[q * m + k]);
                    a[p * m + k] = c * apk - s * aqk;
                    a[q * m + k] = s * apk + c * aqk;
                }
                for k in 0..m {
                    let (vkp, vkq) = (v[k * m + p], v[k * m + q]);
                    v[k * m + p] = c * vkp - s * vkq;
                    v[k * m + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..m).map(|i| a[i * m + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_diagonalises_a_symmetric_matrix() {
        let a = vec![4.0, 1.0, 2.0, 1.0, 3.0, 0.5, 2.0, 0.5, 1.0];
        let (values, vectors) = symmetric_eigen(a.clone(), 3);
        for j in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|k| a[i * 3 + k] * vectors[k * 3 + j]).sum();
                assert!((av - values[j] * vectors[i * 3 + j]).abs() < 1e-10);
            }
        }
        let trace: f64 = values.iter().sum();
        assert!((trace - 8.0).abs() < 1e-10);
    }

    /// Whitened training features have the identity covariance in the kept directions, and
    /// the projection is the same bit for bit on every call.
    #[test]
    fn whitened_features_are_decorrelated_with_unit_variance() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.safetensors");
        let (n, d, k) = (120, 24, 6);
        let mut writer = storyteller_data::FeatureCacheWriter::create(
            &path,
            storyteller_data::CacheKey::new("enc", &"pre", d),
        )
        .unwrap();
        // Correlated features: a common component plus a few independent ones at other scales.
        let noise = start_subspace(n, d);
        for i in 0..n {
            let common = noise[i * d] * 5.0;
            let row: Vec<f32> = (0..d)
                .map(|j| (common + noise[i * d + j] * (1.0 + j as f64 / 4.0) + 10.0) as f32)
                .collect();
            writer.push(format!("{i}"), &row).unwrap();
        }
        writer.finish().unwrap();
        let cache = FeatureCache::open(&path).unwrap();
        let rows: Vec<usize> = (0..n).collect();
        let (mean, _) = feature_statistics(&cache, &rows);
        let (matrix, kept) = whitening(&cache, &rows, &mean, k);
        assert_eq!(kept, k);
        assert_eq!(whitening(&cache, &rows, &mean, k).0, matrix);
        let mut projected = vec![0.0f64; n * k];
        let mut row = vec![0.0f32; d];
        for i in 0..n {
            cache.copy_row(i, &mut row);
            for c in 0..k {
                projected[i * k + c] = (0..d)
                    .map(|j| f64::from(row[j] - mean[j]) * f64::from(matrix[j * k + c]))
                    .sum();
            }
        }
        let covariance = covariance(&projected, n, k);
        for a in 0..k {
            for b in 0..k {
                let expected = if a == b { 1.0 } else { 0.0 };
                let got = covariance[a * k + b];
                assert!((got - expected).abs() < 1e-3, "cov[{a}][{b}] = {got}");
            }
        }
        // More directions than the data has: capped at images - 1.
        assert_eq!(whitening(&cache, &rows[..5], &mean, k).1, 4);
    }

    #[test]
    fn columns_come_out_orthonormal() {
        let (d, m) = (40, 7);
        let q = orthonormal_columns(start_subspace(d, m), d, m);
        for i in 0..m {
            for j in 0..m {
                let dot: f64 = (0..d).map(|r| q[r * m + i] * q[r * m + j]).sum();
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((dot - expected).abs() < 1e-12, "({i}, {j}): {dot}");
            }
        }
    }
}
