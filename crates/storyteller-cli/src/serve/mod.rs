//! `storyteller serve`: the captioning web app and its JSON API (docs/serve.md).
//!
//! axum routes HTTP on a tokio runtime behind a [`guard`] (host and origin checks, the
//! access log) and a connection loop with timeouts and limits ([`server`]); one model
//! thread ([`batcher`]) owns the [`Captioner`] and captions the requests of a short window
//! together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};
use storyteller::Captioner;
use storyteller_data::DecodeLimits;

mod batcher;
mod guard;
mod routes;
mod server;

use batcher::{BatchSettings, Batcher};
use server::{ConnectionLimits, Ended};

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
    /// Largest accepted image side, in pixels (checked from the header, before decoding).
    #[arg(long, default_value_t = 4096, value_name = "PIXELS")]
    max_image_side: u32,
    /// Most pixels (width x height) of one accepted image.
    #[arg(long, default_value_t = 16 << 20, value_name = "PIXELS")]
    max_image_pixels: u64,
    /// Most pixels decoded for one batch; later uploads wait for the next batch.
    #[arg(long, default_value_t = 64 << 20, value_name = "PIXELS")]
    max_batch_pixels: u64,
    /// Most uploads waiting for the model; more are answered 503.
    #[arg(long, default_value_t = 256, value_name = "N")]
    max_queue: usize,
    /// Most open connections; more are answered 503 and closed.
    #[arg(long, default_value_t = 512, value_name = "N")]
    max_connections: usize,
    /// Seconds a client has to send a request head (also how long an idle kept-alive
    /// connection stays open).
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    header_timeout: f64,
    /// Seconds a client has to send an upload's body (then 408).
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    body_timeout: f64,
    /// Seconds a shutdown waits for requests in flight before abandoning them.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    shutdown_deadline: f64,
    /// A host name clients may use (the `Host` header); repeat for more. Loopback names and
    /// the --addr host are always served; `*` serves any (no DNS-rebinding protection).
    #[arg(long, value_name = "NAME")]
    allowed_host: Vec<String>,
    /// No access log on stderr.
    #[arg(long)]
    no_access_log: bool,
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

/// A duration option: positive and finite.
fn seconds(value: f64, option: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--{option} {value}: expected a positive number of seconds"))
}

/// The host names served: loopback names, the --addr host, and `--allowed-host`.
fn allowed_hosts(args: &ServeArgs) -> Vec<String> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    hosts.push(match args.addr {
        SocketAddr::V4(addr) => addr.ip().to_string(),
        SocketAddr::V6(addr) => format!("[{}]", addr.ip()),
    });
    hosts.extend(args.allowed_host.iter().cloned());
    hosts
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `storyteller serve` until SIGINT (Ctrl-C) or SIGTERM, then finishes the requests in
/// flight, abandoning them at the shutdown deadline or on a second signal.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.max_batch >= 1, "--max-batch must be at least 1");
    anyhow::ensure!(
        args.max_upload_bytes >= 1,
        "--max-upload-bytes must be at least 1"
    );
    anyhow::ensure!(args.max_queue >= 1, "--max-queue must be at least 1");
    anyhow::ensure!(
        args.max_connections >= 1,
        "--max-connections must be at least 1"
    );
    anyhow::ensure!(
        args.max_image_side >= 1 && args.max_image_pixels >= 1,
        "--max-image-side and --max-image-pixels must be at least 1"
    );
    let limits = ConnectionLimits {
        header_timeout: seconds(args.header_timeout, "header-timeout")?,
        max_connections: args.max_connections,
        shutdown_deadline: seconds(args.shutdown_deadline, "shutdown-deadline")?,
        max_head_bytes: 64 * 1024,
    };
    let body_timeout = seconds(args.body_timeout, "body-timeout")?;
    if !args.no_access_log {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(false)
            .try_init();
    }
    let model_info = model_info(&args.model)?;
    let decode_limits = DecodeLimits {
        max_width: args.max_image_side,
        max_height: args.max_image_side,
        max_pixels: args.max_image_pixels,
        // 16-bit RGBA is the widest layout a decoder produces: 8 bytes a pixel.
        max_alloc: args.max_image_pixels.saturating_mul(8),
    };
    let settings = BatchSettings {
        window: Duration::from_millis(args.batch_window_ms),
        max_batch: args.max_batch,
        max_batch_pixels: args.max_batch_pixels.max(1),
        max_queue: args.max_queue,
        limits: decode_limits,
    };
    let (model_dir, device_name) = (args.model.clone(), args.device.clone());
    let (batcher, beam) = Batcher::spawn(
        move || {
            let device = device_name.open()?;
            let captioner = Captioner::load(&model_dir, &device)?;
            let beam = captioner.config().beam.clone();
            let model = move |images: &[image::RgbImage], search: &storyteller::Search| {
                Ok(captioner.ranked_with_attention(images, search)?)
            };
            Ok((model, beam))
        },
        settings,
    )?;
    let state = Arc::new(routes::AppState {
        batcher,
        beam,
        max_upload_bytes: args.max_upload_bytes,
        body_timeout,
        model_info,
    });
    let guard = Arc::new(guard::Guard::new(
        &allowed_hosts(args),
        8 * 1024,
        32 * 1024,
        !args.no_access_log,
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .map_err(|err| anyhow::anyhow!("--addr {}: {err}", args.addr))?;
        println!("listening on http://{}", listener.local_addr()?);
        let deadline = limits.shutdown_deadline.as_secs_f64();
        let shutdown = async {
            stop_signal().await;
            eprintln!(
                "shutting down: finishing the requests in flight (at most {deadline} s; \
                 signal again to stop now)"
            );
        };
        let ended = server::serve(
            listener,
            routes::router(state, guard),
            &limits,
            shutdown,
            stop_signal(),
        )
        .await;
        match ended {
            Ended::Drained => eprintln!("shut down"),
            Ended::Abandoned(open) => {
                eprintln!("shut down: abandoned {open} connection(s) still open after {deadline} s")
            }
            Ended::Interrupted(open) => {
                eprintln!("stopped at once by a second signal ({open} connection(s) open)");
                std::process::exit(130);
            }
        }
        anyhow::Ok(())
    })?;
    // Abandoned connections are not waited for.
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(())
}
