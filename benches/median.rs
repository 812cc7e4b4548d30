//! The timing rule of the side-by-side binaries: one warm-up run, then the median of timed runs.

use std::time::Instant;

use anyhow::Result;

/// Runs `f` once to warm up, then `runs` times, and returns the median wall time in seconds
/// (the upper median for an even count).
pub fn median_seconds(runs: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs.max(1));
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
