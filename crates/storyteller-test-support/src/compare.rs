//! The NaN-safe differences every parity check reports.

/// `max |a - b|` over `ours` and `reference`; a NaN or infinity in `ours` counts as
/// infinitely far, so that a broken output cannot pass (a plain `f32::max` fold skips NaN).
///
/// # Panics
/// When the slices differ in length.
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

/// Relative error as the parity tests report it: `max |a - b| / max |b|`, with `b` the
/// PyTorch reference.
pub fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    let scale = reference.iter().map(|b| b.abs()).fold(0f32, f32::max);
    max_abs_difference(ours, reference) / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_and_infinity_are_infinitely_far() {
        assert_eq!(max_abs_difference(&[1.0, 2.5], &[1.0, 2.0]), 0.5);
        assert_eq!(max_abs_difference(&[f32::NAN], &[0.0]), f32::INFINITY);
        assert_eq!(max_abs_difference(&[f32::INFINITY], &[0.0]), f32::INFINITY);
        assert_eq!(relative_error(&[2.0, 4.0], &[2.0, 5.0]), 0.2);
    }
}
