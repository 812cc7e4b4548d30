//! The NaN-safe difference every parity check reports; std only, so that the encoder and
//! decoder tests and `benches/gpu_check` can all include it.

/// `max |a - b|` over `ours` and `reference`; a NaN or infinity in `ours` counts as
/// infinitely far, so that a broken output cannot pass (a plain `f32::max` fold skips NaN).
pub fn max_abs_difference(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(
        ours.len(),
        reference.len(),
        "compared tensors differ in size"
    );
    ours.iter()
        .zip(reference)
        .map(|(a, b)| {
            if a.is_finite() {
                (a - b).abs()
            } else {
                f32::INFINITY
            }
        })
        .fold(0f32, f32::max)
}
