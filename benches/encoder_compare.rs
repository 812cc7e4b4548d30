//! Times the ResNet-50 encoder on Burn's Flex CPU backend: images/s per batch size.
//!
//! Run by `benches/encoder_vs_torch.py`, which times PyTorch on the same shapes in the
//! same run and prints the ratio:
//!
//! ```text
//! encoder-compare [--batches 1,32] [--size 224] [--reps 3] [--warm 1] [--unfused] [--stages]
//! ```
//!
//! `--stages` also prints the median seconds of each stage (stem, layer1..layer4, pool)
//! of the fused network, to show where the time goes.
//!
//! Random weights (speed does not depend on them), BatchNorm folded unless `--unfused`.
//! Prints one JSON line per batch size with the median seconds per batch, timed from
//! the input tensor to the `[batch, 2048]` features read back to the host.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Distribution, Tensor};
use serde_json::json;
use storyteller_encoder::{Encoder, ResNet, ResNetConfig};

/// Median seconds of each stage of `net` on `x`, each stage timed on its own input.
fn stage_times(net: &ResNet, x: Tensor<4>, reps: usize) -> Vec<(&'static str, f64)> {
    use burn::tensor::activation::relu;
    let time = |f: &dyn Fn() -> Tensor<4>| {
        let _ = f().into_data();
        let mut ts: Vec<f64> = (0..reps)
            .map(|_| {
                let start = Instant::now();
                let _ = f().into_data();
                start.elapsed().as_secs_f64()
            })
            .collect();
        ts.sort_by(f64::total_cmp);
        ts[ts.len() / 2]
    };
    let stem = |x: Tensor<4>| net.maxpool.forward(relu(net.conv1.forward(x)));
    let mut out = vec![(
        "stem (conv1 7x7 + relu + maxpool)",
        time(&|| stem(x.clone())),
    )];
    let mut input = stem(x);
    for (name, layer) in [
        ("layer1", &net.layer1),
        ("layer2", &net.layer2),
        ("layer3", &net.layer3),
        ("layer4", &net.layer4),
    ] {
        let run = |x: Tensor<4>| layer.iter().fold(x, |x, block| block.forward(x));
        out.push((name, time(&|| run(input.clone()))));
        input = run(input);
    }
    out
}

struct Args {
    batches: Vec<usize>,
    size: usize,
    reps: usize,
    warm: usize,
    unfused: bool,
    stages: bool,
}

fn parse() -> Result<Args> {
    let mut args = Args {
        batches: vec![1, 32],
        size: 224,
        reps: 3,
        warm: 1,
        unfused: false,
        stages: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--batches" => {
                args.batches = value()?
                    .split(',')
                    .map(|b| b.trim().parse().context("--batches: comma-separated sizes"))
                    .collect::<Result<_>>()?
            }
            "--size" => args.size = value()?.parse().context("--size")?,
            "--reps" => args.reps = value()?.parse().context("--reps")?,
            "--warm" => args.warm = value()?.parse().context("--warm")?,
            "--unfused" => args.unfused = true,
            "--stages" => args.stages = true,
            other => bail!("unknown argument {other}"),
        }
    }
    if args.size < 32 || args.reps == 0 || args.batches.contains(&0) {
        bail!("--size must be >= 32, --reps and every batch >= 1");
    }
    Ok(args)
}

fn main() -> Result<()> {
    let args = parse()?;
    let device = Device::flex();
    let network = ResNetConfig::resnet50().init(&device);
    let run: Box<dyn Fn(Tensor<4>) -> Tensor<2>> = if args.unfused {
        Box::new(move |x| network.forward(x))
    } else {
        let encoder = Encoder::from_network(network)?;
        Box::new(move |x| encoder.forward(x))
    };
    if args.stages {
        let net = ResNetConfig::resnet50().init(&device).fuse();
        for &batch in &args.batches {
            let x = Tensor::<4>::random(
                [batch, 3, args.size, args.size],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            for (stage, seconds) in stage_times(&net, x, args.reps) {
                println!("{}", json!({"batch": batch, "stage": stage, "s": seconds}));
            }
        }
    }
    for &batch in &args.batches {
        let x = Tensor::<4>::random(
            [batch, 3, args.size, args.size],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let once = || {
            let start = Instant::now();
            let features = run(x.clone()).into_data();
            let elapsed = start.elapsed().as_secs_f64();
            assert_eq!(features.shape().to_vec(), [batch, 2048]);
            elapsed
        };
        for _ in 0..args.warm {
            once();
        }
        let mut times: Vec<f64> = (0..args.reps).map(|_| once()).collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{}",
            json!({
                "impl": "burn-flex",
                "fused": !args.unfused,
                "batch": batch,
                "size": args.size,
                "threads": rayon::current_num_threads(),
                "s_per_batch": median,
                "img_per_s": batch as f64 / median,
            })
        );
    }
    Ok(())
}
