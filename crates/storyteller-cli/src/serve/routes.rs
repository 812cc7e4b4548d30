//! The HTTP routes: the page, `POST /api/caption`, `GET /api/health`, `GET /api/model`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, FromRequest, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, extract::Multipart};
use serde_json::{Value, json};
use storyteller::{BeamSearch, GreedySearch, Search};

use super::batcher::{Batcher, JobError};
use super::guard::{Guard, RequestId, guard};

/// Widest beam a request may ask for.
pub const MAX_WIDTH: usize = 16;
/// Room for multipart boundaries and headers on top of the upload limit.
const MULTIPART_SLACK: usize = 64 * 1024;

/// What every handler shares.
pub struct AppState {
    /// The model thread.
    pub batcher: Batcher,
    /// The model's default beam search (from its config.json).
    pub beam: BeamSearch,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: usize,
    /// Time allowed for an upload's body to arrive.
    pub body_timeout: Duration,
    /// `config.json` and `metrics.jsonl` of the model directory.
    pub model_info: Value,
}

/// The router of `storyteller serve`, behind the [`guard`] middleware.
pub fn router(state: Arc<AppState>, guarded_by: Arc<Guard>) -> Router {
    let only_get = || async { method_not_allowed("GET, HEAD") };
    Router::new()
        .route("/", get(page).fallback(only_get))
        .route("/api/health", get(health).fallback(only_get))
        .route("/api/model", get(model).fallback(only_get))
        // Uploads are limited by the caption handler itself, with a JSON error.
        .route(
            "/api/caption",
            post(caption)
                .fallback(|| async { method_not_allowed("POST") })
                .layer(DefaultBodyLimit::disable()),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(guarded_by, guard))
        .with_state(state)
}

/// A JSON error response: `{"error": message}` with a status.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, message.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(json!({ "error": self.1 }))).into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The answer to a request that got no caption. The server's own failures are logged
/// with the request id; the client gets the id, not the internal error chain.
fn job_error(err: JobError, id: RequestId) -> ApiError {
    match err {
        JobError::BadImage(message) => ApiError(StatusCode::UNPROCESSABLE_ENTITY, message),
        JobError::Busy => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy: too many uploads are waiting; retry in a moment".into(),
        ),
        JobError::Model(message) => {
            tracing::error!(target: "storyteller::serve", "request {}: {message}", id.0);
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "internal error while captioning (request id {}; the server log has the details)",
                    id.0
                ),
            )
        }
        JobError::Stopped => ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model thread has stopped".into(),
        ),
    }
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page.html"))
}

/// 405 with the methods the route takes, in the body and in `Allow`.
fn method_not_allowed(allowed: &'static str) -> Response {
    let mut response = ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; this route takes {allowed}"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allowed));
    response
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such route".into())
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    let stats = state.batcher.stats();
    Json(json!({
        "status": "ok",
        "batches": stats.batches.load(Ordering::Relaxed),
        "images": stats.images.load(Ordering::Relaxed),
        "panics": stats.panics.load(Ordering::Relaxed),
        "refused": stats.refused.load(Ordering::Relaxed),
        "abandoned": stats.abandoned.load(Ordering::Relaxed),
        "waiting": stats.waiting.load(Ordering::Relaxed),
    }))
}

async fn model(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(state.model_info.clone())
}

/// The search a request asks for with `search`, `width` and `n_best`.
fn parse_search(params: &HashMap<String, String>, beam: &BeamSearch) -> Result<Search, ApiError> {
    if let Some(unknown) = params
        .keys()
        .find(|k| !matches!(k.as_str(), "search" | "width" | "n_best"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {unknown:?} (expected search, width, n_best)"
        )));
    }
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match params.get(name) {
            None => Ok(default),
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_WIDTH).contains(&n) => Ok(n),
                _ => Err(ApiError::bad_request(format!(
                    "{name}={text:?}: expected a whole number from 1 to {MAX_WIDTH}"
                ))),
            },
        }
    };
    let n_best = number("n_best", 1)?;
    match params.get("search").map(String::as_str).unwrap_or("beam") {
        "greedy" => {
            if n_best > 1 {
                return Err(ApiError::bad_request(
                    "n_best > 1 needs search=beam (greedy search finds one caption)",
                ));
            }
            Ok(Search::Greedy(
                GreedySearch::new().with_max_len(beam.max_len),
            ))
        }
        "beam" => {
            let beam = beam
                .clone()
                .with_width(number("width", beam.width)?)
                .with_n_best(n_best);
            beam.validate()
                .map_err(|err| ApiError::bad_request(err.to_string()))?;
            Ok(Search::Beam(beam))
        }
        other => Err(ApiError::bad_request(format!(
            "search={other:?}: expected greedy or beam"
        ))),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the upload is larger than the server's limit of {limit} bytes"),
    )
}

