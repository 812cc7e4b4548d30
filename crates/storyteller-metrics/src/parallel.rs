//! Per-image work on rayon's pool when the `parallel` feature is on, sequential otherwise.

/// Maps `f` over `items` in order, in parallel where the `parallel` feature is enabled.
pub(crate) fn map_images<'a, T: Sync, R: Send>(
    items: &'a [T],
    f: impl Fn(&'a T) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "parallel")]
    {
        use rayon::prelude::*;
        items.par_iter().map(f).collect()
    }
    #[cfg(not(feature = "parallel"))]
    {
        items.iter().map(f).collect()
    }
}
