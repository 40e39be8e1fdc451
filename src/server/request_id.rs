//! An id for every HTTP request the broker answers: sent back as
//! `X-Request-Id`, written in the API's error answers, and on every log
//! line written while the request is handled (the `request` span's
//! `request_id`), so a user's error and the operator's log meet. The id is
//! the broker's own (16 random hex digits): a client's header is not trusted
//! to name log lines.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled, if this task is handling one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The layer: names the request, handles it under that name, says the
/// name, and counts it for `/metrics` under its route (never its raw path).
pub async fn layer(State(broker): State<Arc<super::broker::Broker>>, request: Request, next: Next) -> Response {
    let id = hex::encode(rand::random::<[u8; 8]>());
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let method = request.method().clone();
    let started = std::time::Instant::now();
    // The path only: a query may carry a sign-in's code and state.
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %request.uri().path());
    let mut response = REQUEST_ID.scope(id.clone(), next.run(request).instrument(span)).await;
    broker.metrics().http_request(&route, method.as_str(), response.status().as_u16(), started.elapsed());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