/// The image bytes of a multipart (field `image`) or raw-body request, which must arrive
/// within `timeout`.
async fn upload_bytes(
    request: Request,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let body_limit = if is_multipart {
        limit + MULTIPART_SLACK
    } else {
        limit
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > body_limit) {
        return Err(too_large(limit));
    }
    let (parts, body) = request.into_parts();
    let body = tokio::time::timeout(timeout, axum::body::to_bytes(body, body_limit))
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the upload did not arrive within {} s",
                    timeout.as_secs_f64()
                ),
            )
        })?
        .map_err(|_| too_large(limit))?;
    let bytes = if is_multipart {
        let request = Request::from_parts(parts, Body::from(body));
        let mut multipart = Multipart::from_request(request, &()).await.map_err(|err| {
            ApiError::bad_request(format!("bad multipart body: {}", err.body_text()))
        })?;
        let mut image = None;
        while let Some(field) = multipart.next_field().await.map_err(|err| {
            ApiError::bad_request(format!("bad multipart body: {}", err.body_text()))
        })? {
            if field.name() == Some("image") {
                image = Some(field.bytes().await.map_err(|err| {
                    ApiError::bad_request(format!("bad multipart body: {}", err.body_text()))
                })?);
                break;
            }
        }
        image.ok_or_else(|| ApiError::bad_request("the multipart body has no `image` field"))?
    } else {
        body
    };
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the upload is empty: send an image as the body or as the multipart field `image`",
        ));
    }
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

async fn caption(
    State(state): State<Arc<AppState>>,
    Extension(id): Extension<RequestId>,
    Query(params): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let search = parse_search(&params, &state.beam)?;
    let bytes = upload_bytes(request, state.max_upload_bytes, state.body_timeout).await?;
    let captions = state
        .batcher
        .caption(bytes, search.clone())
        .await
        .map_err(|err| job_error(err, id))?;
    let search = match &search {
        Search::Greedy(_) => json!({ "kind": "greedy" }),
        Search::Beam(beam) => json!({ "kind": "beam", "width": beam.width, "n_best": beam.n_best }),
    };
    Ok(Json(json!({
        "captions": captions,
        "search": search,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1e3,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn server_failures_do_not_reach_the_client() {
        let err = job_error(
            JobError::Model("decoder.bpk: tensor shape [3] vs [4] at /home/me/model".into()),
            RequestId(42),
        );
        assert_eq!(err.0, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.1.contains("request id 42"), "{}", err.1);
        assert!(
            !err.1.contains("decoder.bpk") && !err.1.contains("/home"),
            "{}",
            err.1
        );
        let busy = job_error(JobError::Busy, RequestId(1)).into_response();
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        let bad = job_error(JobError::BadImage("upload: truncated".into()), RequestId(2));
        assert_eq!(bad.0, StatusCode::UNPROCESSABLE_ENTITY);
    }

    #[test]
    fn search_parameters_are_checked() {
        let beam = BeamSearch::new();
        let parse = |pairs: &[(&str, &str)]| parse_search(&params(pairs), &beam);
        assert!(matches!(parse(&[]).unwrap(), Search::Beam(b) if b.width == 3 && b.n_best == 1));
        assert!(matches!(
            parse(&[("search", "greedy")]).unwrap(),
            Search::Greedy(_)
        ));
        assert!(matches!(
            parse(&[("width", "5"), ("n_best", "5")]).unwrap(),
            Search::Beam(b) if b.width == 5 && b.n_best == 5
        ));
        for bad in [
            &[("search", "sample")][..],
            &[("width", "0")],
            &[("width", "x")],
            &[("width", "99")],
            &[("width", "2"), ("n_best", "3")],
            &[("search", "greedy"), ("n_best", "2")],
            &[("beam", "3")],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.0, StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }
}
