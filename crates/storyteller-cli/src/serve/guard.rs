//! The middleware every request passes: a request id, the access log, the checks that keep
//! other sites and oversized heads out, and JSON bodies on every error answer.
//!
//! - `Host` must name this server (`--allowed-host`; loopback names by default), so a page
//!   on another site cannot reach a loopback server through DNS rebinding.
//! - A POST carrying an `Origin` must come from a page of this server: browsers let any
//!   site send "simple" cross-site POSTs, which would otherwise run the model.
//! - URIs over `max_uri_bytes` get 414 and heads over `max_head_bytes` get 431, with a JSON
//!   body (hyper's own limits, higher, answer without one).
//! - Errors without a body (axum's 405, for one) get `{"error": ...}`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The id of a request: in the access log, the `x-request-id` header and 500 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId(pub u64);

/// What the middleware checks, and its request counter.
#[derive(Debug)]
pub struct Guard {
    /// Host names served (lowercase, without port); `None` serves any.
    allowed_hosts: Option<Vec<String>>,
    /// Longest accepted request target.
    max_uri_bytes: usize,
    /// Largest accepted request head (request line and headers).
    max_head_bytes: usize,
    /// Whether to write the access log.
    access_log: bool,
    next_id: AtomicU64,
}

impl Guard {
    /// A guard serving `allowed_hosts` (`*` among them serves any host).
    pub fn new(
        allowed_hosts: &[String],
        max_uri_bytes: usize,
        max_head_bytes: usize,
        access_log: bool,
    ) -> Self {
        let allowed_hosts = (!allowed_hosts.iter().any(|h| h == "*"))
            .then(|| allowed_hosts.iter().map(|h| host_name(h)).collect());
        Self {
            allowed_hosts,
            max_uri_bytes,
            max_head_bytes,
            access_log,
            next_id: AtomicU64::new(0),
        }
    }

    /// Why `request` is refused, if it is.
    fn check(&self, request: &Request) -> Result<(), (StatusCode, String)> {
        let uri = request.uri().to_string().len();
        if uri > self.max_uri_bytes {
            return Err((
                StatusCode::URI_TOO_LONG,
                format!(
                    "the request target is {uri} bytes; the limit is {}",
                    self.max_uri_bytes
                ),
            ));
        }
        let head = uri
            + request
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>();
        if head > self.max_head_bytes {
            return Err((
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!(
                    "the request head is {head} bytes; the limit is {}",
                    self.max_head_bytes
                ),
            ));
        }
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    "the request has no Host header".to_owned(),
                )
            })?;
        if let Some(allowed) = &self.allowed_hosts {
            let name = host_name(host);
            if !allowed.contains(&name) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "host {name:?} is not served here; start the server with \
                         --allowed-host {name} to serve it"
                    ),
                ));
            }
        }
        if request.method() == Method::POST
            && let Some(origin) = request.headers().get(header::ORIGIN)
        {
            let origin = origin.to_str().unwrap_or("");
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            if !authority.is_some_and(|a| a.eq_ignore_ascii_case(host)) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("cross-origin request refused: a page of {origin:?} may not post here"),
                ));
            }
        }
        Ok(())
    }
}

/// The host name of a `Host` value or an `--allowed-host`: lowercase, port removed
/// (`[::1]:8080` gives `[::1]`).
fn host_name(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(&host).to_owned();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
        _ => host,
    }
}

/// The middleware: see the module docs.
pub async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    let id = guard.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let started = Instant::now();
    let method = request.method().clone();
    let path: String = request.uri().path().chars().take(200).collect();
    request.extensions_mut().insert(RequestId(id));
    let response = match guard.check(&request) {
        Ok(()) => next.run(request).await,
        Err((status, message)) => (status, axum::Json(json!({ "error": message }))).into_response(),
    };
    let mut response = with_json_error_body(response);
    response
        .headers_mut()
        .insert("x-request-id", HeaderValue::from(id));
    if guard.access_log {
        tracing::info!(
            target: "storyteller::access",
            "id={id} {method} {path:?} {} {:.1}ms",
            response.status().as_u16(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    response
}

/// An error answer without a body gets `{"error": reason}`.
fn with_json_error_body(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    let message = match parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
    {
        Some(allow) => format!("{reason}; this route takes {allow}"),
        None => reason,
    };
    let body = json!({ "error": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn status(guard: &Guard, request: &Request) -> StatusCode {
        guard
            .check(request)
            .err()
            .map_or(StatusCode::OK, |(status, _)| status)
    }

    #[test]
    fn hosts_and_origins_are_checked() {
        let guard = Guard::new(&["localhost".into(), "127.0.0.1".into()], 1000, 4000, false);
        let ok = [("host", "127.0.0.1:8080")];
        assert_eq!(status(&guard, &request("GET", "/", &ok)), StatusCode::OK);
        let rebound = [("host", "evil.example:8080")];
        assert_eq!(
            status(&guard, &request("GET", "/", &rebound)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(&guard, &request("GET", "/", &[])),
            StatusCode::BAD_REQUEST
        );
        let same_site = [
            ("host", "localhost:8080"),
            ("origin", "http://localhost:8080"),
        ];
        assert_eq!(
            status(&guard, &request("POST", "/api/caption", &same_site)),
            StatusCode::OK
        );
        for origin in ["http://evil.example", "null", "http://localhost:9999"] {
            let cross = [("host", "localhost:8080"), ("origin", origin)];
            assert_eq!(
                status(&guard, &request("POST", "/api/caption", &cross)),
                StatusCode::FORBIDDEN,
                "{origin}"
            );
        }
        let any = Guard::new(&["*".into()], 1000, 4000, false);
        assert_eq!(status(&any, &request("GET", "/", &rebound)), StatusCode::OK);
    }

    #[test]
    fn long_targets_and_heads_are_refused() {
        let guard = Guard::new(&["*".into()], 100, 400, false);
        let host = [("host", "localhost")];
        let long = format!("/{}", "a".repeat(200));
        assert_eq!(
            status(&guard, &request("GET", &long, &host)),
            StatusCode::URI_TOO_LONG
        );
        let big = "b".repeat(500);
        let heavy = [("host", "localhost"), ("x-padding", big.as_str())];
        assert_eq!(
            status(&guard, &request("GET", "/", &heavy)),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("LocalHost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("example.org"), "example.org");
    }

    #[test]
    fn bodiless_errors_get_a_json_body() {
        let response = Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "GET,HEAD")
            .body(Body::empty())
            .unwrap();
        let response = with_json_error_body(response);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
