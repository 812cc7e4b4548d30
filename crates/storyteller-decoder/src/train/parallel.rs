//! Data parallelism: one worker thread per device computes its shard's loss and gradients
//! while the others compute theirs; the gradients are then combined for one update.

use std::thread;

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::distributed::{
    DistributedConfig, DistributedContext, ReduceOperation, all_reduce,
};
use burn::tensor::{Device, Tensor};

use super::{CaptionBatch, Objective, TeacherForcing};

/// How the workers' gradients become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GradientReduction {
    /// Every parameter's gradients are moved to one device and summed there. Works on every
    /// backend; the transfers go through the host where the devices share no link.
    #[default]
    Gather,
    /// Burn's all-reduce collective: every worker ends with the sum (NCCL between CUDA
    /// devices of one process in Burn 0.22.1, the only backend with collectives), and the
    /// first worker's sum updates the model. Other backends panic on the first step.
    AllReduce,
}

/// What a [`GradientReduction::AllReduce`] step needs: the devices and Burn's communication
/// server, started once and stopped when this is dropped.
pub(crate) struct Collective {
    devices: Vec<Device>,
    _context: DistributedContext,
}

impl Collective {
    /// Starts the communication server for `devices` (autodiff or not).
    pub(crate) fn start(devices: &[Device]) -> Self {
        let devices: Vec<Device> = devices.iter().map(|d| d.clone().inner()).collect();
        let context = DistributedContext::init(
            devices.clone(),
            DistributedConfig {
                all_reduce_op: ReduceOperation::Sum,
            },
        );
        Self {
            devices,
            _context: context,
        }
    }
}

impl std::fmt::Debug for Collective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collective")
            .field("devices", &self.devices)
            .finish_non_exhaustive()
    }
}

/// One worker's result: its gradients, the device they live on, and its weighted loss
/// (detached, on that device).
pub(crate) struct ShardResult {
    pub(crate) grads: GradientsParams,
    pub(crate) device: Device,
    pub(crate) loss: Tensor<1>,
}

/// Runs every job on a thread of its own, all at once, and returns their results in order
/// (one job runs on the calling thread). A panicking job panics the caller.
pub(crate) fn run_concurrently<T, F>(jobs: Vec<F>) -> Vec<T>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    if jobs.len() == 1 {
        return jobs.into_iter().map(|job| job()).collect();
    }
    thread::scope(|scope| {
        let handles: Vec<_> = jobs.into_iter().map(|job| scope.spawn(job)).collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// The share of the whole batch's non-`<pad>` targets in each shard, as tensors on the
/// shards' devices (no host read): shard losses weighted by these add up to the loss of
/// the concatenated batch.
pub(crate) fn target_shares(shards: &[CaptionBatch], pad: u32) -> Vec<Tensor<1>> {
    let main = shards[0].targets.device();
    let counts: Vec<Tensor<1>> = shards
        .iter()
        .map(|s| {
            s.targets
                .clone()
                .not_equal_elem(pad as i64)
                .int()
                .sum()
                .float()
        })
        .collect();
    let total = counts
        .iter()
        .map(|c| c.clone().to_device(&main))
        .reduce(|a, b| a + b)
        .expect("at least one shard")
        .clamp_min(1.0);
    counts
        .into_iter()
        .zip(shards)
        .map(|(count, shard)| count / total.clone().to_device(&shard.targets.device()))
        .collect()
}

/// A worker: forks `decoder` onto the shard's device, runs forward and backward there, and
/// all-reduces the gradients when `collective` is given.
pub(crate) fn shard_gradients<M: TeacherForcing>(
    decoder: M,
    shard: &CaptionBatch,
    share: Tensor<1>,
    image_share: f64,
    objective: Objective,
    collective: Option<&Collective>,
) -> ShardResult {
    let device = shard.features.device();
    let replica = decoder.fork(&device);
    let losses = replica.losses(shard, objective);
    let mut loss = losses.cross_entropy * share;
    if let Some(regulariser) = losses.regulariser {
        loss = loss + regulariser * image_share;
    }
    let value = loss.clone().inner();
    let mut grads = GradientsParams::from_grads(loss.backward(), &replica);
    if let Some(collective) = collective {
        replica.visit(&mut AllReduce {
            grads: &mut grads,
            devices: &collective.devices,
        });
    }
    ShardResult {
        grads,
        device,
        loss: value,
    }
}

/// Replaces every parameter's gradient with its all-reduced sum, in the module's parameter
/// order (the same on every worker, as the collective requires).
struct AllReduce<'a> {
    grads: &'a mut GradientsParams,
    devices: &'a [Device],
}

impl ModuleVisitor for AllReduce<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            let summed = all_reduce(grad, ReduceOperation::Sum, self.devices.to_vec()).resolve();
            self.grads.register(param.id, summed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Each job waits (up to 10 s) until every job has started: only jobs that run at the
    /// same time all see the others arrive.
    #[test]
    fn jobs_run_at_the_same_time() {
        let arrived = AtomicUsize::new(0);
        let jobs: Vec<_> = (0..3)
            .map(|i| {
                let arrived = &arrived;
                move || {
                    arrived.fetch_add(1, Ordering::SeqCst);
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while arrived.load(Ordering::SeqCst) < 3 {
                        if Instant::now() > deadline {
                            return (i, false);
                        }
                        thread::yield_now();
                    }
                    (i, true)
                }
            })
            .collect();
        let results = run_concurrently(jobs);
        assert_eq!(results, [(0, true), (1, true), (2, true)]);
    }

    #[test]
    #[should_panic(expected = "worker failed")]
    fn a_panicking_worker_panics_the_step() {
        let jobs: Vec<Box<dyn FnOnce() + Send>> =
            vec![Box::new(|| ()), Box::new(|| panic!("worker failed"))];
        run_concurrently(jobs);
    }
}
