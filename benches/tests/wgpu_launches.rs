//! Kernel launches per step of the LSTM decoder on wgpu, counted with CubeCL's launch
//! observer (in CI on Mesa's lavapipe; skipped without an adapter as `wgpu_parity.rs` does).
//!
//! Counts are stable where times are not: the same model issues the same kernels on any
//! machine. Each part runs once to compile and autotune, then once counted; the count is
//! divided by the steps it ran. The ceilings are the counts measured with Burn 0.22.1's
//! fusion backend (`burn/fusion`, on in this crate's tests), so a change that adds launches
//! to a hot path fails here (see `benches/results/launch-counts.txt`). `--nocapture` lists
//! the kernels behind each count.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use burn::module::Param;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use cubecl_runtime::logging::{LaunchObservation, LaunchObserver};
use storyteller_decoder::train::{CaptionBatch, OptimizerConfig, TrainStep};
use storyteller_decoder::{CaptionDecoder, CaptionDecoderConfig, Decoder, SearchDecoder};
use storyteller_search::{BeamSearch, GreedySearch, Search, StepDecoder};

const VOCAB: usize = 64;
const END: usize = 2;
const STEPS: usize = 12;

/// Launches by kernel name.
#[derive(Default)]
struct Count(Mutex<BTreeMap<&'static str, usize>>);

impl LaunchObserver for Count {
    fn launched(&self, kernel: &'static str) {
        *self.0.lock().unwrap().entry(kernel).or_default() += 1;
    }
}

/// Launches issued while `work` runs (it must end with a read, which flushes the queue),
/// by kernel name.
fn launches(work: impl FnOnce()) -> BTreeMap<&'static str, usize> {
    let count = Arc::new(Count::default());
    let observation = LaunchObservation::new(count.clone());
    work();
    drop(observation);
    std::mem::take(&mut *count.0.lock().unwrap())
}

/// Launches per step, and the kernels behind them, most frequent first.
fn per_step(counts: BTreeMap<&'static str, usize>) -> (f64, String) {
    let total: usize = counts.values().sum();
    let mut kernels: Vec<_> = counts.into_iter().collect();
    kernels.sort_by_key(|kernel| std::cmp::Reverse(kernel.1));
    let listing = kernels
        .iter()
        .map(|(name, n)| format!("      {:6.2}  {name}", *n as f64 / STEPS as f64))
        .collect::<Vec<_>>()
        .join("\n");
    (total as f64 / STEPS as f64, listing)
}

fn wgpu_device() -> Option<Device> {
    match Device::wgpu_options().init() {
        Ok(device) => Some(device),
        Err(err) => {
            let message = format!(
                "SKIPPED wgpu launch counts: no wgpu adapter ({err}); on Debian install \
                 mesa-vulkan-drivers for lavapipe"
            );
            if std::env::var("STORYTELLER_REQUIRE_FIXTURES").as_deref() == Ok("1") {
                panic!("{message}, and STORYTELLER_REQUIRE_FIXTURES=1");
            }
            eprintln!("{message}");
            None
        }
    }
}

/// A decoder whose `<end>` is unreachable, so every search runs all `STEPS` steps.
fn decoder(device: &Device) -> CaptionDecoder {
    let mut decoder = CaptionDecoderConfig::new(VOCAB)
        .with_d_feature(32)
        .with_d_embed(16)
        .with_d_hidden(32)
        .with_d_whitened(None)
        .init(device)
        .unwrap()
        .materialized();
    let bias = decoder.out.bias.as_ref().unwrap().val();
    let mut values = bias
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .unwrap();
    values[END] = -1e9;
    decoder.out.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(values, [VOCAB]),
        device,
    )));
    decoder
}

/// Per-step launches of a search over `images` images, and the kernels behind them.
fn search_launches(
    decoder: &impl StepDecoder,
    device: &Device,
    search: &Search,
    images: usize,
) -> (f64, String) {
    let features = Tensor::<2>::random([images, 32], Distribution::Normal(0.0, 1.0), device);
    let run = || {
        let ranked = search.search(decoder, features.clone()).unwrap();
        assert!(ranked.iter().all(|r| r[0].tokens.len() == STEPS));
    };
    run();
    per_step(launches(run))
}

