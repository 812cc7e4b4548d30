//! `gpu-check`: a backend against the CPU and against PyTorch, in one run.
//!
//! Parity first (the device under test against Flex on the same weights and inputs, see
//! [`parity`]), then the workloads of `benches/torch_reference.py` timed on the
//! device: ResNet-50 images/s per batch and precision, greedy and beam-3 captions/s, and
//! decoder training steps in captions/s. Each timing reports its first call and the whole
//! warm-up apart from the median of the timed calls (kernel compilation and autotuning make
//! first calls slow on a GPU).
//!
//! ```text
//! gpu-check --device cpu|wgpu|cuda[:N] [--tiny] [--parts parity,encoder,search,train]
//!           [--encoder-batches 1,32,128,256] [--image-size 224] [--precisions f32,f16,bf16]
//!           [--search-batches 1,128,1024] [--train-batches 128,512] [--warm 3] [--reps 20]
//!           [--anchor torch.jsonl] [--out results.jsonl]
//! gpu-check --summary results.jsonl [--anchor torch.jsonl]
//! ```
//!
//! `--tiny` (first, later flags override it) shrinks every size so the CPU runs the whole
//! harness in seconds (CI does, so the code cannot rot). Prints one JSON line per result,
//! then a table, with PyTorch's rates and the ratios when `--anchor` names the JSON lines
//! `torch_reference.py` printed; `--summary` prints that table for results written earlier (by
//! several runs with `--out`). Exits non-zero when a parity check fails. Built for CUDA by
//! `benches/gpu/build-cuda.sh`, run on the GPU machine by `benches/gpu/run.sh`.

mod data;
#[path = "../../crates/storyteller-cli/src/device.rs"]
#[allow(dead_code)] // the CLI's `--device` parser; gpu-check uses part of it
mod device;
mod encoder;
mod parity;
mod precision;
mod record;
mod search;
#[path = "../search_lstm.rs"]
mod search_lstm;
mod summary;
mod timing;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use burn::tensor::FloatDType;
use serde_json::json;

struct Args {
    device: String,
    parts: Vec<String>,
    encoder_batches: Vec<usize>,
    image_size: usize,
    precisions: Vec<FloatDType>,
    search_batches: Vec<usize>,
    train_batches: Vec<usize>,
    warm: usize,
    reps: usize,
    anchor: Option<PathBuf>,
    out: Option<PathBuf>,
    summary: Option<PathBuf>,
}

const PARTS: [&str; 4] = ["parity", "encoder", "search", "train"];

fn list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{flag}: {v:?} in a comma-separated list"))
        })
        .collect()
}

fn parse() -> Result<Args> {
    let mut args = Args {
        device: "cpu".into(),
        parts: PARTS.map(String::from).to_vec(),
        encoder_batches: vec![1, 32, 128, 256],
        image_size: 224,
        precisions: vec![FloatDType::F32, FloatDType::F16, FloatDType::BF16],
        search_batches: vec![1, 128, 1024],
        train_batches: vec![128, 512],
        warm: 3,
        reps: 20,
        anchor: None,
        out: None,
        summary: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--tiny" {
            args.encoder_batches = vec![1, 2];
            args.image_size = 64;
            args.search_batches = vec![1, 4];
            args.train_batches = vec![2];
            args.warm = 1;
            args.reps = 2;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--device" => args.device = value,
            "--parts" => args.parts = list(&flag, &value)?,
            "--encoder-batches" => args.encoder_batches = list(&flag, &value)?,
            "--image-size" => args.image_size = value.parse().context("--image-size")?,
            "--precisions" => {
                args.precisions = value
                    .split(',')
                    .map(|p| precision::parse(p.trim()))
                    .collect::<Result<_>>()?
            }
            "--search-batches" => args.search_batches = list(&flag, &value)?,
            "--train-batches" => args.train_batches = list(&flag, &value)?,
            "--warm" => args.warm = value.parse().context("--warm")?,
            "--reps" => args.reps = value.parse().context("--reps")?,
            "--anchor" => args.anchor = Some(value.into()),
            "--out" => args.out = Some(value.into()),
            "--summary" => args.summary = Some(value.into()),
            other => {
                bail!("unknown argument {other} (see the header of benches/gpu_check/main.rs)")
            }
        }
    }
    if let Some(part) = args.parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
        bail!(
            "--parts: unknown part {part}, expected some of {}",
            PARTS.join(",")
        );
    }
    let batches = [
        &args.encoder_batches,
        &args.search_batches,
        &args.train_batches,
    ];
    if args.image_size < 32 || args.reps == 0 || batches.iter().any(|b| b.contains(&0)) {
        bail!("--image-size must be >= 32, --reps and every batch >= 1");
    }
    Ok(args)
}

fn run() -> Result<bool> {
    let args = parse()?;
    let anchor = args.anchor.as_deref().map(summary::load_rows).transpose()?;
    if let Some(path) = &args.summary {
        let rows = summary::load_rows(path)?;
        print!("{}", summary::table(&rows, anchor.as_deref()));
        return Ok(rows
            .iter()
            .filter(|r| r["part"] == "parity")
            .all(|r| r["pass"] == true));
    }
    let device = args
        .device
        .parse::<device::DeviceName>()
        .map_err(|err| anyhow::anyhow!("--device {}: {err}", args.device))?
        .open()?;
    let mut rec = record::Recorder::new(args.out.as_deref())?;
    rec.emit(json!({
        "part": "run", "device": args.device, "device_debug": format!("{device:?}"),
        "burn": "0.22.1", "warm": args.warm, "reps": args.reps,
    }))?;
    let timing = (args.warm, args.reps);
    let has = |part: &str| args.parts.iter().any(|p| p == part);
    let mut pass = true;
    if has("parity") {
        pass = parity::run(&device, args.image_size, &mut rec)?;
    }
    if has("encoder") {
        pass &= encoder::bench(
            &device,
            &args.encoder_batches,
            args.image_size,
            &args.precisions,
            timing,
            &mut rec,
        )?;
    }
    if has("search") {
        search::bench(&device, &args.search_batches, timing, &mut rec)?;
    }
    if has("train") {
        train::bench(&device, &args.train_batches, timing, &mut rec)?;
    }
    println!();
    print!("{}", summary::table(rec.rows(), anchor.as_deref()));
    if !pass {
        println!("parity: FAILED (see the \"parity\" lines above)");
    }
    Ok(pass)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
