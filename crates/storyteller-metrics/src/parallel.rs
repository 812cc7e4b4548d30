//! Per-image work on rayon's pool when the `parallel` feature is on, sequential otherwise.

/// `f(0), f(1), ..., f(len - 1)` in order, computed in parallel where the `parallel` feature is enabled.
pub(crate) fn map_indices<R: Send>(len: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        (0..len).into_par_iter().map(f).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        (0..len).map(f).collect()
    }
}