#[test]
fn launches_per_step_stay_within_their_ceilings() {
    let Some(device) = wgpu_device() else {
        return;
    };
    let plain = decoder(&device);
    // What the captioner searches: the embedding folded into the input gates.
    let model = SearchDecoder::new(Decoder::ShowTell(decoder(&device)));
    let greedy: Search = GreedySearch::new().with_max_len(STEPS).into();
    let fixed: Search = GreedySearch::new()
        .with_max_len(STEPS)
        .with_sync_every(Some(4))
        .into();
    let beam: Search = BeamSearch::new().with_width(3).with_max_len(STEPS).into();

    let train_device = device.clone().autodiff();
    let mut trained = decoder(&train_device);
    let mut step = TrainStep::new(&OptimizerConfig::new(), 0);
    let tokens = |seed: f64| {
        Tensor::<2, Int>::random(
            [8, STEPS],
            Distribution::Uniform(4.0 + seed, VOCAB as f64),
            &train_device,
        )
    };
    let batch = CaptionBatch {
        features: Tensor::random([8, 32], Distribution::Normal(0.0, 1.0), &train_device),
        inputs: tokens(0.0),
        targets: tokens(1.0),
    };
    let mut train_once = || {
        let (next, loss) = step.step(trained.clone(), &batch, 1e-3);
        assert!(loss.is_finite());
        trained = next;
    };
    train_once();
    let train = per_step(launches(train_once));

    let measured = [
        (
            "greedy, compacting, plain decoder",
            search_launches(&plain, &device, &greedy, 4),
        ),
        (
            "greedy, compacting",
            search_launches(&model, &device, &greedy, 4),
        ),
        (
            "greedy, fixed shape (sync every 4)",
            search_launches(&model, &device, &fixed, 4),
        ),
        ("beam-3", search_launches(&model, &device, &beam, 4)),
        ("train step, per time step", train),
    ];
    // Measured with this test's shapes on lavapipe (Burn 0.22.1 with fusion), with the
    // fused LSTM cell (one kernel for a step's pointwise tail), the fused best token (one
    // kernel for greedy's arg-max and log-sum-exp), both biases in the input gates and the
    // whole teacher-forced recurrence as one autodiff operation: 9.50, 6.50, 9.25, 47.50
    // and 22.17. Before these: 17.50, 15.58, 15.00, 51.50 and
    // 35.83; without fusion: 26.75, 24.75, 30.08, 92.67, 93.08.
    let ceilings = [9.5, 6.5, 9.25, 47.5, 22.2];
    for ((name, (count, kernels)), ceiling) in measured.iter().zip(ceilings) {
        println!("{name:38} {count:6.2} launches per step (ceiling {ceiling:.2})\n{kernels}");
    }
    // The cell's tail is the custom kernel, once per step (one layer), in every part; the
    // training step also runs its fused backward, greedy search its best-token kernel.
    for (name, (_, kernels)) in &measured {
        assert!(
            kernels.contains("1.00  storyteller_decoder::fused_cell::cube::lstm_cell_kernel"),
            "{name}: the fused LSTM cell kernel does not run once per step:\n{kernels}"
        );
    }
    assert!(
        measured[4]
            .1
            .1
            .contains("1.00  storyteller_decoder::fused_cell::cube::lstm_cell_backward_kernel"),
        "the training step does not run the fused backward once per step"
    );
    for (name, (_, kernels)) in &measured[..3] {
        assert!(
            kernels.contains("1.00  storyteller_search::best_token::cube::best_token_kernel"),
            "{name}: the fused best-token kernel does not run once per step:\n{kernels}"
        );
    }
    for ((name, (count, _)), ceiling) in measured.iter().zip(ceilings) {
        assert!(
            count <= &ceiling,
            "{name}: {count} launches per step, more than {ceiling}"
        );
    }
}
