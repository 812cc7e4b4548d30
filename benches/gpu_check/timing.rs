//! Wall-clock timing with the warm-up kept apart: the first call (kernel compilation and
//! autotuning on a GPU) is reported on its own, the median of the timed calls after it.

use std::time::Instant;

/// One measured workload.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Seconds of the first call.
    pub first_s: f64,
    /// Seconds of the whole warm-up, first call included.
    pub warm_s: f64,
    /// Median seconds of the timed calls.
    pub median_s: f64,
}

/// Runs `run` once, `warm - 1` more times untimed, then `reps` timed times. `run` must
/// wait for the device (read a result back), or the times measure only the queueing.
pub fn measure(warm: usize, reps: usize, mut run: impl FnMut()) -> Timing {
    let start = Instant::now();
    run();
    let first_s = start.elapsed().as_secs_f64();
    for _ in 1..warm {
        run();
    }
    let warm_s = start.elapsed().as_secs_f64();
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    Timing {
        first_s,
        warm_s,
        median_s: times[times.len() / 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_runs_and_the_warm_up_includes_the_first() {
        let mut calls = 0;
        let t = measure(3, 5, || calls += 1);
        assert_eq!(calls, 8);
        assert!(t.first_s <= t.warm_s);
        let mut calls = 0;
        measure(0, 0, || calls += 1);
        assert_eq!(calls, 2, "one first call and at least one timed call");
    }
}
