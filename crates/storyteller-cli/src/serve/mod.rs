//! `storyteller serve`: the captioning web app and its JSON API (docs/serve.md).
//!
//! axum handles HTTP on a tokio runtime; one model thread ([`batcher`]) owns the
//! [`Captioner`] and captions the requests of a short window together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use storyteller::Captioner;
use storyteller_data::DecodeLimits;

mod batcher;
mod routes;

use batcher::{BatchSettings, Batcher};

/// Arguments of `storyteller serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The model directory (`storyteller train` or `storyteller demo`).
    #[arg(long, value_name = "MODEL_DIR")]
    model: PathBuf,
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Largest accepted upload, in bytes.
    #[arg(long, default_value_t = 10 * 1024 * 1024, value_name = "BYTES")]
    max_upload_bytes: usize,
    /// Largest accepted image side, in pixels (checked before decoding).
    #[arg(long, default_value_t = 8192, value_name = "PIXELS")]
    max_image_side: u32,
    /// How long the model thread waits for more requests to batch with the first one.
    #[arg(long, default_value_t = 10, value_name = "MS")]
    batch_window_ms: u64,
    /// Most images captioned in one batch.
    #[arg(long, default_value_t = 32, value_name = "N")]
    max_batch: usize,
    /// Backend: cpu, wgpu or cuda[:N].
    #[arg(long, default_value = "cpu")]
    device: crate::device::DeviceName,
}

/// `config.json` (validated) and every line of `metrics.jsonl` (when there is one) of a
/// model directory. Paths are reduced to file names: the server does not tell clients
/// where its files live.
fn model_info(dir: &Path) -> anyhow::Result<Value> {
    let layout = storyteller::ModelLayout::new(dir);
    let mut config = serde_json::to_value(storyteller::ModelConfig::load(dir)?)?;
    if let Some(weights) = config.pointer_mut("/encoder/weights") {
        let name = Path::new(weights.as_str().unwrap_or_default())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        *weights = Value::String(name);
    }
    let metrics: Vec<Value> = std::fs::read_to_string(layout.metrics())
        .map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str(line).ok())
                .collect()
        })
        .unwrap_or_default();
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "model".into());
    Ok(json!({ "dir": name, "config": config, "metrics": metrics }))
}

/// Runs `storyteller serve` until Ctrl-C (or SIGINT), then finishes the requests in flight.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.max_batch >= 1, "--max-batch must be at least 1");
    anyhow::ensure!(
        args.max_upload_bytes >= 1,
        "--max-upload-bytes must be at least 1"
    );
    let model_info = model_info(&args.model)?;
    let settings = BatchSettings {
        window: Duration::from_millis(args.batch_window_ms),
        max_batch: args.max_batch,
        limits: DecodeLimits {
            max_width: args.max_image_side,
            max_height: args.max_image_side,
            max_alloc: 512 * 1024 * 1024,
        },
    };
    let (model_dir, device_name) = (args.model.clone(), args.device.clone());
    let (batcher, beam) = Batcher::spawn(
        move || {
            let device = device_name.open()?;
            let captioner = Captioner::load(&model_dir, &device)?;
            let beam = captioner.config().beam.clone();
            let model = move |images: &[image::RgbImage], search: &storyteller::Search| {
                Ok(captioner.ranked(images, search)?)
            };
            Ok((model, beam))
        },
        settings,
    )?;
    let state = Arc::new(routes::AppState {
        batcher,
        beam,
        max_upload_bytes: args.max_upload_bytes,
        model_info,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|err| anyhow::anyhow!("--addr {}: {err}", args.addr))?;
        println!("listening on http://{}", listener.local_addr()?);
        axum::serve(listener, routes::router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
                eprintln!("shutting down: finishing the requests in flight");
            })
            .await?;
        eprintln!("shut down");
        anyhow::Ok(())
    })
}
