//! The connection loop: hyper's HTTP/1.1 under a connection limit and timeouts, and a
//! shutdown that drains the requests in flight, then abandons what is left at a deadline.
//!
//! axum's own `serve` sets no timer, so hyper's header timeout never fires there: one
//! client sending a byte a second, or thousands of idle sockets, would hold connections
//! forever. Here:
//! - a request head (and a kept-alive connection's wait for the next one) must arrive
//!   within the header timeout, or the connection is closed;
//! - the upload body has its own timeout (in the caption handler, which answers 408);
//! - at most `max_connections` are open; a connection over the limit gets a 503 and is
//!   closed without reading it;
//! - on shutdown the listener closes, idle connections close, requests in flight finish,
//!   and whatever is still running at the deadline is abandoned.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Limits on connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time allowed for a request head, and for an idle kept-alive connection.
    pub header_timeout: Duration,
    /// Most open connections.
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub shutdown_deadline: Duration,
    /// Largest request head hyper buffers, in bytes (longer ones get its bare 431).
    pub max_head_bytes: usize,
}

/// How serving ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Every request in flight finished.
    Drained,
    /// The deadline passed with this many connections still open; they were abandoned.
    Abandoned(usize),
    /// A second signal cut the drain short.
    Interrupted(usize),
}

/// The answer to a connection over the limit: written without reading the request.
fn busy_response() -> Vec<u8> {
    let body = r#"{"error":"too many open connections; retry in a moment"}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the limit with 503 and closes it. What the client already
/// sent is read first (for at most a moment), so that closing does not reset the
/// connection and discard the answer.
async fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(50), stream.read(&mut sink)).await;
    let answer = async {
        stream.write_all(&busy_response()).await?;
        stream.shutdown().await?;
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// Serves `router` on `listener` until `shutdown` completes, then drains (see the module
/// docs). `interrupt` completing during the drain abandons it at once.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    interrupt: impl Future<Output = ()>,
) -> Ended {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tokio::spawn(refuse(stream));
            continue;
        };
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_buf_size(limits.max_head_bytes.max(8192))
            .serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    let open = || limits.max_connections - permits.available_permits();
    tokio::select! {
        drained = tokio::time::timeout(limits.shutdown_deadline, graceful.shutdown()) => {
            match drained {
                Ok(()) => Ended::Drained,
                Err(_) => Ended::Abandoned(open()),
            }
        }
        () = interrupt => Ended::Interrupted(open()),
    }
}
